//! Storing a delivered document: the one path of the delivery API and of the demo documents.
//!
//! The body goes to object storage first, then the row; if the row cannot be written the
//! body is removed again, so a delivery that fails half-way leaves neither. A body without a
//! row is at worst an orphan file (if even that removal fails, which is logged); a row
//! without a body never exists.

use bytes::Bytes;
use chrono::{Months, NaiveDate};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{blobs, PortalState};
use crate::{
    domain::{AhvNumber, DocumentCategory, DocumentTitles},
    letter::swiss_date,
    notify::messages,
    realm::Realm,
    storage::{
        documents::{self, Document},
        Conflict, StoreError,
    },
};

/// Every PDF file starts with this (ISO 32000-2 §7.5.2).
pub const PDF_MAGIC: &[u8] = b"%PDF-";

/// A document to store for a person of the portal's realm.
pub struct NewDocument {
    pub ahv: AhvNumber,
    pub category: DocumentCategory,
    pub titles: DocumentTitles,
    pub issue_date: NaiveDate,
    /// The caisse system that delivers it.
    pub client_id: String,
    pub idempotency_key: Option<String>,
    pub body: Bytes,
}

/// What a delivery did.
#[derive(Debug)]
pub enum Delivered {
    Created(Document),
    /// The same client delivered the same document with this Idempotency-Key before.
    Existing(Document),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("the file is not a PDF")]
    NotPdf,
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the issue date is in the future")]
    FutureIssueDate,
    #[error("the issue date is before {cutoff}: the document would be purged at once")]
    PastRetention { cutoff: NaiveDate },
    #[error("this Idempotency-Key was used for another document")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] blobs::BlobError),
}

/// The first issue date the realm still keeps on `today`: older documents are purged.
pub fn retention_cutoff(realm: &Realm, today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_months(Months::new(12 * realm.documents.retention_years))
        .unwrap_or(NaiveDate::MIN)
}

/// Checks what only the content can tell, then stores body and row.
pub async fn store(state: &PortalState, new: NewDocument) -> Result<Delivered, DeliverError> {
    let max = state.config.portal.max_document_bytes;
    if new.body.len() > max {
        return Err(DeliverError::TooLarge { max });
    }
    if !new.body.starts_with(PDF_MAGIC) {
        return Err(DeliverError::NotPdf);
    }
    let today = swiss_date(state.clock.now());
    // A day of tolerance for a caisse system whose clock runs ahead.
    if new.issue_date > today + chrono::Days::new(1) {
        return Err(DeliverError::FutureIssueDate);
    }
    let cutoff = retention_cutoff(&state.realm, today);
    if new.issue_date < cutoff {
        return Err(DeliverError::PastRetention { cutoff });
    }
    let sha256 = hex::encode(Sha256::digest(&new.body));
    let realm = &state.realm.id;
    if let Some(key) = &new.idempotency_key {
        if let Some(existing) =
            documents::find_by_idempotency_key(&state.db, realm, &new.client_id, key).await?
        {
            return same(existing, &new, &sha256);
        }
    }

    let id = Uuid::new_v4();
    let object_key = blobs::key(realm, id);
    let doc = Document {
        id,
        realm: realm.clone(),
        ahv: new.ahv.clone(),
        category: new.category,
        titles: new.titles.clone(),
        issue_date: new.issue_date,
        received_at: state.clock.unix(),
        size: new.body.len() as i64,
        sha256: sha256.clone(),
        object_key: object_key.clone(),
        client_id: new.client_id.clone(),
        idempotency_key: new.idempotency_key.clone(),
        read_at: None,
    };
    state.blobs.put(&object_key, new.body.clone()).await?;
    if let Err(e) = documents::insert(&state.db, &doc).await {
        if let Err(gone) = state.blobs.delete(&object_key).await {
            tracing::error!(error = %gone, object_key, "body of a failed delivery not removed");
        }
        // Two deliveries with one key at once: the other one won; answer with it.
        if let StoreError::Conflict(Conflict::IdempotencyKeyUsed) = e {
            if let Some(key) = &new.idempotency_key {
                if let Some(existing) =
                    documents::find_by_idempotency_key(&state.db, realm, &new.client_id, key)
                        .await?
                {
                    return same(existing, &new, &sha256);
                }
            }
        }
        return Err(e.into());
    }
    tracing::info!(
        realm = %realm,
        client_id = %doc.client_id,
        document = %doc.id,
        category = %doc.category,
        size = doc.size,
        "document delivered"
    );
    Ok(Delivered::Created(doc))
}

/// A retried delivery must carry the same document (draft-ietf-httpapi-idempotency-key-header
/// §2.6: a key reused for another request is an error).
fn same(existing: Document, new: &NewDocument, sha256: &str) -> Result<Delivered, DeliverError> {
    let same = existing.ahv == new.ahv
        && existing.category == new.category
        && existing.titles == new.titles
        && existing.issue_date == new.issue_date
        && existing.sha256 == sha256;
    if same {
        Ok(Delivered::Existing(existing))
    } else {
        Err(DeliverError::KeyReused)
    }
}

/// Tells the person, if the portal knows their address, that a document arrived. A mail
/// that cannot be sent is logged and does not undo the delivery.
pub async fn notify(state: &PortalState, doc: &Document) {
    let recipient = match documents::recipient(&state.db, &doc.realm, &doc.ahv).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, document = %doc.id, "recipient not read; no mail");
            return;
        }
    };
    let mail = messages::document_arrived(
        recipient.language,
        &state.realm,
        &recipient.email,
        state.config.portal_url.as_str(),
    );
    // Notifier::send_mail logs a failure itself.
    let _ = state.notifier.send_mail(mail).await;
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_cutoff_is_the_same_day_years_before() {
        let realms = crate::realm::Realms::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config"),
        )
        .unwrap();
        let realm = realms.get(&"AK00".parse().unwrap()).unwrap();
        assert_eq!(realm.documents.retention_years, 5);
        assert_eq!(
            super::retention_cutoff(realm, day("2026-11-26")),
            day("2021-11-26")
        );
        // 29 February has no twin five years before: the last day of that February.
        assert_eq!(
            super::retention_cutoff(realm, day("2028-02-29")),
            day("2023-02-28")
        );
    }
}
