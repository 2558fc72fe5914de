//! Enrolment by activation letter, steps 1–7 of the user guide. The enrolment is a
//! transaction in the ephemeral store (any replica can continue it); nothing durable is
//! written until step 7, where spending the code and opening the account are one SQL
//! transaction.

mod account;
mod code;
mod email;
mod phone;

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use axum_extra::extract::{
    cookie::{Cookie, SameSite},
    CookieJar,
};
use minijinja::Value;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::page;
use crate::{
    app::AppState,
    domain::{AhvNumber, Language},
    http::{templates, HttpError},
    realm::Realm,
    session::random_token,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/register", get(code::show).post(code::submit))
        .route("/{realm}/terms", get(account::terms))
        .route(
            "/{realm}/register/{tx}/email",
            get(email::show_address).post(email::submit_address),
        )
        .route(
            "/{realm}/register/{tx}/confirm",
            get(email::show_code).post(email::submit_code),
        )
        .route(
            "/{realm}/register/{tx}/account",
            get(account::show_profile).post(account::submit_profile),
        )
        .route(
            "/{realm}/register/{tx}/password",
            get(account::show_password).post(account::submit_password),
        )
        .route(
            "/{realm}/register/{tx}/phone",
            get(phone::show_number).post(phone::submit_number),
        )
        .route(
            "/{realm}/register/{tx}/sms",
            get(phone::show_code).post(phone::submit_code),
        )
        .route("/{realm}/register/{tx}/sms/resend", post(phone::resend))
}

/// The seven steps, as numbered in the guide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Email = 2,
    Confirm = 3,
    Account = 4,
    Password = 5,
    Phone = 6,
    Sms = 7,
}

impl Step {
    fn path(self) -> &'static str {
        match self {
            Step::Email => "email",
            Step::Confirm => "confirm",
            Step::Account => "account",
            Step::Password => "password",
            Step::Phone => "phone",
            Step::Sms => "sms",
        }
    }
}

pub const STEPS: u8 = 7;

/// An enrolment in progress. Codes are kept as keyed hashes bound to this enrolment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Enrolment {
    pub ahv: AhvNumber,
    /// The activation code's row, spent at step 7.
    pub code_id: String,
    /// Keyed hash of the cookie that binds the enrolment to one browser.
    pub browser: String,
    /// The authorization request that sent the person here, to finish after enrolment.
    pub login_flow: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub language: Language,
    pub email: Option<String>,
    /// The address already has an account: no code was sent, none will match.
    pub email_taken: bool,
    pub email_code: Option<String>,
    pub email_code_expires_at: i64,
    pub mails_sent: u64,
    pub email_verified: bool,
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<i64>,
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    pub sms_code: Option<String>,
    pub sms_code_expires_at: i64,
    pub sms_sent_at: Option<i64>,
}

impl Enrolment {
    /// The furthest step this enrolment may show.
    pub fn step(&self) -> Step {
        if self.email.is_none() {
            Step::Email
        } else if !self.email_verified {
            Step::Confirm
        } else if self.terms_accepted_at.is_none() {
            Step::Account
        } else if self.password_hash.is_none() {
            Step::Password
        } else if self.sms_code.is_none() {
            Step::Phone
        } else {
            Step::Sms
        }
    }
}

fn store_key(state: &AppState, realm: &Realm, tx: &str) -> String {
    format!(
        "enrol:{}:{}",
        realm.id,
        state.secret_hasher.hash(&format!("enrol:{tx}"))
    )
}

fn cookie_name(realm: &Realm, secure: bool) -> String {
    if secure {
        format!("__Host-connect_enrol_{}", realm.id)
    } else {
        format!("connect_enrol_{}", realm.id)
    }
}

fn browser_hash(state: &AppState, value: &str) -> String {
    state.secret_hasher.hash(&format!("enrol-browser:{value}"))
}

/// Binds the enrolment to this browser with a fresh cookie; an earlier browser loses it.
pub fn bind_browser(
    state: &AppState,
    realm: &Realm,
    jar: CookieJar,
    e: &mut Enrolment,
) -> CookieJar {
    let secure = state.config.is_https();
    let value = random_token();
    e.browser = browser_hash(state, &value);
    jar.add(
        Cookie::build((cookie_name(realm, secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build(),
    )
}

fn forget_browser(state: &AppState, realm: &Realm, jar: CookieJar) -> CookieJar {
    let secure = state.config.is_https();
    jar.remove(
        Cookie::build((cookie_name(realm, secure), ""))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build(),
    )
}

/// Where the enrolment stands: loaded, and checked to belong to this browser unless the
/// step may be opened elsewhere (the mail's link).
pub async fn load(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    jar: &CookieJar,
    lang: Language,
    any_browser: bool,
) -> Result<Enrolment, HttpError> {
    let e: Option<Enrolment> = state
        .ephemeral
        .get_json(&store_key(state, realm, tx))
        .await
        .map_err(HttpError::internal(lang))?;
    let e = e.ok_or_else(|| HttpError::page(StatusCode::GONE, lang, "error-enrol-expired"))?;
    if !any_browser {
        let cookie = jar.get(&cookie_name(realm, state.config.is_https()));
        let ok = cookie.is_some_and(|c| {
            bool::from(
                browser_hash(state, c.value())
                    .as_bytes()
                    .ct_eq(e.browser.as_bytes()),
            )
        });
        if !ok {
            return Err(HttpError::page(
                StatusCode::FORBIDDEN,
                lang,
                "error-enrol-other-browser",
            ));
        }
    }
    Ok(e)
}

pub async fn save(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    e: &Enrolment,
    lang: Language,
) -> Result<(), HttpError> {
    state
        .ephemeral
        .put_json(&store_key(state, realm, tx), e, realm.enrolment.transaction)
        .await
        .map_err(HttpError::internal(lang))
}

/// Ends the enrolment: its state and its cookie.
pub async fn end(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    jar: CookieJar,
    lang: Language,
) -> Result<CookieJar, HttpError> {
    state
        .ephemeral
        .delete(&store_key(state, realm, tx))
        .await
        .map_err(HttpError::internal(lang))?;
    Ok(forget_browser(state, realm, jar))
}

/// Counts a failed or attempted code entry of one kind in one enrolment; past the realm's
/// limit the enrolment ends. Asking for a new code never resets this count.
pub async fn count_attempt(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    kind: &str,
    lang: Language,
) -> Result<u64, HttpError> {
    let key = format!("{}:attempts:{kind}", store_key(state, realm, tx));
    state
        .ephemeral
        .hit(&key, realm.enrolment.transaction)
        .await
        .map_err(HttpError::internal(lang))
}

/// A 303 to the step's page.
pub fn go(realm: &Realm, tx: &str, step: Step) -> Redirect {
    Redirect::to(&format!("/{}/register/{tx}/{}", realm.id, step.path()))
}

/// Shows a step only when the enrolment has reached it: else the way to its current step.
pub fn reached(realm: &Realm, tx: &str, e: &Enrolment, step: Step) -> Option<Redirect> {
    (e.step() < step).then(|| go(realm, tx, e.step()))
}

/// A step's page: its template, its own path (for the language switcher), its number.
pub struct StepPage<'a> {
    pub template: &'a str,
    pub path: &'a str,
    pub step: u8,
    pub ctx: Value,
    pub status: StatusCode,
}

/// Renders a step's page on the layout, with the step indicator.
pub fn render(
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    page: StepPage<'_>,
) -> Result<Response, HttpError> {
    let ctx = minijinja::context! {
        ..page::layout(realm, lang, page.path),
        ..minijinja::context! { step => page.step, steps => STEPS },
        ..page.ctx
    };
    let html = templates::render(page.template, ctx).map_err(HttpError::internal(lang))?;
    Ok((page.status, jar, Html(html)).into_response())
}
