//! The passkeys (WebAuthn credentials) of accounts: webauthn-rs's credential as JSON, the
//! name the person gave it, when it was added and last used.

use super::{exec_db, on_db, Db, StoreError};
use crate::domain::{PasskeyName, RealmId};

/// A passkey as stored. `credential` is opaque here: `passkeys::Passkeys` reads and writes it.
#[derive(Clone, Debug)]
pub struct StoredPasskey {
    pub id: String,
    pub account_id: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// webauthn-rs's `Passkey` as JSON: public key, signature counter, backup flags.
    pub credential: String,
    pub name: PasskeyName,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: String,
    account_id: String,
    credential_id: String,
    credential: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<PasskeyRow> for StoredPasskey {
    type Error = StoreError;
    fn try_from(r: PasskeyRow) -> Result<Self, StoreError> {
        Ok(StoredPasskey {
            name: r
                .name
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("passkey {}: name", r.id)))?,
            id: r.id,
            account_id: r.account_id,
            credential_id: r.credential_id,
            credential: r.credential,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
    }
}

const COLUMNS: &str = "id, account_id, credential_id, credential, name, created_at, last_used_at";

pub struct NewPasskey<'a> {
    pub realm: &'a RealmId,
    pub account_id: &'a str,
    pub credential_id: &'a str,
    pub credential: &'a str,
    pub name: &'a PasskeyName,
}

/// Stores a newly registered passkey; returns its id. A credential id already registered in
/// the realm (to this account or another) is [`super::Conflict::PasskeyTaken`].
pub async fn insert(db: &Db, new: &NewPasskey<'_>, now: i64) -> Result<String, StoreError> {
    const SQL: &str = "INSERT INTO passkeys (id, realm, account_id, credential_id, credential, name, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let id = uuid::Uuid::new_v4().to_string();
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(&id)
        .bind(new.realm.as_str())
        .bind(new.account_id)
        .bind(new.credential_id)
        .bind(new.credential)
        .bind(new.name.as_str())
        .bind(now)
        .execute(pool))
    .map_err(StoreError::on_constraint)?;
    Ok(id)
}

/// The passkeys of an account, oldest first.
pub async fn of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<StoredPasskey>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM passkeys WHERE realm = $1 AND account_id = $2 \
         ORDER BY created_at, id"
    );
    let rows: Vec<PasskeyRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?;
    rows.into_iter().map(StoredPasskey::try_from).collect()
}

/// One passkey of an account, by its id; another account's is none.
pub async fn of_account_by_id(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    id: &str,
) -> Result<Option<StoredPasskey>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM passkeys WHERE realm = $1 AND account_id = $2 AND id = $3");
    let row: Option<PasskeyRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(account_id)
        .bind(id)
        .fetch_optional(pool))?;
    row.map(StoredPasskey::try_from).transpose()
}

/// The passkey with this credential id in the realm, whatever its account.
pub async fn by_credential_id(
    db: &Db,
    realm: &RealmId,
    credential_id: &str,
) -> Result<Option<StoredPasskey>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE realm = $1 AND credential_id = $2");
    let row: Option<PasskeyRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(credential_id)
        .fetch_optional(pool))?;
    row.map(StoredPasskey::try_from).transpose()
}

/// After a login with the passkey: its new counter and flags, and when. Only while the
/// stored credential is still `seen`, so that of two logins racing with one assertion's
/// counter only one writes; false for the other (and for a passkey removed meanwhile).
pub async fn used(
    db: &Db,
    realm: &RealmId,
    id: &str,
    seen: &str,
    credential: &str,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE passkeys SET credential = $1, last_used_at = $2 \
                       WHERE realm = $3 AND id = $4 AND credential = $5";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(credential)
        .bind(now)
        .bind(realm.as_str())
        .bind(id)
        .bind(seen)
        .execute(pool))?;
    Ok(n == 1)
}

/// Gives an account's passkey a new name; false when the account has no such passkey.
pub async fn rename(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    id: &str,
    name: &PasskeyName,
) -> Result<bool, StoreError> {
    const SQL: &str =
        "UPDATE passkeys SET name = $1 WHERE realm = $2 AND account_id = $3 AND id = $4";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(name.as_str())
        .bind(realm.as_str())
        .bind(account_id)
        .bind(id)
        .execute(pool))?;
    Ok(n == 1)
}

/// Removes an account's passkey; false when the account has no such passkey.
pub async fn remove(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM passkeys WHERE realm = $1 AND account_id = $2 AND id = $3";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .bind(id)
        .execute(pool))?;
    Ok(n == 1)
}

/// Removes every passkey of an account (its second factors are reset); returns how many.
pub async fn remove_all(db: &Db, realm: &RealmId, account_id: &str) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM passkeys WHERE realm = $1 AND account_id = $2";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))
    .map_err(StoreError::from)
}
