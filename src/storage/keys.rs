//! Signing keys, their private halves sealed with the master key.

use super::{exec_db, on_db, Db, StoreError};
use crate::domain::RealmId;

#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

pub async fn insert(db: &Db, realm: &RealmId, row: &KeyRow) -> Result<(), StoreError> {
    const SQL: &str =
        "INSERT INTO signing_keys (kid, realm, alg, private_key, public_jwk, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6)";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(&row.kid)
        .bind(realm.as_str())
        .bind(&row.alg)
        .bind(&row.private_key)
        .bind(&row.public_jwk)
        .bind(row.created_at)
        .execute(pool))?;
    Ok(())
}

/// Keys still in the JWKS at `now`, oldest first.
pub async fn published(db: &Db, realm: &RealmId, now: i64) -> Result<Vec<KeyRow>, StoreError> {
    const SQL: &str =
        "SELECT kid, alg, private_key, public_jwk, created_at, retired_at FROM signing_keys \
                       WHERE realm = $1 AND (unpublish_at IS NULL OR unpublish_at > $2) \
                       ORDER BY created_at, kid";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(now)
        .fetch_all(pool))?)
}

/// Stops the active keys of an algorithm from signing; they stay published until `unpublish_at`.
pub async fn retire(
    db: &Db,
    realm: &RealmId,
    alg: &str,
    now: i64,
    unpublish_at: i64,
) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE signing_keys SET retired_at = $1, unpublish_at = $2 \
                       WHERE realm = $3 AND alg = $4 AND retired_at IS NULL";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(unpublish_at)
        .bind(realm.as_str())
        .bind(alg)
        .execute(pool))?;
    Ok(())
}

/// Deletes keys that no token can need any more.
pub async fn forget_unpublished(db: &Db, realm: &RealmId, now: i64) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM signing_keys WHERE realm = $1 AND unpublish_at IS NOT NULL AND unpublish_at <= $2";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(now)
        .execute(pool))?)
}
