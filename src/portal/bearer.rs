//! Access tokens of caisse systems, checked against the IdP's keys.
//!
//! The portal is a resource server (RFC 6750, RFC 9068): it accepts a JWT access token that
//! the IdP of its realm signed, learnt only through the published JWKS, with `typ` `at+jwt`,
//! the realm's issuer as `iss` and in `aud`, an `exp` still ahead of the injected clock, and
//! the scope the route needs, from a client listed in `portal.delivery_clients`. A refusal
//! never repeats the token.

use axum::http::{header, HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::{idp::IdpError, PortalState};
use crate::http::error::{log_internal, HttpError};

/// Deliver and delete documents.
pub const WRITE: &str = "documents:write";
/// Read the status of delivered documents.
pub const READ: &str = "documents:read";

/// Clock skew tolerated between IdP and portal, in seconds.
const LEEWAY: i64 = 30;

/// Who called, as the token says.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The caisse system (`client_id` of a client-credentials token).
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// The claims the portal reads; `iss`, `aud` and the signature are checked by jsonwebtoken.
#[derive(Deserialize)]
struct Claims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    client_id: String,
    #[serde(default)]
    scope: String,
}

fn invalid(detail: &'static str) -> HttpError {
    HttpError::BearerProblem {
        status: StatusCode::UNAUTHORIZED,
        error: Some("invalid_token"),
        scope: None,
        detail,
    }
}

/// The bearer token of the `Authorization` header (RFC 6750 §2.1), if there is exactly one.
fn token(headers: &HeaderMap) -> Result<&str, HttpError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(HttpError::BearerProblem {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            scope: None,
            detail: "send an access token as Authorization: Bearer <token>",
        });
    };
    let value = value
        .to_str()
        .map_err(|_| invalid("the Authorization header is not readable"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(HttpError::BearerProblem {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            scope: None,
            detail: "send an access token as Authorization: Bearer <token>",
        }),
    }
}

/// Checks the request's access token and that it grants one of `scopes`.
pub async fn authorize(
    state: &PortalState,
    headers: &HeaderMap,
    scopes: &'static [&'static str],
) -> Result<Caller, HttpError> {
    let token = token(headers)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a signed JWT"))?;
    // RFC 9068 §4: `at+jwt`, or its full media type.
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(invalid("not an access token (typ must be at+jwt)"));
    }
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
        return Err(invalid("the signing algorithm is not accepted"));
    }
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| invalid("the token names no key"))?;
    let key = match state.idp.verifying_key(kid, header.alg).await {
        Ok(key) => key.decoding,
        Err(IdpError::UnknownKey) => {
            return Err(invalid(
                "the token is not signed by a key of the identity provider",
            ))
        }
        Err(IdpError::WrongAlgorithm) => {
            return Err(invalid("the token's algorithm does not match its key"))
        }
        Err(e @ IdpError::Unavailable(_)) => {
            log_internal(&e);
            return Err(HttpError::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unavailable",
                "the access token cannot be checked now; try again later",
            ));
        }
    };
    let issuer = state.config.portal.issuer.as_str().trim_end_matches('/');
    let mut validation = Validation::new(header.alg);
    // Expiry against the injected clock, below; jsonwebtoken would read the system time.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud", "exp"]);
    validation.set_issuer(&[issuer]);
    // RFC 9068 §2.2: the IdP names its realm's issuer as the audience of these tokens.
    validation.set_audience(&[issuer]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|_| invalid("the access token is not valid"))?
        .claims;
    let now = state.clock.unix();
    if claims.exp + LEEWAY <= now {
        return Err(invalid("the access token has expired"));
    }
    if claims.nbf.is_some_and(|nbf| nbf - LEEWAY > now) {
        return Err(invalid("the access token is not valid yet"));
    }
    // Issue 9, defect 3: a valid token of the realm is not enough; only the caisse systems
    // the operator listed may hand in (or read, or delete) documents.
    if !state.delivery_clients.contains(&claims.client_id) {
        tracing::warn!(client_id = %claims.client_id, "delivery API refused to an unlisted client");
        return Err(HttpError::problem(
            StatusCode::FORBIDDEN,
            "Client not allowed",
            "this portal accepts no documents from this client (portal.delivery_clients)",
        ));
    }
    let granted: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| granted.iter().any(|g| g == s)) {
        return Err(HttpError::BearerProblem {
            status: StatusCode::FORBIDDEN,
            error: Some("insufficient_scope"),
            scope: scopes.first().copied(),
            detail: "the access token does not grant the scope this request needs",
        });
    }
    Ok(Caller {
        client_id: claims.client_id,
        scopes: granted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_one_bearer_header() {
        let mut h = HeaderMap::new();
        assert!(token(&h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer abc.def.ghi".parse().unwrap());
        assert_eq!(token(&h).unwrap(), "abc.def.ghi");
        h.insert(header::AUTHORIZATION, "bearer  abc".parse().unwrap());
        assert_eq!(token(&h).unwrap(), "abc");
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc"] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert!(token(&h).is_err(), "{bad}");
        }
        h.insert(header::AUTHORIZATION, "Bearer a".parse().unwrap());
        h.append(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert!(token(&h).is_err(), "two tokens");
    }
}
