//! The support desk's lookups: the register and its accounts, found by what a caller says on
//! the phone (an AHV number, a name, a birth date, an e-mail address).

use super::{
    on_db,
    persons::{Person, PersonRow},
    Db, StoreError,
};
use crate::domain::{AhvNumber, Email, RealmId};

/// The most rows a search returns; one more tells the page there are others.
pub const MAX_FOUND: usize = 50;

/// What a search looks for, parsed from the search field.
#[derive(Clone, Debug)]
pub enum Lookup {
    Ahv(AhvNumber),
    Email(Email),
    BirthDate(chrono::NaiveDate),
    /// Up to three words, lower-cased, each the start of a given or family name.
    Name(Vec<String>),
}

/// One line of the results: a person of the register, with their account if they have one,
/// or an account whose person left the register.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Found {
    pub person_id: Option<String>,
    pub account_id: Option<String>,
    pub ahv: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<String>,
    pub email: Option<String>,
    pub status: Option<String>,
}

const FROM_PERSONS: &str = "SELECT p.id AS person_id, a.id AS account_id, p.ahv, p.given_name, \
                            p.family_name, p.birth_date, a.email, a.status \
                            FROM persons p LEFT JOIN accounts a ON a.realm = p.realm AND a.ahv = p.ahv \
                            WHERE p.realm = $1";

const FROM_ACCOUNTS: &str = "SELECT p.id AS person_id, a.id AS account_id, a.ahv, a.given_name, \
                             a.family_name, p.birth_date, a.email, a.status \
                             FROM accounts a LEFT JOIN persons p ON p.realm = a.realm AND p.ahv = a.ahv \
                             WHERE a.realm = $1";

/// `%` and `_` typed by the operator match themselves.
fn like_prefix(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 1);
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Up to [`MAX_FOUND`] + 1 lines, by family and given name.
pub async fn search(db: &Db, realm: &RealmId, lookup: &Lookup) -> Result<Vec<Found>, StoreError> {
    let limit = (MAX_FOUND + 1) as i64;
    let order = "ORDER BY family_name, given_name, person_id LIMIT";
    let rows: Vec<Found> = match lookup {
        Lookup::Ahv(ahv) => {
            // The register's entry, or an account whose person left it.
            let sql = format!(
                "{FROM_PERSONS} AND p.ahv = $2 UNION ALL {FROM_ACCOUNTS} AND a.ahv = $2 \
                 AND p.id IS NULL {order} $3"
            );
            on_db!(db, |pool| sqlx::query_as(&sql)
                .bind(realm.as_str())
                .bind(ahv.as_str())
                .bind(limit)
                .fetch_all(pool))?
        }
        Lookup::Email(email) => {
            let sql = format!("{FROM_ACCOUNTS} AND a.email_key = $2 {order} $3");
            on_db!(db, |pool| sqlx::query_as(&sql)
                .bind(realm.as_str())
                .bind(email.as_str().to_lowercase())
                .bind(limit)
                .fetch_all(pool))?
        }
        Lookup::BirthDate(date) => {
            let sql = format!("{FROM_PERSONS} AND p.birth_date = $2 {order} $3");
            on_db!(db, |pool| sqlx::query_as(&sql)
                .bind(realm.as_str())
                .bind(date.format("%Y-%m-%d").to_string())
                .bind(limit)
                .fetch_all(pool))?
        }
        Lookup::Name(words) => {
            // Each word starts the given or the family name; `$2`… are the words.
            let mut sql = String::from(FROM_PERSONS);
            for i in 0..words.len() {
                let n = i + 2;
                sql.push_str(&format!(
                    " AND (lower(p.family_name) LIKE ${n} ESCAPE '\\' \
                     OR lower(p.given_name) LIKE ${n} ESCAPE '\\')"
                ));
            }
            sql.push_str(&format!(" {order} ${}", words.len() + 2));
            let patterns: Vec<String> = words.iter().map(|w| like_prefix(w)).collect();
            on_db!(db, |pool| {
                let mut q = sqlx::query_as(&sql).bind(realm.as_str());
                for p in &patterns {
                    q = q.bind(p.as_str());
                }
                q.bind(limit).fetch_all(pool)
            })?
        }
    };
    Ok(rows)
}

/// A person of the register by the id the console links with.
pub async fn person_by_id(
    db: &Db,
    realm: &RealmId,
    id: &str,
) -> Result<Option<Person>, StoreError> {
    const SQL: &str = "SELECT ahv, given_name, family_name, birth_date, language, street, \
                       postal_code, locality, country FROM persons WHERE realm = $1 AND id = $2";
    let row: Option<PersonRow> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(id)
        .fetch_optional(pool))?;
    row.map(Person::try_from).transpose()
}

/// The register id of a person, for links from an account to its person.
pub async fn person_id(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
) -> Result<Option<String>, StoreError> {
    const SQL: &str = "SELECT id FROM persons WHERE realm = $1 AND ahv = $2";
    let id: Option<(String,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_optional(pool))?;
    Ok(id.map(|(id,)| id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_typed_by_the_operator_match_only_themselves() {
        assert_eq!(like_prefix("mül"), "mül%");
        assert_eq!(like_prefix("a%b_c\\"), "a\\%b\\_c\\\\%");
    }
}
