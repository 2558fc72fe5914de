//! Document bodies in object storage (`object_store`): a local directory by default, an
//! S3-compatible bucket when configured.

use std::sync::Arc;

use object_store::{local::LocalFileSystem, ObjectStore};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("document store: {0}")]
    Store(#[from] object_store::Error),
    #[error("document store {0}: {1}")]
    Open(String, String),
}

#[derive(Clone)]
pub struct Blobs {
    pub store: Arc<dyn ObjectStore>,
}

impl Blobs {
    pub fn open(url: &str) -> Result<Blobs, BlobError> {
        let store: Arc<dyn ObjectStore> = if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, _prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| BlobError::Open(url.to_owned(), e.to_string()))?;
            Arc::new(s3)
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
}
