//! The userinfo endpoint (OIDC Core §5.3): the claims of the token's scopes, for a bearer
//! token in the header (GET or POST) or in a form body (POST, RFC 6750 §2.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, Method},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::Value;

use super::{
    claims,
    error::OAuthError,
    tokens::{self, Tokens},
};
use crate::{
    app::AppState,
    http::{params::Params, CurrentRealm, HttpError},
    realm::Realm,
    storage::{grants, persons, Db},
};

/// The bearer token of a request: header or form body, never both.
pub fn bearer_token(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, OAuthError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(|| {
                    OAuthError::invalid_request("the Authorization header must use Bearer")
                })?;
            Some(token.trim().to_owned())
        }
        None => None,
    };
    let form = *method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if form {
        Params::parse(body)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the token once")),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(OAuthError::no_token()),
    }
}

/// An access token that is valid now, with its grant still standing.
pub async fn live_access(
    tokens: &Tokens,
    db: &Db,
    realm: &Realm,
    token: &str,
) -> Result<(tokens::AccessClaims, Option<grants::Grant>), OAuthError> {
    let claims = tokens.verify_access_token(realm, token).await?;
    let grant = match &claims.gid {
        Some(gid) => {
            let grant = grants::by_id(db, &realm.id, gid).await?;
            match grant {
                Some(g) if g.revoked_at.is_none() => Some(g),
                _ => {
                    return Err(OAuthError::invalid_token(
                        "the access token has been revoked",
                    ))
                }
            }
        }
        None => None,
    };
    Ok((claims, grant))
}

pub async fn userinfo(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let token = bearer_token(&method, &headers, &body).map_err(HttpError::Bearer)?;
    let (access, grant) = live_access(&state.tokens, &state.db, &realm, &token)
        .await
        .map_err(HttpError::Bearer)?;
    let Some(grant) = grant else {
        return Err(HttpError::Bearer(OAuthError::invalid_token(
            "this token does not stand for a person",
        )));
    };
    if !access.scopes().any(|s| s == "openid") {
        return Err(HttpError::Bearer(OAuthError::insufficient_scope(
            "the token lacks the openid scope",
        )));
    }
    let account = super::active_account(&state.db, &realm, &access.sub, state.clock.unix())
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| {
            HttpError::Bearer(OAuthError::invalid_token(
                "the account no longer exists or is locked",
            ))
        })?;
    let person = match &account.ahv {
        Some(ahv) => persons::by_ahv(&state.db, &realm.id, ahv)
            .await
            .map_err(OAuthError::from)?,
        None => None,
    };
    let requested: claims::ClaimsRequest = serde_json::from_str(&grant.claims).unwrap_or_default();
    let scopes: Vec<String> = access.scopes().map(str::to_owned).collect();
    let registered = realm
        .clients
        .get(&access.client_id)
        .map(|c| c.scopes.as_slice())
        .unwrap_or_default();
    let mut out = claims::release(
        &account,
        person.as_ref(),
        &scopes,
        registered,
        &requested.userinfo,
    );
    out.insert("sub".into(), Value::String(account.id.clone()));
    let mut res = Json(Value::Object(out)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
