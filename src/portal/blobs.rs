//! Document bodies in object storage (`object_store`): a local directory by default, an
//! S3-compatible bucket when configured. Keys are `<realm>/<document id>.pdf`: object keys
//! appear in logs and in the store's own access logs, so they name no person.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream::BoxStream, StreamExt};
use object_store::{local::LocalFileSystem, path::Path, prefix::PrefixStore, ObjectStore};
use uuid::Uuid;

use crate::domain::RealmId;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("document store: {0}")]
    Store(#[from] object_store::Error),
    #[error("document store {0}: {1}")]
    Open(String, String),
    #[error("document body not found")]
    NotFound,
}

#[derive(Clone)]
pub struct Blobs {
    pub store: Arc<dyn ObjectStore>,
}

/// A document body being read, chunk by chunk.
pub struct BlobStream {
    pub size: u64,
    pub chunks: BoxStream<'static, Result<Bytes, BlobError>>,
}

/// Where a document's body lives: the realm and the random document id, never the AHV
/// number (issue 9, defect 15).
pub fn key(realm: &RealmId, id: Uuid) -> String {
    format!("{realm}/{id}.pdf")
}

impl Blobs {
    pub fn open(url: &str) -> Result<Blobs, BlobError> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| BlobError::Open(url.to_owned(), e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir)
                .map_err(|e| BlobError::Open(dir.to_owned(), e.to_string()))?;
            Arc::new(
                LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| BlobError::Open(dir.to_owned(), e.to_string()))?,
            )
        };
        Ok(Blobs { store })
    }

    fn path(key: &str) -> Result<Path, BlobError> {
        Path::parse(key).map_err(|e| BlobError::Store(e.into()))
    }

    /// Writes a whole body; the local store writes a temporary file and renames it, S3 puts
    /// in one request, so a reader never sees half a body.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.store.put(&Self::path(key)?, body.into()).await?;
        Ok(())
    }

    /// The body as a stream, to answer a download without holding it in memory.
    pub async fn get(&self, key: &str) -> Result<BlobStream, BlobError> {
        match self.store.get(&Self::path(key)?).await {
            Ok(got) => Ok(BlobStream {
                size: got.meta.size,
                chunks: got
                    .into_stream()
                    .map(|c| c.map_err(BlobError::from))
                    .boxed(),
            }),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a body; one that is already gone counts as removed.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Self::path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_go_in_come_back_and_go_away() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path().to_str().unwrap()).unwrap();
        let id = Uuid::new_v4();
        let k = key(&"AK00".parse().unwrap(), id);
        assert_eq!(k, format!("AK00/{id}.pdf"), "no AHV number in the key");
        let body = Bytes::from(vec![7u8; 300_000]);
        blobs.put(&k, body.clone()).await.unwrap();
        assert!(dir.path().join(&k).is_file());
        let got = blobs.get(&k).await.unwrap();
        assert_eq!(got.size, 300_000);
        let chunks: Vec<Bytes> = got.chunks.map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.concat(), body);
        blobs.delete(&k).await.unwrap();
        blobs.delete(&k).await.unwrap();
        assert!(matches!(blobs.get(&k).await, Err(BlobError::NotFound)));
    }
}
