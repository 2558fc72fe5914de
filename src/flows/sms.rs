//! Sending an SMS code, at enrolment and at login, under the realm's limits: a cooldown
//! between two codes, and counts per number, per account and per client address per hour
//! and per day, against SMS pumping.

use crate::{
    app::AppState,
    domain::{Language, PhoneNumber},
    http::{ClientAddr, HttpError},
    limits::Limit,
    notify::messages,
    otp,
    realm::Realm,
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

/// Sends a new SMS code to `phone` unless a limit says no. `account` names the account or
/// the enrolment the code is for.
#[allow(clippy::too_many_arguments)]
pub async fn send_code(
    state: &AppState,
    realm: &Realm,
    lang: Language,
    phone: &PhoneNumber,
    account: &str,
    addr: &ClientAddr,
    last_sent_at: Option<i64>,
    purpose: &str,
) -> Result<Result<Sent, Refused>, HttpError> {
    let now = state.clock.unix();
    let cooldown = realm.sms.resend_cooldown.as_secs() as i64;
    if let Some(last) = last_sent_at {
        if now < last + cooldown {
            return Ok(Err(Refused::Cooldown((last + cooldown - now) as u64)));
        }
    }
    let r = &realm.sms;
    let address = addr.subject();
    let checks = [
        (
            Limit::per_hour("sms-per-number-hour", r.per_number_per_hour),
            phone.as_e164(),
        ),
        (
            Limit::per_day("sms-per-number-day", r.per_number_per_day),
            phone.as_e164(),
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
    if let Err(e) = state
        .limits
        .charge(realm.id.as_str(), &checks)
        .await
        .map_err(HttpError::internal(lang))?
    {
        return Ok(Err(Refused::Limited(e.retry_after)));
    }
    let code = otp::sms_code();
    let minutes = r.code_validity.as_secs().div_ceil(60);
    let text = messages::sms_code(lang, realm, &code, minutes);
    if let Err(err) = state.notifier.send_sms(phone, &text).await {
        tracing::error!(realm = %realm.id, error = %err, "SMS code not sent");
        return Ok(Err(Refused::Failed));
    }
    metrics::counter!("connect_sms_sent_total", "realm" => realm.id.to_string()).increment(1);
    Ok(Ok(Sent {
        code_hash: otp::hash(&state.secret_hasher, purpose, &code),
        expires_at: now + r.code_validity.as_secs() as i64,
        sent_at: now,
    }))
}
