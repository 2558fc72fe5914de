//! The support desk's staff: members of a staff realm, their role and the caisses whose
//! console each may open.

use super::{in_tx, on_db, Db, StoreError};
use crate::domain::{RealmId, StaffRole};

/// A staff member as the console checks them on every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffMember {
    /// The staff realm their account belongs to.
    pub realm: RealmId,
    pub account_id: String,
    pub email: String,
    pub role: StaffRole,
    /// The caisses whose console they may open, sorted.
    pub caisses: Vec<RealmId>,
    pub created_at: i64,
    /// The operator who added them.
    pub created_by: String,
}

impl StaffMember {
    pub fn serves(&self, caisse: &RealmId) -> bool {
        self.caisses.contains(caisse)
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    account_id: String,
    email: String,
    role: String,
    created_at: i64,
    created_by: String,
}

#[derive(sqlx::FromRow)]
struct CaisseRow {
    account_id: String,
    caisse: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("staff_members: {what}"))
}

fn member(
    realm: &RealmId,
    row: MemberRow,
    caisses: &[CaisseRow],
) -> Result<StaffMember, StoreError> {
    let mut own = caisses
        .iter()
        .filter(|c| c.account_id == row.account_id)
        .map(|c| c.caisse.parse().map_err(|_| corrupt("caisse")))
        .collect::<Result<Vec<RealmId>, _>>()?;
    own.sort();
    Ok(StaffMember {
        realm: realm.clone(),
        role: row.role.parse().map_err(|_| corrupt("role"))?,
        account_id: row.account_id,
        email: row.email,
        caisses: own,
        created_at: row.created_at,
        created_by: row.created_by,
    })
}

const MEMBERS: &str = "SELECT s.account_id, a.email, s.role, s.created_at, s.created_by \
                       FROM staff_members s JOIN accounts a ON a.id = s.account_id \
                       WHERE s.realm = $1";

/// The staff member behind an account of the staff realm, if it is one.
pub async fn by_account(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
) -> Result<Option<StaffMember>, StoreError> {
    const SQL: &str = "SELECT s.account_id, a.email, s.role, s.created_at, s.created_by \
                       FROM staff_members s JOIN accounts a ON a.id = s.account_id \
                       WHERE s.realm = $1 AND s.account_id = $2";
    const CAISSES: &str =
        "SELECT account_id, caisse FROM staff_caisses WHERE realm = $1 AND account_id = $2";
    let row: Option<MemberRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_optional(pool))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let caisses: Vec<CaisseRow> = on_db!(db, |pool| sqlx::query_as(CAISSES)
        .bind(realm.as_str())
        .bind(account_id)
        .fetch_all(pool))?;
    member(realm, row, &caisses).map(Some)
}

/// Every staff member of the realm, by e-mail address.
pub async fn list(db: &Db, realm: &RealmId) -> Result<Vec<StaffMember>, StoreError> {
    const SQL: &str = "SELECT account_id, caisse FROM staff_caisses WHERE realm = $1";
    let sql = format!("{MEMBERS} ORDER BY a.email");
    let rows: Vec<MemberRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .fetch_all(pool))?;
    let caisses: Vec<CaisseRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .fetch_all(pool))?;
    rows.into_iter()
        .map(|r| member(realm, r, &caisses))
        .collect()
}

/// Makes an account of the staff realm a staff member with this role and these caisses, or
/// replaces the role and caisses of one already: in one transaction, so that a console
/// check never sees a member without caisses.
pub async fn set(
    db: &Db,
    realm: &RealmId,
    account_id: &str,
    role: StaffRole,
    caisses: &[RealmId],
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    const UPSERT: &str =
        "INSERT INTO staff_members (realm, account_id, role, created_at, created_by) \
                          VALUES ($1, $2, $3, $4, $5) \
                          ON CONFLICT (realm, account_id) DO UPDATE SET role = excluded.role";
    const CLEAR: &str = "DELETE FROM staff_caisses WHERE realm = $1 AND account_id = $2";
    const ADD: &str = "INSERT INTO staff_caisses (realm, account_id, caisse) VALUES ($1, $2, $3) \
                       ON CONFLICT DO NOTHING";
    in_tx!(db, |tx| {
        sqlx::query(UPSERT)
            .bind(realm.as_str())
            .bind(account_id)
            .bind(role.as_str())
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        sqlx::query(CLEAR)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        for caisse in caisses {
            sqlx::query(ADD)
                .bind(realm.as_str())
                .bind(account_id)
                .bind(caisse.as_str())
                .execute(&mut *tx)
                .await?;
        }
    });
    Ok(())
}

/// Takes the staff role away (the account itself stays, for the audit trail); false when
/// the account was no staff member.
pub async fn remove(db: &Db, realm: &RealmId, account_id: &str) -> Result<bool, StoreError> {
    const CAISSES: &str = "DELETE FROM staff_caisses WHERE realm = $1 AND account_id = $2";
    const MEMBER: &str = "DELETE FROM staff_members WHERE realm = $1 AND account_id = $2";
    let removed = in_tx!(db, |tx| {
        sqlx::query(CAISSES)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(MEMBER)
            .bind(realm.as_str())
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    });
    Ok(removed == 1)
}
