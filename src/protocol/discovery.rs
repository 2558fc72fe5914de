//! Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS of a realm.

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use openidconnect::{
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
        CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
        CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
        CoreSubjectIdentifierType,
    },
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, EndSessionUrl,
    IntrospectionUrl, IssuerUrl, JsonWebKeySetUrl, LanguageTag, PkceCodeChallengeMethod,
    ProviderMetadata, ResponseTypes, RevocationUrl, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{claims, error::OAuthError, tokens::jws_alg};
use crate::{app::AppState, http::CurrentRealm, realm::SigningAlg};

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

pub async fn configuration(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
) -> Result<Response, OAuthError> {
    let issuer = state.config.issuer(&realm.id);
    let url = |path: &str| format!("{issuer}/{path}");
    let bad = |e: url::ParseError| OAuthError::server_error(&e);
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
    Ok(cached(Json(metadata).into_response(), 300))
}

pub async fn jwks(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
) -> Result<Response, OAuthError> {
    let keys = state.keys.public_jwks(&realm.id).await?;
    // Parsed through openidconnect's JWK set type, so that what we publish is what a
    // relying party library reads.
    let set: CoreJsonWebKeySet = serde_json::from_value(json!({ "keys": keys }))
        .map_err(|e| OAuthError::server_error(&e))?;
    Ok(cached(Json(set).into_response(), 60))
}

fn cached(mut res: Response, seconds: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}
