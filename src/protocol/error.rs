//! OAuth 2.0 errors (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3), as the protocol layer raises them.

use std::borrow::Cow;

use axum::http::StatusCode;

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: Cow<'static, str>,
    pub status: StatusCode,
    /// For `invalid_client` after HTTP Basic: answer with a Basic challenge (RFC 6749 §5.2).
    pub basic_challenge: bool,
}

macro_rules! oauth_errors {
    ($($fn_name:ident => ($code:literal, $status:expr)),* $(,)?) => {
        impl OAuthError {
            $(
                pub fn $fn_name(description: impl Into<Cow<'static, str>>) -> Self {
                    Self { code: $code, description: description.into(), status: $status, basic_challenge: false }
                }
            )*
        }
    };
}

oauth_errors! {
    invalid_request => ("invalid_request", StatusCode::BAD_REQUEST),
    invalid_client => ("invalid_client", StatusCode::UNAUTHORIZED),
    invalid_grant => ("invalid_grant", StatusCode::BAD_REQUEST),
    unauthorized_client => ("unauthorized_client", StatusCode::BAD_REQUEST),
    unsupported_grant_type => ("unsupported_grant_type", StatusCode::BAD_REQUEST),
    unsupported_response_type => ("unsupported_response_type", StatusCode::BAD_REQUEST),
    invalid_scope => ("invalid_scope", StatusCode::BAD_REQUEST),
    invalid_token => ("invalid_token", StatusCode::UNAUTHORIZED),
    insufficient_scope => ("insufficient_scope", StatusCode::FORBIDDEN),
    login_required => ("login_required", StatusCode::BAD_REQUEST),
    request_not_supported => ("request_not_supported", StatusCode::BAD_REQUEST),
    request_uri_not_supported => ("request_uri_not_supported", StatusCode::BAD_REQUEST),
    access_denied => ("access_denied", StatusCode::BAD_REQUEST),
    temporarily_unavailable => ("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE),
    // OpenID Connect Core Unmet Authentication Requirements 1.0 §2.
    unmet_authentication_requirements => ("unmet_authentication_requirements", StatusCode::BAD_REQUEST),
}

impl OAuthError {
    /// An internal failure: logged here, once, with its chain; the client learns nothing of it.
    /// While a store cannot be reached: `temporarily_unavailable`, 503.
    pub fn server_error(source: &(dyn std::error::Error + 'static)) -> Self {
        crate::http::error::log_internal(source);
        if crate::storage::unavailable(source) {
            return Self {
                code: "temporarily_unavailable",
                description: "the server cannot reach a store it needs; try again in a minute"
                    .into(),
                status: StatusCode::SERVICE_UNAVAILABLE,
                basic_challenge: false,
            };
        }
        Self {
            code: "server_error",
            description: "the server could not handle the request".into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            basic_challenge: false,
        }
    }

    /// RFC 6750 §3.1: a request to a protected resource without any token is 401, and its
    /// challenge carries no error code.
    pub fn no_token() -> Self {
        Self {
            code: "invalid_request",
            description: "no access token".into(),
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: false,
        }
    }

    pub fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }
}

impl From<crate::storage::StoreError> for OAuthError {
    fn from(e: crate::storage::StoreError) -> Self {
        OAuthError::server_error(&e)
    }
}

impl From<crate::keys::RingError> for OAuthError {
    fn from(e: crate::keys::RingError) -> Self {
        OAuthError::server_error(&e)
    }
}
