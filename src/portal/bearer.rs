//! Access tokens of caisse systems, checked against the IdP's keys.
//!
//! The portal is a resource server (RFC 6750, RFC 9068): it accepts a JWT access token that
//! the IdP of its realm signed, learnt only through the published JWKS, with `typ` `at+jwt`,
//! the realm's issuer as `iss` and in `aud`, an `exp` still ahead of the injected clock, and
//! the scope the route needs, from a client listed in `portal.delivery_clients`. A refusal
//! never repeats the token.

use axum::http::{header, HeaderMap, StatusCode};
use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey, Validation,
};
use serde::Deserialize;

use super::PortalState;
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

/// The algorithm a published key is for: its `alg`, else what its type implies. Only ES256
/// and RS256, the IdP's access-token algorithms, are accepted.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(by_type),
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => Some(Algorithm::ES256),
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => Some(Algorithm::RS256),
        Some(_) => None,
    }
}

/// The published key named `kid`; the keys are fetched again once when it is unknown (a
/// rotation at the IdP).
async fn published_key(state: &PortalState, kid: &str) -> Result<Option<Jwk>, HttpError> {
    let find = |set: &serde_json::Value| {
        set["keys"].as_array().and_then(|keys| {
            keys.iter()
                .filter(|k| k["kid"].as_str() == Some(kid))
                .find_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        })
    };
    for refresh in [false, true] {
        let set = state.idp.jwks(refresh).await.map_err(|e| {
            log_internal(&e);
            HttpError::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unavailable",
                "the access token cannot be checked now; try again later",
            )
        })?;
        if let Some(jwk) = find(&set) {
            return Ok(Some(jwk));
        }
    }
    Ok(None)
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
    let jwk = published_key(state, kid)
        .await?
        .ok_or_else(|| invalid("the token is not signed by a key of the identity provider"))?;
    // The key decides the algorithm, never the token alone (RFC 8725 §3.1).
    if key_algorithm(&jwk) != Some(header.alg) {
        return Err(invalid("the token's algorithm does not match its key"));
    }
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| invalid("the token is not signed by a key of the identity provider"))?;
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

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_es256_and_rs256_signature_keys_are_used() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        let with = |base: &serde_json::Value, k: &str, v: &str| {
            let mut j = base.clone();
            j[k] = v.into();
            jwk(j)
        };
        assert_eq!(key_algorithm(&jwk(ec.clone())), Some(Algorithm::ES256));
        assert_eq!(
            key_algorithm(&with(&ec, "alg", "ES256")),
            Some(Algorithm::ES256)
        );
        assert_eq!(
            key_algorithm(&with(&ec, "use", "sig")),
            Some(Algorithm::ES256)
        );
        assert_eq!(key_algorithm(&with(&ec, "use", "enc")), None);
        assert_eq!(key_algorithm(&with(&ec, "alg", "RS256")), None);
        assert_eq!(key_algorithm(&jwk(rsa.clone())), Some(Algorithm::RS256));
        assert_eq!(
            key_algorithm(&with(&rsa, "alg", "RS256")),
            Some(Algorithm::RS256)
        );
        assert_eq!(key_algorithm(&with(&rsa, "alg", "PS256")), None);
        assert_eq!(key_algorithm(&with(&rsa, "alg", "RS512")), None);
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert_eq!(key_algorithm(&jwk(p384)), None);
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(key_algorithm(&jwk(oct)), None);
    }

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
