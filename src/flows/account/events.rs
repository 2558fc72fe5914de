//! « Événements de sécurité récents »: the account's latest events of the audit trail, each
//! as a sentence in the person's language, with when, in which browser and from which
//! network.

use axum::{extract::State, http::StatusCode, response::Response};
use minijinja::{context, Value};
use serde::Serialize;

use super::{
    me,
    sessions::{browser_of, network_of},
    swiss_time,
};
use crate::{
    app::AppState,
    http::{Page, PageError},
    storage::audit,
};

/// How many events the page shows at most.
const SHOWN: usize = 30;
/// How many are read to find them (some kinds are not shown).
const READ: i64 = 100;

/// The sentence of an event for the person (a locale key), or `None` for an event the person
/// need not see (each single session's end, which the change that ended it already says). A
/// kind added later is shown with a general sentence until it has its own.
pub fn sentence_of(kind: &str, detail: &serde_json::Value) -> Option<&'static str> {
    let text = |name: &str| detail.get(name).and_then(|v| v.as_str());
    Some(match kind {
        "login_succeeded" => "event-login",
        "login_failed" => match (text("factor"), text("refused")) {
            (_, Some(_)) => "event-login-refused",
            (Some("sms" | "app" | "recovery_code"), None) => "event-login-failed-code",
            _ => "event-login-failed-password",
        },
        "logout" => "event-logout",
        "account_locked" => "event-account-locked",
        "account_unlocked" => "event-account-unlocked",
        "account_disabled" => "event-account-disabled",
        "account_enabled" => "event-account-enabled",
        "password_changed" => match text("by") {
            Some("recovery") => "event-password-reset",
            _ => "event-password-changed",
        },
        "phone_changed" => match text("by") {
            Some("person") => "event-phone-changed",
            Some("letter") => "event-phone-changed-letter",
            _ => "event-phone-changed-support",
        },
        "email_changed" => "event-email-changed",
        "step_up_passed" => "event-stepup-passed",
        "step_up_refused" => "event-stepup-refused",
        "refresh_token_reused" => "event-token-reused",
        "activation_code_spent" => "event-enrolled",
        "data_downloaded" => "event-data-downloaded",
        "app_added" => "event-app-added",
        "app_removed" => "event-app-removed",
        "recovery_codes_issued" => "event-recovery-codes-issued",
        "recovery_code_used" => "event-recovery-code-used",
        "passkey_added" => "event-passkey-added",
        "passkey_renamed" => "event-passkey-renamed",
        "passkey_removed" => "event-passkey-removed",
        "recovery_started" => "event-recovery-started",
        "letter_requested" => "event-letter-requested",
        "second_factors_removed" => "event-second-factors-removed",
        "sessions_ended" => match (text("why"), text("kept")) {
            (None, _) => return None,
            (Some(_), Some(_)) => "event-sessions-ended-others",
            (Some(_), None) => "event-sessions-ended-all",
        },
        "admin_command"
        | "abuse_limit_hit"
        | "enrol_step_completed"
        | "enrol_step_refused"
        | "passkey_refused"
        | "recovery_step_completed"
        | "recovery_step_refused" => return None,
        _ => "event-other",
    })
}

/// One event as the page lists it.
#[derive(Serialize)]
struct EventLine {
    at: String,
    sentence: &'static str,
    program: Option<&'static str>,
    system: Option<&'static str>,
    network: Option<String>,
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let rows = audit::recent_of_account(&state.db, &realm.id, &me.account.id, READ).await?;
    let lines: Vec<EventLine> = rows
        .into_iter()
        .filter_map(|e| {
            let detail = serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null);
            let sentence = sentence_of(&e.kind, &detail)?;
            let (program, system) = e.user_agent.as_deref().map_or((None, None), browser_of);
            Some(EventLine {
                at: swiss_time(e.at),
                sentence,
                program,
                system,
                network: e
                    .client_addr
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .map(network_of),
            })
        })
        .take(SHOWN)
        .collect();
    page.at(format!("/{}/account/events", realm.id));
    let ctx = context! {
        events => Value::from_serialize(&lines),
        back => format!("/{}/account", realm.id),
    };
    page.render(StatusCode::OK, "account/events.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_read_as_sentences_and_single_session_ends_are_left_out() {
        assert_eq!(
            sentence_of("login_succeeded", &json!({})),
            Some("event-login")
        );
        assert_eq!(
            sentence_of("login_failed", &json!({"factor": "password"})),
            Some("event-login-failed-password")
        );
        assert_eq!(
            sentence_of("login_failed", &json!({"factor": "sms"})),
            Some("event-login-failed-code")
        );
        assert_eq!(
            sentence_of(
                "login_failed",
                &json!({"factor": "password", "refused": "x"})
            ),
            Some("event-login-refused")
        );
        assert_eq!(sentence_of("sessions_ended", &json!({"sid": "s"})), None);
        assert_eq!(
            sentence_of(
                "sessions_ended",
                &json!({"why": "password_changed", "kept": "current"})
            ),
            Some("event-sessions-ended-others")
        );
        assert_eq!(
            sentence_of("phone_changed", &json!({"phone": "+41 79 *** ** 67"})),
            Some("event-phone-changed-support")
        );
        assert_eq!(
            sentence_of("something_new", &json!({})),
            Some("event-other")
        );
    }
}
