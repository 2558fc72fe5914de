//! Token introspection (RFC 7662) and revocation (RFC 7009), for authenticated clients.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::{client_auth, error::OAuthError, userinfo::live_access};
use crate::{
    app::AppState,
    http::{params::Params, CurrentRealm},
    realm::{Client, Realm},
    storage::{grants, Db},
};

async fn read(
    realm: &Realm,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, String), OAuthError> {
    let params = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?
        .to_owned();
    // Authenticated here only to name the failure; the client is taken again by callers.
    client_auth::authenticate(realm, headers, &params)?;
    Ok((params, token))
}

fn confidential<'r>(
    realm: &'r Realm,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'r Client, OAuthError> {
    let client = client_auth::authenticate(realm, headers, params)?;
    if client.is_public() {
        return Err(OAuthError::invalid_client(
            "public clients cannot use this endpoint",
        ));
    }
    Ok(client)
}

pub async fn introspect(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (params, token) = read(&realm, &headers, &body).await?;
    let client = confidential(&realm, &headers, &params)?;
    let now = state.clock.unix();
    // RFC 7662 §2.2 lets us say `active: false` to a client that may not learn about a token:
    // only its own client, or a resource server the realm names, learns about it.
    if let Ok((c, _)) = live_access(&state.tokens, &state.db, &realm, &token).await {
        let person = c.gid.is_some();
        if !(c.client_id == client.id || client.resource_server)
            || (person && !account_stands(&state.db, &realm, &c.sub, now).await?)
        {
            return Ok(inactive());
        }
        return Ok(Json(json!({
            "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
            "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti,
        }))
        .into_response());
    }
    let hash = state.secret_hasher.hash(&token);
    if let Some(r) = grants::refresh_by_hash(&state.db, &realm.id, &hash).await? {
        if let Some(g) = grants::by_id(&state.db, &realm.id, &r.grant_id).await? {
            // Only the client that refreshes with it has any business with a refresh token.
            if r.client_id == client.id
                && r.used_at.is_none()
                && r.expires_at > now
                && g.revoked_at.is_none()
                && account_stands(&state.db, &realm, &g.account_id, now).await?
            {
                return Ok(Json(json!({
                    "active": true, "token_type": "refresh_token", "scope": g.scope, "client_id": g.client_id,
                    "sub": g.account_id, "iss": state.config.issuer(&realm.id), "exp": r.expires_at, "iat": r.created_at,
                }))
                .into_response());
            }
        }
    }
    Ok(inactive())
}

fn inactive() -> Response {
    Json(json!({ "active": false })).into_response()
}

async fn account_stands(
    db: &Db,
    realm: &Realm,
    account_id: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    Ok(super::active_account(db, realm, account_id, now)
        .await?
        .is_some())
}

/// RFC 7009 §2.2: the answer is 200 whether or not the token was known.
pub async fn revoke(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (params, token) = read(&realm, &headers, &body).await?;
    let client = client_auth::authenticate(&realm, &headers, &params)?;
    let now = state.clock.unix();
    let hash = state.secret_hasher.hash(&token);
    let grant_id = match grants::refresh_by_hash(&state.db, &realm.id, &hash).await? {
        Some(r) if r.client_id == client.id => Some(r.grant_id),
        Some(_) => None,
        None => match live_access(&state.tokens, &state.db, &realm, &token).await {
            Ok((c, Some(g))) if c.client_id == client.id => Some(g.id),
            _ => None,
        },
    };
    if let Some(id) = grant_id {
        grants::revoke(&state.db, &realm.id, &id, now).await?;
    }
    Ok(StatusCode::OK.into_response())
}
