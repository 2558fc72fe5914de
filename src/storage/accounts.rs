//! Accounts of persons who can log in: e-mail, password hash, names, phone.

use super::{exec_db, in_tx, on_db, Conflict, Db, StoreError};
use crate::domain::{AhvNumber, Email, Language, RealmId};

/// An account as stored, re-parsed into domain types on the way out.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub realm: RealmId,
    pub email: Email,
    pub password_hash: String,
    pub given_name: String,
    pub family_name: String,
    pub ahv: Option<AhvNumber>,
    pub phone: Option<String>,
    pub language: Language,
    /// Neither locked nor disabled as stored. A lock past its `locked_until` still reads
    /// `false` here until the next login lifts it: [`Account::may_log_in`] says what counts.
    /// Locking ends every session and grant, so nothing issued before the lock outlives it.
    pub active: bool,
    pub status: AccountStatus,
    /// End of a lock after wrong passwords; `None` while locked: until support unlocks it.
    pub locked_until: Option<i64>,
    /// When the person last proved the address (enrolment step 3); `None`: never.
    pub email_verified_at: Option<i64>,
    /// When the person last proved the number (enrolment step 7, or an SMS login after
    /// support registered it); `None`: never.
    pub phone_verified_at: Option<i64>,
    /// Sessions started under an older epoch are over (see [`end_sessions`]).
    pub sessions_epoch: i64,
    pub updated_at: i64,
    pub created_at: i64,
    /// The terms of use accepted at enrolment, and when.
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<i64>,
    /// When support took every second factor away ([`reset_phone`]); until a new number is
    /// proved at login ([`new_phone_proved`]), the password alone never logs in.
    pub phone_reset_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    realm: String,
    email: String,
    password_hash: String,
    given_name: String,
    family_name: String,
    ahv: Option<String>,
    phone: Option<String>,
    language: String,
    status: String,
    updated_at: i64,
    created_at: i64,
    terms_version: Option<String>,
    terms_accepted_at: Option<i64>,
    locked_until: Option<i64>,
    email_verified_at: Option<i64>,
    phone_verified_at: Option<i64>,
    sessions_epoch: i32,
    phone_reset_at: Option<i64>,
}

/// What an account may do, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    /// After `lock_after_failures` wrong passwords (until `locked_until`), or by support.
    Locked,
    /// By support, until support enables it again.
    Disabled,
    /// A staff member added by `connect admin staff add` whose enrolment has not registered
    /// a passkey yet: no login at all until it has.
    Invited,
}

impl AccountStatus {
    fn parse(s: &str) -> Option<AccountStatus> {
        match s {
            "active" => Some(AccountStatus::Active),
            "locked" => Some(AccountStatus::Locked),
            "disabled" => Some(AccountStatus::Disabled),
            "invited" => Some(AccountStatus::Invited),
            _ => None,
        }
    }
}

impl Account {
    /// True when the account may log in at `now`: active, or locked by a lock that has
    /// ended by itself. Refresh, userinfo, introspection and session reuse ask this too.
    pub fn may_log_in(&self, now: i64) -> bool {
        match self.status {
            AccountStatus::Active => true,
            AccountStatus::Locked => self.locked_until.is_some_and(|until| until <= now),
            AccountStatus::Disabled | AccountStatus::Invited => false,
        }
    }
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("account {}: {what}", r.id));
        Ok(Account {
            realm: r.realm.parse().map_err(|_| bad("realm"))?,
            email: r.email.parse().map_err(|_| bad("email"))?,
            ahv: r
                .ahv
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| bad("ahv"))?,
            language: r.language.parse().map_err(|_| bad("language"))?,
            status: AccountStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
            active: r.status == "active",
            locked_until: r.locked_until,
            email_verified_at: r.email_verified_at,
            phone_verified_at: r.phone_verified_at,
            sessions_epoch: i64::from(r.sessions_epoch),
            id: r.id,
            password_hash: r.password_hash,
            given_name: r.given_name,
            family_name: r.family_name,
            phone: r.phone,
            updated_at: r.updated_at,
            created_at: r.created_at,
            terms_version: r.terms_version,
            terms_accepted_at: r.terms_accepted_at,
            phone_reset_at: r.phone_reset_at,
        })
    }
}

/// Uniqueness of e-mail addresses ignores case: `Anna@x.ch` and `anna@x.ch` are one person.
pub(super) fn email_key(email: &Email) -> String {
    email.as_str().to_lowercase()
}

pub struct NewAccount<'a> {
    pub realm: &'a RealmId,
    pub email: &'a Email,
    pub password_hash: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub ahv: Option<&'a AhvNumber>,
    pub phone: Option<&'a str>,
    pub language: Language,
}

pub async fn create(db: &Db, new: &NewAccount<'_>, now: i64) -> Result<String, StoreError> {
    const SQL: &str = "INSERT INTO accounts (id, realm, email, email_key, password_hash, given_name, family_name, \
                       ahv, phone, language, status, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11)";
    let id = uuid::Uuid::new_v4().to_string();
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(&id)
        .bind(new.realm.as_str())
        .bind(new.email.as_str())
        .bind(email_key(new.email))
        .bind(new.password_hash)
        .bind(new.given_name)
        .bind(new.family_name)
        .bind(new.ahv.map(AhvNumber::as_str))
        .bind(new.phone)
        .bind(new.language.code())
        .bind(now)
        .execute(pool))
    .map_err(StoreError::on_constraint)?;
    Ok(id)
}

const COLUMNS: &str =
    "id, realm, email, password_hash, given_name, family_name, ahv, phone, language, status, \
                       updated_at, created_at, terms_version, terms_accepted_at, locked_until, email_verified_at, \
                       phone_verified_at, sessions_epoch, phone_reset_at";

pub async fn by_email(
    db: &Db,
    realm: &RealmId,
    email: &Email,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE realm = $1 AND email_key = $2");
    let row: Option<AccountRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(email_key(email))
        .fetch_optional(pool))?;
    row.map(Account::try_from).transpose()
}

pub async fn by_id(db: &Db, realm: &RealmId, id: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE realm = $1 AND id = $2");
    let row: Option<AccountRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(id)
        .fetch_optional(pool))?;
    row.map(Account::try_from).transpose()
}

pub async fn by_ahv(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE realm = $1 AND ahv = $2");
    let row: Option<AccountRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_optional(pool))?;
    row.map(Account::try_from).transpose()
}

/// What an enrolment adds to an account: the terms the person accepted.
pub struct AcceptedTerms<'a> {
    pub version: &'a str,
    pub accepted_at: i64,
}

/// When enrolment proved the address (step 3) and the number (step 7).
pub struct Proved {
    pub email_at: i64,
    pub phone_at: i64,
}

/// Step 7 of enrolment in one transaction: spends the activation code and opens the account.
/// Of two enrolments racing with one code, exactly one gets here first; the other finds the
/// code spent ([`Conflict::CodeSpent`]) and writes nothing.
pub async fn open_enrolled(
    db: &Db,
    code_id: &str,
    new: &NewAccount<'_>,
    terms: &AcceptedTerms<'_>,
    proved: &Proved,
    now: i64,
) -> Result<String, StoreError> {
    const SPEND: &str = "UPDATE activation_codes SET used_at = $1 \
                         WHERE id = $2 AND realm = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1";
    const INSERT: &str = "INSERT INTO accounts (id, realm, email, email_key, password_hash, given_name, family_name, \
                          ahv, phone, language, status, created_at, updated_at, terms_version, terms_accepted_at, \
                          email_verified_at, phone_verified_at) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11, $12, $13, $14, $15)";
    let id = uuid::Uuid::new_v4().to_string();
    in_tx!(db, |tx| {
        let spent = sqlx::query(SPEND)
            .bind(now)
            .bind(code_id)
            .bind(new.realm.as_str())
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
        sqlx::query(INSERT)
            .bind(&id)
            .bind(new.realm.as_str())
            .bind(new.email.as_str())
            .bind(email_key(new.email))
            .bind(new.password_hash)
            .bind(new.given_name)
            .bind(new.family_name)
            .bind(new.ahv.map(AhvNumber::as_str))
            .bind(new.phone)
            .bind(new.language.code())
            .bind(now)
            .bind(terms.version)
            .bind(terms.accepted_at)
            .bind(proved.email_at)
            .bind(proved.phone_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::on_constraint)?;
    });
    Ok(id)
}

/// After a wrong password: one more consecutive failure, counted in the one statement that
/// returns it, so that concurrent failures each see their own count. Returns the new count.
pub async fn record_failed_login(db: &Db, id: &str, now: i64) -> Result<i64, StoreError> {
    const SQL: &str = "UPDATE accounts SET failed_logins = failed_logins + 1, updated_at = $1 \
                       WHERE id = $2 RETURNING failed_logins";
    let n: Option<(i32,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(now)
        .bind(id)
        .fetch_optional(pool))?;
    Ok(n.map_or(0, |n| i64::from(n.0)))
}

/// After the right password: the count starts again.
pub async fn clear_failed_logins(db: &Db, id: &str) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0";
    exec_db!(db, |pool| sqlx::query(SQL).bind(id).execute(pool))?;
    Ok(())
}

/// Locks an active account, until `until` or (`None`) until support unlocks it. True when
/// this call locked it: of concurrent lockers exactly one is told, so one mail goes out.
pub async fn lock(db: &Db, id: &str, until: Option<i64>, now: i64) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE accounts SET status = 'locked', locked_until = $1, updated_at = $2 \
                       WHERE id = $3 AND status = 'active'";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(until)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(n == 1)
}

/// A lock that has ended by itself is lifted and its failures forgotten, before the
/// password of the next login is checked. True when there was one to lift.
pub async fn lift_ended_lock(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    const SQL: &str =
        "UPDATE accounts SET status = 'active', locked_until = NULL, failed_logins = 0, \
                       updated_at = $1 WHERE id = $2 AND status = 'locked' AND locked_until <= $1";
    let n = exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(n == 1)
}

/// Support unlocks a locked account: active again, failure count at zero. False when it
/// was not locked (a disabled account stays disabled).
pub async fn unlock(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    const SQL: &str =
        "UPDATE accounts SET status = 'active', locked_until = NULL, failed_logins = 0, \
                       updated_at = $1 WHERE id = $2 AND status = 'locked'";
    let n = exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(n == 1)
}

/// Support disables an account, whatever its state. False when it already was.
pub async fn disable(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    const SQL: &str =
        "UPDATE accounts SET status = 'disabled', locked_until = NULL, updated_at = $1 \
                       WHERE id = $2 AND status <> 'disabled'";
    let n = exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(n == 1)
}

/// Support enables a disabled account again. False when it was not disabled.
pub async fn enable(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE accounts SET status = 'active', failed_logins = 0, updated_at = $1 \
                       WHERE id = $2 AND status = 'disabled'";
    let n = exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(n == 1)
}

/// Support registers a new mobile number (E.164). It counts as proved only once the person
/// logs in with an SMS code sent to it ([`phone_proved`]).
pub async fn set_phone(db: &Db, id: &str, phone: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str =
        "UPDATE accounts SET phone = $1, phone_verified_at = NULL, phone_reset_at = NULL, \
                       updated_at = $2 \
                       WHERE id = $3";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(phone)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(())
}

/// An SMS code sent to `phone` came back right: the number is proved, unless it changed
/// meanwhile.
pub async fn phone_proved(db: &Db, id: &str, phone: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET phone_verified_at = $1 \
                       WHERE id = $2 AND phone = $3 AND phone_verified_at IS NULL";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(id)
        .bind(phone)
        .execute(pool))?;
    Ok(())
}

/// Every session of the account ends: those started before this call no longer count
/// wherever they are stored (see `Sessions::current`).
pub async fn end_sessions(db: &Db, id: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str =
        "UPDATE accounts SET sessions_epoch = sessions_epoch + 1, updated_at = $1 WHERE id = $2";
    exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(())
}

/// The person chose a new password (its Argon2id hash).
pub async fn set_password(db: &Db, id: &str, hash: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET password_hash = $1, failed_logins = 0, updated_at = $2 \
                       WHERE id = $3";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(())
}

/// The person registered a new mobile number (E.164), proved by the code sent to it.
pub async fn change_phone(db: &Db, id: &str, phone: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str =
        "UPDATE accounts SET phone = $1, phone_verified_at = $2, phone_reset_at = NULL, \
                       updated_at = $2 \
                       WHERE id = $3";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(phone)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(())
}

/// The person moved their account to a new address, proved by the code sent to it. An
/// address that another account took meanwhile is [`Conflict::EmailTaken`].
pub async fn change_email(db: &Db, id: &str, email: &Email, now: i64) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET email = $1, email_key = $2, email_verified_at = $3, \
                       updated_at = $3 WHERE id = $4";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(email.as_str())
        .bind(email_key(email))
        .bind(now)
        .bind(id)
        .execute(pool))
    .map_err(StoreError::on_constraint)?;
    Ok(())
}

/// The language of the account's pages, mails and letters.
pub async fn set_language(db: &Db, id: &str, lang: Language, now: i64) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET language = $1, updated_at = $2 WHERE id = $3";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(lang.code())
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(())
}

/// The person closed their account: in one transaction, its grants and their refresh tokens
/// and the account with its factors are deleted; the person's entry in the register stays
/// with the caisse, marked so that no activation letter goes out to them by itself again.
/// The audit trail keeps its events (the realm's retention). True when there was an account.
///
/// Tables that hold more factors of an account (added by later migrations) delete their rows
/// here too, before the account's.
pub async fn close(db: &Db, account: &Account, now: i64) -> Result<bool, StoreError> {
    const TOKENS: &str = "DELETE FROM refresh_tokens WHERE grant_id IN \
                          (SELECT id FROM grants WHERE realm = $1 AND account_id = $2)";
    const GRANTS: &str = "DELETE FROM grants WHERE realm = $1 AND account_id = $2";
    const ACCOUNT: &str = "DELETE FROM accounts WHERE realm = $1 AND id = $2";
    const PERSON: &str = "UPDATE persons SET account_closed_at = $1 WHERE realm = $2 AND ahv = $3";
    let realm = account.realm.as_str();
    let deleted = in_tx!(db, |tx| {
        for sql in [TOKENS, GRANTS] {
            sqlx::query(sql)
                .bind(realm)
                .bind(&account.id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query(ACCOUNT)
            .bind(realm)
            .bind(&account.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(ahv) = &account.ahv {
            sqlx::query(PERSON)
                .bind(now)
                .bind(realm)
                .bind(ahv.as_str())
                .execute(&mut *tx)
                .await?;
        }
        deleted == 1
    });
    Ok(deleted)
}

/// Every second factor an account can hold, one statement each, bound to the account's id
/// (`$1`) alone. A new kind of factor adds its statement here, so that every path that must
/// leave an account without its factors (a lost phone registered anew with a letter) takes it
/// away too.
pub(super) const SECOND_FACTORS: &[&str] = &[
    "UPDATE accounts SET phone = NULL, phone_verified_at = NULL WHERE id = $1",
    "DELETE FROM totp_apps WHERE account_id = $1",
    "DELETE FROM recovery_codes WHERE account_id = $1",
    "DELETE FROM passkeys WHERE account_id = $1",
];

/// Takes every second factor away from the account (see [`SECOND_FACTORS`]) and ends its
/// sessions, in one transaction.
pub async fn remove_second_factors(db: &Db, id: &str, now: i64) -> Result<(), StoreError> {
    const END_SESSIONS: &str =
        "UPDATE accounts SET sessions_epoch = sessions_epoch + 1, updated_at = $1 WHERE id = $2";
    in_tx!(db, |tx| {
        for sql in SECOND_FACTORS {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query(END_SESSIONS)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    });
    Ok(())
}

/// A forgotten password replaced after the person proved the address and a second factor:
/// the new hash, the failure count at zero, a lock that wrong passwords caused lifted (one
/// that support set stays), and every session ended. False when the account is gone.
pub async fn reset_password(
    db: &Db,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE accounts SET password_hash = $1, failed_logins = 0, \
                       status = CASE WHEN status = 'locked' AND locked_until IS NOT NULL \
                           THEN 'active' ELSE status END, \
                       locked_until = NULL, \
                       sessions_epoch = sessions_epoch + 1, updated_at = $2 WHERE id = $3";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(n == 1)
}

/// Support takes every second factor away (a lost phone): in one transaction the factors go
/// ([`SECOND_FACTORS`]), the account's sessions end and it is marked, so that the next login
/// asks for a code by e-mail and a new number instead of letting the password alone in.
pub async fn reset_phone(db: &Db, id: &str, now: i64) -> Result<(), StoreError> {
    const MARK: &str = "UPDATE accounts SET phone_reset_at = $1, \
                        sessions_epoch = sessions_epoch + 1, updated_at = $1 WHERE id = $2";
    in_tx!(db, |tx| {
        for sql in SECOND_FACTORS {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query(MARK)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    });
    Ok(())
}

/// After support removed a factor: an account left with no factor at all (no number, no app,
/// no passkey) is marked like after [`reset_phone`], so that it never falls back to the
/// password alone. True when it was marked.
pub async fn mark_reset_if_bare(db: &Db, id: &str, now: i64) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE accounts SET phone_reset_at = $1 WHERE id = $2 \
                       AND phone IS NULL AND phone_reset_at IS NULL \
                       AND NOT EXISTS (SELECT 1 FROM totp_apps t WHERE t.account_id = $2) \
                       AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.account_id = $2)";
    let n = exec_db!(db, |pool| sqlx::query(SQL).bind(now).bind(id).execute(pool))?;
    Ok(n == 1)
}

/// The person registered a new number at login after support's reset, proved by its SMS
/// code: stored as proved, the mark gone.
pub async fn new_phone_proved(db: &Db, id: &str, phone: &str, now: i64) -> Result<(), StoreError> {
    const SQL: &str = "UPDATE accounts SET phone = $1, phone_verified_at = $2, \
                       phone_reset_at = NULL, updated_at = $2 WHERE id = $3";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(phone)
        .bind(now)
        .bind(id)
        .execute(pool))?;
    Ok(())
}
