//! The seam between the protocol and the pages that log a person in (as node
//! `oidc-provider`'s interactions).
//!
//! `authorize` keeps a request it cannot answer at once as an interaction: the pending
//! request and its expiry (the realm's `login_flow` lifetime) under a random id, and sends
//! the browser to `/{realm}/login?flow=<id>`. The pages know of it only what [`View`] shows.
//! A page flow (password, SMS step; later passkeys, recovery, e-ID) that has proved who the
//! person is starts the SSO session itself, since a login without a relying party needs one
//! too, then calls [`Interactions::finish`] with that session and sends the browser to the
//! resume endpoint it names. The resume endpoint (`authorize::resume`) takes the interaction
//! once, only from the browser whose SSO session finished it (same session and account), and
//! answers the client as `authorize` would have: a code, or an error.

use serde::{Deserialize, Serialize};

use super::authorize::AuthRequest;
use crate::{
    clock::Clock,
    realm::Realm,
    session::{random_token, Session},
    storage::{ephemeral::Record, Ephemeral, StoreError},
};

/// What a login proved, as the SSO session it started says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proof {
    pub account_id: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
    /// The SSO session that finished the interaction: only its browser may resume it.
    pub sid: String,
}

impl From<&Session> for Proof {
    fn from(s: &Session) -> Self {
        Proof {
            account_id: s.account_id.clone(),
            acr: s.acr.clone(),
            amr: s.amr.clone(),
            auth_time: s.auth_time,
            sid: s.sid.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Interaction {
    request: AuthRequest,
    /// Unix second after which the interaction is over, whatever the store's expiry.
    expires_at: i64,
    proof: Option<Proof>,
}

/// What a page may know of a pending interaction.
#[derive(Clone, Debug)]
pub struct View {
    pub client_id: String,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// The classes asked for, that we know.
    pub acr_values: Vec<String>,
    /// `prompt=login`: a new login was asked for.
    pub prompt_login: bool,
}

/// The pending interactions of every realm.
#[derive(Clone)]
pub struct Interactions {
    pending: Record<Interaction>,
    clock: Clock,
}

/// Whether `id` may name an interaction at all (not empty, not long).
pub fn valid_id(id: Option<&str>) -> Option<&str> {
    id.filter(|s| !s.is_empty() && s.len() <= 64)
}

impl Interactions {
    pub fn new(store: &Ephemeral, clock: &Clock) -> Self {
        Interactions {
            pending: Record::plain(store, "interaction"),
            clock: clock.clone(),
        }
    }

    /// Keeps `request` while the person logs in; returns the interaction's id.
    pub(super) async fn start(
        &self,
        realm: &Realm,
        request: AuthRequest,
    ) -> Result<String, StoreError> {
        let id = random_token();
        let life = realm.lifetimes.login_flow;
        let pending = Interaction {
            request,
            expires_at: self.clock.unix() + life.as_secs() as i64,
            proof: None,
        };
        self.pending
            .put(realm.id.as_str(), &id, &pending, life)
            .await?;
        Ok(id)
    }

    async fn live(&self, realm: &Realm, id: &str) -> Result<Option<Interaction>, StoreError> {
        let Some(id) = valid_id(Some(id)) else {
            return Ok(None);
        };
        let now = self.clock.unix();
        Ok(self
            .pending
            .get(realm.id.as_str(), id)
            .await?
            .filter(|i| i.expires_at > now))
    }

    /// What the pages may show of a pending interaction; `None` when it is unknown or over.
    pub async fn view(&self, realm: &Realm, id: &str) -> Result<Option<View>, StoreError> {
        Ok(self.live(realm, id).await?.map(|i| View {
            client_id: i.request.client_id,
            login_hint: i.request.login_hint,
            ui_locales: i.request.ui_locales,
            acr_values: i.request.acr_values,
            prompt_login: i.request.prompt_login,
        }))
    }

    /// Ends the person's part of an interaction with what the login proved; returns where
    /// the browser goes next (the resume endpoint), or `None` when the interaction is unknown
    /// or over.
    pub async fn finish(
        &self,
        realm: &Realm,
        id: &str,
        proof: Proof,
    ) -> Result<Option<String>, StoreError> {
        let Some(mut pending) = self.live(realm, id).await? else {
            return Ok(None);
        };
        let left = pending.expires_at - self.clock.unix();
        pending.proof = Some(proof);
        let ttl = std::time::Duration::from_secs(left.max(1) as u64);
        self.pending
            .put(realm.id.as_str(), id, &pending, ttl)
            .await?;
        Ok(Some(format!("/{}/authorize/resume/{id}", realm.id)))
    }

    /// Takes a finished interaction, once, for the browser whose session finished it;
    /// `None` when it is unknown, over, unfinished, or finished by another session.
    pub(super) async fn resume(
        &self,
        realm: &Realm,
        id: &str,
        session: &Session,
    ) -> Result<Option<AuthRequest>, StoreError> {
        let ours = |i: &Interaction| {
            i.proof
                .as_ref()
                .is_some_and(|p| p.sid == session.sid && p.account_id == session.account_id)
        };
        // Read first, so that another browser's attempt does not use it up.
        if !self.live(realm, id).await?.is_some_and(|i| ours(&i)) {
            return Ok(None);
        }
        let taken = self.pending.take(realm.id.as_str(), id).await?;
        Ok(taken.filter(ours).map(|i| i.request))
    }
}
