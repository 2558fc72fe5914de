//! E-mail and password, checked the one way wherever a person presents them (the login form,
//! « J'ai perdu mon téléphone », a requested letter's code): the per-address limits, the
//! growing delay per typed address, the same work for unknown addresses, the lock after the
//! realm's `lock_after_failures`, and the audit trail. The second factor is not this module's
//! business.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use secrecy::SecretString;

use super::throttle::Throttles;
use crate::{
    audit::{Audit, Event, Kind},
    clock::Clock,
    domain::{Email, Password},
    guard::Guard,
    http::{ClientAddr, PageError},
    keys::SecretHasher,
    limits::{Limit, Limits},
    notify::messages::AccountNotice,
    passwords::{PasswordError, Passwords},
    realm::Realm,
    storage::{
        accounts::{self, Account, AccountStatus},
        Db, Ephemeral,
    },
};

/// Checks e-mail and password; built once, in `AppState`.
#[derive(Clone)]
pub struct Credentials {
    db: Db,
    passwords: Passwords,
    throttles: Throttles,
    limits: Limits,
    audit: Audit,
    guard: Guard,
    clock: Clock,
}

/// A password presented by a person, with where it came from.
pub struct Presented<'a> {
    pub email: &'a str,
    pub password: &'a SecretString,
    pub addr: ClientAddr,
    pub headers: &'a HeaderMap,
}

/// What a presented password came to.
pub enum Checked {
    /// The right password of an account that may log in; its failure counts start again.
    Proved(Box<Account>),
    /// Refused, with the message for the person (a key of the login's words), the number it
    /// shows, and the page's status. Unknown address and wrong password read the same.
    Refused {
        message: &'static str,
        n: Option<u64>,
        status: StatusCode,
    },
}

impl Checked {
    fn refused(message: &'static str, n: Option<u64>, status: StatusCode) -> Self {
        Checked::Refused { message, n, status }
    }
}

impl Credentials {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: &Db,
        store: &Ephemeral,
        hasher: &SecretHasher,
        passwords: &Passwords,
        limits: &Limits,
        audit: &Audit,
        guard: &Guard,
        clock: &Clock,
    ) -> Self {
        Credentials {
            db: db.clone(),
            passwords: passwords.clone(),
            throttles: Throttles::new(store, hasher, db),
            limits: limits.clone(),
            audit: audit.clone(),
            guard: guard.clone(),
            clock: clock.clone(),
        }
    }

    /// Checks `presented` against the realm's accounts. `Err` for a limit of the client's
    /// address (the 429 page), a full hashing queue (503) or a failure inside.
    pub async fn check(
        &self,
        realm: &Arc<Realm>,
        presented: Presented<'_>,
    ) -> Result<Checked, PageError> {
        let now = self.clock.unix();
        let event = |kind, account: Option<&str>, detail: serde_json::Value| {
            let e = Event::new(kind, &realm.id)
                .origin(presented.addr, presented.headers)
                .detail(detail);
            match account {
                Some(id) => e.account(id),
                None => e,
            }
        };
        // Passwords checked per client address, whatever the accounts (credential stuffing).
        let subject = presented.addr.subject();
        let per_address = [
            (
                Limit::per_hour(
                    "login_passwords_per_address_hour",
                    realm.login.attempts_per_address_per_hour,
                ),
                subject.as_str(),
            ),
            (
                Limit::per_day(
                    "login_passwords_per_address_day",
                    realm.login.attempts_per_address_per_day,
                ),
                subject.as_str(),
            ),
        ];
        if let Err(e) = self.limits.charge(realm.id.as_str(), &per_address).await? {
            return Err(PageError::Limited(e.retry_after));
        }
        // The attempt is counted before its password is checked (see `throttle`).
        let throttle = self.throttles.for_address(realm, presented.email);
        if let Some(wait) = throttle.take_turn(now).await? {
            return Ok(Checked::refused(
                "error-login-delay",
                Some(wait),
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }

        // Unknown e-mail, malformed e-mail and wrong password look and take the same.
        let mut account = match presented.email.parse::<Email>() {
            Ok(email) => accounts::by_email(&self.db, &realm.id, &email).await?,
            Err(_) => None,
        };
        if let Some(a) = account.as_ref().filter(|a| !a.active && a.may_log_in(now)) {
            // Its lock has ended by itself: lifted before this password counts.
            accounts::lift_ended_lock(&self.db, &a.id, now).await?;
            account = accounts::by_id(&self.db, &realm.id, &a.id).await?;
        }
        let verified = self
            .passwords
            .verify(
                Password::presented(presented.password),
                account.as_ref().map(|a| a.password_hash.as_str()),
            )
            .await;
        let ok = match verified {
            Ok(ok) => ok,
            Err(PasswordError::Busy) => return Err(PageError::busy(realm)),
            Err(e) => return Err(e.into()),
        };
        metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => if ok { "password_ok" } else { "failure" }).increment(1);
        let account = match account {
            Some(a) if ok => a,
            account => {
                let locked = throttle.failed(account.as_ref(), now).await?;
                tracing::info!(realm = %realm.id, "password refused");
                let id = account.as_ref().map(|a| a.id.as_str());
                let failed = serde_json::json!({ "factor": "password" });
                self.audit
                    .record(event(Kind::LoginFailed, id, failed))
                    .await;
                if let (true, Some(a)) = (locked, &account) {
                    let hours = realm.login.lock_duration.as_secs().div_ceil(3600);
                    let until = now + realm.login.lock_duration.as_secs() as i64;
                    let detail = serde_json::json!({ "by": "password_failures", "until": until });
                    let locked = event(Kind::AccountLocked, Some(&a.id), detail);
                    self.audit.record(locked).await;
                    let notice = AccountNotice::LockedAfterFailures { hours };
                    self.guard.restrict(realm, a, notice).await?;
                }
                return Ok(Checked::refused(
                    "login-failed",
                    None,
                    StatusCode::UNAUTHORIZED,
                ));
            }
        };
        if !account.may_log_in(now) {
            // Only someone who knows the password learns that the account is locked.
            let message = match account.status {
                AccountStatus::Disabled | AccountStatus::Invited => "error-account-disabled",
                _ => "error-account-locked",
            };
            let detail = serde_json::json!({ "factor": "password", "refused": message });
            let refused = event(Kind::LoginFailed, Some(&account.id), detail);
            self.audit.record(refused).await;
            return Ok(Checked::refused(message, None, StatusCode::FORBIDDEN));
        }
        throttle.succeeded(&account).await?;
        Ok(Checked::Proved(Box::new(account)))
    }
}
