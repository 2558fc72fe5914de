//! The audit trail in SQL: append, read back for `connect admin audit`, purge by age.

use std::sync::LazyLock;

use super::{exec_db, on_db, Db, StoreError};
use crate::domain::RealmId;

/// One event as written; every text is already free of secrets (the service made sure).
pub struct NewEvent<'a> {
    pub realm: &'a RealmId,
    pub at: i64,
    pub kind: &'a str,
    pub account_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_addr: Option<String>,
    pub user_agent: Option<&'a str>,
    pub operator: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// A JSON object.
    pub detail: String,
}

/// One event as read back.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub realm: String,
    pub at: i64,
    pub kind: String,
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub operator: Option<String>,
    pub reason: Option<String>,
    pub detail: String,
}

/// The head of the statement that appends events; [`bind_event`] binds a row's
/// [`EVENT_COLUMNS`] parameters in this order.
pub(super) const INSERT_EVENTS: &str = "INSERT INTO audit_events (realm, at, kind, account_id, \
     client_id, client_addr, user_agent, operator, reason, detail) VALUES";
pub(super) const EVENT_COLUMNS: usize = 10;

/// Binds one event's parameters to an [`INSERT_EVENTS`] statement, on either backend.
macro_rules! bind_event {
    ($query:expr, $e:expr) => {{
        let e = $e;
        $query
            .bind(e.realm.as_str())
            .bind(e.at)
            .bind(e.kind)
            .bind(e.account_id)
            .bind(e.client_id)
            .bind(e.client_addr.as_deref())
            .bind(e.user_agent)
            .bind(e.operator)
            .bind(e.reason)
            .bind(&e.detail)
    }};
}
pub(super) use bind_event;

pub async fn insert(db: &Db, e: &NewEvent<'_>) -> Result<(), StoreError> {
    static ONE: LazyLock<String> =
        LazyLock::new(|| super::sql::insert_rows(INSERT_EVENTS, EVENT_COLUMNS, 1));
    exec_db!(db, |pool| bind_event!(sqlx::query(&ONE), e).execute(pool))?;
    Ok(())
}

/// The realm's events at or after `since` (Unix seconds), of one account if given, oldest
/// first.
pub async fn list(
    db: &Db,
    realm: &RealmId,
    account_id: Option<&str>,
    since: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    const SQL: &str = "SELECT id, realm, at, kind, account_id, client_id, client_addr, \
                       user_agent, operator, reason, detail FROM audit_events \
                       WHERE realm = $1 AND at >= $2 AND ($3 IS NULL OR account_id = $3) \
                       ORDER BY at, id";
    let rows: Vec<StoredEvent> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(since)
        .bind(account_id)
        .fetch_all(pool))?;
    Ok(rows)
}

/// Deletes the realm's events older than `before`; returns how many.
pub async fn purge(db: &Db, realm: &RealmId, before: i64) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM audit_events WHERE realm = $1 AND at < $2";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(before)
        .execute(pool))?)
}

/// The latest `limit` events of one account, newest first: what the person's account page
/// shows.
pub async fn recent_of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    const SQL: &str = "SELECT id, realm, at, kind, account_id, client_id, client_addr, \
                       user_agent, operator, reason, detail FROM audit_events \
                       WHERE realm = $1 AND account_id = $2 \
                       ORDER BY at DESC, id DESC LIMIT $3";
    let rows: Vec<StoredEvent> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .bind(limit)
        .fetch_all(pool))?;
    Ok(rows)
}

/// The latest `limit` events that staff caused in the realm, newest first: of one operator,
/// or of every operator when `operator` is `None`.
pub async fn recent_by_operator(
    db: &Db,
    realm: &RealmId,
    operator: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    const SQL: &str = "SELECT id, realm, at, kind, account_id, client_id, client_addr, \
                       user_agent, operator, reason, detail FROM audit_events \
                       WHERE realm = $1 AND operator IS NOT NULL \
                       AND ($2 IS NULL OR operator = $2) \
                       ORDER BY at DESC, id DESC LIMIT $3";
    let rows: Vec<StoredEvent> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(operator)
        .bind(limit)
        .fetch_all(pool))?;
    Ok(rows)
}
