//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, or none for public clients.

use axum::http::{header, HeaderMap};
use base64::{engine::general_purpose::STANDARD, Engine};
use percent_encoding::percent_decode_str;

use super::error::OAuthError;
use crate::{
    http::params::Params,
    realm::{Client, Realm},
};

/// RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge();
    let value = value.to_str().map_err(|_| bad())?;
    let Some(b64) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded =
        String::from_utf8(STANDARD.decode(b64.trim()).map_err(|_| bad())?).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unform = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
    };
    Ok(Some((
        unform(id).map_err(|_| bad())?,
        unform(secret).map_err(|_| bad())?,
    )))
}

/// The authenticated client. A request must use exactly one method (RFC 6749 §2.3).
pub fn authenticate<'r>(
    realm: &'r Realm,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'r Client, OAuthError> {
    let from_header = basic(headers)?;
    let post_secret = params.get("client_secret");
    let (id, secret, via_basic) = match (from_header, post_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(secret), true)
        }
        (None, secret) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
            (id.to_owned(), secret.map(str::to_owned), false)
        }
    };
    realm
        .clients
        .authenticate(&id, secret.as_deref())
        .ok_or_else(|| {
            let e = OAuthError::invalid_client("client authentication failed");
            if via_basic {
                e.with_basic_challenge()
            } else {
                e
            }
        })
}
