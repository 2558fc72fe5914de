//! Signed tokens: ID tokens (OIDC Core §2), JWT access tokens (RFC 9068), Logout Tokens
//! (Back-Channel Logout 1.0 §2.4), and checking what comes back (access tokens at userinfo,
//! `id_token_hint`).

use std::sync::Arc;

use chrono::DateTime;
use jsonwebtoken::{Header, Validation};
use openidconnect::{
    core::{CoreGenderClaim, CoreJsonWebKey, CoreJwsSigningAlgorithm},
    AccessToken, AccessTokenHash, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, IdTokenClaims, IssuerUrl, Nonce, StandardClaims,
    SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    error::OAuthError,
    verified::{Verified, VerifiedTokens},
};
use crate::{
    clock::Clock,
    config::Config,
    keys::{KeyRing, SigningKey},
    realm::{Client, Lifetimes, Realm, SigningAlg},
};

/// Signs and checks the tokens of every realm; built once, in `AppState::open`.
#[derive(Clone)]
pub struct Tokens {
    keys: KeyRing,
    clock: Clock,
    /// For the issuer of each realm.
    config: Arc<Config>,
    verified: VerifiedTokens,
}

/// The `sid` claim of OIDC Front-/Back-Channel Logout, which `openidconnect` leaves to us.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionClaim {
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}
impl AdditionalClaims for SessionClaim {}

/// What an access token says, as we sign it and read it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant this token belongs to; revoking the grant ends the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

impl Tokens {
    pub fn new(keys: KeyRing, clock: Clock, config: Arc<Config>) -> Self {
        Self {
            keys,
            clock,
            config,
            verified: VerifiedTokens::default(),
        }
    }

    /// An access token issued now by `realm` to `client_id` for `sub`; the person fields stay
    /// empty (client credentials) until a grant fills them in.
    pub fn access_claims(
        &self,
        realm: &Realm,
        sub: &str,
        client_id: &str,
        scope: String,
    ) -> AccessClaims {
        let now = self.clock.unix();
        AccessClaims {
            iss: self.config.issuer(&realm.id),
            sub: sub.to_owned(),
            aud: self.config.issuer(&realm.id),
            exp: now + realm.lifetimes.access_token.as_secs() as i64,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.to_owned(),
            scope,
            auth_time: None,
            acr: None,
            amr: None,
            sid: None,
            gid: None,
        }
    }

    pub async fn sign_access_token(
        &self,
        realm: &Realm,
        claims: &AccessClaims,
    ) -> Result<String, OAuthError> {
        let key = self.keys.signer(&realm.id, realm.access_token_alg).await?;
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| OAuthError::server_error(&e))
    }

    pub async fn sign_id_token(
        &self,
        realm: &Realm,
        input: IdTokenInput<'_>,
    ) -> Result<String, OAuthError> {
        let client = realm
            .clients
            .get(input.client_id)
            .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        let key = self.keys.signer(&realm.id, client.id_token_alg).await?;
        let now = self.clock.unix();
        let issuer = IssuerUrl::new(self.config.issuer(&realm.id))
            .map_err(|e| OAuthError::server_error(&e))?;
        let claims = IdTokenClaims::<SessionClaim, CoreGenderClaim>::new(
            issuer,
            vec![Audience::new(input.client_id.to_owned())],
            ts(now + realm.lifetimes.id_token.as_secs() as i64),
            ts(now),
            StandardClaims::new(SubjectIdentifier::new(input.sub.to_owned())),
            SessionClaim {
                sid: Some(input.sid.to_owned()),
            },
        )
        .set_nonce(input.nonce.map(|n| Nonce::new(n.to_owned())))
        .set_auth_time(Some(ts(input.auth_time)))
        .set_auth_context_ref(Some(AuthenticationContextClass::new(input.acr.to_owned())))
        .set_auth_method_refs(Some(
            input
                .amr
                .iter()
                .map(|m| AuthenticationMethodReference::new(m.clone()))
                .collect(),
        ))
        .set_access_token_hash(Some(at_hash(input.access_token, &key)?));
        let mut json = serde_json::to_value(&claims).map_err(|e| OAuthError::server_error(&e))?;
        if let Some(obj) = json.as_object_mut() {
            for (k, v) in input.extra {
                obj.entry(k).or_insert(v);
            }
        }
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &json, &key.encoding)
            .map_err(|e| OAuthError::server_error(&e))
    }

    /// A Logout Token telling `client` that session `sid` of `sub` has ended, signed with the
    /// algorithm of the client's ID tokens. `typ: logout+jwt` (§2.4) keeps it from passing for
    /// an ID token, and `verify_jwt` refuses it as an `id_token_hint`.
    pub async fn sign_logout_token(
        &self,
        realm: &Realm,
        client: &Client,
        sub: &str,
        sid: &str,
    ) -> Result<String, OAuthError> {
        let key = self.keys.signer(&realm.id, client.id_token_alg).await?;
        let now = self.clock.unix();
        let claims = LogoutClaims {
            iss: self.config.issuer(&realm.id),
            aud: &client.id,
            iat: now,
            exp: now + Lifetimes::LOGOUT_TOKEN.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            sub,
            sid,
            events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        };
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid.clone());
        header.typ = Some("logout+jwt".into());
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| OAuthError::server_error(&e))
    }

    /// Checks a JWT of this realm: known `kid`, its algorithm, signature and issuer.
    /// Expiry is the caller's business, against the injected clock.
    async fn verify_jwt(&self, realm: &Realm, token: &str, typ: &str) -> Option<Value> {
        self.verify_jwt_by(realm, token, typ).await.map(|(v, _)| v)
    }

    /// The claims of a token signed by a published key of the realm, and that key's `kid`.
    async fn verify_jwt_by(
        &self,
        realm: &Realm,
        token: &str,
        typ: &str,
    ) -> Option<(Value, String)> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return None;
        }
        let kid = header.kid?;
        let key = self.keys.verifier(&realm.id, &kid).await.ok()??;
        if header.alg != key.algorithm() {
            return None;
        }
        let mut validation = Validation::new(key.algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[self.config.issuer(&realm.id)]);
        jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .ok()
            .map(|d| (d.claims, kid))
    }

    /// An access token of this realm that has not expired, or `invalid_token`. A token seen
    /// before is not checked again while the key that signed it is still published
    /// (`verified`); the caller checks its grant either way.
    pub async fn verify_access_token(
        &self,
        realm: &Realm,
        token: &str,
    ) -> Result<AccessClaims, OAuthError> {
        let invalid = || OAuthError::invalid_token("the access token is not valid");
        let now = self.clock.unix();
        let seen = VerifiedTokens::key(&realm.id, token);
        if let Some(v) = self.verified.get(&seen, now) {
            if let Ok(Some(_)) = self.keys.verifier(&realm.id, &v.kid).await {
                return Ok((*v.claims).clone());
            }
        }
        let (value, kid) = self
            .verify_jwt_by(realm, token, "at+jwt")
            .await
            .ok_or_else(invalid)?;
        let claims: AccessClaims = serde_json::from_value(value).map_err(|_| invalid())?;
        if claims.exp <= now {
            return Err(OAuthError::invalid_token("the access token has expired"));
        }
        let claims = Arc::new(claims);
        self.verified.put(
            seen,
            Verified {
                claims: claims.clone(),
                kid,
            },
            now,
        );
        Ok((*claims).clone())
    }

    pub async fn read_id_token_hint(&self, realm: &Realm, token: &str) -> Option<IdTokenHint> {
        let v = self.verify_jwt(realm, token, "JWT").await?;
        let aud = match &v["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => return None,
        };
        Some(IdTokenHint {
            sub: v["sub"].as_str()?.to_owned(),
            aud,
            sid: v["sid"].as_str().map(str::to_owned),
        })
    }
}

/// The person side of an ID token.
pub struct IdTokenInput<'a> {
    pub client_id: &'a str,
    pub sub: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a [String],
    pub sid: &'a str,
    pub access_token: &'a str,
    pub extra: Map<String, Value>,
}

/// The JWS algorithm of a signing algorithm, as openidconnect names it.
pub(super) fn jws_alg(alg: SigningAlg) -> CoreJwsSigningAlgorithm {
    match alg {
        SigningAlg::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        SigningAlg::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    }
}

/// OIDC Core §3.1.3.6, as openidconnect computes it for the algorithm of the signing key.
fn at_hash(access_token: &str, key: &SigningKey) -> Result<AccessTokenHash, OAuthError> {
    at_hash_with(access_token, key.alg, &key.jwk)
}

fn at_hash_with(
    access_token: &str,
    alg: SigningAlg,
    public_jwk: &Value,
) -> Result<AccessTokenHash, OAuthError> {
    let public: CoreJsonWebKey =
        serde_json::from_value(public_jwk.clone()).map_err(|e| OAuthError::server_error(&e))?;
    AccessTokenHash::from_token(
        &AccessToken::new(access_token.to_owned()),
        &jws_alg(alg),
        &public,
    )
    .map_err(|e| OAuthError::server_error(&e))
}

fn ts(secs: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The event that makes a JWT a Logout Token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a Logout Token says (Back-Channel Logout 1.0 §2.4). It has no `nonce` field, so it
/// can never carry one (§2.4: "MUST NOT contain a nonce Claim").
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: Value,
}

/// The subject, audience and session of an ID token we issued; expired ones count
/// (OIDC Core §3.1.2.1: the hint may have expired).
pub struct IdTokenHint {
    pub sub: String,
    pub aud: Vec<String>,
    pub sid: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::realm::SigningAlg;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3/A.4 token and hash (RS256); the hash needs only the key's
        // type, here the RSA public key of the RFC 7638 §3.1 example.
        let public = serde_json::json!({"kty": "RSA", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        let hash = super::at_hash_with(
            "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
            SigningAlg::RS256,
            &public,
        )
        .unwrap();
        assert_eq!(hash.as_str(), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
