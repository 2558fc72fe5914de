//! OpenID Connect Back-Channel Logout 1.0, the provider's side: when a session ends, every
//! client that took part in it and registered a `backchannel_logout_uri` is sent a Logout Token.
//!
//! Delivery is best effort and happens in background tasks: the person's logout page never
//! waits for a client. What a missed delivery leaves behind is bounded, because the grants of
//! the session are revoked in SQL before anything is sent, so the client's refresh tokens stop
//! working and its access tokens fail at userinfo and introspection whether or not it hears.

use std::{sync::Arc, time::Duration};

use reqwest::{redirect::Policy, StatusCode};
use tracing::Instrument;
use url::Url;

use super::tokens::Tokens;
use crate::{
    http::outbound::Attempt,
    realm::{Client, Realm},
    session::Session,
    storage::grants::Participant,
};

/// One attempt may take this long, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// What posts Logout Tokens: the HTTP client and the signer; built once, in `AppState`.
#[derive(Clone)]
pub struct Backchannel {
    http: reqwest::Client,
    tokens: Tokens,
    /// The deliveries under way, so that a short-lived process (`connect admin`) can wait
    /// for them before it exits.
    deliveries: tokio_util::task::TaskTracker,
}

impl Backchannel {
    pub fn new(tokens: Tokens) -> Result<Backchannel, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirected POST turns into a GET without the token, and the token must go
            // to the registered URI only.
            .redirect(Policy::none())
            .build()?;
        Ok(Backchannel {
            http,
            tokens,
            deliveries: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Waits, at most `within`, for the deliveries under way; for a process about to exit.
    pub async fn settle(&self, within: Duration) {
        self.deliveries.close();
        let _ = tokio::time::timeout(within, self.deliveries.wait()).await;
    }

    /// Starts one background delivery per client of `participants` that has a back-channel
    /// URI; returns at once. The clients come from the grants of `session.sid`.
    pub fn notify(&self, realm: &Arc<Realm>, session: &Session, participants: Vec<Participant>) {
        for p in participants {
            let Some(client) = realm.clients.get(&p.client_id) else {
                // The client left the realm file since it logged in; nobody to tell.
                continue;
            };
            let Some(uri) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            let span = tracing::info_span!(
                "backchannel_logout",
                realm = %realm.id,
                client_id = %client.id,
            );
            let (this, realm, client) = (self.clone(), realm.clone(), client.clone());
            let sid = session.sid.clone();
            self.deliveries.spawn(
                async move { this.send(&realm, &client, &uri, &p.account_id, &sid).await }
                    .instrument(span),
            );
        }
    }

    /// Signs and posts one Logout Token, with one retry after a transient failure. Logs name
    /// the client and the status or error, never the token.
    async fn send(&self, realm: &Realm, client: &Client, uri: &Url, sub: &str, sid: &str) {
        let Ok(token) = self.tokens.sign_logout_token(realm, client, sub, sid).await else {
            // `server_error` has logged the cause.
            count("error");
            return;
        };
        let mut attempt = 1;
        loop {
            match post(&self.http, uri, &token).await {
                Attempt::Delivered => {
                    count("delivered");
                    tracing::debug!(attempt, "logout token delivered");
                    return;
                }
                Attempt::Refused(status) => {
                    count("refused");
                    tracing::warn!(
                        attempt,
                        status = status.as_u16(),
                        "client refused the logout token"
                    );
                    return;
                }
                Attempt::Transient(reason) if attempt >= 2 => {
                    count("failed");
                    tracing::warn!(attempt, reason = %reason, "logout token not delivered; giving up");
                    return;
                }
                Attempt::Transient(reason) => {
                    count("retried");
                    tracing::info!(attempt, reason = %reason, "logout token not delivered; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// §2.5: `POST` of `application/x-www-form-urlencoded` with `logout_token`.
async fn post(http: &reqwest::Client, uri: &Url, token: &str) -> Attempt {
    let res = http
        .post(uri.clone())
        .form(&[("logout_token", token)])
        .send()
        .await;
    // §2.8: 200 or 204.
    Attempt::of(res, |status| {
        matches!(status, StatusCode::OK | StatusCode::NO_CONTENT)
    })
}

/// `outcome` is one of `delivered`, `refused`, `failed`, `error` (the token could not be
/// signed), per token, and `retried`, per extra attempt.
fn count(outcome: &'static str) {
    metrics::counter!("connect_backchannel_logout_total", "outcome" => outcome).increment(1);
}
