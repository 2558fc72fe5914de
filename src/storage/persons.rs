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

/// A row of `persons` as selected by the queries that read whole persons.
#[derive(sqlx::FromRow)]
pub(super) struct PersonRow {
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
     street, postal_code, locality, country, created_at) VALUES";
const COLUMNS: usize = 12;
/// Persons per INSERT statement: one statement per person spends most of an import on the
/// driver's round trips (SQLite's worker thread, PostgreSQL's network). PostgreSQL takes 500
/// rows (6,000 parameters). SQLite takes fewer: sqlx looks up each parameter's name, which
/// SQLite finds by walking the statement's list of names, so a statement's binding costs the
/// square of its parameters (500 rows a statement took 18 s for 100,000 persons).
///
/// Ids are UUIDv7, in time order: random ids land all over the primary key's B-tree, so a
/// large import overflowed SQLite's page cache and each statement's rollback journal.
fn rows_per_statement(db: &Db) -> usize {
    match db {
        Db::Sqlite(_) => 20,
        Db::Postgres(_) => 500,
    }
}

/// `INSERT ... VALUES ($1, ..., $12), ($13, ...), ...` for `rows` rows.
fn insert_rows(rows: usize) -> String {
    super::sql::insert_rows(INSERT, COLUMNS, rows)
}

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
    add_many_reporting(db, realm, persons, now, |_| {}).await
}

/// `add_many`, calling `written(n)` with how many persons are written so far after every few
/// hundred (for a progress bar; nothing is committed before the last).
pub async fn add_many_reporting(
    db: &Db,
    realm: &RealmId,
    persons: &[Person],
    now: i64,
    mut written: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let mut added = 0;
    let per_statement = rows_per_statement(db);
    let full = insert_rows(per_statement.min(persons.len()));
    in_tx!(db, |tx| {
        for chunk in persons.chunks(per_statement) {
            let partial;
            let sql = if chunk.len() == per_statement.min(persons.len()) {
                &full
            } else {
                partial = insert_rows(chunk.len());
                &partial
            };
            let mut query = sqlx::query(sql);
            for p in chunk {
                query = query
                    .bind(uuid::Uuid::now_v7().to_string())
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
                    .bind(now);
            }
            added += query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::on_constraint)?
                .rows_affected();
            written(added);
        }
    });
    Ok(added)
}

/// Which of these AHV numbers the realm's register already holds; `checked(n)` hears how many
/// are looked up so far.
pub async fn registered(
    db: &Db,
    realm: &RealmId,
    ahvs: &[AhvNumber],
    mut checked: impl FnMut(u64),
) -> Result<HashSet<AhvNumber>, StoreError> {
    // Bounded IN lists: no statement grows with the file; short ones on SQLite, for the reason
    // given at `rows_per_statement`.
    let chunk_len = match db {
        Db::Sqlite(_) => 100,
        Db::Postgres(_) => 500,
    };
    let mut found = HashSet::new();
    let mut done = 0;
    for chunk in ahvs.chunks(chunk_len) {
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
        done += chunk.len() as u64;
        checked(done);
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

/// Whether the person closed an account (then no letter goes to them by itself).
pub async fn account_closed(db: &Db, realm: &RealmId, ahv: &AhvNumber) -> Result<bool, StoreError> {
    const SQL: &str = "SELECT account_closed_at FROM persons WHERE realm = $1 AND ahv = $2";
    let row: Option<(Option<i64>,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_optional(pool))?;
    Ok(row.is_some_and(|r| r.0.is_some()))
}
