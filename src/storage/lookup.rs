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

// Every column named, so that the union of the AHV search can order by the names.
const FROM_PERSONS: &str = "SELECT p.id AS person_id, a.id AS account_id, p.ahv AS ahv, \
                            p.given_name AS given_name, p.family_name AS family_name, \
                            p.birth_date AS birth_date, a.email AS email, a.status AS status \
                            FROM persons p LEFT JOIN accounts a ON a.realm = p.realm AND a.ahv = p.ahv \
                            WHERE p.realm = $1";

const FROM_ACCOUNTS: &str = "SELECT p.id AS person_id, a.id AS account_id, a.ahv AS ahv, \
                             a.given_name AS given_name, a.family_name AS family_name, \
                             p.birth_date AS birth_date, a.email AS email, a.status AS status \
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

/// A lower-cased word as SQL's `lower()` may have stored it: PostgreSQL lowers every
/// letter, SQLite only ASCII ones (`Éric` stays `Éric`). The second spelling keeps the
/// other letters upper-case, so that a name with an accented capital is found on both.
fn spellings(word: &str) -> Vec<String> {
    let lower = word.to_lowercase();
    let ascii_lowered: String = lower
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c]
            } else {
                c.to_uppercase().collect()
            }
        })
        .collect();
    if ascii_lowered == lower {
        vec![lower]
    } else {
        vec![lower, ascii_lowered]
    }
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
            // Each word starts the given or the family name, in either of its two spellings.
            // SQLite's LIKE cannot use the indexes on `lower(…)`; a range over them can (bytes
            // compare as UTF-8, so `[w, w + U+10FFFF)` holds exactly what starts with `w`).
            let ranges = matches!(db, Db::Sqlite(_));
            let mut sql = String::from(FROM_PERSONS);
            let mut binds: Vec<String> = Vec::new();
            for word in words {
                let mut any = Vec::new();
                for spelling in spellings(word) {
                    if ranges {
                        binds.push(spelling.clone());
                        binds.push(format!("{spelling}\u{10FFFF}"));
                        let (lo, hi) = (binds.len(), binds.len() + 1);
                        any.push(format!(
                            "(lower(p.family_name) >= ${lo} AND lower(p.family_name) < ${hi}) \
                             OR (lower(p.given_name) >= ${lo} AND lower(p.given_name) < ${hi})"
                        ));
                    } else {
                        binds.push(like_prefix(&spelling));
                        let n = binds.len() + 1;
                        any.push(format!(
                            "lower(p.family_name) LIKE ${n} ESCAPE '\\' \
                             OR lower(p.given_name) LIKE ${n} ESCAPE '\\'"
                        ));
                    }
                }
                sql.push_str(&format!(" AND ({})", any.join(" OR ")));
            }
            sql.push_str(&format!(" {order} ${}", binds.len() + 2));
            on_db!(db, |pool| {
                let mut q = sqlx::query_as(&sql).bind(realm.as_str());
                for b in &binds {
                    q = q.bind(b.as_str());
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

    #[test]
    fn a_name_with_accents_is_looked_up_in_both_spellings() {
        assert_eq!(spellings("muster"), ["muster"]);
        assert_eq!(spellings("Éric"), ["éric", "Éric"]);
        assert_eq!(spellings("gaëlle"), ["gaëlle", "gaËlle"]);
    }
}
