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

use super::{finish, load_flow, LoginFlow, ACR_MFA};
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
    protocol::authorize::flow_key,
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

/// The flow of the SMS step, or the page that says it is over.
async fn sms_flow(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    id: &str,
    lang: Language,
) -> Result<LoginFlow, HttpError> {
    match load_flow(state, realm, Some(id), lang).await? {
        Some(f @ LoginFlow::Sms { .. }) => Ok(f),
        _ => Err(
            HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired").in_realm(realm),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn sms_page(
    state: &AppState,
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    id: &str,
    flow: &LoginFlow,
    problem: Option<(&str, Option<u64>)>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let masked = match flow {
        LoginFlow::Sms { phone, .. } => PhoneNumber::parse(phone)
            .map(|p| p.masked())
            .unwrap_or_default(),
        LoginFlow::Password { .. } => String::new(),
    };
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
    let flow = sms_flow(&state, &realm, &q.flow, realm.default_language).await?;
    let ui_locales = flow.request().and_then(|r| r.ui_locales.clone());
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
        &flow,
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
    let flow = sms_flow(&state, &realm, &form.flow, lang).await?;
    let LoginFlow::Sms {
        request,
        account_id,
        phone,
        sent_at,
        ..
    } = flow.clone()
    else {
        return Err(HttpError::page(
            StatusCode::BAD_REQUEST,
            lang,
            "error-flow-expired",
        ));
    };
    let number = PhoneNumber::parse(&phone).map_err(HttpError::internal(lang))?;
    let sent = send_sms::send_code(
        &state,
        &realm,
        lang,
        &number,
        &format!("account:{account_id}"),
        &addr,
        Some(sent_at),
        &purpose(&form.flow),
    )
    .await?;
    match sent {
        Ok(sent) => {
            let next = LoginFlow::Sms {
                request,
                account_id,
                phone,
                code_hash: sent.code_hash,
                expires_at: sent.expires_at,
                sent_at: sent.sent_at,
            };
            state
                .ephemeral
                .put_json(
                    &flow_key(&realm, &form.flow),
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
                &flow,
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
    let flow = sms_flow(&state, &realm, &form.flow, lang).await?;
    let key = flow_key(&realm, &form.flow);
    // Wrong codes count per login; a new code does not reset the count.
    let attempts = state
        .ephemeral
        .hit(&format!("{key}:sms-attempts"), realm.lifetimes.login_flow)
        .await
        .map_err(HttpError::internal(lang))?;
    if attempts > realm.sms.code_attempts {
        state
            .ephemeral
            .delete(&key)
            .await
            .map_err(HttpError::internal(lang))?;
        tracing::warn!(realm = %realm.id, "login ended: too many wrong SMS codes");
        let page = HttpError::page(StatusCode::TOO_MANY_REQUESTS, lang, "error-login-too-many");
        return Err(page.in_realm(&realm));
    }
    let LoginFlow::Sms {
        code_hash,
        expires_at,
        ..
    } = &flow
    else {
        return Err(HttpError::page(
            StatusCode::BAD_REQUEST,
            lang,
            "error-flow-expired",
        ));
    };
    if !otp::matches(
        &state.secret_hasher,
        &purpose(&form.flow),
        code_hash,
        &form.code,
    ) {
        if let LoginFlow::Sms { account_id, .. } = &flow {
            state
                .audit
                .record(
                    Event::new(Kind::LoginFailed, &realm.id)
                        .account(account_id)
                        .origin(addr, &headers)
                        .detail(serde_json::json!({ "factor": "sms" })),
                )
                .await;
        }
        return sms_page(
            &state,
            &realm,
            lang,
            jar,
            &form.flow,
            &flow,
            Some(("error-sms-code-wrong", None)),
            StatusCode::UNAUTHORIZED,
        );
    }
    if *expires_at <= state.clock.unix() {
        return sms_page(
            &state,
            &realm,
            lang,
            jar,
            &form.flow,
            &flow,
            Some(("error-sms-code-expired", None)),
            StatusCode::UNAUTHORIZED,
        );
    }
    // Taking the flow is the single step that may complete it: of two racing submissions,
    // only one reaches the relying party.
    let taken: Option<LoginFlow> = state
        .ephemeral
        .take_json(&key)
        .await
        .map_err(HttpError::internal(lang))?;
    let Some(LoginFlow::Sms {
        request,
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
        request,
        ACR_MFA,
        &["pwd", "sms", "mfa"],
        (addr, &headers),
    )
    .await
}
