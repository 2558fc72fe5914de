//! The SSO session of a person in a realm: a random cookie whose keyed hash names the
//! session in the ephemeral store. A new login always gets a new cookie (no fixation).
//!
//! Each account keeps an index of its sessions (expiring with them) and a `sessions_epoch`
//! in SQL, so that [`end_all`] can end every session of an account: those it finds in the
//! index are ended with back-channel logout, and any it cannot reach (another process's
//! in-memory store, as with `connect admin` in dev) no longer count, since a session is only
//! good under the epoch it started in and while the account may log in.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    domain::RealmId,
    protocol::logout,
    realm::Realm,
    storage::{accounts, grants, StoreError},
};

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
    /// The account's `sessions_epoch` when the session started.
    #[serde(default)]
    pub epoch: i64,
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
    let now = state.clock.unix();
    let Some(session) = session.filter(|s| s.expires_at > now) else {
        return Ok(None);
    };
    // A locked, disabled or removed account, or one whose sessions support ended, has none.
    let account = accounts::by_id(&state.db, &realm.id, &session.account_id).await?;
    Ok(account
        .filter(|a| a.may_log_in(now) && a.sessions_epoch == session.epoch)
        .map(|_| session))
}

/// The index of an account's sessions: the store keys of its sessions.
fn index_key(realm: &RealmId, account_id: &str) -> String {
    format!("sessions-of:{realm}:{account_id}")
}

/// Compare-and-set rounds when adding to an index that others change at the same time.
const INDEX_ROUNDS: usize = 16;

/// Adds a session's store key to its account's index. Sessions of a realm share one lifetime,
/// so the index, renewed with each new session, outlives every session it names.
async fn remember(
    state: &AppState,
    realm: &Realm,
    account_id: &str,
    key: &str,
) -> Result<(), StoreError> {
    let index = index_key(&realm.id, account_id);
    let now = state.clock.unix();
    for _ in 0..INDEX_ROUNDS {
        let stored = state.ephemeral.get(&index).await?;
        let mut keys: Vec<String> = match &stored {
            Some(raw) => {
                serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
            None => Vec::new(),
        };
        // Keys of sessions that have ended meanwhile are dropped now and then.
        if keys.len() >= 16 {
            let mut live = Vec::with_capacity(keys.len());
            for k in keys {
                let s: Option<Session> = state.ephemeral.get_json(&k).await?;
                if s.is_some_and(|s| s.expires_at > now) {
                    live.push(k);
                }
            }
            keys = live;
        }
        keys.push(key.to_owned());
        let value = serde_json::to_vec(&keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if state
            .ephemeral
            .swap(&index, stored.as_deref(), &value, realm.lifetimes.session)
            .await?
        {
            return Ok(());
        }
    }
    Err(StoreError::Corrupt(format!(
        "the session index of account {account_id} kept changing"
    )))
}

/// Ends everything of an account in a realm: every SSO session (with back-channel logout to
/// the clients that took part) and every grant, so that refresh tokens stop working and
/// access tokens fail at userinfo and introspection. What locking, disabling, or a change of
/// a factor or the e-mail address calls. Returns how many sessions ended.
pub async fn end_all(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    account_id: &str,
) -> Result<usize, StoreError> {
    let now = state.clock.unix();
    // First, so that no session found later, on any replica, still counts.
    accounts::end_sessions(&state.db, account_id, now).await?;
    let keys: Vec<String> = state
        .ephemeral
        .take_json(&index_key(&realm.id, account_id))
        .await?
        .unwrap_or_default();
    let mut ended = std::collections::HashSet::new();
    for key in keys {
        if let Some(session) = state.ephemeral.take_json::<Session>(&key).await? {
            logout::session_ended(state, realm, &session).await?;
            ended.insert(session.sid);
        }
    }
    // Sessions this process cannot reach (expired, or in another process's memory) still
    // have grants: each of their `sid`s ends the same way, clients told.
    for sid in grants::live_sids_of_account(&state.db, &realm.id, account_id).await? {
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
        };
        logout::session_ended(state, realm, &session).await?;
        ended.insert(sid);
    }
    grants::revoke_account(&state.db, &realm.id, account_id, now).await?;
    metrics::counter!("connect_account_sessions_ended_total", "realm" => realm.id.to_string())
        .increment(ended.len() as u64);
    Ok(ended.len())
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
    let epoch = accounts::by_id(&state.db, &realm.id, account_id)
        .await?
        .map_or(0, |a| a.sessions_epoch);
    let session = Session {
        account_id: account_id.to_owned(),
        auth_time: now,
        acr: acr.to_owned(),
        amr,
        sid: uuid::Uuid::new_v4().to_string(),
        expires_at: now + lifetime.as_secs() as i64,
        epoch,
    };
    let value = random_token();
    let key = store_key(state, &realm.id, &value);
    state.ephemeral.put_json(&key, &session, lifetime).await?;
    remember(state, realm, account_id, &key).await?;
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
