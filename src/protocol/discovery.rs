//! Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS of a realm.

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use openidconnect::{
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
        CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
        CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    },
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, EndSessionUrl,
    IntrospectionUrl, IssuerUrl, JsonWebKeySetUrl, LanguageTag, PkceCodeChallengeMethod,
    ProviderMetadata, ResponseTypes, RevocationUrl, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

use super::{claims, error::OAuthError, tokens::jws_alg};
use crate::{
    app::AppState,
    config::Config,
    domain::RealmId,
    http::CurrentRealm,
    realm::{Realm, Realms, SigningAlg},
};

/// The members of our discovery document that OpenID Connect Discovery 1.0 §3 leaves out:
/// RP-initiated and back-channel logout, revocation (RFC 7009), introspection (RFC 7662),
/// PKCE (RFC 7636) and the `iss` response parameter (RFC 9207), as RFC 8414 §2 names them.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ExtraMetadata {
    end_session_endpoint: EndSessionUrl,
    revocation_endpoint: RevocationUrl,
    introspection_endpoint: IntrospectionUrl,
    code_challenge_methods_supported: Vec<PkceCodeChallengeMethod>,
    authorization_response_iss_parameter_supported: bool,
    revocation_endpoint_auth_methods_supported: Vec<CoreClientAuthMethod>,
    introspection_endpoint_auth_methods_supported: Vec<CoreClientAuthMethod>,
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The discovery document of every realm, serialized once at start: issuer, realms and the
/// classes we issue do not change while the server runs, so a request only writes bytes.
#[derive(Clone)]
pub struct Documents(Arc<HashMap<RealmId, Bytes>>);

impl Documents {
    pub fn new(config: &Config, realms: &Realms) -> Result<Documents, DocumentError> {
        let mut docs = HashMap::new();
        for realm in realms.iter() {
            let doc = serde_json::to_vec(&metadata(config, realm)?)
                .map_err(|e| DocumentError(realm.id.clone(), e.to_string()))?;
            docs.insert(realm.id.clone(), Bytes::from(doc));
        }
        Ok(Documents(Arc::new(docs)))
    }

    /// The realm's discovery document as served (for the console, a client of this server).
    pub fn document(&self, realm: &RealmId) -> Option<Bytes> {
        self.0.get(realm).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the discovery document of {0}: {1}")]
pub struct DocumentError(RealmId, String);

fn metadata(config: &Config, realm: &Realm) -> Result<Metadata, DocumentError> {
    let issuer = config.issuer(&realm.id);
    let url = |path: &str| format!("{issuer}/{path}");
    let bad = |e: url::ParseError| DocumentError(realm.id.clone(), e.to_string());
    let client_auth = vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
    ];
    let extra = ExtraMetadata {
        end_session_endpoint: EndSessionUrl::new(url("logout")).map_err(bad)?,
        revocation_endpoint: RevocationUrl::new(url("revoke")).map_err(bad)?,
        introspection_endpoint: IntrospectionUrl::new(url("introspect")).map_err(bad)?,
        code_challenge_methods_supported: vec![PkceCodeChallengeMethod::new("S256".into())],
        authorization_response_iss_parameter_supported: true,
        revocation_endpoint_auth_methods_supported: [
            client_auth.as_slice(),
            &[CoreClientAuthMethod::None],
        ]
        .concat(),
        introspection_endpoint_auth_methods_supported: client_auth,
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
    };
    let metadata = Metadata::new(
        IssuerUrl::new(issuer.clone()).map_err(bad)?,
        AuthUrl::new(url("authorize")).map_err(bad)?,
        JsonWebKeySetUrl::new(url("jwks")).map_err(bad)?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        SigningAlg::ALL.iter().map(|a| jws_alg(*a)).collect(),
        extra,
    )
    .set_token_endpoint(Some(TokenUrl::new(url("token")).map_err(bad)?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(url("userinfo")).map_err(bad)?))
    .set_scopes_supported(Some(
        [
            "openid",
            "profile",
            "email",
            "phone",
            "address",
            "ahv",
            "offline_access",
        ]
        .map(|s| Scope::new(s.into()))
        .to_vec(),
    ))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::ClientCredentials,
    ]))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::None,
    ]))
    .set_claims_supported(Some(
        claims::SUPPORTED
            .iter()
            .map(|c| CoreClaimName::new((*c).into()))
            .collect(),
    ))
    .set_claims_parameter_supported(Some(true))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false))
    .set_acr_values_supported(Some(
        crate::domain::acr::SUPPORTED
            .iter()
            .map(|a| AuthenticationContextClass::new((*a).into()))
            .collect(),
    ))
    .set_display_values_supported(Some(vec![CoreAuthDisplay::Page, CoreAuthDisplay::Touch]))
    .set_ui_locales_supported(Some(
        realm
            .languages
            .iter()
            .map(|l| LanguageTag::new(l.code().into()))
            .collect(),
    ));
    Ok(metadata)
}

pub async fn configuration(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
) -> Result<Response, OAuthError> {
    // Every loaded realm has its document; a realm without one is a bug, not the caller's.
    let doc = state.discovery.0.get(&realm.id).cloned().ok_or_else(|| {
        OAuthError::server_error(&DocumentError(realm.id.clone(), "not prepared".into()))
    })?;
    Ok(json_bytes(doc, 300))
}

pub async fn jwks(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
) -> Result<Response, OAuthError> {
    Ok(json_bytes(state.keys.jwks_document(&realm.id).await?, 60))
}

/// A prepared JSON document, cacheable by anyone for `seconds`.
fn json_bytes(doc: Bytes, seconds: u32) -> Response {
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}
