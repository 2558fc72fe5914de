//! Activation codes of the letters, kept only as keyed hashes. A person has at most one usable
//! code: issuing a new one revokes the earlier unused one in the same transaction.

use std::{collections::HashSet, sync::LazyLock};

use super::{
    audit, exec_db, in_tx, on_db,
    persons::{Person, PersonRow},
    sql, Db, StoreError,
};
use crate::domain::{AhvNumber, RealmId};

/// Where a stored code stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeState {
    Usable,
    Expired,
    Revoked,
    Used,
}

#[derive(Clone, Debug)]
pub struct StoredCode {
    pub id: String,
    pub ahv: AhvNumber,
    pub expires_at: i64,
    pub state: CodeState,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: String,
    ahv: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl CodeRow {
    fn into_code(self, now: i64) -> Result<StoredCode, StoreError> {
        let state = match (self.used_at, self.revoked_at) {
            (Some(_), _) => CodeState::Used,
            (None, Some(_)) => CodeState::Revoked,
            (None, None) if self.expires_at <= now => CodeState::Expired,
            (None, None) => CodeState::Usable,
        };
        Ok(StoredCode {
            ahv: self
                .ahv
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("activation code {}: ahv", self.id)))?,
            id: self.id,
            expires_at: self.expires_at,
            state,
        })
    }
}

/// Revokes a person's unused codes: `$1` now, `$2` realm, `$3` AHV number.
pub(super) const REVOKE_UNUSED: &str = "UPDATE activation_codes SET revoked_at = $1 \
     WHERE realm = $2 AND ahv = $3 AND used_at IS NULL AND revoked_at IS NULL";
/// Stores a code: id, realm, AHV number, keyed hash, creation and expiry.
pub(super) static INSERT_CODE: LazyLock<String> =
    LazyLock::new(|| sql::insert_rows(INSERT_CODES, CODE_COLUMNS, 1));
/// The head of [`INSERT_CODE`] for many rows of [`CODE_COLUMNS`] parameters each.
const INSERT_CODES: &str =
    "INSERT INTO activation_codes (id, realm, ahv, code_hash, created_at, expires_at) VALUES";
const CODE_COLUMNS: usize = 6;

/// Stores a new code for a person and revokes their earlier unused codes, atomically.
/// Returns the new code's id.
pub async fn issue(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    in_tx!(db, |tx| {
        sqlx::query(REVOKE_UNUSED)
            .bind(now)
            .bind(realm.as_str())
            .bind(ahv.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&INSERT_CODE)
            .bind(&id)
            .bind(realm.as_str())
            .bind(ahv.as_str())
            .bind(code_hash)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
    });
    Ok(id)
}

/// A code of a batch ([`issue_many`]) and the audit event that tells of it.
pub struct NewCode<'a> {
    pub ahv: &'a AhvNumber,
    pub code_hash: String,
    pub event: audit::NewEvent<'a>,
}

/// Stores codes for many persons in one transaction, each as [`issue`] stores one, with their
/// audit events; skips the persons who are no longer waiting for one (an account opened, or
/// the person left the register, since the list was read). Returns the indexes of the codes
/// stored, in order.
pub async fn issue_many(
    db: &Db,
    realm: &RealmId,
    codes: &[NewCode<'_>],
    now: i64,
    expires_at: i64,
) -> Result<Vec<usize>, StoreError> {
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let waiting_sql = format!(
        "SELECT p.ahv FROM persons p WHERE p.realm = $1 AND p.ahv IN ({}) \
         AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.realm = p.realm AND a.ahv = p.ahv)",
        sql::parameters(2, codes.len())
    );
    let stored = in_tx!(db, |tx| {
        let mut query = sqlx::query_scalar::<_, String>(&waiting_sql).bind(realm.as_str());
        for code in codes {
            query = query.bind(code.ahv.as_str());
        }
        let waiting: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
        let stored: Vec<usize> = (0..codes.len())
            .filter(|&i| waiting.contains(codes[i].ahv.as_str()))
            .collect();
        if !stored.is_empty() {
            let revoke = format!(
                "UPDATE activation_codes SET revoked_at = $1 WHERE realm = $2 \
                 AND used_at IS NULL AND revoked_at IS NULL AND ahv IN ({})",
                sql::parameters(3, stored.len())
            );
            let mut query = sqlx::query(&revoke).bind(now).bind(realm.as_str());
            for &i in &stored {
                query = query.bind(codes[i].ahv.as_str());
            }
            query.execute(&mut *tx).await?;

            let insert = sql::insert_rows(INSERT_CODES, CODE_COLUMNS, stored.len());
            let mut query = sqlx::query(&insert);
            for &i in &stored {
                query = query
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(realm.as_str())
                    .bind(codes[i].ahv.as_str())
                    .bind(&codes[i].code_hash)
                    .bind(now)
                    .bind(expires_at);
            }
            query.execute(&mut *tx).await?;

            let events = sql::insert_rows(audit::INSERT_EVENTS, audit::EVENT_COLUMNS, stored.len());
            let mut query = sqlx::query(&events);
            for &i in &stored {
                query = audit::bind_event!(query, &codes[i].event);
            }
            query.execute(&mut *tx).await?;
        }
        stored
    });
    Ok(stored)
}

/// Revokes the person's unused codes; returns how many there were.
pub async fn revoke(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    now: i64,
) -> Result<u64, StoreError> {
    const SQL: &str = "UPDATE activation_codes SET revoked_at = $1 \
                       WHERE realm = $2 AND ahv = $3 AND used_at IS NULL AND revoked_at IS NULL";
    Ok(exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .execute(pool))?)
}

/// The code with this keyed hash in the realm, whatever its state.
pub async fn find(
    db: &Db,
    realm: &RealmId,
    code_hash: &str,
    now: i64,
) -> Result<Option<StoredCode>, StoreError> {
    const SQL: &str = "SELECT id, ahv, expires_at, used_at, revoked_at FROM activation_codes \
                       WHERE realm = $1 AND code_hash = $2";
    let row: Option<CodeRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(code_hash)
        .fetch_optional(pool))?;
    row.map(|r| r.into_code(now)).transpose()
}

/// The realm's persons who have neither an account nor a usable code, by AHV number: whom a
/// batch of letters is for. A person who closed their account is left out: they asked to
/// leave, and a letter goes to them only when support issues one.
pub async fn persons_waiting_for_a_code(
    db: &Db,
    realm: &RealmId,
    now: i64,
) -> Result<Vec<Person>, StoreError> {
    const SQL: &str = "SELECT p.ahv, p.given_name, p.family_name, p.birth_date, p.language, \
                           p.street, p.postal_code, p.locality, p.country \
                       FROM persons p WHERE p.realm = $1 AND p.account_closed_at IS NULL \
                       AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.realm = p.realm AND a.ahv = p.ahv) \
                       AND NOT EXISTS (SELECT 1 FROM activation_codes c WHERE c.realm = p.realm AND c.ahv = p.ahv \
                           AND c.used_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > $2) \
                       ORDER BY p.ahv";
    let rows: Vec<PersonRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(now)
        .fetch_all(pool))?;
    rows.into_iter().map(Person::try_from).collect()
}

/// When the person's open code (unused, unrevoked, unexpired) expires, if they have one: what
/// support sees, never the code.
pub async fn open_code_expiry(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    const SQL: &str = "SELECT MAX(expires_at) FROM activation_codes WHERE realm = $1 AND ahv = $2 \
                       AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3";
    let row: (Option<i64>,) = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .bind(now)
        .fetch_one(pool))?;
    Ok(row.0)
}
