//! Sending an SMS code, at enrolment and at login, under the realm's limits: a cooldown
//! between two codes, and counts per number, per account and per client address per hour
//! and per day, against SMS pumping.

use crate::{
    clock::Clock,
    domain::{Language, PhoneNumber},
    http::ClientAddr,
    keys::SecretHasher,
    limits::{Limit, Limits},
    notify::{messages, Notifier},
    otp,
    realm::Realm,
    storage::StoreError,
};

/// Why no SMS went out; each has its message for the person.
#[derive(Debug)]
pub enum Refused {
    /// The last code is too recent; a new one may be asked for after these seconds.
    Cooldown(u64),
    /// A limit was reached (the page says when to try again).
    Limited(std::time::Duration),
    /// The gateway failed; logged, and the person may try again.
    Failed,
}

impl Refused {
    /// The message key for the person, the number it shows (seconds or minutes), the status.
    pub fn message(&self) -> (&'static str, Option<u64>, axum::http::StatusCode) {
        use axum::http::StatusCode;
        match self {
            Refused::Cooldown(s) => (
                "error-sms-cooldown",
                Some(*s),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            Refused::Limited(d) => (
                "error-limit",
                Some(d.as_secs().div_ceil(60)),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            Refused::Failed => ("error-sms-failed", None, StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

/// A code that went out: its hash, bound to `purpose`, and when it expires.
pub struct Sent {
    pub code_hash: String,
    pub expires_at: i64,
    pub sent_at: i64,
}

/// What a code is sent for.
pub struct CodeFor<'a> {
    pub phone: &'a PhoneNumber,
    /// The account or the enrolment the code is for (counted by the per-account limits).
    pub account: &'a str,
    /// What the code is bound to (see `otp::hash`).
    pub purpose: &'a str,
    /// When the previous code went out, for the cooldown.
    pub last_sent_at: Option<i64>,
}

/// Sends SMS codes under the realm's limits; built once, in `AppState`.
#[derive(Clone)]
pub struct SmsCodes {
    limits: Limits,
    notifier: Notifier,
    hasher: SecretHasher,
    clock: Clock,
}

impl SmsCodes {
    pub fn new(limits: &Limits, notifier: &Notifier, hasher: &SecretHasher, clock: &Clock) -> Self {
        SmsCodes {
            limits: limits.clone(),
            notifier: notifier.clone(),
            hasher: hasher.clone(),
            clock: clock.clone(),
        }
    }

    /// Sends a new code unless a limit says no; the text is in `lang`.
    pub async fn send(
        &self,
        realm: &Realm,
        lang: Language,
        addr: &ClientAddr,
        to: CodeFor<'_>,
    ) -> Result<Result<Sent, Refused>, StoreError> {
        let now = self.clock.unix();
        let r = &realm.sms;
        let cooldown = r.resend_cooldown.as_secs() as i64;
        if let Some(last) = to.last_sent_at {
            if now < last + cooldown {
                return Ok(Err(Refused::Cooldown((last + cooldown - now) as u64)));
            }
        }
        let (phone, account) = (to.phone.as_e164(), to.account);
        let address = addr.subject();
        let checks = [
            (
                Limit::per_hour("sms-per-number-hour", r.per_number_per_hour),
                phone,
            ),
            (
                Limit::per_day("sms-per-number-day", r.per_number_per_day),
                phone,
            ),
            (
                Limit::per_hour("sms-per-account-hour", r.per_account_per_hour),
                account,
            ),
            (
                Limit::per_day("sms-per-account-day", r.per_account_per_day),
                account,
            ),
            (
                Limit::per_hour("sms-per-address-hour", r.per_address_per_hour),
                address.as_str(),
            ),
            (
                Limit::per_day("sms-per-address-day", r.per_address_per_day),
                address.as_str(),
            ),
        ];
        if let Err(e) = self.limits.charge(realm.id.as_str(), &checks).await? {
            return Ok(Err(Refused::Limited(e.retry_after)));
        }
        let code = otp::sms_code();
        let minutes = r.code_validity.as_secs().div_ceil(60);
        let text = messages::sms_code(lang, realm, &code, minutes);
        if let Err(err) = self.notifier.send_sms(to.phone, &text).await {
            tracing::error!(realm = %realm.id, error = %err, "SMS code not sent");
            return Ok(Err(Refused::Failed));
        }
        metrics::counter!("connect_sms_sent_total", "realm" => realm.id.to_string()).increment(1);
        Ok(Ok(Sent {
            code_hash: otp::hash(&self.hasher, to.purpose, &code),
            expires_at: now + r.code_validity.as_secs() as i64,
            sent_at: now,
        }))
    }
}
