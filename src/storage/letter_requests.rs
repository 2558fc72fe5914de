//! The realm's queue of requested letters: a person who lost their phone proved e-mail and
//! password and asked for a new activation letter; the mailroom prints the queue with
//! `connect admin code letters`; the letter's code then registers a new mobile number.

use super::{
    accounts::SECOND_FACTORS,
    activation_codes::{INSERT_CODE, REVOKE_UNUSED},
    exec_db, in_tx, on_db,
    persons::{Person, PersonRow},
    Conflict, Db, StoreError,
};
use crate::domain::{AhvNumber, RealmId};

/// Whether a request joined the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    New,
    /// A request of this account already waits for the printer: nothing added.
    AlreadyWaiting,
}

/// Adds a request of the account to the realm's queue, unless one already waits.
pub async fn queue(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    ahv: &AhvNumber,
    now: i64,
) -> Result<Queued, StoreError> {
    // `letter_requests_queued_key` keeps one waiting request per account; a second one is
    // dropped by the database itself, so two racing requests queue one letter.
    const SQL: &str = "INSERT INTO letter_requests (id, realm, account_id, ahv, requested_at) \
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(realm.as_str())
        .bind(account_id)
        .bind(ahv.as_str())
        .bind(now)
        .execute(pool))?;
    Ok(if n == 1 {
        Queued::New
    } else {
        Queued::AlreadyWaiting
    })
}

/// A request waiting for the printer, with the person of the register it goes to.
#[derive(Clone, Debug)]
pub struct WaitingLetter {
    pub id: String,
    pub account_id: String,
    pub person: Person,
}

#[derive(sqlx::FromRow)]
struct WaitingRow {
    id: String,
    account_id: String,
    #[sqlx(flatten)]
    person: PersonRow,
}

/// The realm's requests waiting for the printer, oldest first, each in the language the
/// person chose for their account (the register's while the account exists no more). A
/// request whose person left the register has no address to go to and stays in the queue.
pub async fn waiting(db: &Db, realm: &RealmId) -> Result<Vec<WaitingLetter>, StoreError> {
    const SQL: &str = "SELECT r.id, r.account_id, p.ahv, p.given_name, p.family_name, \
                           p.birth_date, COALESCE(a.language, p.language) AS language, \
                           p.street, p.postal_code, p.locality, p.country \
                       FROM letter_requests r \
                       JOIN persons p ON p.realm = r.realm AND p.ahv = r.ahv \
                       LEFT JOIN accounts a ON a.id = r.account_id \
                       WHERE r.realm = $1 AND r.printed_at IS NULL \
                       ORDER BY r.requested_at, r.id";
    let rows: Vec<WaitingRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .fetch_all(pool))?;
    rows.into_iter()
        .map(|r| {
            Ok(WaitingLetter {
                id: r.id,
                account_id: r.account_id,
                person: Person::try_from(r.person)?,
            })
        })
        .collect()
}

/// Issues the code of a requested letter: the person's unused codes are revoked, the new one
/// stored and named on the request, in one transaction. Returns the new code's id.
pub async fn issue_code(
    db: &Db,
    realm: &RealmId,
    request_id: &str,
    ahv: &AhvNumber,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<String, StoreError> {
    const LINK: &str = "UPDATE letter_requests SET code_id = $1 \
                        WHERE id = $2 AND realm = $3 AND printed_at IS NULL";
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
        let linked = sqlx::query(LINK)
            .bind(&id)
            .bind(request_id)
            .bind(realm.as_str())
            .execute(&mut *tx)
            .await?;
        // Printed by a concurrent run meanwhile: this code is not written anywhere.
        if linked.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
    });
    Ok(id)
}

/// The letter of the request went to the printer.
pub async fn mark_printed(
    db: &Db,
    realm: &RealmId,
    request_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE letter_requests SET printed_at = $1 \
                       WHERE id = $2 AND realm = $3 AND printed_at IS NULL";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(request_id)
        .bind(realm.as_str())
        .execute(pool))?;
    Ok(())
}

/// A printed request whose code has not yet registered a new number.
#[derive(Clone, Debug)]
pub struct PrintedLetter {
    pub id: String,
    pub account_id: String,
    pub code_id: String,
}

#[derive(sqlx::FromRow)]
struct PrintedRow {
    id: String,
    account_id: String,
    code_id: String,
}

/// The printed, unfinished request whose letter carries the code `code_id`.
pub async fn printed_with_code(
    db: &Db,
    realm: &RealmId,
    code_id: &str,
) -> Result<Option<PrintedLetter>, StoreError> {
    const SQL: &str = "SELECT id, account_id, code_id FROM letter_requests \
                       WHERE realm = $1 AND code_id = $2 AND printed_at IS NOT NULL \
                       AND done_at IS NULL";
    let row: Option<PrintedRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(code_id)
        .fetch_optional(pool))?;
    Ok(row.map(|r| PrintedLetter {
        id: r.id,
        account_id: r.account_id,
        code_id: r.code_id,
    }))
}

/// The new mobile number, proved by its SMS code, replaces every second factor of the
/// account, in one transaction: the letter's code is spent (if it was spent, revoked or
/// expired meanwhile: [`Conflict::CodeSpent`] and nothing changes), the request is done, the
/// old factors go ([`SECOND_FACTORS`]), the number is stored as proved, and every session of
/// the account ends.
pub async fn register_new_phone(
    db: &Db,
    realm: &RealmId,
    letter: &PrintedLetter,
    phone: &str,
    now: i64,
) -> Result<(), StoreError> {
    const SPEND: &str = "UPDATE activation_codes SET used_at = $1 \
                         WHERE id = $2 AND realm = $3 AND used_at IS NULL AND revoked_at IS NULL \
                         AND expires_at > $1";
    const DONE: &str = "UPDATE letter_requests SET done_at = $1 \
                        WHERE id = $2 AND realm = $3 AND done_at IS NULL";
    const PHONE: &str = "UPDATE accounts SET phone = $1, phone_verified_at = $2, \
                         phone_reset_at = NULL, sessions_epoch = sessions_epoch + 1, updated_at = $2 \
                         WHERE id = $3 AND realm = $4";
    in_tx!(db, |tx| {
        let spent = sqlx::query(SPEND)
            .bind(now)
            .bind(&letter.code_id)
            .bind(realm.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(DONE)
            .bind(now)
            .bind(&letter.id)
            .bind(realm.as_str())
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 || done.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
        for sql in SECOND_FACTORS {
            sqlx::query(sql)
                .bind(&letter.account_id)
                .execute(&mut *tx)
                .await?;
        }
        let set = sqlx::query(PHONE)
            .bind(phone)
            .bind(now)
            .bind(&letter.account_id)
            .bind(realm.as_str())
            .execute(&mut *tx)
            .await?;
        if set.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
    });
    Ok(())
}

/// The account's requests still waiting for the printer (0 or 1), for support's summary.
pub async fn waiting_of_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Vec<i64>, StoreError> {
    const SQL: &str = "SELECT requested_at FROM letter_requests \
                       WHERE realm = $1 AND account_id = $2 AND printed_at IS NULL \
                       ORDER BY requested_at";
    let rows: Vec<(i64,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
