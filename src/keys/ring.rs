//! The keys of every realm: created at first start, rotated on command, cached and
//! re-read now and then so that a rotation by `connect admin` reaches running servers.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{signing, KeyError, MasterKey, SigningKey};
use crate::{
    clock::Clock,
    domain::RealmId,
    realm::{Realm, SigningAlg},
    storage::{keys as store, Db, StoreError},
};

/// How long a running server trusts its cached key list before reading it again, unless
/// configured (`keys_reload_seconds`).
const RELOAD_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("realm {0} has no {1} key")]
    Missing(RealmId, &'static str),
}

/// A key that signs now or will, with the Unix time it stops signing (`None`: not set yet).
type Signing = (Arc<SigningKey>, Option<i64>);

struct RealmKeys {
    /// Per algorithm, the keys that sign now or will, oldest first, each with the time it
    /// stops signing (`None`: not set yet). [`KeyRing::signer`] picks among them.
    signing: HashMap<SigningAlg, Vec<Signing>>,
    /// Every key still published: what verifies, and the JWKS.
    published: Vec<Arc<SigningKey>>,
    /// The JWKS document of `published`, serialized once per load: serving it is writing bytes.
    jwks: Bytes,
    loaded: Instant,
}

#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    master: MasterKey,
    clock: Clock,
    reload_after: Duration,
    realms: Arc<RwLock<HashMap<RealmId, Arc<RealmKeys>>>>,
}

impl KeyRing {
    pub fn new(db: Db, master: MasterKey, clock: Clock) -> Self {
        Self {
            db,
            master,
            clock,
            reload_after: RELOAD_AFTER,
            realms: Arc::default(),
        }
    }

    /// Reads the keys again once the cached list is `after` old: the bound on how long a
    /// rotation elsewhere takes to reach this server.
    pub fn reloading_after(mut self, after: Duration) -> Self {
        self.reload_after = after;
        self
    }

    /// Creates the missing keys of a realm (one per algorithm) and loads them.
    pub async fn ensure(&self, realm: &Realm) -> Result<(), RingError> {
        let rows = store::published(&self.db, &realm.id, self.clock.unix()).await?;
        for alg in SigningAlg::ALL {
            if !rows
                .iter()
                .any(|r| r.alg == alg.as_str() && r.retired_at.is_none())
            {
                self.add(&realm.id, alg).await?;
            }
        }
        self.reload(&realm.id).await?;
        Ok(())
    }

    /// Adds a new key per algorithm, published at once but signing only after the hand-over
    /// time, by when every replica has read it ([`KeyRing::handover`]); until then the old
    /// key signs. The old ones stay published until every token they signed has expired.
    pub async fn rotate(&self, realm: &Realm) -> Result<Vec<String>, RingError> {
        let now = self.clock.unix();
        let stops_signing = now + self.handover().as_secs() as i64;
        // One minute more than the longest token, for the servers' key cache and clock skew.
        let grace = realm.lifetimes.longest_signed_token()
            + Duration::from_secs(60)
            + self.reload_after.max(RELOAD_AFTER);
        let mut kids = Vec::new();
        for alg in SigningAlg::ALL {
            store::retire(
                &self.db,
                &realm.id,
                alg.as_str(),
                stops_signing,
                stops_signing + grace.as_secs() as i64,
            )
            .await?;
            kids.push(self.add(&realm.id, alg).await?);
        }
        store::forget_unpublished(&self.db, &realm.id, now).await?;
        self.reload(&realm.id).await?;
        Ok(kids)
    }

    /// How long a new key is published before it signs: every replica reads the keys again
    /// within `reload_after`, and a relying party that fetched the JWKS just before (the
    /// portal fetches again on an unknown `kid` at most every 10 s) has fetched it by then.
    pub fn handover(&self) -> Duration {
        self.reload_after + Duration::from_secs(10)
    }

    async fn add(&self, realm: &RealmId, alg: SigningAlg) -> Result<String, RingError> {
        let der = tokio::task::spawn_blocking(move || signing::generate(alg))
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))??;
        self.store(realm, alg, &der).await
    }

    /// Stores a given private key (DER: PKCS#8 for ES256, PKCS#1 for RS256) as an active key
    /// of the realm, before [`KeyRing::ensure`] runs, which then generates none for that
    /// algorithm. For the test suite's fixture keys, which spare each test server the
    /// generation of an RSA key: production never calls it, its realms get fresh keys.
    pub async fn install(
        &self,
        realm: &RealmId,
        alg: SigningAlg,
        der: &[u8],
    ) -> Result<String, RingError> {
        self.store(realm, alg, der).await
    }

    async fn store(
        &self,
        realm: &RealmId,
        alg: SigningAlg,
        der: &[u8],
    ) -> Result<String, RingError> {
        let jwk = signing::public_jwk(alg, der)?;
        let kid = jwk["kid"].as_str().unwrap_or_default().to_owned();
        let sealed = STANDARD.encode(self.master.encrypt(der, kid.as_bytes()));
        let row = store::KeyRow {
            kid: kid.clone(),
            alg: alg.as_str().to_owned(),
            private_key: sealed,
            public_jwk: jwk.to_string(),
            created_at: self.clock.unix(),
            retired_at: None,
        };
        store::insert(&self.db, realm, &row).await?;
        Ok(kid)
    }

    async fn reload(&self, realm: &RealmId) -> Result<Arc<RealmKeys>, RingError> {
        let rows = store::published(&self.db, realm, self.clock.unix()).await?;
        let mut signing: HashMap<SigningAlg, Vec<_>> = HashMap::new();
        let now = self.clock.unix();
        let mut published = Vec::new();
        // Rows come oldest first, so the last unretired key of an algorithm wins.
        for row in rows {
            let alg = match row.alg.as_str() {
                "ES256" => SigningAlg::ES256,
                "RS256" => SigningAlg::RS256,
                other => return Err(KeyError::Malformed(format!("unknown alg {other}")).into()),
            };
            let sealed = STANDARD
                .decode(&row.private_key)
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            let der = self.master.decrypt(&sealed, row.kid.as_bytes())?;
            let jwk: Value = serde_json::from_str(&row.public_jwk)
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            let key = Arc::new(SigningKey::from_parts(alg, &der, jwk)?);
            if row.retired_at.is_none_or(|at| at > now) {
                signing
                    .entry(alg)
                    .or_default()
                    .push((key.clone(), row.retired_at));
            }
            published.push(key);
        }
        let jwks = json!({ "keys": published.iter().map(|k| &k.jwk).collect::<Vec<_>>() });
        let keys = Arc::new(RealmKeys {
            signing,
            jwks: Bytes::from(jwks.to_string()),
            published,
            loaded: Instant::now(),
        });
        self.realms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(realm.clone(), keys.clone());
        Ok(keys)
    }

    async fn current(&self, realm: &RealmId) -> Result<Arc<RealmKeys>, RingError> {
        let cached = self
            .realms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(realm)
            .cloned();
        match cached {
            Some(keys) if keys.loaded.elapsed() < self.reload_after => Ok(keys),
            _ => self.reload(realm).await,
        }
    }

    /// The key that signs tokens of this algorithm now: a key being retired signs until its
    /// hand-over time (see [`KeyRing::rotate`]), then the oldest unretired key. Oldest, not
    /// newest: when replicas starting together on an empty database each created a key, they
    /// all settle on the same one once they have read each other's.
    pub async fn signer(
        &self,
        realm: &RealmId,
        alg: SigningAlg,
    ) -> Result<Arc<SigningKey>, RingError> {
        let keys = self.current(realm).await?;
        let now = self.clock.unix();
        let candidates = keys
            .signing
            .get(&alg)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let handing_over = candidates
            .iter()
            .filter_map(|(key, at)| at.filter(|at| *at > now).map(|at| (at, key)))
            .min_by_key(|(at, _)| *at)
            .map(|(_, key)| key);
        let unretired = candidates
            .iter()
            .find(|(_, at)| at.is_none())
            .map(|(k, _)| k);
        handing_over
            .or(unretired)
            .cloned()
            .ok_or_else(|| RingError::Missing(realm.clone(), alg.as_str()))
    }

    /// A published key by its `kid`; an unknown kid triggers one fresh read.
    pub async fn verifier(
        &self,
        realm: &RealmId,
        kid: &str,
    ) -> Result<Option<Arc<SigningKey>>, RingError> {
        let find = |keys: &RealmKeys| keys.published.iter().find(|k| k.kid == kid).cloned();
        let keys = self.current(realm).await?;
        if let Some(key) = find(&keys) {
            return Ok(Some(key));
        }
        if keys.loaded.elapsed() < Duration::from_secs(1) {
            return Ok(None);
        }
        Ok(find(&*self.reload(realm).await?))
    }

    /// The realm's JWKS document (`{"keys": [...]}`, every published key), as served.
    pub async fn jwks_document(&self, realm: &RealmId) -> Result<Bytes, RingError> {
        Ok(self.current(realm).await?.jwks.clone())
    }
}
