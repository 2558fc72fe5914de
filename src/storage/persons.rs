//! The register of insured persons of a realm, as the caisse knows them.

use std::collections::HashSet;

use super::{in_tx, on_db, Db, StoreError};
use crate::domain::{AhvNumber, Language, RealmId};

/// A postal address as OIDC's `address` claim carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PostalAddress {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub ahv: AhvNumber,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: chrono::NaiveDate,
    pub language: Language,
    pub address: PostalAddress,
}

#[derive(sqlx::FromRow)]
struct PersonRow {
    ahv: String,
    given_name: String,
    family_name: String,
    birth_date: String,
    language: String,
    street: Option<String>,
    postal_code: Option<String>,
    locality: Option<String>,
    country: Option<String>,
}

impl TryFrom<PersonRow> for Person {
    type Error = StoreError;
    fn try_from(r: PersonRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("person: {what}"));
        Ok(Person {
            ahv: r.ahv.parse().map_err(|_| bad("ahv"))?,
            birth_date: r.birth_date.parse().map_err(|_| bad("birth_date"))?,
            language: r.language.parse().map_err(|_| bad("language"))?,
            given_name: r.given_name,
            family_name: r.family_name,
            address: PostalAddress {
                street: r.street,
                postal_code: r.postal_code,
                locality: r.locality,
                country: r.country,
            },
        })
    }
}

const INSERT: &str =
    "INSERT INTO persons (id, realm, ahv, given_name, family_name, birth_date, language, \
     street, postal_code, locality, country, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Adds one person; `Conflict::PersonExists` if the AHV number is already in the register.
pub async fn add(db: &Db, realm: &RealmId, p: &Person, now: i64) -> Result<(), StoreError> {
    add_many(db, realm, std::slice::from_ref(p), now).await?;
    Ok(())
}

/// Adds persons in one transaction: all of them or, on the first error, none.
pub async fn add_many(
    db: &Db,
    realm: &RealmId,
    persons: &[Person],
    now: i64,
) -> Result<u64, StoreError> {
    let mut added = 0;
    in_tx!(db, |tx| {
        for p in persons {
            added += sqlx::query(INSERT)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(realm.as_str())
                .bind(p.ahv.as_str())
                .bind(&p.given_name)
                .bind(&p.family_name)
                .bind(p.birth_date.to_string())
                .bind(p.language.code())
                .bind(&p.address.street)
                .bind(&p.address.postal_code)
                .bind(&p.address.locality)
                .bind(&p.address.country)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::on_constraint)?
                .rows_affected();
        }
    });
    Ok(added)
}

/// Which of these AHV numbers the realm's register already holds.
pub async fn registered(
    db: &Db,
    realm: &RealmId,
    ahvs: &[AhvNumber],
) -> Result<HashSet<AhvNumber>, StoreError> {
    // Bounded IN lists: both backends take far more parameters, but no statement grows with the file.
    const CHUNK: usize = 500;
    let mut found = HashSet::new();
    for chunk in ahvs.chunks(CHUNK) {
        let placeholders = (2..chunk.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT ahv FROM persons WHERE realm = $1 AND ahv IN ({placeholders})");
        let rows: Vec<(String,)> = on_db!(db, |pool| chunk
            .iter()
            .fold(sqlx::query_as(&sql).bind(realm.as_str()), |q, a| {
                q.bind(a.as_str())
            })
            .fetch_all(pool))?;
        for (ahv,) in rows {
            found.insert(
                ahv.parse()
                    .map_err(|_| StoreError::Corrupt("person: ahv".into()))?,
            );
        }
    }
    Ok(found)
}

pub async fn by_ahv(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
) -> Result<Option<Person>, StoreError> {
    const SQL: &str = "SELECT ahv, given_name, family_name, birth_date, language, street, postal_code, locality, country \
                       FROM persons WHERE realm = $1 AND ahv = $2";
    let row: Option<PersonRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_optional(pool))?;
    row.map(Person::try_from).transpose()
}
