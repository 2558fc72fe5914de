//! The second factor of the login: the SMS code sent to the account's number, shown masked;
//! wrong codes count per login and a new code never resets the count.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::Deserialize;

use super::{expired, finish, LoginStore, Proved, SmsStep, ACR_MFA};
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
    protocol::interaction::valid_id,
    realm::Realm,
    storage::accounts,
};

#[derive(Deserialize)]
pub struct SmsForm {
    csrf: String,
    flow: String,
    code: String,
}

#[derive(Deserialize)]
pub struct ResendForm {
    csrf: String,
    flow: String,
}

csrf_forms!(SmsForm, ResendForm);

#[derive(Deserialize)]
pub struct SmsQuery {
    flow: String,
}

/// What an SMS code of this login is bound to.
pub(super) fn purpose(flow: &str) -> String {
    format!("login-sms:{flow}")
}

/// The SMS step named by `id`, or the page that says the login is over.
async fn sms_step(login: &LoginStore, realm: &Realm, id: &str) -> Result<SmsStep, PageError> {
    let id = valid_id(Some(id)).ok_or_else(expired)?;
    login
        .steps
        .get(realm.id.as_str(), id)
        .await?
        .ok_or_else(expired)
}

/// The SMS form of the login `id`, with a problem to show (a message and its number).
fn sms_page(
    mut page: Page,
    id: &str,
    step: &SmsStep,
    problem: Option<(&str, Option<u64>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let masked = PhoneNumber::parse(&step.phone)
        .map(|p| p.masked())
        .unwrap_or_default();
    page.at(format!("/{realm}/login/sms?flow={id}"));
    let ctx = context! {
        csrf => page.csrf(), flow => id, masked => masked,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("/{realm}/login/sms"),
        resend => format!("/{realm}/login/sms/resend"),
    };
    page.render(status, "login/sms.html", ctx)
}

pub async fn show_sms(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<SmsQuery>,
) -> Result<Response, PageError> {
    let step = sms_step(&state.login, &page.realm, &q.flow).await?;
    let pending = match &step.interaction {
        Some(id) => state.interactions.view(&page.realm, id).await?,
        None => None,
    };
    page.prefer(pending.and_then(|p| p.ui_locales).as_deref());
    sms_page(page, &q.flow, &step, None, StatusCode::OK)
}

pub async fn resend_sms(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let step = sms_step(&state.login, &realm, &form.flow).await?;
    let number = PhoneNumber::parse(&step.phone)?;
    let to = CodeFor {
        phone: &number,
        account: &format!("account:{}", step.account_id),
        purpose: &purpose(&form.flow),
        last_sent_at: Some(step.sent_at),
    };
    match state.sms.send(&realm, page.lang, &addr, to).await? {
        Ok(sent) => {
            let next = SmsStep {
                code_hash: sent.code_hash,
                expires_at: sent.expires_at,
                sent_at: sent.sent_at,
                ..step
            };
            let life = realm.lifetimes.login_flow;
            let scope = realm.id.as_str();
            state
                .login
                .steps
                .put(scope, &form.flow, &next, life)
                .await?;
            let resent = Some(("sms-resent", None));
            sms_page(page, &form.flow, &next, resent, StatusCode::OK)
        }
        Err(r) => {
            let (key, n, status) = r.message();
            sms_page(page, &form.flow, &step, Some((key, n)), status)
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
    let step = sms_step(&state.login, &realm, &form.flow).await?;
    let scope = realm.id.as_str();
    // Wrong codes count per login; a new code does not reset the count.
    let attempts = state
        .login
        .wrong_codes
        .hit(scope, &form.flow, realm.lifetimes.login_flow)
        .await?;
    if attempts > realm.sms.code_attempts {
        state.login.steps.delete(scope, &form.flow).await?;
        tracing::warn!(realm = %realm.id, "login ended: too many wrong SMS codes");
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "error-login-too-many",
        ));
    }
    let purpose = purpose(&form.flow);
    if !otp::matches(&state.secret_hasher, &purpose, &step.code_hash, &form.code) {
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
        return sms_page(page, &form.flow, &step, wrong, StatusCode::UNAUTHORIZED);
    }
    if step.expires_at <= state.clock.unix() {
        let late = Some(("error-sms-code-expired", None));
        return sms_page(page, &form.flow, &step, late, StatusCode::UNAUTHORIZED);
    }
    // Taking the step is the single act that may finish the login: of two racing
    // submissions, only one goes on.
    let Some(SmsStep {
        interaction,
        account_id,
        phone,
        ..
    }) = state.login.steps.take(scope, &form.flow).await?
    else {
        return Err(expired());
    };
    let now = state.clock.unix();
    let account = accounts::by_id(&state.db, &realm.id, &account_id)
        .await?
        .filter(|a| a.may_log_in(now))
        .ok_or_else(expired)?;
    // The code came back from this number: a number support registered is proved now.
    accounts::phone_proved(&state.db, &account.id, &phone, now).await?;
    let proved = Proved {
        account: &account,
        interaction: interaction.as_deref(),
        acr: ACR_MFA,
        amr: &["pwd", "sms", "mfa"],
        addr,
    };
    finish(&(&state).into(), page, proved).await
}
