//! Access tokens whose signature has been checked, remembered until they expire.
//!
//! A resource server asks about the same token again and again (userinfo, introspection), and
//! checking an ES256 signature is most of what such a request costs (`perf`, see
//! docs/performance.md). A token is a fixed string, so once its signature and issuer are good
//! they stay good: what can change is time, the grant, and the key. The cache therefore keeps
//! only what the signature proved; every use still checks the expiry here, the key (it must
//! still be published), and, in `userinfo::live_access`, the grant.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sha2::{Digest, Sha256};

use super::tokens::AccessClaims;
use crate::domain::RealmId;

/// Enough for every token a busy realm has live at once; when full, expired ones go first,
/// and if none has expired the cache starts over (a miss costs one signature check).
const CAPACITY: usize = 16_384;

#[derive(Clone, Default)]
pub struct VerifiedTokens(Arc<Mutex<HashMap<[u8; 32], Verified>>>);

/// What a good signature proved, and which key gave it.
#[derive(Clone)]
pub struct Verified {
    pub claims: Arc<AccessClaims>,
    pub kid: String,
}

impl VerifiedTokens {
    /// Names a token of a realm without keeping the token itself.
    pub fn key(realm: &RealmId, token: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(realm.as_str().as_bytes());
        h.update([0]);
        h.update(token.as_bytes());
        h.finalize().into()
    }

    /// The token's proof, while it has not expired at `now`.
    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Verified> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some(v) if v.claims.exp > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: [u8; 32], verified: Verified, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, v| v.claims.exp > now);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, verified);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://idp.example/AK00".into(),
            sub: "s".into(),
            aud: "c".into(),
            exp,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "openid".into(),
            auth_time: None,
            acr: None,
            amr: None,
            sid: None,
            gid: None,
        })
    }

    #[test]
    fn a_remembered_token_is_forgotten_when_it_expires() {
        let cache = VerifiedTokens::default();
        let realm: RealmId = "AK00".parse().unwrap();
        let key = VerifiedTokens::key(&realm, "t");
        let kid = "k".to_owned();
        cache.put(
            key,
            Verified {
                claims: claims(100),
                kid,
            },
            0,
        );
        assert!(cache.get(&key, 99).is_some());
        assert!(cache.get(&key, 100).is_none());
        // Gone for good, not only hidden.
        assert!(cache.get(&key, 0).is_none());
    }

    #[test]
    fn the_same_token_of_another_realm_is_another_entry() {
        let a: RealmId = "AK00".parse().unwrap();
        let b: RealmId = "AK01".parse().unwrap();
        assert_ne!(VerifiedTokens::key(&a, "t"), VerifiedTokens::key(&b, "t"));
        let cache = VerifiedTokens::default();
        let kid = "k".to_owned();
        cache.put(
            VerifiedTokens::key(&a, "t"),
            Verified {
                claims: claims(100),
                kid,
            },
            0,
        );
        assert!(cache.get(&VerifiedTokens::key(&b, "t"), 0).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first() {
        let cache = VerifiedTokens::default();
        let realm: RealmId = "AK00".parse().unwrap();
        for i in 0..CAPACITY {
            let exp = if i == 0 { 1_000 } else { 10 };
            cache.put(
                VerifiedTokens::key(&realm, &i.to_string()),
                Verified {
                    claims: claims(exp),
                    kid: "k".into(),
                },
                0,
            );
        }
        cache.put(
            VerifiedTokens::key(&realm, "new"),
            Verified {
                claims: claims(1_000),
                kid: "k".into(),
            },
            50,
        );
        assert!(cache.get(&VerifiedTokens::key(&realm, "0"), 50).is_some());
        assert!(cache.get(&VerifiedTokens::key(&realm, "new"), 50).is_some());
        assert_eq!(cache.0.lock().unwrap().len(), 2);
    }
}
