//! Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS of a realm.

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use openidconnect::{
    core::{
        CoreClaimName, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKeySet,
        CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseMode, CoreResponseType,
        CoreSubjectIdentifierType,
    },
    AuthUrl, EmptyAdditionalProviderMetadata, IssuerUrl, JsonWebKeySetUrl, LanguageTag,
    ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde_json::json;

use super::{claims, error::OAuthError};
use crate::{app::AppState, http::CurrentRealm, realm::SigningAlg};

fn alg(a: SigningAlg) -> CoreJwsSigningAlgorithm {
    match a {
        SigningAlg::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        SigningAlg::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    }
}

pub async fn configuration(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
) -> Result<Response, OAuthError> {
    let issuer = state.config.issuer(&realm.id);
    let url = |path: &str| format!("{issuer}/{path}");
    let bad = |e: url::ParseError| OAuthError::server_error(&e);
    let metadata = CoreProviderMetadata::new(
        IssuerUrl::new(issuer.clone()).map_err(bad)?,
        AuthUrl::new(url("authorize")).map_err(bad)?,
        JsonWebKeySetUrl::new(url("jwks")).map_err(bad)?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        SigningAlg::ALL.iter().map(|a| alg(*a)).collect(),
        EmptyAdditionalProviderMetadata {},
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
    .set_ui_locales_supported(Some(
        realm
            .languages
            .iter()
            .map(|l| LanguageTag::new(l.code().into()))
            .collect(),
    ));
    let mut doc = serde_json::to_value(&metadata).map_err(|e| OAuthError::server_error(&e))?;
    // What openidconnect's core metadata has no field for.
    let extra = json!({
        "end_session_endpoint": url("logout"),
        "revocation_endpoint": url("revoke"),
        "introspection_endpoint": url("introspect"),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "acr_values_supported": crate::domain::acr::SUPPORTED,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "display_values_supported": ["page", "touch"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Ok(cached(Json(doc).into_response(), 300))
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
