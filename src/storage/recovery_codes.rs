//! Recovery codes: ten per account, stored as keyed hashes (made by `factors::recovery`),
//! each spent once; a new set replaces the old one in one transaction.

use super::{exec_db, in_tx, on_db, Db, StoreError};
use crate::domain::RealmId;

/// A code not spent yet: its row and its keyed hash.
#[derive(Clone, Debug)]
pub struct UnusedCode {
    pub id: String,
    pub code_hash: String,
}

/// What an account's set of codes looks like, without the codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSet {
    /// Codes not spent yet.
    pub left: usize,
    /// When the set was made.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct UnusedRow {
    id: String,
    code_hash: String,
}

/// Replaces every code of the account with the new ones (their keyed hashes): the old codes,
/// spent or not, stop working in the same transaction.
pub async fn replace(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    hashes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    const DELETE: &str = "DELETE FROM recovery_codes WHERE realm = $1 AND account_id = $2";
    const INSERT: &str =
        "INSERT INTO recovery_codes (id, account_id, realm, code_hash, created_at) \
                          VALUES ($1, $2, $3, $4, $5)";
    in_tx!(db, |tx| {
        sqlx::query(DELETE)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        for hash in hashes {
            sqlx::query(INSERT)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(account_id)
                .bind(realm.as_str())
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    });
    Ok(())
}

/// The codes of the account not spent yet.
pub async fn unused(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<UnusedCode>, StoreError> {
    const SQL: &str = "SELECT id, code_hash FROM recovery_codes \
                       WHERE realm = $1 AND account_id = $2 AND used_at IS NULL";
    let rows: Vec<UnusedRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?;
    Ok(rows
        .into_iter()
        .map(|r| UnusedCode {
            id: r.id,
            code_hash: r.code_hash,
        })
        .collect())
}

/// Spends one code: true only for the first of any number of racing spenders.
pub async fn spend(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE recovery_codes SET used_at = $1 \
                       WHERE id = $2 AND realm = $3 AND account_id = $4 AND used_at IS NULL";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(id)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))?;
    Ok(n == 1)
}

/// The account's set, if it has one.
pub async fn set_of(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Option<CodeSet>, StoreError> {
    const SQL: &str = "SELECT COUNT(*) - COUNT(used_at), MIN(created_at) FROM recovery_codes \
                       WHERE realm = $1 AND account_id = $2";
    let (left, created_at): (i64, Option<i64>) = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_one(pool))?;
    Ok(created_at.map(|created_at| CodeSet {
        left: usize::try_from(left).unwrap_or(0),
        created_at,
    }))
}

/// Removes every code of the account; how many there were.
pub async fn remove_all(db: &Db, realm: &RealmId, account_id: &str) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM recovery_codes WHERE realm = $1 AND account_id = $2";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))?;
    Ok(n)
}
