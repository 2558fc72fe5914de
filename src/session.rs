//! The SSO session of a person in a realm: a random cookie whose keyed hash names the
//! session in the ephemeral store. A new login always gets a new cookie (no fixation).

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{app::AppState, domain::RealmId, realm::Realm, storage::StoreError};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub account_id: String,
    /// When the person last proved who they are (OIDC `auth_time`).
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    /// The public session id in ID tokens and logout; not the cookie.
    pub sid: String,
    pub expires_at: i64,
}

/// `__Host-` binds the cookie to our host and path `/` (RFC 6265bis §4.1.3.2); realms get
/// one cookie each so that a session of one realm means nothing in another.
pub fn cookie_name(realm: &RealmId, secure: bool) -> String {
    if secure {
        format!("__Host-connect_{realm}")
    } else {
        format!("connect_{realm}")
    }
}

fn store_key(state: &AppState, realm: &RealmId, cookie: &str) -> String {
    format!("session:{realm}:{}", state.secret_hasher.hash(cookie))
}

pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    B64.encode(raw)
}

/// The live session of this browser in this realm, if any.
pub async fn current(
    state: &AppState,
    realm: &Realm,
    jar: &CookieJar,
) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = jar.get(&cookie_name(&realm.id, state.config.is_https())) else {
        return Ok(None);
    };
    let session: Option<Session> = state
        .ephemeral
        .get_json(&store_key(state, &realm.id, cookie.value()))
        .await?;
    Ok(session.filter(|s| s.expires_at > state.clock.unix()))
}

/// Starts a session after a successful login and returns the jar with its cookie.
pub async fn start(
    state: &AppState,
    realm: &Realm,
    jar: CookieJar,
    account_id: &str,
    acr: &str,
    amr: Vec<String>,
) -> Result<(CookieJar, Session), StoreError> {
    let now = state.clock.unix();
    let lifetime = realm.lifetimes.session;
    let session = Session {
        account_id: account_id.to_owned(),
        auth_time: now,
        acr: acr.to_owned(),
        amr,
        sid: uuid::Uuid::new_v4().to_string(),
        expires_at: now + lifetime.as_secs() as i64,
    };
    let value = random_token();
    state
        .ephemeral
        .put_json(&store_key(state, &realm.id, &value), &session, lifetime)
        .await?;
    let secure = state.config.is_https();
    let cookie = Cookie::build((cookie_name(&realm.id, secure), value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.add(cookie), session))
}

/// Ends the session of this browser, if any, and clears its cookie.
pub async fn end(
    state: &AppState,
    realm: &Realm,
    jar: CookieJar,
) -> Result<(CookieJar, Option<Session>), StoreError> {
    let secure = state.config.is_https();
    let name = cookie_name(&realm.id, secure);
    let Some(cookie) = jar.get(&name).cloned() else {
        return Ok((jar, None));
    };
    let key = store_key(state, &realm.id, cookie.value());
    let session: Option<Session> = state.ephemeral.take_json(&key).await?;
    let removal = Cookie::build((name, ""))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.remove(removal), session))
}
