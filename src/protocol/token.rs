//! The token endpoint: `authorization_code`, `refresh_token` (rotated; a spent token used
//! again revokes its grant) and `client_credentials`.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::{
    authorize::Codes,
    claims, client_auth,
    error::OAuthError,
    tokens::{AccessClaims, IdTokenInput, Tokens},
};
use crate::{
    app::AppState,
    audit::{self, Audit},
    clock::Clock,
    http::{params::Params, CurrentRealm},
    keys::SecretHasher,
    realm::{Client, ClientRegistry, GrantType, Realm},
    session,
    storage::{accounts, grants, persons, Db},
};

pub async fn token(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(&body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let client = client_auth::authenticate(&realm, &headers, &params)?;
    let body = match grant_type {
        "authorization_code" => {
            allowed(client, GrantType::AuthorizationCode)?;
            state
                .grants
                .authorization_code(&realm, client, &params)
                .await?
        }
        "refresh_token" => {
            allowed(client, GrantType::RefreshToken)?;
            state.grants.refresh_token(&realm, client, &params).await?
        }
        "client_credentials" => {
            allowed(client, GrantType::ClientCredentials)?;
            state
                .grants
                .client_credentials(&realm, client, &params)
                .await?
        }
        _ => {
            return Err(OAuthError::unsupported_grant_type(
                "this grant type is not supported",
            ))
        }
    };
    metrics::counter!("connect_tokens_issued_total", "realm" => realm.id.to_string(), "grant_type" => grant_type.to_owned()).increment(1);
    let mut res = Json(body).into_response();
    // RFC 6749 §5.1: token responses must not be cached.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}

fn allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows(grant) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "this client may not use this grant type",
        ))
    }
}

/// What the token endpoint's grants use: built once, in `AppState`.
#[derive(Clone)]
pub struct TokenGrants {
    db: Db,
    hasher: SecretHasher,
    clock: Clock,
    codes: Codes,
    tokens: Tokens,
    audit: Audit,
}

impl TokenGrants {
    pub fn new(
        db: &Db,
        hasher: &SecretHasher,
        clock: &Clock,
        codes: &Codes,
        tokens: &Tokens,
        audit: &Audit,
    ) -> Self {
        TokenGrants {
            db: db.clone(),
            hasher: hasher.clone(),
            clock: clock.clone(),
            codes: codes.clone(),
            tokens: tokens.clone(),
            audit: audit.clone(),
        }
    }

    async fn authorization_code(
        &self,
        realm: &Realm,
        client: &Client,
        p: &Params,
    ) -> Result<serde_json::Value, OAuthError> {
        let code = p
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let now = self.clock.unix();
        let Some(issued) = self.codes.issued.take(realm.id.as_str(), code).await? else {
            // RFC 6749 §4.1.2 and RFC 9700 §4.5: a code used twice revokes what it gave.
            if let Some(grant_id) = self.codes.used.get(realm.id.as_str(), code).await? {
                grants::revoke(&self.db, &realm.id, &grant_id, now).await?;
                tracing::warn!(realm = %realm.id, client_id = %client.id, "authorization code replayed; its grant is revoked");
            }
            return Err(OAuthError::invalid_grant(
                "the code is invalid, expired or already used",
            ));
        };
        let r = &issued.request;
        if now - issued.issued_at >= realm.lifetimes.authorization_code.as_secs() as i64 {
            return Err(OAuthError::invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
        if r.client_id != client.id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if p.get("redirect_uri") != Some(r.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        check_verifier(r.pkce.as_deref(), p.get("code_verifier"))?;
        if super::active_account(&self.db, realm, &issued.account_id, now)
            .await?
            .is_none()
        {
            return Err(OAuthError::invalid_grant(
                "the account is locked or no longer exists",
            ));
        }

        let grant_id = uuid::Uuid::new_v4().to_string();
        let marker_life = realm
            .lifetimes
            .refresh_token
            .max(realm.lifetimes.access_token);
        self.codes
            .used
            .put(realm.id.as_str(), code, &grant_id, marker_life)
            .await?;
        let grant = grants::Grant {
            id: grant_id,
            realm: realm.id.to_string(),
            client_id: client.id.clone(),
            account_id: issued.account_id.clone(),
            scope: r.scope.join(" "),
            claims: serde_json::to_string(&r.claims).unwrap_or_default(),
            auth_time: issued.auth_time,
            acr: issued.acr.clone(),
            amr: issued.amr.join(" "),
            sid: issued.sid.clone(),
            created_at: now,
            revoked_at: None,
        };
        let refresh = self.new_refresh(realm, client, &grant);
        grants::insert(&self.db, &grant, refresh.as_ref().map(|(row, _)| row)).await?;
        self.respond(
            realm,
            &grant,
            &r.scope,
            r.nonce.as_deref(),
            refresh.map(|(_, t)| t),
        )
        .await
    }

    fn new_refresh(
        &self,
        realm: &Realm,
        client: &Client,
        grant: &grants::Grant,
    ) -> Option<(grants::RefreshToken, String)> {
        if !client.allows(GrantType::RefreshToken) {
            return None;
        }
        let token = session::random_token();
        let now = self.clock.unix();
        let row = grants::RefreshToken {
            token_hash: self.hasher.hash(&token),
            grant_id: grant.id.clone(),
            realm: realm.id.to_string(),
            client_id: client.id.clone(),
            created_at: now,
            expires_at: (now + realm.lifetimes.refresh_token.as_secs() as i64)
                .min(grant_ends(realm, grant)),
            used_at: None,
        };
        Some((row, token))
    }

    async fn refresh_token(
        &self,
        realm: &Realm,
        client: &Client,
        p: &Params,
    ) -> Result<serde_json::Value, OAuthError> {
        let token = p
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let invalid =
            || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
        let hash = self.hasher.hash(token);
        let now = self.clock.unix();
        let stored = grants::refresh_by_hash(&self.db, &realm.id, &hash)
            .await?
            .ok_or_else(invalid)?;
        // Bound to its client: another client presenting it learns nothing and changes nothing.
        if stored.client_id != client.id {
            return Err(invalid());
        }
        let grant = grants::by_id(&self.db, &realm.id, &stored.grant_id)
            .await?
            .ok_or_else(invalid)?;
        if grant.revoked_at.is_some()
            || stored.expires_at <= now
            || now >= grant_ends(realm, &grant)
        {
            return Err(invalid());
        }
        // OIDC Core §11: only `offline_access` lets a client refresh once the person's session is
        // over.
        let offline = grant
            .scope
            .split_whitespace()
            .any(|s| s == "offline_access");
        if !offline && session_over(realm, &grant, now) {
            return Err(OAuthError::invalid_grant(
                "the session this refresh token belongs to has ended",
            ));
        }
        if super::active_account(&self.db, realm, &grant.account_id, now)
            .await?
            .is_none()
        {
            return Err(OAuthError::invalid_grant(
                "the account is locked or no longer exists",
            ));
        }
        let reuse = || async {
            // RFC 9700 §4.14.2: a spent refresh token used again means it leaked; end the family.
            grants::revoke(&self.db, &realm.id, &grant.id, now).await?;
            tracing::warn!(realm = %realm.id, client_id = %client.id, "refresh token reused; its grant is revoked");
            self.audit
                .record(
                    audit::Event::new(audit::Kind::RefreshTokenReused, &realm.id)
                        .account(&grant.account_id)
                        .client(&client.id)
                        .detail(json!({"grant": grant.id})),
                )
                .await;
            Err::<serde_json::Value, OAuthError>(invalid())
        };
        if stored.used_at.is_some() {
            return reuse().await;
        }
        let granted: Vec<String> = grant.scope.split_whitespace().map(str::to_owned).collect();
        let scope = match p.get("scope") {
            None => granted.clone(),
            Some(asked) => {
                let asked: Vec<String> = asked.split_whitespace().map(str::to_owned).collect();
                if asked.iter().any(|s| !granted.contains(s)) {
                    return Err(OAuthError::invalid_scope(
                        "a refresh cannot widen the scope",
                    ));
                }
                asked
            }
        };
        let (row, new_token) = self
            .new_refresh(realm, client, &grant)
            .ok_or_else(invalid)?;
        if !grants::rotate_refresh(&self.db, &hash, now, &row).await? {
            return reuse().await;
        }
        self.respond(realm, &grant, &scope, None, Some(new_token))
            .await
    }

    /// Signs the access token (and the ID token when `openid` was granted) of a grant.
    async fn respond(
        &self,
        realm: &Realm,
        grant: &grants::Grant,
        scope: &[String],
        nonce: Option<&str>,
        refresh: Option<String>,
    ) -> Result<serde_json::Value, OAuthError> {
        let amr: Vec<String> = grant.amr.split_whitespace().map(str::to_owned).collect();
        let access = AccessClaims {
            auth_time: Some(grant.auth_time),
            acr: Some(grant.acr.clone()),
            amr: Some(amr.clone()),
            sid: Some(grant.sid.clone()),
            gid: Some(grant.id.clone()),
            ..self
                .tokens
                .access_claims(realm, &grant.account_id, &grant.client_id, scope.join(" "))
        };
        let access_token = self.tokens.sign_access_token(realm, &access).await?;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": realm.lifetimes.access_token.as_secs(),
            "scope": access.scope,
        });
        if scope.iter().any(|s| s == "openid") {
            let requested: claims::ClaimsRequest =
                serde_json::from_str(&grant.claims).unwrap_or_default();
            let extra = if requested.id_token.is_empty() {
                serde_json::Map::new()
            } else {
                let account = accounts::by_id(&self.db, &realm.id, &grant.account_id)
                    .await?
                    .ok_or_else(|| OAuthError::invalid_grant("the account no longer exists"))?;
                let person = match &account.ahv {
                    Some(ahv) => persons::by_ahv(&self.db, &realm.id, ahv).await?,
                    None => None,
                };
                let registered = realm
                    .clients
                    .get(&grant.client_id)
                    .map(|c| c.scopes.as_slice())
                    .unwrap_or_default();
                claims::picked(
                    &account,
                    person.as_ref(),
                    scope,
                    registered,
                    &requested.id_token,
                )
            };
            let id_token = self
                .tokens
                .sign_id_token(
                    realm,
                    IdTokenInput {
                        client_id: &grant.client_id,
                        sub: &grant.account_id,
                        nonce,
                        auth_time: grant.auth_time,
                        acr: &grant.acr,
                        amr: &amr,
                        sid: &grant.sid,
                        access_token: &access_token,
                        extra,
                    },
                )
                .await?;
            body["id_token"] = id_token.into();
        }
        if let Some(r) = refresh {
            body["refresh_token"] = r.into();
        }
        Ok(body)
    }

    async fn client_credentials(
        &self,
        realm: &Realm,
        client: &Client,
        p: &Params,
    ) -> Result<serde_json::Value, OAuthError> {
        let asked: Vec<&str> = p
            .get("scope")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        if let Some(bad) = asked
            .iter()
            .find(|s| !client.scopes.iter().any(|c| c == *s) || **s == "openid")
        {
            return Err(OAuthError::invalid_scope(format!(
                "scope {bad} is not available to this client"
            )));
        }
        let claims = self
            .tokens
            .access_claims(realm, &client.id, &client.id, asked.join(" "));
        let token = self.tokens.sign_access_token(realm, &claims).await?;
        Ok(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": realm.lifetimes.access_token.as_secs(),
            "scope": claims.scope,
        }))
    }
}

/// RFC 7636 §4.6, required for every client (RFC 9700 §2.1.1); a
/// verifier without a challenge is refused too, against PKCE downgrade.
fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    if challenge.is_none() && verifier.is_some() {
        return Err(OAuthError::invalid_grant(
            "code_verifier without a code_challenge",
        ));
    }
    if ClientRegistry::pkce_verified(challenge, verifier) {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant("code_verifier does not match"))
    }
}

/// When a grant ends however often it is refreshed: a fixed time after the login it came
/// from.
fn grant_ends(realm: &Realm, grant: &grants::Grant) -> i64 {
    grant.auth_time + realm.lifetimes.grant_absolute.as_secs() as i64
}

/// Whether the SSO session a grant came from is over. Sessions last a fixed time from their
/// login (`session::start`); a logout or an account change revokes the grant itself.
fn session_over(realm: &Realm, grant: &grants::Grant, now: i64) -> bool {
    now >= grant.auth_time + realm.lifetimes.session.as_secs() as i64
}
