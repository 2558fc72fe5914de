//! The second factor of the login besides SMS: a code of the authenticator app, or a
//! recovery code; and what every second-factor page shares (the step, its wrong codes, the
//! other ways the person may take, the end of the login).
//!
//! Wrong codes of any kind count against one budget per login (`sms.code_attempts`, never
//! reset), and app and recovery codes also against the account's budget across logins
//! (`factors::guess_limits`): an attacker who knows the password gets no more guesses from
//! the app than from SMS.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::{context, Value};
use serde::Deserialize;

use super::{expired, finish, LoginStore, Proved, SecondStep, ACR_MFA};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    factors::{self, recovery::Redeemed, totp::Checked},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    notify::messages::AccountNotice,
    protocol::interaction::valid_id,
    realm::Realm,
    storage::{accounts, StoreError},
};

/// RFC 8176 §2: `otp` for the app's RFC 6238 codes and for recovery codes alike (see
/// docs/decisions.md, "amr of the app and of recovery codes"); `mfa` since the password came
/// first.
pub(super) const AMR_OTP: [&str; 3] = ["pwd", "otp", "mfa"];

csrf_forms! {
    pub struct CodeForm {
        flow: String,
        code: String,
    }
}

#[derive(Deserialize)]
pub struct StepQuery {
    flow: String,
}

/// The second-factor step named by `id`, or the page that says the login is over.
pub(super) async fn second_step(
    login: &LoginStore,
    realm: &Realm,
    id: &str,
) -> Result<SecondStep, PageError> {
    let id = valid_id(Some(id)).ok_or_else(expired)?;
    login
        .steps
        .get(realm.id.as_str(), id)
        .await?
        .ok_or_else(expired)
}

/// Counts one code tried in the login `flow`; past the realm's `sms.code_attempts` the login
/// ends.
pub(super) async fn count_attempt(
    login: &LoginStore,
    realm: &Realm,
    flow: &str,
) -> Result<(), PageError> {
    let scope = realm.id.as_str();
    let attempts = login
        .wrong_codes
        .hit(scope, flow, realm.lifetimes.login_flow)
        .await?;
    if attempts > realm.sms.code_attempts {
        login.steps.delete(scope, flow).await?;
        tracing::warn!(realm = %realm.id, "login ended: too many wrong codes");
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "error-login-too-many",
        ));
    }
    Ok(())
}

/// The ways a step page offers besides its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Sms,
    App,
    RecoveryCode,
}

/// The links and buttons to the other second factors the account has, for a step page.
pub(super) async fn alternatives(
    state: &AppState,
    realm: &Realm,
    flow: &str,
    step: &SecondStep,
    current: Method,
) -> Result<Value, StoreError> {
    let id = &realm.id;
    let app =
        current != Method::App && state.totp.registered(id, &step.account_id).await?.is_some();
    let recovery = current != Method::RecoveryCode
        && state.recovery_codes.left(id, &step.account_id).await? > 0;
    let sms = current != Method::Sms && step.phone.is_some();
    Ok(context! {
        app => app.then(|| format!("/{id}/login/app?flow={flow}")),
        recovery => recovery.then(|| format!("/{id}/login/recovery-code?flow={flow}")),
        // A code sent already is typed on the SMS page; none yet: one is sent on request.
        sms_page => (sms && step.sms.is_some()).then(|| format!("/{id}/login/sms?flow={flow}")),
        sms_send => (sms && step.sms.is_none()).then(|| format!("/{id}/login/sms/resend")),
    })
}

/// Takes the step (the single act that may finish the login: of two racing submissions only
/// one goes on), then starts the session for an account that may still log in.
pub(super) async fn complete(
    state: &AppState,
    page: Page,
    addr: ClientAddr,
    flow: &str,
    amr: &[&str],
) -> Result<(Response, SecondStep), PageError> {
    let realm = page.realm.clone();
    let Some(step) = state.login.steps.take(realm.id.as_str(), flow).await? else {
        return Err(expired());
    };
    let now = state.clock.unix();
    let account = accounts::by_id(&state.db, &realm.id, &step.account_id)
        .await?
        .filter(|a| a.may_log_in(now))
        .ok_or_else(expired)?;
    let proved = Proved {
        account: &account,
        interaction: step.interaction.as_deref(),
        acr: ACR_MFA,
        amr,
        addr,
    };
    let res = finish(&state.into(), page, proved).await?;
    Ok((res, step))
}

/// A problem for the person: a message key, the number it shows, the status.
type Problem = (&'static str, Option<u64>, StatusCode);

/// The page of the app step or the recovery-code step.
async fn code_page(
    state: &AppState,
    mut page: Page,
    flow: &str,
    step: &SecondStep,
    method: Method,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let (path, template) = match method {
        Method::RecoveryCode => ("recovery-code", "login/recovery_code.html"),
        _ => ("app", "login/app.html"),
    };
    let others = alternatives(state, &realm, flow, step, method).await?;
    page.at(format!("/{}/login/{path}?flow={flow}", realm.id));
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    let ctx = context! {
        csrf => page.csrf(), flow => flow, alternatives => others,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("/{}/login/{path}", realm.id),
        lost => match &step.interaction {
            Some(f) => format!("/{}/phone/lost?flow={f}", realm.id),
            None => format!("/{}/phone/lost", realm.id),
        },
    };
    page.render(status, template, ctx)
}

/// Shows a step page, in the language the relying party asked for if any.
async fn show(
    state: AppState,
    mut page: Page,
    flow: &str,
    method: Method,
) -> Result<Response, PageError> {
    let step = second_step(&state.login, &page.realm, flow).await?;
    let pending = match &step.interaction {
        Some(id) => state.interactions.view(&page.realm, id).await?,
        None => None,
    };
    page.prefer(pending.and_then(|p| p.ui_locales).as_deref());
    code_page(&state, page, flow, &step, method, None).await
}

pub async fn show_app(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<StepQuery>,
) -> Result<Response, PageError> {
    show(state, page, &q.flow, Method::App).await
}

pub async fn show_recovery_code(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<StepQuery>,
) -> Result<Response, PageError> {
    show(state, page, &q.flow, Method::RecoveryCode).await
}

/// Counts the code against the login and the account; the problem to show when a limit is
/// reached.
async fn charge(
    state: &AppState,
    realm: &Realm,
    flow: &str,
    step: &SecondStep,
) -> Result<Option<Problem>, PageError> {
    count_attempt(&state.login, realm, flow).await?;
    let subject = factors::guess_subject(&step.account_id);
    let [hour, day] = factors::guess_limits(realm);
    let checks = [(hour, subject.as_str()), (day, subject.as_str())];
    Ok(
        match state.limits.charge(realm.id.as_str(), &checks).await? {
            Ok(()) => None,
            Err(e) => Some((
                "error-limit",
                Some(e.retry_after.as_secs().div_ceil(60)),
                StatusCode::TOO_MANY_REQUESTS,
            )),
        },
    )
}

/// The audit event of a refused code.
fn refused(
    realm: &Realm,
    step: &SecondStep,
    addr: ClientAddr,
    page: &Page,
    detail: serde_json::Value,
) -> Event {
    Event::new(Kind::LoginFailed, &realm.id)
        .account(&step.account_id)
        .origin(addr, page.headers())
        .detail(detail)
}

pub async fn submit_app(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let flow = form.flow.as_str();
    let step = second_step(&state.login, &realm, flow).await?;
    if let Some(limited) = charge(&state, &realm, flow, &step).await? {
        return code_page(&state, page, flow, &step, Method::App, Some(limited)).await;
    }
    let checked = state
        .totp
        .verify(&realm.id, &step.account_id, &form.code)
        .await?;
    let problem = match checked {
        Checked::Accepted => {
            let (res, _) = complete(&state, page, addr, flow, &AMR_OTP).await?;
            return Ok(res);
        }
        Checked::Reused => ("error-app-code-used", "reused"),
        Checked::Wrong | Checked::NoApp => ("error-app-code-wrong", "wrong"),
    };
    let detail = serde_json::json!({ "factor": "app", "refused": problem.1 });
    state
        .audit
        .record(refused(&realm, &step, addr, &page, detail))
        .await;
    let problem = Some((problem.0, None, StatusCode::UNAUTHORIZED));
    code_page(&state, page, flow, &step, Method::App, problem).await
}

pub async fn submit_recovery_code(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let flow = form.flow.as_str();
    let step = second_step(&state.login, &realm, flow).await?;
    if let Some(limited) = charge(&state, &realm, flow, &step).await? {
        return code_page(
            &state,
            page,
            flow,
            &step,
            Method::RecoveryCode,
            Some(limited),
        )
        .await;
    }
    let redeemed = state
        .recovery_codes
        .redeem(&realm.id, &step.account_id, &form.code)
        .await?;
    let Redeemed::Accepted { left } = redeemed else {
        let detail = serde_json::json!({ "factor": "recovery_code", "refused": "wrong" });
        state
            .audit
            .record(refused(&realm, &step, addr, &page, detail))
            .await;
        let problem = Some(("error-recovery-code-wrong", None, StatusCode::UNAUTHORIZED));
        return code_page(&state, page, flow, &step, Method::RecoveryCode, problem).await;
    };
    state
        .audit
        .record(
            Event::new(Kind::RecoveryCodeUsed, &realm.id)
                .account(&step.account_id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({ "left": left })),
        )
        .await;
    let (res, step) = complete(&state, page, addr, flow, &AMR_OTP).await?;
    // A code used is news for the person: if it was not them, they know at once.
    if let Some(account) = accounts::by_id(&state.db, &realm.id, &step.account_id).await? {
        let notice = AccountNotice::RecoveryCodeUsed { left };
        state.guard.tell(&realm, &account, notice).await;
    }
    Ok(res)
}
