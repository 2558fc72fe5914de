//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The post-logout
//! redirect URI must be registered for the client, known from `client_id` or the hint.
//! `session_ended` is what every end of a session goes through.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{Method, StatusCode},
    middleware,
    response::Response,
    routing::{get, MethodRouter},
};
use url::Url;

use super::backchannel;
use crate::{
    app::AppState,
    audit,
    http::{page, params::Params, ClientAddr, Page, PageError},
    realm::Realm,
    session::Session,
    storage::{grants, StoreError},
};

/// Carries out the end of a session already taken out of the store: revokes every grant
/// with its `sid`, then tells the clients that took part and asked to hear of it
/// (Back-Channel Logout 1.0), in the background. Whatever ends a session calls this.
pub async fn session_ended(
    state: &AppState,
    realm: &Arc<Realm>,
    session: &Session,
) -> Result<(), StoreError> {
    let participants = grants::session_participants(&state.db, &realm.id, &session.sid).await?;
    let revoked =
        grants::revoke_session(&state.db, &realm.id, &session.sid, state.clock.unix()).await?;
    state
        .audit
        .record(
            audit::Event::new(audit::Kind::SessionsEnded, &realm.id)
                .account(&session.account_id)
                .detail(serde_json::json!({"sid": session.sid, "grants_revoked": revoked})),
        )
        .await;
    backchannel::notify(state, realm, session, participants);
    Ok(())
}

/// The logout endpoint, GET and POST; its pages are rendered by the page layer.
pub fn route() -> MethodRouter<AppState> {
    get(logout)
        .post(logout)
        .layer(middleware::from_fn(page::render_failures))
}

pub async fn logout(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    let raw: &[u8] = if method == Method::POST {
        &body
    } else {
        query.as_deref().unwrap_or_default().as_bytes()
    };
    let refused = |message| PageError::new(StatusCode::BAD_REQUEST, message);
    let params = Params::parse(raw).map_err(|_| refused("error-bad-request"))?;
    page.prefer(params.get("ui_locales"));
    let realm = page.realm.clone();

    let hint = match params.get("id_token_hint") {
        Some(h) => Some(
            state
                .tokens
                .read_id_token_hint(&realm, h)
                .await
                .ok_or_else(|| refused("error-bad-logout"))?,
        ),
        None => None,
    };
    let client_id = params
        .get("client_id")
        .map(str::to_owned)
        .or_else(|| hint.as_ref().and_then(|h| h.aud.first().cloned()));
    if let (Some(id), Some(h)) = (params.get("client_id"), &hint) {
        if !h.aud.iter().any(|a| a == id) {
            return Err(refused("error-bad-logout"));
        }
    }
    let target = match params.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|id| realm.clients.get(id))
                .ok_or_else(|| refused("error-bad-logout"))?;
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return Err(refused("error-bad-logout"));
            }
            let mut url = Url::parse(uri).map_err(|_| refused("error-bad-logout"))?;
            if let Some(st) = params.get("state") {
                url.query_pairs_mut().append_pair("state", st);
            }
            Some(url)
        }
        None => None,
    };

    let current = state.sessions.current(&realm, &page.jar).await?;
    // Without a hint naming this session, a third-party page could log people out at will;
    // ask first (RP-Initiated Logout §2, "SHOULD ask the End-User").
    let confirmed =
        method == Method::POST && params.get("confirm").is_some_and(|t| page.csrf_matches(t));
    // Only a hint of this very session counts: an ID token of the same person from another
    // session (another browser, an older login) would let a page that holds one log the
    // person out here. Its `aud` was checked against `client_id` above.
    let hinted = match (&hint, &current) {
        (Some(h), Some(s)) => h.sid.as_deref() == Some(s.sid.as_str()),
        (_, None) => true,
        (None, Some(_)) => false,
    };
    if !hinted && !confirmed {
        // The language switcher asks again, with what the form carries (never the hint).
        let mut again = url::form_urlencoded::Serializer::new(String::new());
        for name in ["client_id", "post_logout_redirect_uri", "state"] {
            if let Some(value) = params.get(name) {
                again.append_pair(name, value);
            }
        }
        let again = again.finish();
        page.at(if again.is_empty() {
            format!("/{}/logout", realm.id)
        } else {
            format!("/{}/logout?{again}", realm.id)
        });
        let ctx = minijinja::context! {
            csrf => page.csrf(),
            post_logout_redirect_uri => params.get("post_logout_redirect_uri"),
            state => params.get("state"),
            client_id => client_id,
        };
        return page.render(StatusCode::OK, "logout/confirm.html", ctx);
    }
    let jar = std::mem::take(&mut page.jar);
    let (jar, ended) = state.sessions.end(&realm, jar).await?;
    page.jar = jar;
    if let Some(s) = ended {
        let mut event = audit::Event::new(audit::Kind::Logout, &realm.id)
            .account(&s.account_id)
            .origin(addr, page.headers())
            .detail(serde_json::json!({"confirmed": !hinted}));
        if let Some(id) = &client_id {
            event = event.client(id);
        }
        state.audit.record(event).await;
        session_ended(&state, &realm, &s).await?;
    }
    match target {
        Some(url) => Ok(page.redirect(url.as_str())),
        None => {
            page.at(format!("/{}/logout", realm.id));
            page.render(StatusCode::OK, "logout/done.html", minijinja::context! {})
        }
    }
}
