//! What the two relying parties inside this crate share, the portal and the support console:
//! the client built from a provider's metadata, the ID token read with its `sid` claim, and
//! the code exchange that returns it. Each keeps its own pending logins, key source and
//! checks of what the ID token must say.

use openidconnect::{
    core::{
        CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
        CoreTokenResponse,
    },
    AdditionalClaims, AsyncHttpClient, AuthorizationCode, IdToken, PkceCodeVerifier, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// The `sid` claim of Front-/Back-Channel Logout, which `openidconnect` leaves to us.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaim {
    pub sid: Option<String>,
}
impl AdditionalClaims for SessionClaim {}

/// An ID token with its `sid`.
pub type SidIdToken = IdToken<
    SessionClaim,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// A client made from provider metadata, with a redirect URI.
pub type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Why a code exchange gave no ID token; the cause is for the log, never for the page.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the provider has no token endpoint")]
    NoEndpoint,
    #[error("code exchange failed: {0}")]
    Refused(String),
    #[error("the token response has no readable ID token")]
    NoIdToken,
}

/// Exchanges `code` with its PKCE verifier; the tokens, and the ID token read again with its
/// `sid` (not yet verified: the caller checks it against the keys it trusts).
pub async fn exchange<'c, H>(
    client: &'c Client,
    http: &'c H,
    code: String,
    verifier: String,
) -> Result<(CoreTokenResponse, SidIdToken), ExchangeError>
where
    H: AsyncHttpClient<'c>,
{
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| ExchangeError::NoEndpoint)?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(http)
        .await
        .map_err(|e| ExchangeError::Refused(e.to_string()))?;
    let id_token: SidIdToken = tokens
        .id_token()
        .ok_or(ExchangeError::NoIdToken)?
        .to_string()
        .parse()
        .map_err(|_| ExchangeError::NoIdToken)?;
    Ok((tokens, id_token))
}
