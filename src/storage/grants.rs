//! Grants (what a person allowed a client, from one login) and their refresh tokens.
//!
//! A grant is the family of every token issued from one authorization code. Revoking it
//! ends the family: refresh tokens stop working and access tokens fail at userinfo and
//! introspection.

use super::{exec_db, in_tx, on_db, Db, StoreError};
use crate::domain::RealmId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub realm: String,
    pub client_id: String,
    pub account_id: String,
    pub scope: String,
    /// The `claims` request parameter, as JSON, for userinfo.
    pub claims: String,
    pub auth_time: i64,
    pub acr: String,
    /// Space-separated `amr` values.
    pub amr: String,
    pub sid: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub realm: String,
    pub client_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const INSERT_REFRESH: &str =
    "INSERT INTO refresh_tokens (token_hash, grant_id, realm, client_id, created_at, expires_at) \
                              VALUES ($1, $2, $3, $4, $5, $6)";

/// Binds a refresh token row to `INSERT_REFRESH`, for either backend.
macro_rules! insert_refresh {
    ($r:expr) => {
        sqlx::query(INSERT_REFRESH)
            .bind(&$r.token_hash)
            .bind(&$r.grant_id)
            .bind(&$r.realm)
            .bind(&$r.client_id)
            .bind($r.created_at)
            .bind($r.expires_at)
    };
}

/// Stores a grant and, if the client may refresh, its first refresh token, together.
pub async fn insert(
    db: &Db,
    grant: &Grant,
    refresh: Option<&RefreshToken>,
) -> Result<(), StoreError> {
    const GRANT: &str = "INSERT INTO grants (id, realm, client_id, account_id, scope, claims, auth_time, acr, amr, sid, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    in_tx!(db, |tx| {
        sqlx::query(GRANT)
            .bind(&grant.id)
            .bind(&grant.realm)
            .bind(&grant.client_id)
            .bind(&grant.account_id)
            .bind(&grant.scope)
            .bind(&grant.claims)
            .bind(grant.auth_time)
            .bind(&grant.acr)
            .bind(&grant.amr)
            .bind(&grant.sid)
            .bind(grant.created_at)
            .execute(&mut *tx)
            .await?;
        if let Some(r) = refresh {
            insert_refresh!(r).execute(&mut *tx).await?;
        }
    });
    Ok(())
}

pub async fn by_id(db: &Db, realm: &RealmId, id: &str) -> Result<Option<Grant>, StoreError> {
    const SQL: &str = "SELECT id, realm, client_id, account_id, scope, claims, auth_time, acr, amr, sid, created_at, revoked_at \
                       FROM grants WHERE realm = $1 AND id = $2";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(id)
        .fetch_optional(pool))?)
}

/// Ends a grant and every token of its family. Revoking twice is harmless.
pub async fn revoke(db: &Db, realm: &RealmId, id: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str =
        "UPDATE grants SET revoked_at = $1 WHERE realm = $2 AND id = $3 AND revoked_at IS NULL";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(id)
        .execute(pool))?;
    Ok(())
}

/// Ends every grant of one SSO session (logout).
pub async fn revoke_session(
    db: &Db,
    realm: &RealmId,
    sid: &str,
    now: i64,
) -> Result<u64, StoreError> {
    const SQL: &str =
        "UPDATE grants SET revoked_at = $1 WHERE realm = $2 AND sid = $3 AND revoked_at IS NULL";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(sid)
        .execute(pool))?)
}

/// A client that took part in one SSO session, and the account it was told about.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Participant {
    pub client_id: String,
    pub account_id: String,
}

/// The clients that received tokens from one SSO session, revoked grants included: a client
/// that revoked its own tokens may still hold a session of its own.
pub async fn session_participants(
    db: &Db,
    realm: &RealmId,
    sid: &str,
) -> Result<Vec<Participant>, StoreError> {
    const SQL: &str = "SELECT DISTINCT client_id, account_id FROM grants \
                       WHERE realm = $1 AND sid = $2 ORDER BY client_id";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(sid)
        .fetch_all(pool))?)
}

pub async fn refresh_by_hash(
    db: &Db,
    realm: &RealmId,
    hash: &str,
) -> Result<Option<RefreshToken>, StoreError> {
    const SQL: &str =
        "SELECT token_hash, grant_id, realm, client_id, created_at, expires_at, used_at \
                       FROM refresh_tokens WHERE realm = $1 AND token_hash = $2";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(hash)
        .fetch_optional(pool))?)
}

/// Spends `old` and stores `new` in one transaction. Returns false, writing nothing, when
/// `old` was already spent: of two concurrent refreshes with one token, one wins.
pub async fn rotate_refresh(
    db: &Db,
    old_hash: &str,
    now: i64,
    new: &RefreshToken,
) -> Result<bool, StoreError> {
    const SPEND: &str =
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL";
    in_tx!(db, |tx| {
        let spent = sqlx::query(SPEND)
            .bind(now)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh!(new).execute(&mut *tx).await?;
    });
    Ok(true)
}

/// The `sid`s of an account's grants that are not revoked: the sessions that still have a
/// client holding tokens.
pub async fn live_sids_of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<String>, StoreError> {
    const SQL: &str = "SELECT DISTINCT sid FROM grants \
                       WHERE realm = $1 AND account_id = $2 AND revoked_at IS NULL ORDER BY sid";
    let rows: Vec<(String,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Ends every grant of an account (locked, disabled, or a factor changed).
pub async fn revoke_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    const SQL: &str = "UPDATE grants SET revoked_at = $1 \
                       WHERE realm = $2 AND account_id = $3 AND revoked_at IS NULL";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))?)
}

/// Ends every grant of an account but those of the session `sid` (the person's own change
/// from that session).
pub async fn revoke_account_but_session(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    sid: &str,
    now: i64,
) -> Result<u64, StoreError> {
    const SQL: &str = "UPDATE grants SET revoked_at = $1 \
                       WHERE realm = $2 AND account_id = $3 AND sid <> $4 AND revoked_at IS NULL";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(account_id)
        .bind(sid)
        .execute(pool))?)
}

/// The clients an account has used: each with its first and latest grant.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClientUse {
    pub client_id: String,
    pub first_at: i64,
    pub last_at: i64,
}

pub async fn clients_of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<ClientUse>, StoreError> {
    const SQL: &str = "SELECT client_id, MIN(created_at) AS first_at, MAX(created_at) AS last_at \
                       FROM grants WHERE realm = $1 AND account_id = $2 \
                       GROUP BY client_id ORDER BY client_id";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?)
}

/// Every grant of an account, oldest first (the person's copy of their data).
pub async fn of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<Grant>, StoreError> {
    const SQL: &str = "SELECT id, realm, client_id, account_id, scope, claims, auth_time, acr, amr, sid, created_at, revoked_at \
                       FROM grants WHERE realm = $1 AND account_id = $2 ORDER BY created_at, id";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?)
}
