//! The SMS code of the login, sent to the account's number (shown masked): at once after the
//! password, or when a person with an app asks for it. Wrong codes count per login, with
//! those of the app and recovery codes, and a new code never resets the count.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::Deserialize;

use super::{
    second::{alternatives, complete, count_attempt, second_step, Method},
    SecondStep, SentSms,
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::PhoneNumber,
    flows::sms::CodeFor,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    otp,
    storage::accounts,
};

csrf_forms! {
    pub struct SmsForm {
        flow: String,
        code: String,
    }

    pub struct ResendForm {
        flow: String,
    }
}

#[derive(Deserialize)]
pub struct SmsQuery {
    flow: String,
}

/// What an SMS code of this login is bound to.
pub(super) fn purpose(flow: &str) -> String {
    format!("login-sms:{flow}")
}

/// The SMS form of the login `id` (or, before any code went out, the button that sends
/// one), with a problem to show (a message and its number).
async fn sms_page(
    state: &AppState,
    mut page: Page,
    id: &str,
    step: &SecondStep,
    problem: Option<(&str, Option<u64>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let masked = step
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
        .map(|p| p.masked())
        .unwrap_or_default();
    let others = alternatives(state, &realm, id, step, Method::Sms).await?;
    page.at(format!("/{}/login/sms?flow={id}", realm.id));
    let ctx = context! {
        csrf => page.csrf(), flow => id, masked => masked, sent => step.sms.is_some(),
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        alternatives => others,
        action => format!("/{}/login/sms", realm.id),
        resend => format!("/{}/login/sms/resend", realm.id),
        lost => match &step.interaction {
            Some(f) => format!("/{}/phone/lost?flow={f}", realm.id),
            None => format!("/{}/phone/lost", realm.id),
        },
    };
    page.render(status, "login/sms.html", ctx)
}

pub async fn show_sms(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<SmsQuery>,
) -> Result<Response, PageError> {
    let step = second_step(&state.login, &page.realm, &q.flow).await?;
    if step.phone.is_none() {
        // No number to send to: the app is the way.
        let to = format!("/{}/login/app?flow={}", page.realm.id, q.flow);
        return Ok(page.redirect(&to));
    }
    let pending = match &step.interaction {
        Some(id) => state.interactions.view(&page.realm, id).await?,
        None => None,
    };
    page.prefer(pending.and_then(|p| p.ui_locales).as_deref());
    sms_page(&state, page, &q.flow, &step, None, StatusCode::OK).await
}

/// Sends the login's SMS code: a new one after the cooldown, or the first one when a person
/// with an app asks for it.
pub async fn resend_sms(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let step = second_step(&state.login, &realm, &form.flow).await?;
    let Some(number) = step.phone.as_deref() else {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "error-bad-request"));
    };
    let number = PhoneNumber::parse(number)?;
    let to = CodeFor {
        phone: &number,
        account: &format!("account:{}", step.account_id),
        purpose: &purpose(&form.flow),
        last_sent_at: step.sms.as_ref().map(|s| s.sent_at),
    };
    match state.sms.send(&realm, page.lang, &addr, to).await? {
        Ok(sent) => {
            let notice = if step.sms.is_some() {
                "sms-resent"
            } else {
                "login-sms-sent"
            };
            let next = SecondStep {
                sms: Some(SentSms::from(sent)),
                ..step
            };
            let life = realm.lifetimes.login_flow;
            let scope = realm.id.as_str();
            state
                .login
                .steps
                .put(scope, &form.flow, &next, life)
                .await?;
            let sent = Some((notice, None));
            sms_page(&state, page, &form.flow, &next, sent, StatusCode::OK).await
        }
        Err(r) => {
            let (key, n, status) = r.message();
            sms_page(&state, page, &form.flow, &step, Some((key, n)), status).await
        }
    }
}

pub async fn submit_sms(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<SmsForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let step = second_step(&state.login, &realm, &form.flow).await?;
    // Wrong codes count per login; a new code does not reset the count.
    count_attempt(&state.login, &realm, &form.flow).await?;
    let purpose = purpose(&form.flow);
    let Some(sms) = step
        .sms
        .as_ref()
        .filter(|sms| otp::matches(&state.secret_hasher, &purpose, &sms.code_hash, &form.code))
    else {
        state
            .audit
            .record(
                Event::new(Kind::LoginFailed, &realm.id)
                    .account(&step.account_id)
                    .origin(addr, page.headers())
                    .detail(serde_json::json!({ "factor": "sms" })),
            )
            .await;
        let wrong = Some(("error-sms-code-wrong", None));
        return sms_page(
            &state,
            page,
            &form.flow,
            &step,
            wrong,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    };
    if sms.expires_at <= state.clock.unix() {
        let late = Some(("error-sms-code-expired", None));
        return sms_page(
            &state,
            page,
            &form.flow,
            &step,
            late,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let (res, step) = complete(&state, page, addr, &form.flow, &["pwd", "sms", "mfa"]).await?;
    // The code came back from this number: a number support registered is proved now.
    if let Some(phone) = &step.phone {
        let now = state.clock.unix();
        accounts::phone_proved(&state.db, &step.account_id, phone, now).await?;
    }
    Ok(res)
}
