//! Authenticator apps (TOTP): one per account, its secret sealed with the master key by
//! `factors::totp`, and the last time step a code was accepted for.

use super::{exec_db, on_db, Db, StoreError};
use crate::domain::RealmId;

/// An account's app as stored. The secret stays sealed here; only `factors::totp` opens it.
#[derive(Clone, Debug)]
pub struct StoredApp {
    pub sealed_secret: String,
    pub created_at: i64,
    /// The RFC 6238 time step of the last accepted code; `None`: none yet.
    pub last_step: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AppRow {
    secret: String,
    created_at: i64,
    last_step: Option<i64>,
    last_used_at: Option<i64>,
}

pub async fn by_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Option<StoredApp>, StoreError> {
    const SQL: &str = "SELECT secret, created_at, last_step, last_used_at FROM totp_apps \
                       WHERE realm = $1 AND account_id = $2";
    let row: Option<AppRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_optional(pool))?;
    Ok(row.map(|r| StoredApp {
        sealed_secret: r.secret,
        created_at: r.created_at,
        last_step: r.last_step,
        last_used_at: r.last_used_at,
    }))
}

/// Registers the account's app, whose confirming code was of `step` (so that code is spent).
/// False when the account has one already: a second confirmation racing the first adds nothing.
pub async fn insert(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    sealed_secret: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str =
        "INSERT INTO totp_apps (account_id, realm, secret, created_at, last_step, last_used_at) \
                       VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (account_id) DO NOTHING";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(account_id)
        .bind(realm.as_str())
        .bind(sealed_secret)
        .bind(now)
        .bind(step)
        .execute(pool))?;
    Ok(n == 1)
}

/// Spends the code of time step `step`: true only if no code of this step or a later one was
/// accepted before. One statement, so of two racing logins with one code exactly one wins.
pub async fn spend_step(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE totp_apps SET last_step = $1, last_used_at = $2 \
                       WHERE realm = $3 AND account_id = $4 AND (last_step IS NULL OR last_step < $1)";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(step)
        .bind(now)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))?;
    Ok(n == 1)
}

/// Removes the account's app; false when it had none.
pub async fn remove(db: &Db, realm: &RealmId, account_id: &str) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM totp_apps WHERE realm = $1 AND account_id = $2";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))?;
    Ok(n == 1)
}
