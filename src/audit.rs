//! The audit trail of security events: who did what, when, from where, in which realm.
//!
//! Recording never fails the caller: a person who proved who they are is not turned away
//! because a row could not be written. A lost event is logged as an error and counted in
//! `connect_audit_failures_total`, so that monitoring sees it. Nothing secret enters an event:
//! callers pass ids, masked forms and the names of things, never a password, code, token or
//! full AHV number; the user agent is cut and stripped of control characters here.

use std::{net::IpAddr, time::Duration};

use axum::http::{header, HeaderMap};
use serde_json::Value;

use crate::{
    clock::Clock,
    domain::RealmId,
    http::client_addr::ClientAddr,
    realm::Realms,
    storage::{audit as store, Db, StoreError},
};

/// What happened. The stored name is the snake_case form (`login_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    EnrolStepCompleted,
    EnrolStepRefused,
    ActivationCodeIssued,
    ActivationCodeRevoked,
    ActivationCodeSpent,
    LoginSucceeded,
    LoginFailed,
    AccountLocked,
    AccountUnlocked,
    AccountDisabled,
    AccountEnabled,
    PhoneChanged,
    EmailChanged,
    PasswordChanged,
    AppAdded,
    AppRemoved,
    RecoveryCodesIssued,
    RecoveryCodeUsed,
    /// Support took the recovery codes away.
    RecoveryCodesRemoved,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    /// A passkey that could not be added (its ceremony failed or the key was known).
    PasskeyRefused,
    SessionsEnded,
    Logout,
    RefreshTokenReused,
    AbuseLimitHit,
    AdminCommand,
    /// The person proved their factors again for a sensitive action of the account page.
    StepUpPassed,
    /// A wrong password or code at that proof, or too many.
    StepUpRefused,
    /// The person closed their account.
    AccountClosed,
    /// The person downloaded their data.
    DataDownloaded,
    /// A recovery began (« Mot de passe oublié ? », or a requested letter's code).
    RecoveryStarted,
    RecoveryStepCompleted,
    RecoveryStepRefused,
    /// A person who lost their phone asked for a new activation letter.
    LetterRequested,
    /// Every second factor of the account was removed (a lost phone replaced by letter).
    SecondFactorsRemoved,
    /// `connect admin staff add`: a staff member, their role and caisses, and the invitation.
    StaffAdded,
    /// `connect admin staff invite`: a new invitation link; the earlier one stopped working.
    StaffInvited,
    /// `connect admin staff set`: a new role or new caisses.
    StaffChanged,
    /// `connect admin staff remove`: the staff role taken away.
    StaffRemoved,
    /// A staff member finished the enrolment: passkey registered, account active.
    StaffEnrolled,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EnrolStepCompleted => "enrol_step_completed",
            Kind::EnrolStepRefused => "enrol_step_refused",
            Kind::ActivationCodeIssued => "activation_code_issued",
            Kind::ActivationCodeRevoked => "activation_code_revoked",
            Kind::ActivationCodeSpent => "activation_code_spent",
            Kind::LoginSucceeded => "login_succeeded",
            Kind::LoginFailed => "login_failed",
            Kind::AccountLocked => "account_locked",
            Kind::AccountUnlocked => "account_unlocked",
            Kind::AccountDisabled => "account_disabled",
            Kind::AccountEnabled => "account_enabled",
            Kind::PhoneChanged => "phone_changed",
            Kind::EmailChanged => "email_changed",
            Kind::PasswordChanged => "password_changed",
            Kind::AppAdded => "app_added",
            Kind::AppRemoved => "app_removed",
            Kind::RecoveryCodesIssued => "recovery_codes_issued",
            Kind::RecoveryCodeUsed => "recovery_code_used",
            Kind::RecoveryCodesRemoved => "recovery_codes_removed",
            Kind::PasskeyAdded => "passkey_added",
            Kind::PasskeyRenamed => "passkey_renamed",
            Kind::PasskeyRemoved => "passkey_removed",
            Kind::PasskeyRefused => "passkey_refused",
            Kind::SessionsEnded => "sessions_ended",
            Kind::Logout => "logout",
            Kind::RefreshTokenReused => "refresh_token_reused",
            Kind::AbuseLimitHit => "abuse_limit_hit",
            Kind::AdminCommand => "admin_command",
            Kind::StepUpPassed => "step_up_passed",
            Kind::StepUpRefused => "step_up_refused",
            Kind::AccountClosed => "account_closed",
            Kind::DataDownloaded => "data_downloaded",
            Kind::RecoveryStarted => "recovery_started",
            Kind::RecoveryStepCompleted => "recovery_step_completed",
            Kind::RecoveryStepRefused => "recovery_step_refused",
            Kind::LetterRequested => "letter_requested",
            Kind::SecondFactorsRemoved => "second_factors_removed",
            Kind::StaffAdded => "staff_added",
            Kind::StaffInvited => "staff_invited",
            Kind::StaffChanged => "staff_changed",
            Kind::StaffRemoved => "staff_removed",
            Kind::StaffEnrolled => "staff_enrolled",
        }
    }
}

/// One event, built with the methods below and handed to [`Audit::record`].
#[derive(Clone, Debug)]
pub struct Event {
    kind: Kind,
    realm: RealmId,
    account: Option<String>,
    client: Option<String>,
    addr: Option<IpAddr>,
    user_agent: Option<String>,
    operator: Option<String>,
    reason: Option<String>,
    detail: Value,
}

/// The longest user agent kept; real ones are shorter, and a longer one is noise or an attack.
const MAX_USER_AGENT: usize = 256;
/// The longest free text (operator, reason) kept.
const MAX_TEXT: usize = 1000;

/// Keeps at most `max` characters and no control characters, so that an event read back
/// as a log or JSON line cannot forge another one.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Event {
    pub fn new(kind: Kind, realm: &RealmId) -> Event {
        Event {
            kind,
            realm: realm.clone(),
            account: None,
            client: None,
            addr: None,
            user_agent: None,
            operator: None,
            reason: None,
            detail: Value::Object(Default::default()),
        }
    }

    /// The account concerned (its id, the `sub`).
    pub fn account(mut self, id: &str) -> Event {
        self.account = Some(id.to_owned());
        self
    }

    pub fn client(mut self, client_id: &str) -> Event {
        self.client = Some(client_id.to_owned());
        self
    }

    /// Where the request came from: the client's address and its user agent.
    pub fn origin(mut self, addr: ClientAddr, headers: &HeaderMap) -> Event {
        self.addr = Some(addr.0);
        self.user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clean(ua, MAX_USER_AGENT));
        self
    }

    /// Who ran an admin command.
    pub fn operator(mut self, who: &str) -> Event {
        self.operator = Some(clean(who, MAX_TEXT));
        self
    }

    /// Why, in the operator's words.
    pub fn reason(mut self, why: &str) -> Event {
        self.reason = Some(clean(why, MAX_TEXT));
        self
    }

    /// Non-secret facts as a JSON object (`{"factor": "sms"}`, `{"step": 3}`).
    pub fn detail(mut self, detail: Value) -> Event {
        self.detail = detail;
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// The audit service: built once at start, cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    db: Db,
    clock: Clock,
}

impl Audit {
    pub fn new(db: Db, clock: Clock) -> Audit {
        Audit { db, clock }
    }

    /// Writes the event. A failure is logged and counted, never returned (see the module doc).
    pub async fn record(&self, event: Event) {
        if let Err(e) = store::insert(&self.db, &self.row(&event)).await {
            metrics::counter!("connect_audit_failures_total").increment(1);
            tracing::error!(
                realm = %event.realm,
                kind = event.kind.as_str(),
                error = %crate::http::error::error_chain(&e),
                "audit event not stored"
            );
        }
    }

    /// The row of an event about to be written, counted as written: [`Audit::record`], or a
    /// bulk command that writes its events in its own transaction (then the events are stored
    /// or rolled back with what they tell).
    pub fn row<'a>(&self, event: &'a Event) -> store::NewEvent<'a> {
        metrics::counter!("connect_audit_events_total", "kind" => event.kind.as_str()).increment(1);
        store::NewEvent {
            realm: &event.realm,
            at: self.clock.unix(),
            kind: event.kind.as_str(),
            account_id: event.account.as_deref(),
            client_id: event.client.as_deref(),
            client_addr: event.addr.map(|a| a.to_string()),
            user_agent: event.user_agent.as_deref(),
            operator: event.operator.as_deref(),
            reason: event.reason.as_deref(),
            detail: event.detail.to_string(),
        }
    }

    /// Events of a realm since `since` (Unix seconds), of one account if given, as JSON
    /// objects in time order: what `connect admin audit` prints, one per line.
    pub async fn read(
        &self,
        realm: &RealmId,
        account: Option<&str>,
        since: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let rows = store::list(&self.db, realm, account, since).await?;
        Ok(rows.into_iter().map(as_json).collect())
    }

    /// Removes each realm's events older than its `audit.retention_days`; returns how many.
    pub async fn purge(&self, realms: &Realms) -> Result<u64, StoreError> {
        let now = self.clock.unix();
        let mut purged = 0;
        for realm in realms.iter() {
            let keep = realm.audit.retention.as_secs() as i64;
            purged += store::purge(&self.db, &realm.id, now - keep).await?;
        }
        Ok(purged)
    }

    /// Purges at once and then every day, for as long as the server runs.
    pub fn spawn_daily_purge(self, realms: Realms) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every_day = tokio::time::interval(Duration::from_secs(86_400));
            loop {
                every_day.tick().await;
                match self.purge(&realms).await {
                    Ok(n) => {
                        tracing::info!(purged = n, "audit events past their retention removed")
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::http::error::error_chain(&e), "audit purge failed")
                    }
                }
            }
        })
    }
}

fn as_json(e: store::StoredEvent) -> Value {
    let at = chrono::DateTime::from_timestamp(e.at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let detail = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    serde_json::json!({
        "at": at,
        "realm": e.realm,
        "kind": e.kind,
        "account": e.account_id,
        "client": e.client_id,
        "addr": e.client_addr,
        "user_agent": e.user_agent,
        "operator": e.operator,
        "reason": e.reason,
        "detail": detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_long_texts_are_cut() {
        assert_eq!(clean("Mozilla\r\nX-Evil: 1", 256), "MozillaX-Evil: 1");
        assert_eq!(
            clean(&"a".repeat(300), MAX_USER_AGENT).len(),
            MAX_USER_AGENT
        );
    }

    #[test]
    fn kinds_are_stored_in_snake_case() {
        assert_eq!(Kind::RefreshTokenReused.as_str(), "refresh_token_reused");
        assert_eq!(Kind::EnrolStepRefused.as_str(), "enrol_step_refused");
    }
}
