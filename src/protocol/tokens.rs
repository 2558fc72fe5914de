//! Signed tokens: ID tokens (OIDC Core §2), JWT access tokens (RFC 9068), Logout Tokens
//! (Back-Channel Logout 1.0 §2.4), and checking what comes back (access tokens at userinfo,
//! `id_token_hint`).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use chrono::DateTime;
use jsonwebtoken::{Header, Validation};
use openidconnect::{
    core::CoreGenderClaim, AccessTokenHash, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, IdTokenClaims, IssuerUrl, Nonce, StandardClaims,
    SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::OAuthError;
use crate::{
    app::AppState,
    realm::{Client, Lifetimes, Realm},
};

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
    /// A token issued now by `realm` to `client_id` for `sub`; the person fields stay empty
    /// (client credentials) until a grant fills them in.
    pub fn new(state: &AppState, realm: &Realm, sub: &str, client_id: &str, scope: String) -> Self {
        let now = state.clock.unix();
        Self {
            iss: state.config.issuer(&realm.id),
            sub: sub.to_owned(),
            aud: state.config.issuer(&realm.id),
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

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
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

/// OIDC Core §3.1.3.6: left half of the SHA-256 of the access token (ES256 and RS256 alike).
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    B64.encode(&digest[..16])
}

fn ts(secs: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub async fn sign_access_token(
    state: &AppState,
    realm: &Realm,
    claims: &AccessClaims,
) -> Result<String, OAuthError> {
    let key = state.keys.signer(&realm.id, realm.access_token_alg).await?;
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| OAuthError::server_error(&e))
}

pub async fn sign_id_token(
    state: &AppState,
    realm: &Realm,
    input: IdTokenInput<'_>,
) -> Result<String, OAuthError> {
    let client = realm
        .clients
        .get(input.client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    let key = state.keys.signer(&realm.id, client.id_token_alg).await?;
    let now = state.clock.unix();
    let issuer =
        IssuerUrl::new(state.config.issuer(&realm.id)).map_err(|e| OAuthError::server_error(&e))?;
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
    .set_access_token_hash(Some(AccessTokenHash::new(at_hash(input.access_token))));
    let mut json = serde_json::to_value(&claims).map_err(|e| OAuthError::server_error(&e))?;
    if let Some(obj) = json.as_object_mut() {
        for (k, v) in input.extra {
            obj.entry(k).or_insert(v);
        }
    }
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid.clone());
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, &json, &key.encoding).map_err(|e| OAuthError::server_error(&e))
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

/// A Logout Token telling `client` that session `sid` of `sub` has ended, signed with the
/// algorithm of the client's ID tokens. `typ: logout+jwt` (§2.4) keeps it from passing for
/// an ID token, and `verify_jwt` refuses it as an `id_token_hint`.
pub async fn sign_logout_token(
    state: &AppState,
    realm: &Realm,
    client: &Client,
    sub: &str,
    sid: &str,
) -> Result<String, OAuthError> {
    let key = state.keys.signer(&realm.id, client.id_token_alg).await?;
    let now = state.clock.unix();
    let claims = LogoutClaims {
        iss: state.config.issuer(&realm.id),
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
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| OAuthError::server_error(&e))
}

/// Checks a JWT of this realm: known `kid`, its algorithm, signature and issuer.
/// Expiry is the caller's business, against the injected clock.
async fn verify_jwt(state: &AppState, realm: &Realm, token: &str, typ: &str) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(typ))
    {
        return None;
    }
    let key = state
        .keys
        .verifier(&realm.id, header.kid.as_deref()?)
        .await
        .ok()??;
    if header.alg != key.algorithm() {
        return None;
    }
    let mut validation = Validation::new(key.algorithm());
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[state.config.issuer(&realm.id)]);
    jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

/// An access token of this realm that has not expired, or `invalid_token`.
pub async fn verify_access_token(
    state: &AppState,
    realm: &Realm,
    token: &str,
) -> Result<AccessClaims, OAuthError> {
    let invalid = || OAuthError::invalid_token("the access token is not valid");
    let value = verify_jwt(state, realm, token, "at+jwt")
        .await
        .ok_or_else(invalid)?;
    let claims: AccessClaims = serde_json::from_value(value).map_err(|_| invalid())?;
    if claims.exp <= state.clock.unix() {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    Ok(claims)
}

/// The subject, audience and session of an ID token we issued; expired ones count
/// (OIDC Core §3.1.2.1: the hint may have expired).
pub struct IdTokenHint {
    pub sub: String,
    pub aud: Vec<String>,
    pub sid: Option<String>,
}

pub async fn read_id_token_hint(
    state: &AppState,
    realm: &Realm,
    token: &str,
) -> Option<IdTokenHint> {
    let v = verify_jwt(state, realm, token, "JWT").await?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3/A.4 token and hash.
        assert_eq!(
            super::at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
