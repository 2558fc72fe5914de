//! Argon2id hashing off the async workers, with a bound on how many run at once so that
//! memory stays bounded under a login storm, and on how many may wait for their turn, so
//! that anonymous requests cannot pile up without limit: beyond it, [`PasswordError::Busy`].

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::PasswordHashing;

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// Running and waiting hashes together: `concurrency + queue` places.
    places: Arc<Semaphore>,
    /// Verified when the account does not exist, so that both cases take the same time.
    dummy_hash: Arc<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("the hashing task failed: {0}")]
    Task(String),
    /// Every place in the queue is taken: try again in a moment.
    #[error("too many passwords waiting to be checked")]
    Busy,
}

impl Passwords {
    pub fn new(cfg: &PasswordHashing) -> Result<Self, PasswordError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| PasswordError::Argon2(e.to_string()))?;
        let dummy = hash_with(&params, "not a password anyone has")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cfg.concurrency)),
            places: Arc::new(Semaphore::new(cfg.concurrency.saturating_add(cfg.queue))),
            dummy_hash: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.blocking(move || hash_with(&params, password.expose_secret()))
            .await?
    }

    /// True when `password` matches `stored`; with no stored hash, checks a dummy and says false.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let ok = self
            .blocking(move || {
                let parsed =
                    PasswordHash::new(&stored).map_err(|e| PasswordError::Argon2(e.to_string()))?;
                Ok::<_, PasswordError>(
                    Argon2::default()
                        .verify_password(password.expose_secret().as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(known && ok)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _place = self.places.try_acquire().map_err(|_| PasswordError::Busy)?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, PasswordError> {
    let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Argon2(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&PasswordHashing {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            concurrency: 2,
            queue: 2,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let p = cheap();
        let hash = p.hash("correct horse".to_owned().into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(p
            .verify("correct horse".to_owned().into(), Some(&hash))
            .await
            .unwrap());
        assert!(!p
            .verify("correct horsf".to_owned().into(), Some(&hash))
            .await
            .unwrap());
        assert!(!p
            .verify("not a password anyone has".to_owned().into(), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn beyond_the_queue_a_hash_is_refused_at_once() {
        let p = Passwords::new(&PasswordHashing {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
            queue: 0,
        })
        .unwrap();
        let held = p.permits.clone().acquire_owned().await.unwrap();
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.hash("first in line".to_owned().into()).await })
        };
        while p.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = p.hash("second in line".to_owned().into()).await;
        assert!(matches!(refused, Err(PasswordError::Busy)), "{refused:?}");
        drop(held);
        assert!(waiting.await.unwrap().is_ok(), "the one in line is served");
    }

    #[test]
    fn owasp_parameters_are_the_default() {
        let d = PasswordHashing::default();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19456, 2, 1));
    }
}
