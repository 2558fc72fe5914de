//! The portal's own sessions: a random cookie whose keyed hash names the session in the
//! ephemeral store, a fresh one at every login. Sessions are also listed by the IdP's `sid`,
//! so that a back-channel logout ends them at once.

use axum::{
    extract::{FromRequestParts, OriginalUri},
    http::request::Parts,
    response::Redirect,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use super::PortalState;
use crate::{
    domain::Language,
    http::{page::PageContext, PageError},
    session::random_token,
    storage::{ephemeral::Record, StoreError},
};

/// Who is logged in, from the ID token and userinfo.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PortalSession {
    pub sub: String,
    /// The IdP's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    pub ahv: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Language,
    /// For the logout request to the IdP (`id_token_hint`).
    pub id_token: String,
    pub expires_at: i64,
}

/// The logged-in person of a portal page. Without a session, the browser goes through the
/// login and comes back to the page it asked for.
pub struct PersonSession(pub PortalSession);

impl FromRequestParts<PortalState> for PersonSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, PageError> {
        // Until the page knows its language, a failure speaks the caisse's.
        PageContext::set(parts, None, state.realm.default_language);
        let jar = CookieJar::from_headers(&parts.headers);
        if let Some(s) = current(state, &jar).await? {
            PageContext::set(parts, None, s.language);
            return Ok(PersonSession(s));
        }
        let Ok(OriginalUri(uri)) = OriginalUri::from_request_parts(parts, state).await;
        let here = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut to = url::form_urlencoded::Serializer::new(String::new());
        to.append_pair("return_to", here);
        Err(PageError::answered(Redirect::to(&format!(
            "/login?{}",
            to.finish()
        ))))
    }
}

/// Whether the portal's cookies may carry `Secure` and the `__Host-` prefix.
pub(super) fn secure(state: &PortalState) -> bool {
    state.config.portal_url.scheme() == "https"
}

pub fn cookie_name(state: &PortalState) -> &'static str {
    if secure(state) {
        "__Host-portal_session"
    } else {
        "portal_session"
    }
}

/// Sessions, by the keyed hash of their cookie ([`session_id`]).
fn sessions(state: &PortalState) -> Record<PortalSession> {
    Record::plain(&state.ephemeral, "psession")
}

fn session_id(state: &PortalState, cookie: &str) -> String {
    state.hasher.hash(&format!("portal-session:{cookie}"))
}

/// The sessions of each IdP session: their ids, by the keyed hash of the `sid`.
fn by_sid(state: &PortalState) -> Record<Vec<String>> {
    Record::hashed(&state.ephemeral, "psid", &state.hasher, "portal-sid:")
}

pub async fn current(
    state: &PortalState,
    jar: &CookieJar,
) -> Result<Option<PortalSession>, StoreError> {
    let Some(cookie) = jar.get(cookie_name(state)) else {
        return Ok(None);
    };
    let session = sessions(state)
        .get("", &session_id(state, cookie.value()))
        .await?;
    Ok(session.filter(|s| s.expires_at > state.clock.unix()))
}

/// Stores a new session under a new cookie (never an old one: no fixation).
pub async fn start(
    state: &PortalState,
    jar: CookieJar,
    session: &PortalSession,
) -> Result<CookieJar, StoreError> {
    let value = random_token();
    let lifetime = std::time::Duration::from_secs(state.config.portal.session_seconds);
    let id = session_id(state, &value);
    sessions(state).put("", &id, session, lifetime).await?;
    if let Some(sid) = &session.sid {
        // One IdP session may have several portal sessions (browsers): keep all their ids.
        let index = by_sid(state);
        let mut ids = index.get("", sid).await?.unwrap_or_default();
        ids.push(id);
        index.put("", sid, &ids, lifetime).await?;
    }
    let cookie = Cookie::build((cookie_name(state), value))
        .path("/")
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Lax)
        .build();
    Ok(jar.add(cookie))
}

/// Ends this browser's session; returns it, for the logout request to the IdP.
pub async fn end(
    state: &PortalState,
    jar: CookieJar,
) -> Result<(CookieJar, Option<PortalSession>), StoreError> {
    let Some(cookie) = jar.get(cookie_name(state)).cloned() else {
        return Ok((jar, None));
    };
    let session = sessions(state)
        .take("", &session_id(state, cookie.value()))
        .await?;
    let removal = Cookie::build((cookie_name(state), ""))
        .path("/")
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.remove(removal), session))
}

/// Ends every portal session of an IdP session (back-channel logout); returns how many.
pub async fn end_sid(state: &PortalState, sid: &str) -> Result<usize, StoreError> {
    let ids = by_sid(state).take("", sid).await?.unwrap_or_default();
    let sessions = sessions(state);
    for id in &ids {
        sessions.delete("", id).await?;
    }
    Ok(ids.len())
}
