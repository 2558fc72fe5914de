//! Argon2id hashing off the async workers, with a bound on how many run at once so that
//! memory stays bounded under a login storm, and on how many may wait for their turn, so
//! that anonymous requests cannot pile up without limit: beyond it, [`PasswordError::Busy`].
//!
//! Each hash needs `m_cost` KiB of working memory (19 MiB with the OWASP parameters). Taking a
//! fresh block each time left the process at about 500 MB after a burst of logins: glibc
//! raises its mmap threshold once such a block is freed, so the next ones come from the heaps
//! of the blocking threads and stay there. The blocks are kept instead, one per permit, and
//! reused: the memory is `concurrency × m_cost` at most, and never more after a burst
//! (figures in docs/decisions.md, "Argon2 memory is reused").

use std::sync::{Arc, Mutex};

use argon2::{
    password_hash::{Output, ParamsString, SaltString},
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::PasswordHashing;

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// Running and waiting hashes together: `concurrency + queue` places.
    places: Arc<Semaphore>,
    /// The working memory of finished hashes, for the hashes waiting for a permit: at most
    /// one per waiting hash, none once nobody waits (`give_back`).
    memory: Arc<Mutex<Pool>>,
    concurrency: usize,
    /// Working memories allocated, not taken from the pool (for the tests).
    fresh: Arc<std::sync::atomic::AtomicUsize>,
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

impl From<argon2::Error> for PasswordError {
    fn from(e: argon2::Error) -> Self {
        PasswordError::Argon2(e.to_string())
    }
}

impl From<argon2::password_hash::Error> for PasswordError {
    fn from(e: argon2::password_hash::Error) -> Self {
        PasswordError::Argon2(e.to_string())
    }
}

impl Passwords {
    pub fn new(cfg: &PasswordHashing) -> Result<Self, PasswordError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)?;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = hash_into(
            &params,
            b"not a password anyone has",
            &salt,
            &mut Vec::new(),
        )?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cfg.concurrency)),
            places: Arc::new(Semaphore::new(cfg.concurrency.saturating_add(cfg.queue))),
            memory: Arc::default(),
            concurrency: cfg.concurrency,
            fresh: Arc::default(),
            dummy_hash: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let params = self.params.clone();
        self.blocking(move |memory| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            hash_into(&params, password.expose_secret().as_bytes(), &salt, memory)
        })
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
            .blocking(move |memory| {
                verify_into(password.expose_secret().as_bytes(), &stored, memory)
            })
            .await??;
        Ok(known && ok)
    }

    /// Runs `f` on a blocking thread with a working memory from the pool, once a place in the
    /// queue and then a permit are ours. Both are held by the blocking task itself, so that a
    /// request given up by its client frees its permit only when its hash has ended: the
    /// bound on running hashes, and so on their memory, holds even then.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| PasswordError::Busy)?;
        let waiting = Waiting::enter(&self.memory);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        let this = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let mut memory = this.take(waiting);
            let out = span.in_scope(|| f(&mut memory));
            this.give_back(memory);
            drop((permit, place));
            out
        })
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))
    }
}

/// The buffers kept for waiting hashes, and how many hashes wait for a permit. Both change
/// under one lock: counted from the two semaphores instead, a hash between releasing its
/// permit and its place looked like one still waiting, and a buffer was kept for nobody.
#[derive(Default)]
struct Pool {
    buffers: Vec<Vec<Block>>,
    waiting: usize,
}

fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

/// A hash counted as waiting for a permit, from its place in the queue until it takes its
/// working memory; a request given up while waiting leaves the count on drop, and the pool
/// gives back what it kept for it.
struct Waiting {
    pool: Arc<Mutex<Pool>>,
    counted: bool,
}

impl Waiting {
    fn enter(pool: &Arc<Mutex<Pool>>) -> Self {
        lock(pool).waiting += 1;
        Self {
            pool: pool.clone(),
            counted: true,
        }
    }

    /// Leaves the count and, in the same lock, takes a kept buffer if there is one.
    fn leave(mut self) -> Option<Vec<Block>> {
        self.counted = false;
        let mut pool = lock(&self.pool);
        pool.waiting -= 1;
        pool.buffers.pop()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.counted {
            let mut pool = lock(&self.pool);
            pool.waiting -= 1;
            let keep = pool.waiting;
            pool.buffers.truncate(keep);
        }
    }
}

impl Passwords {
    fn take(&self, waiting: Waiting) -> Vec<Block> {
        waiting.leave().unwrap_or_else(|| {
            self.fresh
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Vec::new()
        })
    }

    /// Keeps a finished hash's working memory for a hash that waits for a permit, cut back to
    /// what the configured parameters need (a stored hash made with a larger `m_cost` may have
    /// grown it); with nobody waiting, frees it. A storm of logins reuses a few buffers, and
    /// once it is over the process gives the memory back instead of keeping
    /// `concurrency` × `memory_kib` for the next one (docs/performance.md).
    fn give_back(&self, mut memory: Vec<Block>) {
        let keep = self.params.block_count();
        if memory.len() > keep {
            memory.truncate(keep);
            memory.shrink_to_fit();
        }
        let mut pool = lock(&self.memory);
        if pool.buffers.len() < pool.waiting.min(self.concurrency) {
            pool.buffers.push(memory);
        }
    }
}

/// At least `blocks` blocks of working memory. Reused blocks are not cleared: Argon2 writes
/// every block before it reads it.
fn room(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// The PHC string of `password` hashed with Argon2id v19 and `params`, exactly as
/// `PasswordHasher::hash_password` of the argon2 crate writes it, in the given memory.
fn hash_into(
    params: &Params,
    password: &[u8],
    salt: &SaltString,
    memory: &mut Vec<Block>,
) -> Result<String, PasswordError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let memory = room(memory, params.block_count());
    let output = Output::init_with(len, |out| {
        argon2
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(Into::into)
    })?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives the hash of the PHC string `stored`, with the algorithm, version
/// and parameters it names (older hashes keep theirs), compared in constant time by
/// `Output`'s `PartialEq`, as `PasswordVerifier::verify_password` of the argon2 crate does.
fn verify_into(
    password: &[u8],
    stored: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::Argon2(
            "the stored hash has no salt or output".into(),
        ));
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let memory = room(memory, params.block_count());
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(Into::into)
    })?;
    Ok(computed == expected)
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
    fn the_phc_string_is_the_one_of_the_argon2_crate() {
        use argon2::PasswordHasher;
        let params = Params::new(256, 2, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let ours = hash_into(&params, b"pass phrase", &salt, &mut Vec::new()).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pass phrase", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn hashes_of_the_argon2_crate_verify_with_their_own_parameters() {
        use argon2::PasswordHasher;
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        // Other parameters, versions and variants than ours, as older rows may have.
        for (alg, version, m, t, p) in [
            (Algorithm::Argon2id, Version::V0x13, 64, 1, 1),
            (Algorithm::Argon2id, Version::V0x13, 512, 3, 2),
            (Algorithm::Argon2i, Version::V0x10, 128, 2, 1),
        ] {
            let params = Params::new(m, t, p, None).unwrap();
            let stored = Argon2::new(alg, version, params)
                .hash_password(b"old one", &salt)
                .unwrap()
                .to_string();
            // A small memory that must grow, then the same memory reused.
            let mut memory = vec![Block::default(); 8];
            assert!(
                verify_into(b"old one", &stored, &mut memory).unwrap(),
                "{stored}"
            );
            assert!(
                !verify_into(b"old onf", &stored, &mut memory).unwrap(),
                "{stored}"
            );
        }
    }

    // Hashes long enough (milliseconds) that all twelve are queued before the first ends.
    #[tokio::test]
    async fn working_memory_is_reused_while_hashes_wait_and_freed_after() {
        let p = Passwords::new(&PasswordHashing {
            memory_kib: 4096,
            iterations: 3,
            parallelism: 1,
            concurrency: 2,
            queue: 16,
        })
        .unwrap();
        let hashes: Vec<_> = (0..12)
            .map(|i| {
                let p = p.clone();
                tokio::spawn(async move { p.hash(format!("password {i}").into()).await })
            })
            .collect();
        for h in hashes {
            assert!(h.await.unwrap().is_ok());
        }
        // Twelve hashes two at a time: the waiting ones took the memory of those before them.
        let fresh = p.fresh.load(std::sync::atomic::Ordering::Relaxed);
        assert!((1..=2).contains(&fresh), "{fresh} buffers allocated");
        assert!(lock(&p.memory).buffers.is_empty());
        // A stored hash that needs more memory than ours grows one buffer for its check only.
        let bigger = hash_into(
            &Params::new(1024, 1, 1, None).unwrap(),
            b"x",
            &SaltString::generate(&mut rand::rngs::OsRng),
            &mut Vec::new(),
        )
        .unwrap();
        assert!(p
            .verify("x".to_owned().into(), Some(&bigger))
            .await
            .unwrap());
        // Nobody waits any more: nothing is kept.
        assert!(lock(&p.memory).buffers.is_empty());
    }

    #[test]
    fn a_hash_given_up_while_waiting_leaves_no_buffer_behind() {
        let pool = Arc::new(Mutex::new(Pool::default()));
        let first = Waiting::enter(&pool);
        let second = Waiting::enter(&pool);
        lock(&pool).buffers.push(vec![Block::default(); 2]);
        // The second request is given up: one buffer stays, for the first, which takes it.
        drop(second);
        assert_eq!(lock(&pool).waiting, 1);
        assert_eq!(lock(&pool).buffers.len(), 1);
        assert!(first.leave().is_some());
        // The only waiter gives up: what was kept for it is freed.
        let third = Waiting::enter(&pool);
        lock(&pool).buffers.push(vec![Block::default(); 2]);
        drop(third);
        let pool = lock(&pool);
        assert_eq!((pool.waiting, pool.buffers.len()), (0, 0));
    }

    #[test]
    fn owasp_parameters_are_the_default() {
        let d = PasswordHashing::default();
        assert_eq!((d.memory_kib, d.iterations, d.parallelism), (19456, 2, 1));
    }
}
