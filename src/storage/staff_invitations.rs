//! Staff accounts from their creation to their enrolment: the account of a staff realm that
//! waits (status `invited`), the single-use links of its invitations (keyed hashes only), and
//! the enrolment that opens it.

use super::{accounts::email_key, in_tx, on_db, Conflict, Db, StoreError};
use crate::domain::{Email, Language, RealmId, StaffRole};

/// A new invitation: its id, the keyed hash of its link's token, and its end.
pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub expires_at: i64,
}

/// A staff member as `connect admin staff add` creates them.
pub struct NewMember<'a> {
    pub realm: &'a RealmId,
    pub email: &'a Email,
    pub language: Language,
    /// A hash nobody knows the password of: the column is never empty, and the account's
    /// own password is chosen at enrolment.
    pub password_hash: &'a str,
    pub role: StaffRole,
    pub caisses: &'a [RealmId],
    pub by: &'a str,
}

/// An invitation whose link still works.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub id: String,
    pub account_id: String,
    pub expires_at: i64,
}

/// What the enrolment adds to the waiting account.
pub struct Enrolled<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub password_hash: &'a str,
    pub language: Language,
    pub terms_version: &'a str,
    pub terms_accepted_at: i64,
}

const INSERT_INVITATION: &str = "INSERT INTO staff_invitations \
    (id, realm, account_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// In one transaction: the waiting account, its staff role and caisses, and its first
/// invitation. An address that has an account in the realm already is
/// [`Conflict::EmailTaken`], and nothing is written. Returns the account's id.
pub async fn add_member(
    db: &Db,
    new: &NewMember<'_>,
    invitation: &NewInvitation<'_>,
    now: i64,
) -> Result<String, StoreError> {
    const ACCOUNT: &str = "INSERT INTO accounts (id, realm, email, email_key, password_hash, \
                           given_name, family_name, language, status, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, '', '', $6, 'invited', $7, $7)";
    const MEMBER: &str =
        "INSERT INTO staff_members (realm, account_id, role, created_at, created_by) \
                          VALUES ($1, $2, $3, $4, $5)";
    const CAISSE: &str =
        "INSERT INTO staff_caisses (realm, account_id, caisse) VALUES ($1, $2, $3)";
    let id = uuid::Uuid::new_v4().to_string();
    let realm = new.realm.as_str();
    in_tx!(db, |tx| {
        sqlx::query(ACCOUNT)
            .bind(&id)
            .bind(realm)
            .bind(new.email.as_str())
            .bind(email_key(new.email))
            .bind(new.password_hash)
            .bind(new.language.code())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::on_constraint)?;
        sqlx::query(MEMBER)
            .bind(realm)
            .bind(&id)
            .bind(new.role.as_str())
            .bind(now)
            .bind(new.by)
            .execute(&mut *tx)
            .await?;
        for caisse in new.caisses {
            sqlx::query(CAISSE)
                .bind(realm)
                .bind(&id)
                .bind(caisse.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(INSERT_INVITATION)
            .bind(invitation.id)
            .bind(realm)
            .bind(&id)
            .bind(invitation.token_hash)
            .bind(now)
            .bind(invitation.expires_at)
            .execute(&mut *tx)
            .await?;
    });
    Ok(id)
}

/// A new invitation for a waiting account; the open one, if any, stops working in the same
/// transaction.
pub async fn invite(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    invitation: &NewInvitation<'_>,
    now: i64,
) -> Result<(), StoreError> {
    in_tx!(db, |tx| {
        sqlx::query(REVOKE)
            .bind(now)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_INVITATION)
            .bind(invitation.id)
            .bind(realm.as_str())
            .bind(account_id)
            .bind(invitation.token_hash)
            .bind(now)
            .bind(invitation.expires_at)
            .execute(&mut *tx)
            .await?;
    });
    Ok(())
}

/// A member who lost their passkey starts again: every passkey of the account goes, the
/// account waits for its enrolment again (its sessions end: an invited account has none), and
/// a new invitation replaces any open one; all in one transaction. Returns how many passkeys
/// were removed.
pub async fn reinvite(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    invitation: &NewInvitation<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    const PASSKEYS: &str = "DELETE FROM passkeys WHERE realm = $1 AND account_id = $2";
    const WAIT: &str = "UPDATE accounts SET status = 'invited', \
                        sessions_epoch = sessions_epoch + 1, updated_at = $1 \
                        WHERE realm = $2 AND id = $3";
    let removed = in_tx!(db, |tx| {
        let removed = sqlx::query(PASSKEYS)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(WAIT)
            .bind(now)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(REVOKE)
            .bind(now)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_INVITATION)
            .bind(invitation.id)
            .bind(realm.as_str())
            .bind(account_id)
            .bind(invitation.token_hash)
            .bind(now)
            .bind(invitation.expires_at)
            .execute(&mut *tx)
            .await?;
        removed
    });
    Ok(removed)
}

const REVOKE: &str = "UPDATE staff_invitations SET revoked_at = $1 \
                      WHERE realm = $2 AND account_id = $3 AND spent_at IS NULL AND revoked_at IS NULL";

/// Every open invitation of the account stops working (its staff role was taken away);
/// returns how many there were.
pub async fn revoke(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    super::exec_db!(db, |pool| sqlx::query(REVOKE)
        .bind(now)
        .bind(realm.as_str())
        .bind(account_id)
        .execute(pool))
    .map_err(StoreError::from)
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    account_id: String,
    expires_at: i64,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Self {
        Invitation {
            id: r.id,
            account_id: r.account_id,
            expires_at: r.expires_at,
        }
    }
}

/// The invitation whose token hashes to `token_hash`, if its link still works at `now`:
/// neither spent, revoked nor expired.
pub async fn usable(
    db: &Db,
    realm: &RealmId,
    token_hash: &str,
    now: i64,
) -> Result<Option<Invitation>, StoreError> {
    const SQL: &str = "SELECT id, account_id, expires_at FROM staff_invitations \
                       WHERE realm = $1 AND token_hash = $2 AND spent_at IS NULL \
                       AND revoked_at IS NULL AND expires_at > $3";
    let row: Option<InvitationRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool))?;
    Ok(row.map(Invitation::from))
}

/// The account's invitation that still works at `now`, if any (for `staff list`).
pub async fn open_of(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    now: i64,
) -> Result<Option<Invitation>, StoreError> {
    const SQL: &str = "SELECT id, account_id, expires_at FROM staff_invitations \
                       WHERE realm = $1 AND account_id = $2 AND spent_at IS NULL \
                       AND revoked_at IS NULL AND expires_at > $3";
    let row: Option<InvitationRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .bind(now)
        .fetch_optional(pool))?;
    Ok(row.map(Invitation::from))
}

/// The end of an enrolment, once its passkey is registered, in one transaction: the
/// invitation is spent (it must still work at `now`) and the waiting account becomes active
/// with its names, password and terms; the link proved the address. Of two enrolments with
/// one link, exactly one gets here first; the other is [`Conflict::CodeSpent`] and writes
/// nothing.
pub async fn enrol(
    db: &Db,
    realm: &RealmId,
    invitation_id: &str,
    account_id: &str,
    enrolled: &Enrolled<'_>,
    now: i64,
) -> Result<(), StoreError> {
    const SPEND: &str = "UPDATE staff_invitations SET spent_at = $1 \
                         WHERE id = $2 AND realm = $3 AND account_id = $4 AND spent_at IS NULL \
                         AND revoked_at IS NULL AND expires_at > $1";
    const OPEN: &str =
        "UPDATE accounts SET given_name = $1, family_name = $2, password_hash = $3, \
                        language = $4, terms_version = $5, terms_accepted_at = $6, \
                        email_verified_at = $7, status = 'active', updated_at = $7 \
                        WHERE id = $8 AND realm = $9 AND status = 'invited'";
    in_tx!(db, |tx| {
        let spent = sqlx::query(SPEND)
            .bind(now)
            .bind(invitation_id)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        if spent.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
        let opened = sqlx::query(OPEN)
            .bind(enrolled.given_name)
            .bind(enrolled.family_name)
            .bind(enrolled.password_hash)
            .bind(enrolled.language.code())
            .bind(enrolled.terms_version)
            .bind(enrolled.terms_accepted_at)
            .bind(now)
            .bind(account_id)
            .bind(realm.as_str())
            .execute(&mut *tx)
            .await?;
        if opened.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::CodeSpent));
        }
    });
    Ok(())
}
