//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The post-logout
//! redirect URI must be registered for the client, known from `client_id` or the hint.
//! `Logouts::session_ended` is what every end of a session goes through.

use std::{collections::HashSet, sync::Arc};

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{Method, StatusCode},
    middleware,
    response::Response,
    routing::{get, MethodRouter},
};
use url::Url;

use super::backchannel::Backchannel;
use crate::{
    app::AppState,
    audit::{self, Audit},
    clock::Clock,
    http::{page, params::Params, ClientAddr, Page, PageError},
    realm::Realm,
    session::{Session, Sessions},
    storage::{accounts, grants, Db, StoreError},
};

/// What ends sessions, one or all of an account: their grants revoked in SQL, the clients
/// that took part told by back-channel logout, the audit trail written.
#[derive(Clone)]
pub struct Logouts {
    db: Db,
    clock: Clock,
    audit: Audit,
    sessions: Sessions,
    backchannel: Backchannel,
}

impl Logouts {
    pub fn new(
        db: &Db,
        clock: &Clock,
        audit: &Audit,
        sessions: &Sessions,
        backchannel: &Backchannel,
    ) -> Self {
        Logouts {
            db: db.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            sessions: sessions.clone(),
            backchannel: backchannel.clone(),
        }
    }

    /// Carries out the end of a session already taken out of the store: revokes every grant
    /// with its `sid`, then tells the clients that took part and asked to hear of it
    /// (Back-Channel Logout 1.0), in the background. Whatever ends a session calls this.
    pub async fn session_ended(
        &self,
        realm: &Arc<Realm>,
        session: &Session,
    ) -> Result<(), StoreError> {
        let participants = grants::session_participants(&self.db, &realm.id, &session.sid).await?;
        let revoked =
            grants::revoke_session(&self.db, &realm.id, &session.sid, self.clock.unix()).await?;
        self.audit
            .record(
                audit::Event::new(audit::Kind::SessionsEnded, &realm.id)
                    .account(&session.account_id)
                    .detail(serde_json::json!({"sid": session.sid, "grants_revoked": revoked})),
            )
            .await;
        self.backchannel.notify(realm, session, participants);
        Ok(())
    }

    /// Ends everything of an account in a realm: every SSO session (with back-channel logout
    /// to the clients that took part) and every grant, so that refresh tokens stop working and
    /// access tokens fail at userinfo and introspection. What locking, disabling, or a change
    /// of a factor or the e-mail address calls. Returns how many sessions ended.
    pub async fn end_all(&self, realm: &Arc<Realm>, account_id: &str) -> Result<usize, StoreError> {
        let now = self.clock.unix();
        // First, so that no session found later, on any replica, still counts.
        accounts::end_sessions(&self.db, account_id, now).await?;
        let mut ended = HashSet::new();
        for session in self.sessions.take_all(realm, account_id).await? {
            self.session_ended(realm, &session).await?;
            ended.insert(session.sid);
        }
        // Sessions this process cannot reach (expired, or in another process's memory) still
        // have grants: each of their `sid`s ends the same way, clients told.
        for sid in grants::live_sids_of_account(&self.db, &realm.id, account_id).await? {
            if ended.contains(&sid) {
                continue;
            }
            let session = Session {
                account_id: account_id.to_owned(),
                auth_time: now,
                acr: String::new(),
                amr: Vec::new(),
                sid: sid.clone(),
                expires_at: now,
                epoch: 0,
                started_at: 0,
                user_agent: None,
                addr: None,
            };
            self.session_ended(realm, &session).await?;
            ended.insert(sid);
        }
        grants::revoke_account(&self.db, &realm.id, account_id, now).await?;
        metrics::counter!("connect_account_sessions_ended_total", "realm" => realm.id.to_string())
            .increment(ended.len() as u64);
        Ok(ended.len())
    }
}

impl Logouts {
    /// Ends every session and grant of an account but the session `keep` (a `sid`) and its
    /// grants: what a person's own change of a factor, or « log out everywhere else », calls
    /// from the session they are using. Returns how many sessions ended.
    pub async fn end_others(
        &self,
        realm: &Arc<Realm>,
        account_id: &str,
        keep: &str,
    ) -> Result<usize, StoreError> {
        let now = self.clock.unix();
        // First, so that no other session found later, on any replica, still counts.
        accounts::end_sessions(&self.db, account_id, now).await?;
        let epoch = accounts::by_id(&self.db, &realm.id, account_id)
            .await?
            .map_or(0, |a| a.sessions_epoch);
        let mut ended = HashSet::new();
        for session in self
            .sessions
            .take_all_but(realm, account_id, keep, epoch)
            .await?
        {
            self.session_ended(realm, &session).await?;
            ended.insert(session.sid);
        }
        for sid in grants::live_sids_of_account(&self.db, &realm.id, account_id).await? {
            if sid == keep || ended.contains(&sid) {
                continue;
            }
            let session = Session {
                account_id: account_id.to_owned(),
                auth_time: now,
                acr: String::new(),
                amr: Vec::new(),
                sid: sid.clone(),
                expires_at: now,
                epoch: 0,
                started_at: 0,
                user_agent: None,
                addr: None,
            };
            self.session_ended(realm, &session).await?;
            ended.insert(sid);
        }
        grants::revoke_account_but_session(&self.db, &realm.id, account_id, keep, now).await?;
        metrics::counter!("connect_account_sessions_ended_total", "realm" => realm.id.to_string())
            .increment(ended.len() as u64);
        Ok(ended.len())
    }
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
        state.logouts.session_ended(&realm, &s).await?;
    }
    match target {
        Some(url) => Ok(page.redirect(url.as_str())),
        None => {
            page.at(format!("/{}/logout", realm.id));
            page.render(StatusCode::OK, "logout/done.html", minijinja::context! {})
        }
    }
}
