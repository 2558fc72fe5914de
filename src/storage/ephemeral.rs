//! Short-lived state (flows, codes, sessions, counters): in-process, or Redis so that any
//! replica can finish what another began.
//!
//! Nothing outside this module forms a key. Each kind of short-lived record has its own typed
//! handle, [`Record<T>`] (a serde value) or [`Counter`] (a windowed count), which knows its
//! name (the key's first part), how its key is formed from a scope (a realm, or nothing) and
//! an id, and the type it holds. The lifetime is given at each write, since most come from
//! the realm's settings. Keys read `name:scope:id`, or `name:id` without a scope; a hashed
//! kind puts the keyed hash of its purpose and the id in place of the id, so that secrets
//! (cookies, codes) and personal data (typed addresses, numbers) never reach the store.
//!
//! The in-process store takes its time from the injected [`Clock`], so that tests move the
//! clock instead of sleeping; Redis keeps its own expiry.

use std::{
    borrow::Cow,
    collections::HashMap,
    marker::PhantomData,
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    AsyncCommands, RedisResult,
};
use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;
use crate::{clock::Clock, keys::SecretHasher};

/// How a kind's key is formed from its scope and id.
#[derive(Clone)]
enum Naming {
    /// The id as it is: it is no secret (an interaction id, an account id, a keyed hash
    /// the caller made).
    Plain,
    /// The keyed hash of `purpose` followed by the id.
    Hashed {
        hasher: SecretHasher,
        purpose: &'static str,
    },
}

/// The name and key form of one kind of short-lived state.
#[derive(Clone)]
struct Kind {
    store: Ephemeral,
    name: &'static str,
    naming: Naming,
}

impl Kind {
    fn key(&self, scope: &str, id: &str) -> String {
        let id = match &self.naming {
            Naming::Plain => Cow::Borrowed(id),
            Naming::Hashed { hasher, purpose } => {
                Cow::Owned(hasher.hash(&format!("{purpose}{id}")))
            }
        };
        if scope.is_empty() {
            format!("{}:{id}", self.name)
        } else {
            format!("{}:{scope}:{id}", self.name)
        }
    }
}

/// The typed handle of one kind of record: values of `T`, stored as JSON.
pub struct Record<T> {
    kind: Kind,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Record<T> {
    fn clone(&self) -> Self {
        Record {
            kind: self.kind.clone(),
            value: PhantomData,
        }
    }
}

/// A record as read, remembered as stored so that [`Record::swap`] can tell whether another
/// writer came first.
pub struct Read<T> {
    pub value: Option<T>,
    raw: Option<Vec<u8>>,
}

impl<T: Serialize + DeserializeOwned> Record<T> {
    /// Records keyed `name:scope:id` with the id as it is.
    pub fn plain(store: &Ephemeral, name: &'static str) -> Self {
        Self::of(store, name, Naming::Plain)
    }

    /// Records keyed by the keyed hash of `purpose` and the id.
    pub fn hashed(
        store: &Ephemeral,
        name: &'static str,
        hasher: &SecretHasher,
        purpose: &'static str,
    ) -> Self {
        let naming = Naming::Hashed {
            hasher: hasher.clone(),
            purpose,
        };
        Self::of(store, name, naming)
    }

    fn of(store: &Ephemeral, name: &'static str, naming: Naming) -> Self {
        Record {
            kind: Kind {
                store: store.clone(),
                name,
                naming,
            },
            value: PhantomData,
        }
    }

    /// Stores `value` for `ttl`, replacing what was there.
    pub async fn put(
        &self,
        scope: &str,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.kind.key(scope, id);
        self.kind.store.put(&key, &encode(value)?, ttl).await
    }

    /// Stores `value` only if there is none; tells whether it did.
    pub async fn put_new(
        &self,
        scope: &str,
        id: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.kind.key(scope, id);
        self.kind.store.put_new(&key, &encode(value)?, ttl).await
    }

    pub async fn get(&self, scope: &str, id: &str) -> Result<Option<T>, StoreError> {
        Ok(self.read(scope, id).await?.value)
    }

    /// Reads for a later [`Record::swap`].
    pub async fn read(&self, scope: &str, id: &str) -> Result<Read<T>, StoreError> {
        let raw = self.kind.store.get(&self.kind.key(scope, id)).await?;
        let value = raw.as_deref().map(decode).transpose()?;
        Ok(Read { value, raw })
    }

    /// Reads and removes in one step: of two concurrent takers, exactly one gets the value.
    pub async fn take(&self, scope: &str, id: &str) -> Result<Option<T>, StoreError> {
        let raw = self.kind.store.take(&self.kind.key(scope, id)).await?;
        raw.as_deref().map(decode).transpose()
    }

    pub async fn delete(&self, scope: &str, id: &str) -> Result<(), StoreError> {
        self.kind.store.delete(&self.kind.key(scope, id)).await
    }

    /// Compare-and-set: stores `value` for `ttl` only if the record still is as `seen` read
    /// it; tells whether it did. Read, decide, `swap`, and read again when it says false: of
    /// concurrent writers (on any replica) exactly one wins each round.
    pub async fn swap(
        &self,
        scope: &str,
        id: &str,
        seen: &Read<T>,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.kind.key(scope, id);
        self.kind
            .store
            .swap(&key, seen.raw.as_deref(), &encode(value)?, ttl)
            .await
    }
}

/// The typed handle of one kind of counter: events counted in a fixed window.
#[derive(Clone)]
pub struct Counter {
    kind: Kind,
}

impl Counter {
    /// Counters keyed `name:scope:id` with the id as it is.
    pub fn plain(store: &Ephemeral, name: &'static str) -> Self {
        Counter {
            kind: Kind {
                store: store.clone(),
                name,
                naming: Naming::Plain,
            },
        }
    }

    /// Counters keyed by the keyed hash of `purpose` and the id.
    pub fn hashed(
        store: &Ephemeral,
        name: &'static str,
        hasher: &SecretHasher,
        purpose: &'static str,
    ) -> Self {
        Counter {
            kind: Kind {
                store: store.clone(),
                name,
                naming: Naming::Hashed {
                    hasher: hasher.clone(),
                    purpose,
                },
            },
        }
    }

    /// Counts one more event in a fixed window that starts with the first event, and
    /// returns the count so far, this one included.
    pub async fn hit(&self, scope: &str, id: &str, window: Duration) -> Result<u64, StoreError> {
        self.kind.store.hit(&self.kind.key(scope, id), window).await
    }

    /// The count so far without adding to it; 0 when none.
    pub async fn count(&self, scope: &str, id: &str) -> Result<u64, StoreError> {
        self.kind.store.count(&self.kind.key(scope, id)).await
    }

    pub async fn delete(&self, scope: &str, id: &str) -> Result<(), StoreError> {
        self.kind.store.delete(&self.kind.key(scope, id)).await
    }
}

#[derive(Clone)]
pub enum Ephemeral {
    Memory(Arc<MemoryStore>),
    Redis(RedisStore),
}

impl std::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ephemeral::Memory(_) => f.write_str("Ephemeral::Memory"),
            Ephemeral::Redis(r) => write!(f, "Ephemeral::Redis({})", r.prefix),
        }
    }
}

/// Values with the clock's millisecond at which they expire.
pub struct MemoryStore {
    clock: Clock,
    entries: Mutex<HashMap<String, (Vec<u8>, i64)>>,
    last_sweep: Mutex<Option<i64>>,
}

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl Ephemeral {
    /// The in-process store, whose entries expire by `clock`.
    pub fn memory(clock: Clock) -> Ephemeral {
        Ephemeral::Memory(Arc::new(MemoryStore {
            clock,
            entries: Mutex::default(),
            last_sweep: Mutex::default(),
        }))
    }
    /// Connects to Redis; every key gets `prefix` in front (tests use one per test).
    pub async fn redis(url: &str, prefix: &str) -> Result<Ephemeral, StoreError> {
        let client = redis::Client::open(url)?;
        // Short connection attempts and few retries: while Redis is down a request fails in
        // about a second (503) instead of waiting out the default backoff (more than 10 s);
        // the next request after Redis returns connects again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(200);
        let conn = bounded(ConnectionManager::new_with_config(client, config)).await?;
        Ok(Ephemeral::Redis(RedisStore {
            conn,
            prefix: prefix.to_owned(),
        }))
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.sweep_now_and_then();
                m.lock()
                    .insert(key.to_owned(), (value.to_vec(), until(m.now(), ttl)));
                Ok(())
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: () = bounded(c.pset_ex(r.key(key), value, millis(ttl))).await?;
                Ok(())
            }
        }
    }

    /// Stores `value` only if `key` is absent; tells whether it did.
    async fn put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = m.now();
                if map.get(key).is_some_and(|(_, exp)| *exp > now) {
                    return Ok(false);
                }
                map.insert(key.to_owned(), (value.to_vec(), until(now, ttl)));
                Ok(true)
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let opts = redis::SetOptions::default()
                    .conditional_set(redis::ExistenceCheck::NX)
                    .with_expiration(redis::SetExpiry::PX(millis(ttl)));
                let done: Option<String> = bounded(c.set_options(r.key(key), value, opts)).await?;
                Ok(done.is_some())
            }
        }
    }

    /// Compare-and-set: stores `value` for `ttl` only if `key` still holds `expected` (`None`:
    /// is absent); tells whether it did. Read, decide, `swap`, and read again when it says
    /// false: of concurrent writers (on any replica) exactly one wins each round.
    async fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = m.now();
                let current = map
                    .get(key)
                    .filter(|(_, exp)| *exp > now)
                    .map(|(v, _)| v.as_slice());
                if current != expected {
                    return Ok(false);
                }
                map.insert(key.to_owned(), (value.to_vec(), until(now, ttl)));
                Ok(true)
            }
            Ephemeral::Redis(r) => {
                // ARGV[1] is "1" when a value is expected (ARGV[2]), "0" when the key must be
                // absent; Lua sees a missing key as `false`.
                let script = redis::Script::new(
                    "local cur = redis.call('GET', KEYS[1]) \
                     if ARGV[1] == '1' then \
                       if cur ~= ARGV[2] then return 0 end \
                     elseif cur then return 0 end \
                     redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) \
                     return 1",
                );
                let mut c = r.conn.clone();
                let done: i64 = bounded(
                    script
                        .key(r.key(key))
                        .arg(if expected.is_some() { "1" } else { "0" })
                        .arg(expected.unwrap_or_default())
                        .arg(value)
                        .arg(millis(ttl))
                        .invoke_async(&mut c),
                )
                .await?;
                Ok(done == 1)
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let map = m.lock();
                Ok(map
                    .get(key)
                    .filter(|(_, exp)| *exp > m.now())
                    .map(|(v, _)| v.clone()))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                bounded(c.get(r.key(key))).await
            }
        }
    }

    /// Reads and removes in one step: of two concurrent takers, exactly one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                Ok(map
                    .remove(key)
                    .filter(|(_, exp)| *exp > m.now())
                    .map(|(v, _)| v))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                bounded(c.get_del(r.key(key))).await
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.lock().remove(key);
                Ok(())
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: () = bounded(c.del(r.key(key))).await?;
                Ok(())
            }
        }
    }

    /// Counts one more event in a fixed window that starts with the first event, and
    /// returns the count so far, this one included.
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = m.now();
                let entry = map
                    .entry(key.to_owned())
                    .or_insert_with(|| (0u64.to_be_bytes().to_vec(), until(now, window)));
                if entry.1 <= now {
                    *entry = (0u64.to_be_bytes().to_vec(), until(now, window));
                }
                let count = u64::from_be_bytes(entry.0.as_slice().try_into().unwrap_or([0; 8])) + 1;
                entry.0 = count.to_be_bytes().to_vec();
                Ok(count)
            }
            Ephemeral::Redis(r) => {
                // INCR then PEXPIRE NX in one script, so a crash between them cannot leave a
                // counter that never expires.
                let script = redis::Script::new(
                    "local n = redis.call('INCR', KEYS[1]) \
                     if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
                     return n",
                );
                let mut c = r.conn.clone();
                let n: u64 = bounded(
                    script
                        .key(r.key(key))
                        .arg(millis(window))
                        .invoke_async(&mut c),
                )
                .await?;
                Ok(n)
            }
        }
    }

    /// The count of a [`Ephemeral::hit`] counter without adding to it; 0 when absent.
    async fn count(&self, key: &str) -> Result<u64, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let map = m.lock();
                Ok(map
                    .get(key)
                    .filter(|(_, exp)| *exp > m.now())
                    .and_then(|(v, _)| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_be_bytes))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let n: Option<u64> = bounded(c.get(r.key(key))).await?;
                Ok(n.unwrap_or(0))
            }
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(_) => Ok(()),
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: String = bounded(redis::cmd("PING").query_async(&mut c)).await?;
                Ok(())
            }
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Longest wait for a connection to Redis.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Longest wait for one Redis command, reconnection included: past it the command fails as
/// a timeout, which the HTTP layer answers 503.
const REDIS_TIMEOUT: Duration = Duration::from_millis(2000);

/// `op`, failing as a Redis timeout when it takes longer than [`REDIS_TIMEOUT`].
async fn bounded<T>(
    op: impl std::future::Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REDIS_TIMEOUT, op).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Redis(redis::RedisError::from(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "redis did not answer in time"),
        ))),
    }
}

/// The millisecond `d` after `now`.
fn until(now: i64, d: Duration) -> i64 {
    now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, i64)>> {
        // A panic while holding the lock cannot leave the map half-updated: every
        // operation is a single insert or remove.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The clock's millisecond, which expiry is measured in.
    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Drops expired entries about once a minute, so memory follows the live entries.
    fn sweep_now_and_then(&self) {
        let now = self.now();
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now - t < 60_000) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.lock().retain(|_, (_, exp)| *exp > now);
    }
}
