//! Login: e-mail and password, then the SMS code sent to the account's mobile number. Ends by
//! starting the SSO session and finishing the protocol's interaction that sent the person
//! here (`protocol::interaction`), or on the account page.
//!
//! Wrong passwords slow the next attempts for that address down (a growing delay, the same
//! for known and unknown addresses) instead of locking the account; only after the realm's
//! `lock_after_failures` consecutive failures (at most 100) is an account locked, for the
//! realm's `lock_minutes`, and the person told by mail. An account with a mobile number never
//! logs in without its SMS code: when the stored number no longer parses, the person is sent
//! to support.

use crate::http::params::{Form, FormRejection};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod sms;
mod throttle;

pub use sms::{resend_sms, show_sms, submit_sms};
use throttle::Throttles;

use super::{
    page::{self, check_csrf, read_form},
    sms as send_sms,
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{Email, Language, Password, PhoneNumber},
    guard,
    http::{ClientAddr, CurrentRealm, HttpError},
    keys::SecretHasher,
    limits::Limit,
    notify::messages::AccountNotice,
    passwords::PasswordError,
    protocol::interaction::{self, View},
    realm::Realm,
    session::random_token,
    storage::{
        accounts::{self, Account, AccountStatus},
        ephemeral::{Counter, Record},
        Db, Ephemeral,
    },
};

/// How long a person is asked to wait when every place in the hashing queue is taken.
const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

/// 503 with `Retry-After` and a page that says to try again in a moment: every place in the
/// password hashing queue is taken (see `passwords`).
pub fn busy(realm: &std::sync::Arc<Realm>, lang: Language) -> Response {
    metrics::counter!("connect_password_queue_full_total", "realm" => realm.id.to_string())
        .increment(1);
    let mut res = HttpError::page(StatusCode::SERVICE_UNAVAILABLE, lang, "error-hashing-busy")
        .in_realm(realm)
        .into_response();
    res.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(BUSY_RETRY_AFTER_SECONDS),
    );
    res
}

/// The page that sends a person whose stored number no longer works to support.
fn phone_unusable(realm: &Realm, lang: Language, jar: CookieJar) -> Result<Response, HttpError> {
    let ctx = page::layout(realm, lang, &format!("/{}/login", realm.id));
    let html = crate::http::templates::render("login/support.html", ctx)
        .map_err(HttpError::internal(lang))?;
    Ok((StatusCode::FORBIDDEN, jar, Html(html)).into_response())
}

pub use crate::domain::acr::{MFA as ACR_MFA, PASSWORD as ACR_PASSWORD};

/// The password was right; the login waits for the SMS code. Kept under the interaction's
/// id when a relying party sent the person, under its own otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SmsStep {
    /// The protocol's interaction this login finishes, if any.
    interaction: Option<String>,
    account_id: String,
    phone: String,
    code_hash: String,
    expires_at: i64,
    sent_at: i64,
}

/// The login's own short-lived state: SMS steps, their wrong codes, password throttles.
#[derive(Clone)]
pub struct LoginStore {
    steps: Record<SmsStep>,
    wrong_codes: Counter,
    throttles: Throttles,
}

impl LoginStore {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, db: &Db) -> Self {
        LoginStore {
            steps: Record::plain(store, "login-sms"),
            wrong_codes: Counter::plain(store, "login-sms-attempts"),
            throttles: Throttles::new(store, hasher, db),
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

use interaction::valid_id;

/// The pending interaction named by `id`, if any; the page that says it is over when it is.
async fn load_interaction(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    id: Option<&str>,
    lang: Language,
) -> Result<Option<View>, HttpError> {
    let Some(id) = valid_id(id) else {
        return Ok(None);
    };
    let view = state
        .interactions
        .view(realm, id)
        .await
        .map_err(HttpError::internal(lang))?;
    view.map(Some).ok_or_else(|| expired(realm, lang))
}

/// The page that says the login is over.
fn expired(realm: &std::sync::Arc<Realm>, lang: Language) -> HttpError {
    HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired").in_realm(realm)
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
    let pending = load_interaction(&state, &realm, q.flow.as_deref(), fallback_lang).await?;
    let ui_locales = pending.as_ref().and_then(|p| p.ui_locales.clone());
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        ui_locales.as_deref(),
        jar,
        &headers,
        secure,
    );
    let (jar, csrf) = state.csrf.token(jar, secure);
    let hint = pending.and_then(|p| p.login_hint).unwrap_or_default();
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
    // An expired interaction is told before the password is checked.
    load_interaction(&state, &realm, flow_id, lang).await?;
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
    // An event of this attempt for the audit trail, from this client.
    let event = |kind, account: Option<&str>, detail: serde_json::Value| {
        let e = Event::new(kind, &realm.id)
            .origin(addr, &headers)
            .detail(detail);
        match account {
            Some(id) => e.account(id),
            None => e,
        }
    };
    // Passwords checked per client address, whatever the accounts (credential stuffing).
    let subject = addr.subject();
    let per_address = [
        (
            Limit::per_hour(
                "login_passwords_per_address_hour",
                realm.login.attempts_per_address_per_hour,
            ),
            subject.as_str(),
        ),
        (
            Limit::per_day(
                "login_passwords_per_address_day",
                realm.login.attempts_per_address_per_day,
            ),
            subject.as_str(),
        ),
    ];
    if let Err(e) = state
        .limits
        .charge(realm.id.as_str(), &per_address)
        .await
        .map_err(HttpError::internal(lang))?
    {
        return Err(HttpError::Limited {
            lang,
            retry_after: e.retry_after,
        });
    }
    // The attempt is counted before its password is checked (see `throttle`).
    let throttle = state.login.throttles.for_address(&realm, &form.email);
    if let Some(wait) = throttle
        .take_turn(now)
        .await
        .map_err(HttpError::internal(lang))?
    {
        return fail_page(
            jar,
            "error-login-delay",
            Some(wait),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }

    // Unknown e-mail, malformed e-mail and wrong password look and take the same.
    let mut account = match form.email.parse::<Email>() {
        Ok(email) => accounts::by_email(&state.db, &realm.id, &email)
            .await
            .map_err(HttpError::internal(lang))?,
        Err(_) => None,
    };
    if let Some(a) = account.as_ref().filter(|a| !a.active && a.may_log_in(now)) {
        // Its lock has ended by itself: lifted before this password counts.
        accounts::lift_ended_lock(&state.db, &a.id, now)
            .await
            .map_err(HttpError::internal(lang))?;
        account = accounts::by_id(&state.db, &realm.id, &a.id)
            .await
            .map_err(HttpError::internal(lang))?;
    }
    let verified = state
        .passwords
        .verify(
            Password::presented(&form.password),
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await;
    let ok = match verified {
        Ok(ok) => ok,
        Err(PasswordError::Busy) => return Ok(busy(&realm, lang)),
        Err(e) => return Err(HttpError::internal(lang)(e)),
    };
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => if ok { "password_ok" } else { "failure" }).increment(1);
    let account = match account {
        Some(a) if ok => a,
        account => {
            let locked = throttle
                .failed(account.as_ref(), now)
                .await
                .map_err(HttpError::internal(lang))?;
            tracing::info!(realm = %realm.id, "login failed");
            let id = account.as_ref().map(|a| a.id.as_str());
            let failed = serde_json::json!({ "factor": "password" });
            state
                .audit
                .record(event(Kind::LoginFailed, id, failed))
                .await;
            if let (true, Some(a)) = (locked, &account) {
                let hours = realm.login.lock_duration.as_secs().div_ceil(3600);
                let until = now + realm.login.lock_duration.as_secs() as i64;
                let detail = serde_json::json!({ "by": "password_failures", "until": until });
                let locked = event(Kind::AccountLocked, Some(&a.id), detail);
                state.audit.record(locked).await;
                guard::restrict(
                    &state,
                    &realm,
                    a,
                    AccountNotice::LockedAfterFailures { hours },
                )
                .await
                .map_err(HttpError::internal(lang))?;
            }
            return fail_page(jar, "login-failed", None, StatusCode::UNAUTHORIZED);
        }
    };
    if !account.may_log_in(now) {
        // Only someone who knows the password learns that the account is locked.
        let message = match account.status {
            AccountStatus::Disabled => "error-account-disabled",
            _ => "error-account-locked",
        };
        let detail = serde_json::json!({ "factor": "password", "refused": message });
        let refused = event(Kind::LoginFailed, Some(&account.id), detail);
        state.audit.record(refused).await;
        return fail_page(jar, message, None, StatusCode::FORBIDDEN);
    }
    throttle
        .succeeded(&account)
        .await
        .map_err(HttpError::internal(lang))?;

    let Some(stored_phone) = account.phone.as_deref() else {
        // Accounts that support created without a mobile number log in with the password only.
        return finish(
            &state,
            &realm,
            jar,
            lang,
            &account,
            flow_id,
            ACR_PASSWORD,
            &["pwd"],
            (addr, &headers),
        )
        .await;
    };
    let Ok(phone) = PhoneNumber::parse(stored_phone) else {
        // A number that no longer parses must not turn the login into a password-only one.
        tracing::warn!(realm = %realm.id, account = %account.id, "login refused: the stored mobile number does not parse");
        let detail = serde_json::json!({ "factor": "sms", "refused": "phone_unusable" });
        let refused = event(Kind::LoginFailed, Some(&account.id), detail);
        state.audit.record(refused).await;
        return phone_unusable(&realm, lang, jar);
    };
    let id = flow_id.map_or_else(random_token, str::to_owned);
    let sent = send_sms::send_code(
        &state,
        &realm,
        lang,
        &phone,
        &format!("account:{}", account.id),
        &addr,
        None,
        &sms::purpose(&id),
    )
    .await?;
    let sent = match sent {
        Ok(s) => s,
        Err(r) => {
            let (key, n, status) = r.message();
            return fail_page(jar, key, n, status);
        }
    };
    let next = SmsStep {
        interaction: flow_id.map(str::to_owned),
        account_id: account.id.clone(),
        phone: phone.as_e164().to_owned(),
        code_hash: sent.code_hash,
        expires_at: sent.expires_at,
        sent_at: sent.sent_at,
    };
    state
        .login
        .steps
        .put(realm.id.as_str(), &id, &next, realm.lifetimes.login_flow)
        .await
        .map_err(HttpError::internal(lang))?;
    Ok((
        jar,
        Redirect::to(&format!("/{}/login/sms?flow={id}", realm.id)),
    )
        .into_response())
}

/// Starts the session, then finishes the interaction that sent the person here (the
/// protocol answers the relying party at its resume endpoint), or opens the account page.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    jar: CookieJar,
    lang: Language,
    account: &Account,
    interaction: Option<&str>,
    acr: &str,
    amr: &[&str],
    origin: (ClientAddr, &HeaderMap),
) -> Result<Response, HttpError> {
    let amr_owned = amr.iter().map(|s| (*s).to_owned()).collect();
    let (jar, session) = state
        .sessions
        .start(realm, jar, &account.id, acr, amr_owned)
        .await
        .map_err(HttpError::internal(lang))?;
    tracing::info!(realm = %realm.id, account = %account.id, acr, "login succeeded");
    state
        .audit
        .record(
            Event::new(Kind::LoginSucceeded, &realm.id)
                .account(&account.id)
                .origin(origin.0, origin.1)
                .detail(serde_json::json!({ "acr": acr, "amr": amr })),
        )
        .await;
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => "success").increment(1);
    let Some(id) = interaction else {
        return Ok((jar, Redirect::to(&format!("/{}/account", realm.id))).into_response());
    };
    let resume = state
        .interactions
        .finish(realm, id, (&session).into())
        .await
        .map_err(HttpError::internal(lang))?;
    match resume {
        Some(to) => Ok((jar, Redirect::to(&to)).into_response()),
        None => Ok((jar, expired(realm, lang)).into_response()),
    }
}
