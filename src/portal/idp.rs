//! The IdP as the portal sees it: its discovery document and keys, fetched over HTTP and
//! cached, and the portal's client registration.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};
use secrecy::SecretString;
use tokio::sync::RwLock;
use url::Url;

use openidconnect::{core::CoreProviderMetadata, IssuerUrl};

use crate::{clock::Clock, config::PortalConfig};

/// How long discovery and keys are trusted before they are fetched again; an unknown `kid`
/// refetches the keys at once.
const CACHE: Duration = Duration::from_secs(300);
/// A forced refetch waits this long after the last fetch, so that tokens with made-up `kid`s
/// cannot make the portal hammer the IdP.
const MIN_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("the IdP cannot be reached or answered badly: {0}")]
    Unavailable(String),
    #[error("the token names a key the IdP does not publish")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    WrongAlgorithm,
}

/// A key the IdP publishes, found for a token's header by [`Idp::verifying_key`].
pub struct VerifyingKey {
    pub jwk: Jwk,
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

#[derive(Clone)]
pub struct Idp {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub http: reqwest::Client,
    clock: Clock,
    cache: Arc<RwLock<Cache>>,
}

#[derive(Default)]
struct Cache {
    metadata: Option<(serde_json::Value, i64)>,
    jwks: Option<(serde_json::Value, i64)>,
    provider: Option<(CoreProviderMetadata, i64)>,
}

impl Idp {
    pub fn new(config: &PortalConfig, client_secret: SecretString, clock: Clock) -> Idp {
        // Every key the portal verifies with comes from here (`verifying_key`).
        crate::keys::install_jwt_crypto();
        let http = reqwest::Client::builder()
            // SSRF and mix-up defence: the IdP's answers are never followed elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Idp {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret,
            http,
            clock,
            cache: Arc::default(),
        }
    }

    async fn fetch(&self, url: &str) -> Result<serde_json::Value, IdpError> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| IdpError::Unavailable(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(IdpError::Unavailable(format!("{url}: {}", res.status())));
        }
        res.json()
            .await
            .map_err(|e| IdpError::Unavailable(e.without_url().to_string()))
    }

    /// The discovery document (OpenID Connect Discovery 1.0), cached.
    pub async fn metadata(&self) -> Result<serde_json::Value, IdpError> {
        let now = self.clock.unix();
        if let Some((doc, at)) = &self.cache.read().await.metadata {
            if now - at < CACHE.as_secs() as i64 {
                return Ok(doc.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.as_str().trim_end_matches('/')
        );
        let doc = self.fetch(&url).await?;
        if doc["issuer"].as_str() != Some(self.issuer.as_str().trim_end_matches('/')) {
            return Err(IdpError::Unavailable(
                "discovery names another issuer".into(),
            ));
        }
        self.cache.write().await.metadata = Some((doc.clone(), now));
        Ok(doc)
    }

    /// The IdP's public keys (JWKS), cached; `refresh` fetches them again (a new `kid`) unless
    /// they were fetched in the last `MIN_REFRESH`.
    async fn jwks(&self, refresh: bool) -> Result<serde_json::Value, IdpError> {
        let now = self.clock.unix();
        if let Some((keys, at)) = &self.cache.read().await.jwks {
            let fresh = if refresh { MIN_REFRESH } else { CACHE };
            if now - at < fresh.as_secs() as i64 {
                return Ok(keys.clone());
            }
        }
        let meta = self.metadata().await?;
        let uri = meta["jwks_uri"]
            .as_str()
            .ok_or_else(|| IdpError::Unavailable("discovery has no jwks_uri".into()))?
            .to_owned();
        let keys = self.fetch(&uri).await?;
        self.cache.write().await.jwks = Some((keys.clone(), now));
        Ok(keys)
    }

    /// Discovery and keys as the relying-party library reads them (for the login), cached.
    pub async fn provider(&self) -> Result<CoreProviderMetadata, IdpError> {
        let now = self.clock.unix();
        if let Some((meta, at)) = &self.cache.read().await.provider {
            if now - at < CACHE.as_secs() as i64 {
                return Ok(meta.clone());
            }
        }
        let issuer = IssuerUrl::new(self.issuer.as_str().trim_end_matches('/').to_owned())
            .map_err(|e| IdpError::Unavailable(e.to_string()))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| IdpError::Unavailable(e.to_string()))?;
        self.cache.write().await.provider = Some((meta.clone(), now));
        Ok(meta)
    }

    /// The key that verifies a JWT of the IdP whose header names `kid` and `alg`: the one way
    /// the portal finds a key, for ID tokens, Logout Tokens and access tokens alike. An
    /// unknown `kid` fetches the keys again (a rotation at the IdP), at most every
    /// `MIN_REFRESH`; only ES256 and RS256 signature keys are used, and the key decides the
    /// algorithm, never the token alone (RFC 8725 §3.1).
    pub async fn verifying_key(&self, kid: &str, alg: Algorithm) -> Result<VerifyingKey, IdpError> {
        for refresh in [false, true] {
            let set = self.jwks(refresh).await?;
            let jwk = set["keys"].as_array().and_then(|keys| {
                keys.iter()
                    .filter(|k| k["kid"].as_str() == Some(kid))
                    .find_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            });
            if let Some(jwk) = jwk {
                if key_algorithm(&jwk) != Some(alg) {
                    return Err(IdpError::WrongAlgorithm);
                }
                let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| IdpError::UnknownKey)?;
                return Ok(VerifyingKey { jwk, alg, decoding });
            }
        }
        Err(IdpError::UnknownKey)
    }
}

/// The algorithm a published key is for: its `alg`, else what its type implies. Only ES256
/// and RS256, the IdP's signing algorithms, are accepted.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(Algorithm::ES256),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(Algorithm::RS256),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_es256_and_rs256_signature_keys_are_used() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        let with = |base: &serde_json::Value, k: &str, v: &str| {
            let mut j = base.clone();
            j[k] = v.into();
            jwk(j)
        };
        assert_eq!(key_algorithm(&jwk(ec.clone())), Some(Algorithm::ES256));
        assert_eq!(
            key_algorithm(&with(&ec, "alg", "ES256")),
            Some(Algorithm::ES256)
        );
        assert_eq!(
            key_algorithm(&with(&ec, "use", "sig")),
            Some(Algorithm::ES256)
        );
        assert_eq!(key_algorithm(&with(&ec, "use", "enc")), None);
        assert_eq!(key_algorithm(&with(&ec, "alg", "RS256")), None);
        assert_eq!(key_algorithm(&jwk(rsa.clone())), Some(Algorithm::RS256));
        assert_eq!(
            key_algorithm(&with(&rsa, "alg", "RS256")),
            Some(Algorithm::RS256)
        );
        assert_eq!(key_algorithm(&with(&rsa, "alg", "PS256")), None);
        assert_eq!(key_algorithm(&with(&rsa, "alg", "RS512")), None);
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert_eq!(key_algorithm(&jwk(p384)), None);
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(key_algorithm(&jwk(oct)), None);
    }
}
