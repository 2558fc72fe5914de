//! Short-lived state (flows, codes, sessions, counters): in-process, or Redis so that any
//! replica can finish what another began.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, AsyncCommands};
use serde::{de::DeserializeOwned, Serialize};

use super::StoreError;

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

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    last_sweep: Mutex<Option<Instant>>,
}

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl Ephemeral {
    pub fn memory() -> Ephemeral {
        Ephemeral::Memory(Arc::default())
    }

    /// Connects to Redis; every key gets `prefix` in front (tests use one per test).
    pub async fn redis(url: &str, prefix: &str) -> Result<Ephemeral, StoreError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Ephemeral::Redis(RedisStore {
            conn,
            prefix: prefix.to_owned(),
        }))
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    pub async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.sweep_now_and_then();
                m.lock()
                    .insert(key.to_owned(), (value.to_vec(), Instant::now() + ttl));
                Ok(())
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: () = c.pset_ex(r.key(key), value, millis(ttl)).await?;
                Ok(())
            }
        }
    }

    /// Stores `value` only if `key` is absent; tells whether it did.
    pub async fn put_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = Instant::now();
                if map.get(key).is_some_and(|(_, exp)| *exp > now) {
                    return Ok(false);
                }
                map.insert(key.to_owned(), (value.to_vec(), now + ttl));
                Ok(true)
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let opts = redis::SetOptions::default()
                    .conditional_set(redis::ExistenceCheck::NX)
                    .with_expiration(redis::SetExpiry::PX(millis(ttl)));
                let done: Option<String> = c.set_options(r.key(key), value, opts).await?;
                Ok(done.is_some())
            }
        }
    }

    /// Compare-and-set: stores `value` for `ttl` only if `key` still holds `expected` (`None`:
    /// is absent); tells whether it did. Read, decide, `swap`, and read again when it says
    /// false: of concurrent writers (on any replica) exactly one wins each round.
    pub async fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = Instant::now();
                let current = map
                    .get(key)
                    .filter(|(_, exp)| *exp > now)
                    .map(|(v, _)| v.as_slice());
                if current != expected {
                    return Ok(false);
                }
                map.insert(key.to_owned(), (value.to_vec(), now + ttl));
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
                let done: i64 = script
                    .key(r.key(key))
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.unwrap_or_default())
                    .arg(value)
                    .arg(millis(ttl))
                    .invoke_async(&mut c)
                    .await?;
                Ok(done == 1)
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let map = m.lock();
                Ok(map
                    .get(key)
                    .filter(|(_, exp)| *exp > Instant::now())
                    .map(|(v, _)| v.clone()))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                Ok(c.get(r.key(key)).await?)
            }
        }
    }

    /// Reads and removes in one step: of two concurrent takers, exactly one gets the value.
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                Ok(map
                    .remove(key)
                    .filter(|(_, exp)| *exp > Instant::now())
                    .map(|(v, _)| v))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                Ok(c.get_del(r.key(key)).await?)
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.lock().remove(key);
                Ok(())
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: () = c.del(r.key(key)).await?;
                Ok(())
            }
        }
    }

    /// Counts one more event in a fixed window that starts with the first event, and
    /// returns the count so far, this one included.
    pub async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let mut map = m.lock();
                let now = Instant::now();
                let entry = map
                    .entry(key.to_owned())
                    .or_insert_with(|| (0u64.to_be_bytes().to_vec(), now + window));
                if entry.1 <= now {
                    *entry = (0u64.to_be_bytes().to_vec(), now + window);
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
                let n: u64 = script
                    .key(r.key(key))
                    .arg(millis(window))
                    .invoke_async(&mut c)
                    .await?;
                Ok(n)
            }
        }
    }

    /// The count of a [`Ephemeral::hit`] counter without adding to it; 0 when absent.
    pub async fn count(&self, key: &str) -> Result<u64, StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                let map = m.lock();
                Ok(map
                    .get(key)
                    .filter(|(_, exp)| *exp > Instant::now())
                    .and_then(|(v, _)| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map_or(0, u64::from_be_bytes))
            }
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let n: Option<u64> = c.get(r.key(key)).await?;
                Ok(n.unwrap_or(0))
            }
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(_) => Ok(()),
            Ephemeral::Redis(r) => {
                let mut c = r.conn.clone();
                let _: String = redis::cmd("PING").query_async(&mut c).await?;
                Ok(())
            }
        }
    }

    pub async fn put_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put(key, &encode(value)?, ttl).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.get(key).await?.map(|v| decode(&v)).transpose()
    }

    pub async fn take_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.take(key).await?.map(|v| decode(&v)).transpose()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        // A panic while holding the lock cannot leave the map half-updated: every
        // operation is a single insert or remove.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops expired entries about once a minute, so memory follows the live entries.
    fn sweep_now_and_then(&self) {
        let now = Instant::now();
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.lock().retain(|_, (_, exp)| *exp > now);
    }
}
