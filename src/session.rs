//! The SSO session of a person in a realm: a random cookie whose keyed hash names the
//! session in the ephemeral store. A new login always gets a new cookie (no fixation).
//!
//! Each account keeps an index of its sessions (expiring with them) and a `sessions_epoch`
//! in SQL, so that `protocol::logout::Logouts::end_all` can end every session of an account: those it finds in the
//! index are ended with back-channel logout, and any it cannot reach (another process's
//! in-memory store, as with `connect admin` in dev) no longer count, since a session is only
//! good under the epoch it started in and while the account may log in.

use std::{net::IpAddr, time::Duration};

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{
    clock::Clock,
    domain::RealmId,
    http::ClientAddr,
    keys::SecretHasher,
    realm::Realm,
    storage::{accounts, ephemeral::Record, Db, Ephemeral, StoreError},
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
    /// When the session started (`auth_time` may be older: a session kept while the others
    /// ended keeps its proof). 0 for sessions stored before this was kept.
    #[serde(default)]
    pub started_at: i64,
    /// The browser's `User-Agent` when the session started (cut, no control characters), for
    /// the person's list of their sessions.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The client address the session started from.
    #[serde(default)]
    pub addr: Option<IpAddr>,
}

/// The longest user agent kept with a session; real ones are shorter.
const MAX_USER_AGENT: usize = 256;

/// Where a session starts: the browser and its address, shown to the person on the account
/// page so that they can tell their own sessions from someone else's.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub user_agent: Option<String>,
    pub addr: Option<IpAddr>,
}

impl Origin {
    pub fn of(addr: ClientAddr, headers: &HeaderMap) -> Origin {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT)
                    .collect()
            });
        Origin {
            user_agent,
            addr: Some(addr.0),
        }
    }
}

/// The SSO sessions of every realm: what starts, finds and ends them.
#[derive(Clone)]
pub struct Sessions {
    /// Sessions by the keyed hash of their cookie.
    sessions: Record<Session>,
    /// The index of an account's sessions: the cookie hashes of its sessions.
    index: Record<Vec<String>>,
    hasher: SecretHasher,
    db: Db,
    clock: Clock,
    /// Whether cookies are `Secure` and `__Host-` (the issuer is HTTPS).
    secure: bool,
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

pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    B64.encode(raw)
}

/// Compare-and-set rounds when adding to an index that others change at the same time.
const INDEX_ROUNDS: usize = 16;

impl Sessions {
    pub fn new(
        store: &Ephemeral,
        hasher: &SecretHasher,
        db: &Db,
        clock: &Clock,
        secure: bool,
    ) -> Self {
        Sessions {
            sessions: Record::plain(store, "session"),
            index: Record::plain(store, "sessions-of"),
            hasher: hasher.clone(),
            db: db.clone(),
            clock: clock.clone(),
            secure,
        }
    }

    /// The live session of this browser in this realm, if any.
    pub async fn current(
        &self,
        realm: &Realm,
        jar: &CookieJar,
    ) -> Result<Option<Session>, StoreError> {
        let Some(cookie) = jar.get(&cookie_name(&realm.id, self.secure)) else {
            return Ok(None);
        };
        let id = self.hasher.hash(cookie.value());
        let session = self.sessions.get(realm.id.as_str(), &id).await?;
        let now = self.clock.unix();
        let Some(session) = session.filter(|s| s.expires_at > now) else {
            return Ok(None);
        };
        // A locked, disabled or removed account, or one whose sessions support ended, has none.
        let account = accounts::by_id(&self.db, &realm.id, &session.account_id).await?;
        Ok(account
            .filter(|a| a.may_log_in(now) && a.sessions_epoch == session.epoch)
            .map(|_| session))
    }

    /// Starts a session after a successful login and returns the jar with its cookie; the
    /// session does not know where it started (see [`Sessions::start_from`]).
    pub async fn start(
        &self,
        realm: &Realm,
        jar: CookieJar,
        account_id: &str,
        acr: &str,
        amr: Vec<String>,
    ) -> Result<(CookieJar, Session), StoreError> {
        self.start_from(realm, jar, account_id, acr, amr, Origin::default())
            .await
    }

    /// Starts a session after a successful login, remembering the browser and address it
    /// started from, and returns the jar with its cookie.
    pub async fn start_from(
        &self,
        realm: &Realm,
        jar: CookieJar,
        account_id: &str,
        acr: &str,
        amr: Vec<String>,
        origin: Origin,
    ) -> Result<(CookieJar, Session), StoreError> {
        let now = self.clock.unix();
        let lifetime = realm.lifetimes.session;
        let epoch = accounts::by_id(&self.db, &realm.id, account_id)
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
            started_at: now,
            user_agent: origin.user_agent,
            addr: origin.addr,
        };
        let value = random_token();
        let id = self.hasher.hash(&value);
        self.sessions
            .put(realm.id.as_str(), &id, &session, lifetime)
            .await?;
        self.remember(realm, account_id, &id).await?;
        let cookie = Cookie::build((cookie_name(&realm.id, self.secure), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build();
        Ok((jar.add(cookie), session))
    }

    /// Ends the session of this browser, if any, and clears its cookie.
    pub async fn end(
        &self,
        realm: &Realm,
        jar: CookieJar,
    ) -> Result<(CookieJar, Option<Session>), StoreError> {
        let name = cookie_name(&realm.id, self.secure);
        let Some(cookie) = jar.get(&name).cloned() else {
            return Ok((jar, None));
        };
        let id = self.hasher.hash(cookie.value());
        let session = self.sessions.take(realm.id.as_str(), &id).await?;
        let removal = Cookie::build((name, ""))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build();
        Ok((jar.remove(removal), session))
    }

    /// Adds a session to its account's index. Sessions of a realm share one lifetime, so the
    /// index, renewed with each new session, outlives every session it names.
    async fn remember(&self, realm: &Realm, account_id: &str, id: &str) -> Result<(), StoreError> {
        let scope = realm.id.as_str();
        let now = self.clock.unix();
        for _ in 0..INDEX_ROUNDS {
            let stored = self.index.read(scope, account_id).await?;
            let mut ids = stored.value.clone().unwrap_or_default();
            // Sessions that have ended meanwhile are dropped now and then.
            if ids.len() >= 16 {
                let mut live = Vec::with_capacity(ids.len());
                for i in ids {
                    let s = self.sessions.get(scope, &i).await?;
                    if s.is_some_and(|s| s.expires_at > now) {
                        live.push(i);
                    }
                }
                ids = live;
            }
            ids.push(id.to_owned());
            let life = realm.lifetimes.session;
            if self
                .index
                .swap(scope, account_id, &stored, &ids, life)
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::Corrupt(format!(
            "the session index of account {account_id} kept changing"
        )))
    }

    /// Takes every session in the account's index out of the store.
    pub(crate) async fn take_all(
        &self,
        realm: &Realm,
        account_id: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let scope = realm.id.as_str();
        let ids = self
            .index
            .take(scope, account_id)
            .await?
            .unwrap_or_default();
        let mut taken = Vec::new();
        for id in ids {
            if let Some(session) = self.sessions.take(scope, &id).await? {
                taken.push(session);
            }
        }
        Ok(taken)
    }

    /// The live sessions of an account that still count (started under `epoch`, the
    /// account's current one), oldest first.
    pub async fn list(
        &self,
        realm: &Realm,
        account_id: &str,
        epoch: i64,
    ) -> Result<Vec<Session>, StoreError> {
        let scope = realm.id.as_str();
        let now = self.clock.unix();
        let ids = self.index.get(scope, account_id).await?.unwrap_or_default();
        let mut live = Vec::new();
        for id in ids {
            if let Some(s) = self.sessions.get(scope, &id).await? {
                if s.expires_at > now && s.epoch == epoch {
                    live.push(s);
                }
            }
        }
        live.sort_by_key(|s| (s.started_at, s.auth_time));
        Ok(live)
    }

    /// Takes every session in the account's index out of the store but the one named by
    /// `keep` (a `sid`), which is stored again under the account's new `epoch`, so that it
    /// still counts after the epoch moved on. Returns the sessions taken.
    pub(crate) async fn take_all_but(
        &self,
        realm: &Realm,
        account_id: &str,
        keep: &str,
        epoch: i64,
    ) -> Result<Vec<Session>, StoreError> {
        let scope = realm.id.as_str();
        let now = self.clock.unix();
        let ids = self
            .index
            .take(scope, account_id)
            .await?
            .unwrap_or_default();
        let mut taken = Vec::new();
        for id in ids {
            let kept = self.sessions.get(scope, &id).await?;
            if let Some(mut session) = kept.filter(|s| s.sid == keep && s.expires_at > now) {
                // Written over in place, never taken: the person's next request finds it.
                session.epoch = epoch;
                let left = Duration::from_secs((session.expires_at - now) as u64);
                self.sessions.put(scope, &id, &session, left).await?;
                self.remember(realm, account_id, &id).await?;
            } else if let Some(session) = self.sessions.take(scope, &id).await? {
                taken.push(session);
            }
        }
        Ok(taken)
    }
}
