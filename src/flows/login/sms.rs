//! The second factor of the login: the SMS code sent to the account's number, shown masked;
//! wrong codes count per login and a new code never resets the count.

use crate::http::params::{Form, FormRejection};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{expired, finish, SmsStep, ACR_MFA};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{Language, PhoneNumber},
    flows::{
        page::{self, check_csrf, read_form},
        sms as send_sms,
    },
    http::{ClientAddr, CurrentRealm, HttpError},
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

/// What an SMS code of this login is bound to.
pub(super) fn purpose(flow: &str) -> String {
    format!("login-sms:{flow}")
}

/// The SMS step named by `id`, or the page that says the login is over.
async fn sms_step(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    id: &str,
    lang: Language,
) -> Result<SmsStep, HttpError> {
    let Some(id) = valid_id(Some(id)) else {
        return Err(expired(realm, lang));
    };
    state
        .login
        .steps
        .get(realm.id.as_str(), id)
        .await
        .map_err(HttpError::internal(lang))?
        .ok_or_else(|| expired(realm, lang))
}

#[allow(clippy::too_many_arguments)]
fn sms_page(
    state: &AppState,
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    id: &str,
    step: &SmsStep,
    problem: Option<(&str, Option<u64>)>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let masked = PhoneNumber::parse(&step.phone)
        .map(|p| p.masked())
        .unwrap_or_default();
    let path = format!("/{}/login/sms?flow={id}", realm.id);
    let ctx = context! {
        ..page::layout(realm, lang, &path),
        ..context! {
            csrf => csrf, flow => id, masked => masked,
            error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
            action => format!("/{}/login/sms", realm.id),
            resend => format!("/{}/login/sms/resend", realm.id),
        }
    };
    let html =
        crate::http::templates::render("login/sms.html", ctx).map_err(HttpError::internal(lang))?;
    Ok((status, jar, Html(html)).into_response())
}

#[derive(Deserialize)]
pub struct SmsQuery {
    flow: String,
    lang: Option<String>,
}

pub async fn show_sms(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<SmsQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let step = sms_step(&state, &realm, &q.flow, realm.default_language).await?;
    let pending = match &step.interaction {
        Some(id) => state
            .interactions
            .view(&realm, id)
            .await
            .map_err(HttpError::internal(realm.default_language))?,
        None => None,
    };
    let ui_locales = pending.and_then(|p| p.ui_locales);
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        ui_locales.as_deref(),
        jar,
        &headers,
        state.config.is_https(),
    );
    sms_page(
        &state,
        &realm,
        lang,
        jar,
        &q.flow,
        &step,
        None,
        StatusCode::OK,
    )
}

pub async fn resend_sms(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let step = sms_step(&state, &realm, &form.flow, lang).await?;
    let number = PhoneNumber::parse(&step.phone).map_err(HttpError::internal(lang))?;
    let sent = send_sms::send_code(
        &state,
        &realm,
        lang,
        &number,
        &format!("account:{}", step.account_id),
        &addr,
        Some(step.sent_at),
        &purpose(&form.flow),
    )
    .await?;
    match sent {
        Ok(sent) => {
            let next = SmsStep {
                code_hash: sent.code_hash,
                expires_at: sent.expires_at,
                sent_at: sent.sent_at,
                ..step.clone()
            };
            state
                .login
                .steps
                .put(
                    realm.id.as_str(),
                    &form.flow,
                    &next,
                    realm.lifetimes.login_flow,
                )
                .await
                .map_err(HttpError::internal(lang))?;
            sms_page(
                &state,
                &realm,
                lang,
                jar,
                &form.flow,
                &next,
                Some(("sms-resent", None)),
                StatusCode::OK,
            )
        }
        Err(r) => {
            let (key, n, status) = r.message();
            sms_page(
                &state,
                &realm,
                lang,
                jar,
                &form.flow,
                &step,
                Some((key, n)),
                status,
            )
        }
    }
}

pub async fn submit_sms(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<SmsForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let step = sms_step(&state, &realm, &form.flow, lang).await?;
    let scope = realm.id.as_str();
    // Wrong codes count per login; a new code does not reset the count.
    let attempts = state
        .login
        .wrong_codes
        .hit(scope, &form.flow, realm.lifetimes.login_flow)
        .await
        .map_err(HttpError::internal(lang))?;
    if attempts > realm.sms.code_attempts {
        state
            .login
            .steps
            .delete(scope, &form.flow)
            .await
            .map_err(HttpError::internal(lang))?;
        tracing::warn!(realm = %realm.id, "login ended: too many wrong SMS codes");
        let page = HttpError::page(StatusCode::TOO_MANY_REQUESTS, lang, "error-login-too-many");
        return Err(page.in_realm(&realm));
    }
    if !otp::matches(
        &state.secret_hasher,
        &purpose(&form.flow),
        &step.code_hash,
        &form.code,
    ) {
        state
            .audit
            .record(
                Event::new(Kind::LoginFailed, &realm.id)
                    .account(&step.account_id)
                    .origin(addr, &headers)
                    .detail(serde_json::json!({ "factor": "sms" })),
            )
            .await;
        return sms_page(
            &state,
            &realm,
            lang,
            jar,
            &form.flow,
            &step,
            Some(("error-sms-code-wrong", None)),
            StatusCode::UNAUTHORIZED,
        );
    }
    if step.expires_at <= state.clock.unix() {
        return sms_page(
            &state,
            &realm,
            lang,
            jar,
            &form.flow,
            &step,
            Some(("error-sms-code-expired", None)),
            StatusCode::UNAUTHORIZED,
        );
    }
    // Taking the step is the single act that may finish the login: of two racing
    // submissions, only one goes on.
    let taken = state
        .login
        .steps
        .take(scope, &form.flow)
        .await
        .map_err(HttpError::internal(lang))?;
    let Some(SmsStep {
        interaction,
        account_id,
        phone,
        ..
    }) = taken
    else {
        return Err(HttpError::page(
            StatusCode::BAD_REQUEST,
            lang,
            "error-flow-expired",
        ));
    };
    let now = state.clock.unix();
    let account = accounts::by_id(&state.db, &realm.id, &account_id)
        .await
        .map_err(HttpError::internal(lang))?
        .filter(|a| a.may_log_in(now))
        .ok_or_else(|| HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired"))?;
    // The code came back from this number: a number support registered is proved now.
    accounts::phone_proved(&state.db, &account.id, &phone, now)
        .await
        .map_err(HttpError::internal(lang))?;
    finish(
        &state,
        &realm,
        jar,
        lang,
        &account,
        interaction.as_deref(),
        ACR_MFA,
        &["pwd", "sms", "mfa"],
        (addr, &headers),
    )
    .await
}
