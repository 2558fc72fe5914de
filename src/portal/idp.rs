//! The IdP as the portal sees it: its discovery document and keys, fetched over HTTP and
//! cached, and the portal's client registration.

use std::{sync::Arc, time::Duration};

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
    pub async fn jwks(&self, refresh: bool) -> Result<serde_json::Value, IdpError> {
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

    /// The IdP's public key named `kid`, as `jsonwebtoken` uses it; an unknown `kid` fetches
    /// the keys again once (the IdP rotated).
    pub async fn key_for(
        &self,
        kid: &str,
    ) -> Result<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm), IdpError> {
        for refresh in [false, true] {
            let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(self.jwks(refresh).await?)
                .map_err(|e| IdpError::Unavailable(format!("JWKS: {e}")))?;
            if let Some(jwk) = jwks.find(kid) {
                let alg = match jwk.common.key_algorithm {
                    Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
                    Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
                    _ => return Err(IdpError::UnknownKey),
                };
                let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
                    .map_err(|e| IdpError::Unavailable(format!("JWK: {e}")))?;
                return Ok((key, alg));
            }
        }
        Err(IdpError::UnknownKey)
    }
}
