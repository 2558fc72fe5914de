//! The portal's documents (metadata; bodies are in object storage) and the persons it may
//! notify. A person's documents are always looked up by realm and AHV number together, so
//! another person's id is simply not found.

use chrono::NaiveDate;
use uuid::Uuid;

use super::{exec_db, on_db, Db, StoreError};
use crate::domain::{AhvNumber, DocumentCategory, DocumentTitles, Email, Language, RealmId};

/// One delivered document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub id: Uuid,
    pub realm: RealmId,
    pub ahv: AhvNumber,
    pub category: DocumentCategory,
    pub titles: DocumentTitles,
    pub issue_date: NaiveDate,
    /// Unix seconds.
    pub received_at: i64,
    pub size: i64,
    /// Hex SHA-256 of the body.
    pub sha256: String,
    /// Where the body is in object storage.
    pub object_key: String,
    /// The caisse system that delivered it.
    pub client_id: String,
    pub idempotency_key: Option<String>,
    /// When the person first opened it; `None`: unread.
    pub read_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: String,
    realm: String,
    ahv: String,
    category: String,
    titles: String,
    issue_date: String,
    received_at: i64,
    size: i64,
    sha256: String,
    object_key: String,
    client_id: String,
    idempotency_key: Option<String>,
    read_at: Option<i64>,
}

impl TryFrom<DocumentRow> for Document {
    type Error = StoreError;
    fn try_from(r: DocumentRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("document {}: {what}", r.id));
        Ok(Document {
            id: r.id.parse().map_err(|_| bad("id"))?,
            realm: r.realm.parse().map_err(|_| bad("realm"))?,
            ahv: r.ahv.parse().map_err(|_| bad("ahv"))?,
            category: r.category.parse().map_err(|_| bad("category"))?,
            titles: serde_json::from_str(&r.titles).map_err(|_| bad("titles"))?,
            issue_date: r.issue_date.parse().map_err(|_| bad("issue_date"))?,
            received_at: r.received_at,
            size: r.size,
            sha256: r.sha256,
            object_key: r.object_key,
            client_id: r.client_id,
            idempotency_key: r.idempotency_key,
            read_at: r.read_at,
        })
    }
}

const COLUMNS: &str = "id, realm, ahv, category, titles, issue_date, received_at, size, sha256, \
                       object_key, client_id, idempotency_key, read_at";

/// Adds a document's row. `Conflict::IdempotencyKeyUsed` if the client used its key already.
pub async fn insert(db: &Db, d: &Document) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO documents (id, realm, ahv, category, titles, issue_date, \
                       received_at, size, sha256, object_key, client_id, idempotency_key, read_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    let titles = serde_json::to_string(&d.titles)
        .map_err(|e| StoreError::Corrupt(format!("titles: {e}")))?;
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(d.id.to_string())
        .bind(d.realm.as_str())
        .bind(d.ahv.as_str())
        .bind(d.category.as_str())
        .bind(&titles)
        .bind(d.issue_date.to_string())
        .bind(d.received_at)
        .bind(d.size)
        .bind(&d.sha256)
        .bind(&d.object_key)
        .bind(&d.client_id)
        .bind(&d.idempotency_key)
        .bind(d.read_at)
        .execute(pool))
    .map_err(StoreError::on_constraint)?;
    Ok(())
}

async fn one(db: &Db, sql: &str, binds: [&str; 3]) -> Result<Option<Document>, StoreError> {
    let row: Option<DocumentRow> = on_db!(db, |pool| sqlx::query_as(sql)
        .bind(binds[0])
        .bind(binds[1])
        .bind(binds[2])
        .fetch_optional(pool))?;
    row.map(Document::try_from).transpose()
}

/// A person's document, as the portal shows it.
pub async fn get_for_person(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    id: Uuid,
) -> Result<Option<Document>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE realm = $1 AND ahv = $2 AND id = $3");
    one(db, &sql, [realm.as_str(), ahv.as_str(), &id.to_string()]).await
}

/// A document that `client_id` delivered, for the delivery API.
pub async fn get_for_client(
    db: &Db,
    realm: &RealmId,
    client_id: &str,
    id: Uuid,
) -> Result<Option<Document>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM documents WHERE realm = $1 AND client_id = $2 AND id = $3");
    one(db, &sql, [realm.as_str(), client_id, &id.to_string()]).await
}

/// The document a client delivered with this Idempotency-Key, if any.
pub async fn find_by_idempotency_key(
    db: &Db,
    realm: &RealmId,
    client_id: &str,
    key: &str,
) -> Result<Option<Document>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents \
         WHERE realm = $1 AND client_id = $2 AND idempotency_key = $3"
    );
    one(db, &sql, [realm.as_str(), client_id, key]).await
}

/// Which of a person's documents to list.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Issued in this calendar year.
    pub year: Option<i32>,
    pub category: Option<DocumentCategory>,
}

impl Filter {
    /// The years a document's issue date can have (four digits, as stored).
    pub const YEARS: std::ops::RangeInclusive<i32> = 1000..=9998;

    /// A year from a query string, if it is a number of [`Filter::YEARS`].
    pub fn year_from_query(raw: &str) -> Option<i32> {
        raw.trim()
            .parse::<i32>()
            .ok()
            .filter(|y| Self::YEARS.contains(y))
    }
}

/// A person's documents, newest issue date first (then newest delivery first).
pub async fn list(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    filter: Filter,
) -> Result<Vec<Document>, StoreError> {
    // ISO dates compare as text, so a year is a half-open range of strings on both backends.
    let (from, until) = match filter.year {
        Some(y) if Filter::YEARS.contains(&y) => {
            (format!("{y:04}-01-01"), format!("{:04}-01-01", y + 1))
        }
        // No stored date has such a year.
        Some(_) => return Ok(Vec::new()),
        None => ("0000-01-01".to_owned(), "9999-12-31".to_owned()),
    };
    let category = filter.category.map(DocumentCategory::as_str);
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE realm = $1 AND ahv = $2 \
         AND issue_date >= $3 AND issue_date < $4 AND ($5 IS NULL OR category = $5) \
         ORDER BY issue_date DESC, received_at DESC, id"
    );
    let rows: Vec<DocumentRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .bind(&from)
        .bind(&until)
        .bind(category)
        .fetch_all(pool))?;
    rows.into_iter().map(Document::try_from).collect()
}

/// How many documents of one category a person has, and how many of them are unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryCount {
    pub category: DocumentCategory,
    pub total: i64,
    pub unread: i64,
}

/// The person's counts, for the categories that have documents, in `DocumentCategory::ALL` order.
pub async fn counts(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
) -> Result<Vec<CategoryCount>, StoreError> {
    const SQL: &str = "SELECT category, COUNT(*) AS total, \
                       SUM(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END) AS unread \
                       FROM documents WHERE realm = $1 AND ahv = $2 GROUP BY category";
    let rows: Vec<(String, i64, Option<i64>)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_all(pool))?;
    let mut counts = rows
        .into_iter()
        .map(|(category, total, unread)| {
            Ok(CategoryCount {
                category: category
                    .parse()
                    .map_err(|_| StoreError::Corrupt("document: category".into()))?,
                total,
                unread: unread.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    counts.sort_by_key(|c| c.category);
    Ok(counts)
}

/// The years in which the person's documents were issued, newest first.
pub async fn years(db: &Db, realm: &RealmId, ahv: &AhvNumber) -> Result<Vec<i32>, StoreError> {
    const SQL: &str = "SELECT DISTINCT substr(issue_date, 1, 4) AS year FROM documents \
                       WHERE realm = $1 AND ahv = $2 ORDER BY year DESC";
    let rows: Vec<(String,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_all(pool))?;
    rows.into_iter()
        .map(|(y,)| {
            y.parse()
                .map_err(|_| StoreError::Corrupt("document: issue_date".into()))
        })
        .collect()
}

/// Marks a person's document read, the first time only; `false` if there is no such document.
pub async fn mark_read(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
    id: Uuid,
    now: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE documents SET read_at = COALESCE(read_at, $1) \
                       WHERE realm = $2 AND ahv = $3 AND id = $4";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(now)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .bind(id.to_string())
        .execute(pool))?;
    Ok(n > 0)
}

/// Removes a document's row (its body is the caller's business); `false` if it was gone.
pub async fn delete(db: &Db, realm: &RealmId, id: Uuid) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM documents WHERE realm = $1 AND id = $2";
    let n = exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(id.to_string())
        .execute(pool))?;
    Ok(n > 0)
}

/// The realm's documents issued before `cutoff`: those past their retention.
pub async fn expired(
    db: &Db,
    realm: &RealmId,
    cutoff: NaiveDate,
) -> Result<Vec<Document>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE realm = $1 AND issue_date < $2 ORDER BY issue_date, id"
    );
    let rows: Vec<DocumentRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(realm.as_str())
        .bind(cutoff.to_string())
        .fetch_all(pool))?;
    rows.into_iter().map(Document::try_from).collect()
}

/// Whom the portal tells that a document arrived: the address and language of the person's
/// latest login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub ahv: AhvNumber,
    pub email: Email,
    pub language: Language,
    pub updated_at: i64,
}

/// Records (or replaces) the person's address and language.
pub async fn upsert_recipient(db: &Db, realm: &RealmId, r: &Recipient) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO portal_recipients (realm, ahv, email, language, updated_at) \
                       VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (realm, ahv) DO UPDATE SET email = excluded.email, \
                       language = excluded.language, updated_at = excluded.updated_at";
    exec_db!(db, |pool| sqlx::query(SQL)
        .bind(realm.as_str())
        .bind(r.ahv.as_str())
        .bind(r.email.as_str())
        .bind(r.language.code())
        .bind(r.updated_at)
        .execute(pool))?;
    Ok(())
}

pub async fn recipient(
    db: &Db,
    realm: &RealmId,
    ahv: &AhvNumber,
) -> Result<Option<Recipient>, StoreError> {
    const SQL: &str = "SELECT email, language, updated_at FROM portal_recipients \
                       WHERE realm = $1 AND ahv = $2";
    let row: Option<(String, String, i64)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(realm.as_str())
        .bind(ahv.as_str())
        .fetch_optional(pool))?;
    row.map(|(email, language, updated_at)| {
        let bad = |what: &str| StoreError::Corrupt(format!("portal recipient: {what}"));
        Ok(Recipient {
            ahv: ahv.clone(),
            email: email.parse().map_err(|_| bad("email"))?,
            language: language.parse().map_err(|_| bad("language"))?,
            updated_at,
        })
    })
    .transpose()
}
