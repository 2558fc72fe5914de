//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The post-logout
//! redirect URI must be registered for the client, known from `client_id` or the hint.
//! `session_ended` is what every end of a session goes through.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use url::Url;

use super::backchannel;
use crate::{
    app::AppState,
    audit,
    http::{language, params::Params, templates, ClientAddr, CurrentRealm, HttpError},
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

#[allow(clippy::too_many_arguments)]
pub async fn logout(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    addr: ClientAddr,
    method: Method,
    jar: CookieJar,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let raw: &[u8] = if method == Method::POST {
        &body
    } else {
        query.as_deref().unwrap_or_default().as_bytes()
    };
    let lang = language::negotiate(&realm, None, &jar, &headers);
    let page = |message| HttpError::page(StatusCode::BAD_REQUEST, lang, message);
    let params = Params::parse(raw).map_err(|_| page("error-bad-request"))?;
    let lang = language::negotiate(&realm, params.get("ui_locales"), &jar, &headers);

    let hint = match params.get("id_token_hint") {
        Some(h) => Some(
            state
                .tokens
                .read_id_token_hint(&realm, h)
                .await
                .ok_or_else(|| page("error-bad-logout"))?,
        ),
        None => None,
    };
    let client_id = params
        .get("client_id")
        .map(str::to_owned)
        .or_else(|| hint.as_ref().and_then(|h| h.aud.first().cloned()));
    if let (Some(id), Some(h)) = (params.get("client_id"), &hint) {
        if !h.aud.iter().any(|a| a == id) {
            return Err(page("error-bad-logout"));
        }
    }
    let target = match params.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|id| realm.clients.get(id))
                .ok_or_else(|| page("error-bad-logout"))?;
            if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return Err(page("error-bad-logout"));
            }
            let mut url = Url::parse(uri).map_err(|_| page("error-bad-logout"))?;
            if let Some(st) = params.get("state") {
                url.query_pairs_mut().append_pair("state", st);
            }
            Some(url)
        }
        None => None,
    };

    let current = state
        .sessions
        .current(&realm, &jar)
        .await
        .map_err(HttpError::internal(lang))?;
    // Without a hint naming this session, a third-party page could log people out at will;
    // ask first (RP-Initiated Logout §2, "SHOULD ask the End-User").
    let confirmed = method == Method::POST
        && params
            .get("confirm")
            .is_some_and(|t| state.csrf.verify(&jar, state.config.is_https(), t));
    // Only a hint of this very session counts: an ID token of the same person from another
    // session (another browser, an older login) would let a page that holds one log the
    // person out here. Its `aud` was checked against `client_id` above.
    let hinted = match (&hint, &current) {
        (Some(h), Some(s)) => h.sid.as_deref() == Some(s.sid.as_str()),
        (_, None) => true,
        (None, Some(_)) => false,
    };
    if !hinted && !confirmed {
        let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
        let ctx = minijinja::context! {
            lang => lang.code(),
            realm => realm.id.as_str(),
            realm_name => realm.display_name,
            csrf => csrf,
            post_logout_redirect_uri => params.get("post_logout_redirect_uri"),
            state => params.get("state"),
            client_id => client_id,
        };
        let html =
            templates::render("logout/confirm.html", ctx).map_err(HttpError::internal(lang))?;
        return Ok((jar, Html(html)).into_response());
    }
    let (jar, ended) = state
        .sessions
        .end(&realm, jar)
        .await
        .map_err(HttpError::internal(lang))?;
    if let Some(s) = ended {
        let mut event = audit::Event::new(audit::Kind::Logout, &realm.id)
            .account(&s.account_id)
            .origin(addr, &headers)
            .detail(serde_json::json!({"confirmed": !hinted}));
        if let Some(id) = &client_id {
            event = event.client(id);
        }
        state.audit.record(event).await;
        session_ended(&state, &realm, &s)
            .await
            .map_err(HttpError::internal(lang))?;
    }
    match target {
        Some(url) => Ok((jar, Redirect::to(url.as_str())).into_response()),
        None => {
            let ctx = minijinja::context! { lang => lang.code(), realm => realm.id.as_str(), realm_name => realm.display_name };
            let html =
                templates::render("logout/done.html", ctx).map_err(HttpError::internal(lang))?;
            Ok((jar, Html(html)).into_response())
        }
    }
}
