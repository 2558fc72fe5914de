//! Login: e-mail and password, then the SMS code sent to the account's mobile number. Ends by
//! completing the authorization request that sent the person here, or on the account page.
//!
//! Wrong passwords slow the next attempts for that address down (a growing delay, the same
//! for known and unknown addresses) instead of locking the account; only after the realm's
//! `lock_after_failures` consecutive failures (at most 100) is an account locked.

use std::time::Duration;

use axum::{
    extract::{rejection::FormRejection, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{
    page::{self, check_csrf, read_form},
    sms,
};
use crate::{
    app::AppState,
    domain::{Email, Language, PhoneNumber},
    http::{ClientAddr, CurrentRealm, HttpError},
    otp,
    protocol::authorize::{self, flow_key, AuthRequest, Authentication},
    realm::Realm,
    session::{self, random_token},
    storage::accounts::{self, Account},
};

/// The assurance of a login with password only (accounts without a mobile number, created
/// by support).
pub const ACR_PASSWORD: &str = "urn:connect:acr:password";
/// The assurance of a login with password and SMS code.
pub const ACR_MFA: &str = "urn:connect:acr:password+sms";

/// Where a login stands. Each step consumes the flow and yields the next.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LoginFlow {
    /// Waiting for e-mail and password, on behalf of a relying party's request if any.
    Password { request: Option<AuthRequest> },
    /// The password was right; waiting for the SMS code.
    Sms {
        request: Option<AuthRequest>,
        account_id: String,
        phone: String,
        code_hash: String,
        expires_at: i64,
        sent_at: i64,
    },
}

impl LoginFlow {
    pub fn new(request: AuthRequest) -> Self {
        LoginFlow::Password {
            request: Some(request),
        }
    }

    fn request(&self) -> Option<&AuthRequest> {
        match self {
            LoginFlow::Password { request } | LoginFlow::Sms { request, .. } => request.as_ref(),
        }
    }

    fn into_request(self) -> Option<AuthRequest> {
        match self {
            LoginFlow::Password { request } | LoginFlow::Sms { request, .. } => request,
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    flow: Option<String>,
    lang: Option<String>,
    enrolled: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    flow: Option<String>,
    email: String,
    password: SecretString,
}

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

fn valid_id(id: Option<&str>) -> Option<&str> {
    id.filter(|s| !s.is_empty() && s.len() <= 64)
}

async fn load_flow(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    id: Option<&str>,
    lang: Language,
) -> Result<Option<LoginFlow>, HttpError> {
    let Some(id) = valid_id(id) else {
        return Ok(None);
    };
    let flow: Option<LoginFlow> = state
        .ephemeral
        .get_json(&flow_key(realm, id))
        .await
        .map_err(HttpError::internal(lang))?;
    flow.map(Some).ok_or_else(|| {
        HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired").in_realm(realm)
    })
}

/// What the login form shows besides the layout.
struct LoginPage<'a> {
    csrf: &'a str,
    flow: Option<&'a str>,
    email: &'a str,
    error: Option<&'a str>,
    n: Option<u64>,
    enrolled: bool,
}

fn render(
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    page: LoginPage<'_>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let path = match page.flow {
        Some(f) => format!("/{}/login?flow={f}", realm.id),
        None => format!("/{}/login", realm.id),
    };
    let register = match page.flow {
        Some(f) => format!("/{}/register?flow={f}", realm.id),
        None => format!("/{}/register", realm.id),
    };
    let ctx = context! {
        ..page::layout(realm, lang, &path),
        ..context! {
            csrf => page.csrf, flow => page.flow, email => page.email, error => page.error,
            n => page.n, enrolled => page.enrolled, register => register,
            action => format!("/{}/login", realm.id),
        }
    };
    let html = crate::http::templates::render("login/login.html", ctx)
        .map_err(HttpError::internal(lang))?;
    Ok((status, jar, Html(html)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let fallback_lang = realm.default_language;
    let flow = load_flow(&state, &realm, q.flow.as_deref(), fallback_lang).await?;
    let ui_locales = flow
        .as_ref()
        .and_then(|f| f.request())
        .and_then(|r| r.ui_locales.clone());
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        ui_locales.as_deref(),
        jar,
        &headers,
        secure,
    );
    let (jar, csrf) = state.csrf.token(jar, secure);
    let hint = flow
        .as_ref()
        .and_then(|f| f.request())
        .and_then(|r| r.login_hint.clone())
        .unwrap_or_default();
    let page = LoginPage {
        csrf: &csrf,
        flow: valid_id(q.flow.as_deref()),
        email: &hint,
        error: None,
        n: None,
        enrolled: q.enrolled.is_some(),
    };
    render(&realm, lang, jar, page, StatusCode::OK)
}

/// Keys of the password throttle of one address: consecutive failures and the last one.
fn throttle_keys(state: &AppState, realm: &Realm, email: &str) -> (String, String) {
    let subject = state
        .secret_hasher
        .hash(&format!("login:{}", email.trim().to_lowercase()));
    (
        format!("login-fail:{}:{subject}", realm.id),
        format!("login-fail-at:{}:{subject}", realm.id),
    )
}

/// How long the next attempt must wait after `failures` consecutive failures: nothing for
/// the first `free` ones, then 1 s, 2 s, 4 s … up to the realm's maximum.
pub fn password_delay(realm: &Realm, failures: u64) -> Duration {
    let free = realm.login.free_password_failures;
    if failures < free {
        return Duration::ZERO;
    }
    let exp = (failures - free).min(30) as u32;
    Duration::from_secs(1u64 << exp).min(realm.login.max_password_delay)
}

/// Failures are remembered for a day; a success forgets them.
const FAILURE_MEMORY: Duration = Duration::from_secs(86400);

pub async fn submit(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let flow_id = valid_id(form.flow.as_deref());
    // An expired flow is told before the password is checked.
    let flow = load_flow(&state, &realm, flow_id, lang).await?;
    let fail_page = |jar: CookieJar, error: &'static str, n: Option<u64>, status| {
        let (jar, csrf) = state.csrf.token(jar, secure);
        let page = LoginPage {
            csrf: &csrf,
            flow: flow_id,
            email: &form.email,
            error: Some(error),
            n,
            enrolled: false,
        };
        render(&realm, lang, jar, page, status)
    };

    let now = state.clock.unix();
    let (fail_key, fail_at_key) = throttle_keys(&state, &realm, &form.email);
    let failures = state
        .ephemeral
        .count(&fail_key)
        .await
        .map_err(HttpError::internal(lang))?;
    let delay = password_delay(&realm, failures);
    if !delay.is_zero() {
        let last: Option<i64> = state
            .ephemeral
            .get_json(&fail_at_key)
            .await
            .map_err(HttpError::internal(lang))?;
        let until = last.unwrap_or(0) + delay.as_secs() as i64;
        if now < until {
            return fail_page(
                jar,
                "error-login-delay",
                Some((until - now) as u64),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
    }

    // Unknown e-mail, malformed e-mail and wrong password look and take the same.
    let account = match form.email.parse::<Email>() {
        Ok(email) => accounts::by_email(&state.db, &realm.id, &email)
            .await
            .map_err(HttpError::internal(lang))?,
        Err(_) => None,
    };
    let ok = state
        .passwords
        .verify(
            form.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await
        .map_err(HttpError::internal(lang))?;
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => if ok { "password_ok" } else { "failure" }).increment(1);
    let account = match account {
        Some(a) if ok => a,
        account => {
            state
                .ephemeral
                .hit(&fail_key, FAILURE_MEMORY)
                .await
                .map_err(HttpError::internal(lang))?;
            state
                .ephemeral
                .put_json(&fail_at_key, &now, FAILURE_MEMORY)
                .await
                .map_err(HttpError::internal(lang))?;
            // The same statement runs for an unknown address (it matches no row), so both
            // take the same time.
            let id = account.as_ref().map_or("", |a| a.id.as_str());
            let n = accounts::record_failed_login(&state.db, id, now)
                .await
                .map_err(HttpError::internal(lang))?;
            if let Some(a) = account {
                if n >= realm.login.lock_after_failures as i64 && a.active {
                    accounts::lock(&state.db, &a.id, now)
                        .await
                        .map_err(HttpError::internal(lang))?;
                    tracing::warn!(realm = %realm.id, account = %a.id, "account locked after consecutive password failures");
                }
            }
            tracing::info!(realm = %realm.id, "login failed");
            return fail_page(jar, "login-failed", None, StatusCode::UNAUTHORIZED);
        }
    };
    if !account.active {
        // Only someone who knows the password learns that the account is locked.
        return fail_page(jar, "error-account-locked", None, StatusCode::FORBIDDEN);
    }
    state
        .ephemeral
        .delete(&fail_key)
        .await
        .map_err(HttpError::internal(lang))?;
    accounts::clear_failed_logins(&state.db, &account.id)
        .await
        .map_err(HttpError::internal(lang))?;
    let request = flow.and_then(LoginFlow::into_request);

    let Some(phone) = account
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
    else {
        // Accounts that support created without a mobile number log in with the password only.
        return finish(
            &state,
            &realm,
            jar,
            lang,
            &account,
            request,
            ACR_PASSWORD,
            &["pwd"],
        )
        .await;
    };
    let id = flow_id.map_or_else(random_token, str::to_owned);
    let sent = sms::send_code(
        &state,
        &realm,
        lang,
        &phone,
        &format!("account:{}", account.id),
        &addr,
        None,
        &sms_purpose(&id),
    )
    .await?;
    let sent = match sent {
        Ok(s) => s,
        Err(r) => {
            let (key, n, status) = r.message();
            return fail_page(jar, key, n, status);
        }
    };
    let next = LoginFlow::Sms {
        request,
        account_id: account.id.clone(),
        phone: phone.as_e164().to_owned(),
        code_hash: sent.code_hash,
        expires_at: sent.expires_at,
        sent_at: sent.sent_at,
    };
    state
        .ephemeral
        .put_json(&flow_key(&realm, &id), &next, realm.lifetimes.login_flow)
        .await
        .map_err(HttpError::internal(lang))?;
    Ok((
        jar,
        Redirect::to(&format!("/{}/login/sms?flow={id}", realm.id)),
    )
        .into_response())
}

fn sms_purpose(flow: &str) -> String {
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
    let sent = sms::send_code(
        &state,
        &realm,
        lang,
        &number,
        &format!("account:{account_id}"),
        &addr,
        Some(sent_at),
        &sms_purpose(&form.flow),
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
        &sms_purpose(&form.flow),
        code_hash,
        &form.code,
    ) {
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
        ..
    }) = taken
    else {
        return Err(HttpError::page(
            StatusCode::BAD_REQUEST,
            lang,
            "error-flow-expired",
        ));
    };
    let account = accounts::by_id(&state.db, &realm.id, &account_id)
        .await
        .map_err(HttpError::internal(lang))?
        .filter(|a| a.active)
        .ok_or_else(|| HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired"))?;
    finish(
        &state,
        &realm,
        jar,
        lang,
        &account,
        request,
        ACR_MFA,
        &["pwd", "sms", "mfa"],
    )
    .await
}

/// Starts the session and answers the relying party's request, or opens the account page.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    realm: &Realm,
    jar: CookieJar,
    lang: Language,
    account: &Account,
    request: Option<AuthRequest>,
    acr: &str,
    amr: &[&str],
) -> Result<Response, HttpError> {
    let (jar, session) = session::start(
        state,
        realm,
        jar,
        &account.id,
        acr,
        amr.iter().map(|s| (*s).to_owned()).collect(),
    )
    .await
    .map_err(HttpError::internal(lang))?;
    tracing::info!(realm = %realm.id, account = %account.id, acr, "login succeeded");
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => "success").increment(1);
    match request {
        Some(request) => {
            if request
                .expected_sub
                .as_deref()
                .is_some_and(|sub| sub != account.id)
            {
                let e = crate::protocol::error::OAuthError::login_required(
                    "another person is logged in than the client expected",
                );
                return Ok((jar, authorize::deny(state, realm, &request, &e)).into_response());
            }
            let res =
                authorize::complete(state, realm, request, Authentication { session: &session })
                    .await?;
            Ok((jar, res).into_response())
        }
        None => Ok((jar, Redirect::to(&format!("/{}/account", realm.id))).into_response()),
    }
}
