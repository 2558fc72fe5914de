//! The delivery API of caisse systems: `/api/v1/documents` (described in `docs/openapi.yaml`).
//!
//! Every answer that is not a success is `application/problem+json`. The order of checks:
//! the access token and its scope (before the body is read), the Idempotency-Key header,
//! the size announced, then each multipart part as it arrives (the metadata parsed into
//! domain types, the file counted while it streams in), and last what `deliver::store`
//! checks on the whole (PDF signature, issue date window, idempotency).

use std::collections::BTreeMap;

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use bytes::{Bytes, BytesMut};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    bearer::{self, READ, WRITE},
    deliver::{self, DeliverError, Delivered, NewDocument, PDF_MAGIC},
    PortalState,
};
use crate::{
    domain::{AhvNumber, DocumentCategory, DocumentTitles, Language, RealmId},
    http::error::HttpError,
    storage::documents::{self, Document},
};

/// The metadata part is small; anything larger is refused before it is parsed.
const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Room for the multipart framing and the metadata beside the file.
const FRAMING_BYTES: usize = 64 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn router() -> Router<PortalState> {
    Router::new()
        .route(
            "/api/v1/documents",
            // The limit depends on the settings, so the handler applies it to the body itself
            // (`http_body_util::Limited`); axum's default of 2 MB is lifted for this route only.
            post(deliver_document).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/documents/{id}",
            get(document_status).delete(delete_document),
        )
}

fn problem(status: StatusCode, title: &'static str, detail: impl Into<String>) -> HttpError {
    HttpError::problem(status, title, detail)
}

fn bad_request(detail: impl Into<String>) -> HttpError {
    problem(StatusCode::BAD_REQUEST, "Bad request", detail)
}

fn unprocessable(title: &'static str, detail: impl Into<String>) -> HttpError {
    problem(StatusCode::UNPROCESSABLE_ENTITY, title, detail)
}

fn too_large(max: usize) -> HttpError {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Document too large",
        format!("a document may have at most {max} bytes"),
    )
}

fn not_found() -> HttpError {
    problem(
        StatusCode::NOT_FOUND,
        "Document not found",
        "no document with this id was delivered by this client",
    )
}

/// The status of a document, as the API shows it to the client that delivered it.
#[derive(Serialize)]
struct DocumentStatus {
    id: Uuid,
    realm: String,
    category: DocumentCategory,
    issue_date: NaiveDate,
    /// RFC 3339, UTC.
    received_at: String,
    size: i64,
    sha256: String,
    read: bool,
}

impl From<&Document> for DocumentStatus {
    fn from(d: &Document) -> Self {
        DocumentStatus {
            id: d.id,
            realm: d.realm.to_string(),
            category: d.category,
            issue_date: d.issue_date,
            received_at: chrono::DateTime::from_timestamp(d.received_at, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            size: d.size,
            sha256: d.sha256.clone(),
            read: d.read_at.is_some(),
        }
    }
}

/// The `metadata` part as written by the caller.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    realm: String,
    ahv: String,
    category: String,
    title: Option<String>,
    titles: Option<BTreeMap<String, String>>,
    issue_date: String,
}

/// The `metadata` part, parsed.
pub struct Metadata {
    pub ahv: AhvNumber,
    pub category: DocumentCategory,
    pub titles: DocumentTitles,
    pub issue_date: NaiveDate,
}

/// What is wrong with the metadata's JSON, without repeating what was sent: serde's own
/// messages quote values and unknown keys, which may be an AHV number (`"ahv": 756…` as a
/// number). A missing field is named, since its name is ours.
fn metadata_json_error(e: &serde_json::Error) -> String {
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        serde_json::error::Category::Data => match e.to_string().strip_prefix("missing field ") {
            Some(rest) => format!("the metadata part lacks the field {rest}"),
            None => format!(
                "the metadata part does not have the documented fields and types \
                 (line {line}, column {column})"
            ),
        },
        _ => format!("the metadata part is not valid JSON (line {line}, column {column})"),
    }
}

/// Reads the `metadata` part for the portal of `realm`; a lone `title` is filed under
/// `default_language`. Pure, so that `fuzz/` can run it on any bytes.
pub fn parse_metadata(
    realm_id: &RealmId,
    default_language: Language,
    bytes: &[u8],
) -> Result<Metadata, HttpError> {
    let raw: RawMetadata =
        serde_json::from_slice(bytes).map_err(|e| bad_request(metadata_json_error(&e)))?;
    let realm: RealmId = raw
        .realm
        .parse()
        .map_err(|e| unprocessable("Unknown realm", format!("realm: {e}")))?;
    // The portal serves one caisse; documents of another realm have no reader here.
    if realm != *realm_id {
        return Err(unprocessable(
            "Unknown realm",
            format!("realm: this portal serves {realm_id} only"),
        ));
    }
    let ahv: AhvNumber = raw
        .ahv
        .parse()
        .map_err(|e| unprocessable("Invalid AHV number", format!("ahv: {e}")))?;
    let category: DocumentCategory = raw
        .category
        .parse()
        .map_err(|e| unprocessable("Unknown category", format!("category: {e}")))?;
    let titles = match (raw.title, raw.titles) {
        (Some(t), None) => DocumentTitles::single(default_language, &t),
        (None, Some(map)) => {
            DocumentTitles::by_language(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
        (Some(_), Some(_)) => {
            return Err(unprocessable(
                "Invalid title",
                "give either title or titles, not both",
            ))
        }
        (None, None) => {
            return Err(unprocessable(
                "Invalid title",
                "a document needs a title or titles",
            ))
        }
    }
    .map_err(|e| unprocessable("Invalid title", format!("title: {e}")))?;
    // Exactly YYYY-MM-DD: chrono alone would accept one-digit months and days.
    let date_shape = raw.issue_date.len() == 10
        && raw.issue_date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let issue_date = NaiveDate::parse_from_str(&raw.issue_date, "%Y-%m-%d")
        .ok()
        .filter(|_| date_shape)
        .ok_or_else(|| {
            unprocessable(
                "Invalid issue date",
                "issue_date: a calendar date written YYYY-MM-DD",
            )
        })?;
    Ok(Metadata {
        ahv,
        category,
        titles,
        issue_date,
    })
}

/// RFC draft-ietf-httpapi-idempotency-key-header: a string of visible ASCII, optionally quoted
/// (the structured-field form).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        bad_request(format!(
            "Idempotency-Key: one value of 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        ))
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let raw = value.to_str().map_err(|_| bad())?.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let ok = (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if ok {
        Ok(Some(key.to_owned()))
    } else {
        Err(bad())
    }
}

/// A multipart error: 413 when the body limit cut it, else 400.
fn multipart_error(e: axum::extract::multipart::MultipartError, max: usize) -> HttpError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        bad_request(format!(
            "the multipart body cannot be read: {}",
            e.body_text()
        ))
    }
}

/// `POST /api/v1/documents`.
async fn deliver_document(
    State(state): State<PortalState>,
    request: Request,
) -> Result<Response, HttpError> {
    let caller = bearer::authorize(&state, request.headers(), &[WRITE]).await?;
    let key = idempotency_key(request.headers())?;
    let max = state.config.portal.max_document_bytes;
    let limit = max + FRAMING_BYTES;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large(max));
    }
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "send multipart/form-data with the parts metadata and file",
        ));
    }
    // Whatever the parts say, no more than `limit` bytes are read from the connection.
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    let mut multipart = Multipart::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|e| {
            bad_request(format!(
                "the multipart body cannot be read: {}",
                e.body_text()
            ))
        })?;

    let mut metadata: Option<Metadata> = None;
    let mut file: Option<Bytes> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "metadata" if metadata.is_none() => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
                    if buf.len() + chunk.len() > MAX_METADATA_BYTES {
                        return Err(bad_request(format!(
                            "the metadata part may have at most {MAX_METADATA_BYTES} bytes"
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                metadata = Some(parse_metadata(
                    &state.realm.id,
                    state.realm.default_language,
                    &buf,
                )?);
            }
            "file" if file.is_none() => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
                    if buf.len() + chunk.len() > max {
                        return Err(too_large(max));
                    }
                    buf.extend_from_slice(&chunk);
                    // Refuse a file that is not a PDF as soon as its first bytes are in.
                    let head = buf.len().min(PDF_MAGIC.len());
                    if buf[..head] != PDF_MAGIC[..head] {
                        return Err(not_a_pdf());
                    }
                }
                file = Some(buf.freeze());
            }
            "metadata" | "file" => return Err(bad_request(format!("the part {name} came twice"))),
            _ => {
                return Err(bad_request(format!(
                    "unexpected part {name:?}: send only metadata and file"
                )))
            }
        }
    }
    let metadata = metadata.ok_or_else(|| bad_request("the metadata part is missing"))?;
    let body = file.ok_or_else(|| bad_request("the file part is missing"))?;
    let new = NewDocument {
        ahv: metadata.ahv,
        category: metadata.category,
        titles: metadata.titles,
        issue_date: metadata.issue_date,
        client_id: caller.client_id,
        idempotency_key: key,
        body,
    };
    match deliver::store(&state, new).await {
        Ok(Delivered::Created(doc)) => {
            deliver::notify(&state, &doc).await;
            let mut res = (StatusCode::CREATED, Json(DocumentStatus::from(&doc))).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/documents/{}", doc.id)) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        Ok(Delivered::Existing(doc)) => {
            Ok((StatusCode::OK, Json(DocumentStatus::from(&doc))).into_response())
        }
        Err(e) => Err(deliver_error(e, max)),
    }
}

fn not_a_pdf() -> HttpError {
    problem(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Not a PDF",
        "the file part must be a PDF document (it starts with %PDF-)",
    )
}

fn deliver_error(e: DeliverError, max: usize) -> HttpError {
    match e {
        DeliverError::NotPdf => not_a_pdf(),
        DeliverError::TooLarge { .. } => too_large(max),
        DeliverError::FutureIssueDate => unprocessable(
            "Invalid issue date",
            "issue_date: the date is in the future",
        ),
        e @ DeliverError::PastRetention { .. } => {
            unprocessable("Invalid issue date", format!("issue_date: {e}"))
        }
        DeliverError::KeyReused => unprocessable(
            "Idempotency-Key reused",
            "this Idempotency-Key was used for another document; use a new key",
        ),
        e @ (DeliverError::Store(_) | DeliverError::Blob(_)) => HttpError::internal_problem()(e),
    }
}

/// The id of the path; anything else is a document that does not exist.
fn document_id(raw: &str) -> Result<Uuid, HttpError> {
    Uuid::try_parse(raw).map_err(|_| not_found())
}

/// `GET /api/v1/documents/{id}`.
async fn document_status(
    State(state): State<PortalState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let caller = bearer::authorize(&state, &headers, &[READ, WRITE]).await?;
    let id = document_id(&id)?;
    let doc = documents::get_for_client(&state.db, &state.realm.id, &caller.client_id, id)
        .await
        .map_err(HttpError::internal_problem())?
        .ok_or_else(not_found)?;
    Ok(Json(DocumentStatus::from(&doc)).into_response())
}

/// `DELETE /api/v1/documents/{id}`: the body first, then the row, so that a failure half-way
/// leaves a row whose body is gone and a retry finishes the job.
async fn delete_document(
    State(state): State<PortalState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let caller = bearer::authorize(&state, &headers, &[WRITE]).await?;
    let id = document_id(&id)?;
    let doc = documents::get_for_client(&state.db, &state.realm.id, &caller.client_id, id)
        .await
        .map_err(HttpError::internal_problem())?
        .ok_or_else(not_found)?;
    state
        .blobs
        .delete(&doc.object_key)
        .await
        .map_err(HttpError::internal_problem())?;
    documents::delete(&state.db, &state.realm.id, doc.id)
        .await
        .map_err(HttpError::internal_problem())?;
    tracing::info!(realm = %doc.realm, client_id = %doc.client_id, document = %doc.id, "document deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata_refusal(json: &str) -> String {
        let realm: RealmId = "AK00".parse().unwrap();
        match parse_metadata(&realm, Language::Fr, json.as_bytes()) {
            Ok(_) => panic!("{json} accepted"),
            Err(HttpError::Problem { detail, .. }) => detail,
            Err(other) => panic!("{other:?}"),
        }
    }

    /// Found by `fuzz/fuzz_targets/delivery_metadata.rs`: serde's message quoted the value,
    /// so an AHV number sent as a JSON number came back in the problem's `detail`.
    #[test]
    fn a_metadata_refusal_does_not_repeat_an_ahv_number() {
        for json in [
            r#"{"realm":"AK00","ahv":7561234567897,"category":"autre","title":"x","issue_date":"2026-01-31"}"#,
            r#"{"realm":"AK00","756.1234.5678.97":1}"#,
            r#"{"realm":"AK00","ahv":["756.1234.5678.97"]}"#,
        ] {
            let detail = metadata_refusal(json);
            assert!(!detail.contains("7561234567897"), "{detail}");
            assert!(!detail.contains("756.1234.5678.97"), "{detail}");
            assert!(detail.contains("line 1, column"), "{detail}");
        }
        assert!(metadata_refusal(r#"{"realm":"AK00"}"#)
            .starts_with("the metadata part lacks the field `ahv`"));
        assert!(metadata_refusal("{").starts_with("the metadata part is not valid JSON"));
    }

    #[test]
    fn idempotency_keys_are_visible_ascii_optionally_quoted() {
        let key = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("idempotency-key", v.parse().unwrap());
            idempotency_key(&h).map_err(|_| ())
        };
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key("run-42/doc-1"), Ok(Some("run-42/doc-1".into())));
        assert_eq!(key("\"8e03978e-40d5\""), Ok(Some("8e03978e-40d5".into())));
        assert_eq!(key(&"k".repeat(255)), Ok(Some("k".repeat(255))));
        for bad in ["", "\"\"", "two words", "\"a\"b\"", &"k".repeat(256)] {
            assert_eq!(key(bad), Err(()), "{bad:?}");
        }
        let mut two = HeaderMap::new();
        two.append("idempotency-key", "a".parse().unwrap());
        two.append("idempotency-key", "b".parse().unwrap());
        assert!(idempotency_key(&two).is_err());
    }
}
