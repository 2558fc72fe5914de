//! Enrolment by activation letter, steps 1–7 of the user guide. The enrolment is a
//! transaction in the ephemeral store (any replica can continue it); nothing durable is
//! written until step 7, where spending the code and opening the account are one SQL
//! transaction.

mod account;
pub(super) use account::clean_name;
mod code;
mod email;
mod phone;

use axum::{
    extract::{FromRequestParts, Path},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Redirect, Response},
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

use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{AhvNumber, Language},
    http::{
        page::CsrfForm,
        params::{Form, FormRejection},
        ClientAddr, HttpError, Page, PageError,
    },
    keys::SecretHasher,
    realm::Realm,
    session::random_token,
    storage::{
        ephemeral::{Counter, Record},
        Ephemeral,
    },
};

/// The enrolments under way, by the keyed hash of their transaction id, and their wrong
/// codes, per kind of code.
#[derive(Clone)]
pub struct Enrolments {
    records: Record<Enrolment>,
    attempts: Counter,
}

impl Enrolments {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher) -> Self {
        Enrolments {
            records: Record::hashed(store, "enrol", hasher, "enrol:"),
            attempts: Counter::hashed(store, "enrol-attempts", hasher, "enrol-attempts:"),
        }
    }
}

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
    /// Its path segment, and its template under `templates/register/`.
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
    /// The keyed hash of the mail's code; `None` while the address has an account (no code
    /// was sent, none will match).
    pub email_code: Option<String>,
    pub email_code_expires_at: i64,
    pub mails_sent: u64,
    pub email_verified: bool,
    /// When step 3 proved the address; kept on the account as `email_verified_at`.
    #[serde(default)]
    pub email_verified_at: Option<i64>,
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

fn cookie_name(realm: &Realm, secure: bool) -> String {
    if secure {
        format!("__Host-connect_enrol_{}", realm.id)
    } else {
        format!("connect_enrol_{}", realm.id)
    }
}

fn browser_hash(hasher: &SecretHasher, value: &str) -> String {
    hasher.hash(&format!("enrol-browser:{value}"))
}

fn enrol_cookie(realm: &Realm, secure: bool, value: String) -> Cookie<'static> {
    Cookie::build((cookie_name(realm, secure), value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build()
}

/// Binds the enrolment to this browser with a fresh cookie; an earlier browser loses it.
fn bind_browser(page: &mut Page, hasher: &SecretHasher, e: &mut Enrolment) {
    let value = random_token();
    e.browser = browser_hash(hasher, &value);
    let jar = std::mem::take(&mut page.jar);
    page.jar = jar.add(enrol_cookie(&page.realm, page.secure(), value));
}

/// What every request of steps 2–7 starts with: the [`Page`] and the enrolment's id from
/// the path.
pub struct StepRequest {
    pub page: Page,
    pub state: AppState,
    pub tx: String,
    /// Where the request came from, for the audit trail.
    pub addr: ClientAddr,
}

impl FromRequestParts<AppState> for StepRequest {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        let page = Page::from_request_parts(parts, state).await?;
        let Ok(Path((_, tx))) = Path::<(String, String)>::from_request_parts(parts, state).await
        else {
            return Err(
                HttpError::page(StatusCode::NOT_FOUND, page.lang, "error-not-found")
                    .in_realm(&page.realm),
            );
        };
        let Ok(addr) = ClientAddr::from_request_parts(parts, state).await;
        Ok(StepRequest {
            page,
            state: state.clone(),
            tx,
            addr,
        })
    }
}

impl StepRequest {
    /// The enrolment, bound to this browser, if it has reached `step`.
    pub async fn open(&self, step: Step) -> Result<Enrolment, PageError> {
        let e = self.open_anywhere(step).await?;
        let cookie = self
            .page
            .jar
            .get(&cookie_name(&self.page.realm, self.page.secure()));
        let ours = cookie.is_some_and(|c| {
            bool::from(
                browser_hash(&self.state.secret_hasher, c.value())
                    .as_bytes()
                    .ct_eq(e.browser.as_bytes()),
            )
        });
        if !ours {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "error-enrol-other-browser",
            ));
        }
        Ok(e)
    }

    /// The enrolment, in whatever browser (the mail's link), if it has reached `step`.
    pub async fn open_anywhere(&self, step: Step) -> Result<Enrolment, PageError> {
        let e = self
            .state
            .enrolments
            .records
            .get(self.page.realm.id.as_str(), &self.tx)
            .await?;
        let e = e.ok_or(PageError::new(StatusCode::GONE, "error-enrol-expired"))?;
        if e.step() < step {
            return Err(PageError::answered(self.go(e.step())));
        }
        Ok(e)
    }

    /// The posted form, once it could be read and its CSRF token belongs to this browser.
    pub fn read<T: CsrfForm>(&self, form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
        self.page.read(form)
    }

    pub async fn save(&self, e: &Enrolment) -> Result<(), PageError> {
        self.state
            .enrolments
            .records
            .put(
                self.page.realm.id.as_str(),
                &self.tx,
                e,
                self.page.realm.enrolment.transaction,
            )
            .await?;
        Ok(())
    }

    /// Counts a code entry of one kind in this enrolment; past `max` the enrolment ends with
    /// a page that says so. Asking for a new code never resets this count.
    pub async fn count_attempt(self, kind: &str, max: u64) -> Result<Self, PageError> {
        let n = self
            .state
            .enrolments
            .attempts
            .hit(
                self.page.realm.id.as_str(),
                &format!("{kind}:{}", self.tx),
                self.page.realm.enrolment.transaction,
            )
            .await?;
        if n <= max {
            return Ok(self);
        }
        tracing::warn!(realm = %self.page.realm.id, kind, "enrolment ended: too many wrong codes");
        let step = if kind == "mail" {
            Step::Confirm
        } else {
            Step::Sms
        };
        self.audit_refused(step, "too_many_codes").await;
        let jar = self.end().await?;
        let refused = PageError::new(StatusCode::TOO_MANY_REQUESTS, "error-enrol-too-many");
        Err(PageError::answered((jar, refused)))
    }

    /// Ends the enrolment: its state and its cookie.
    pub async fn end(self) -> Result<CookieJar, PageError> {
        self.state
            .enrolments
            .records
            .delete(self.page.realm.id.as_str(), &self.tx)
            .await?;
        let cookie = enrol_cookie(&self.page.realm, self.page.secure(), String::new());
        Ok(self.page.jar.remove(cookie))
    }

    /// Records a step of this enrolment in the audit trail.
    pub async fn audit(&self, kind: Kind, step: Step, detail: serde_json::Value) {
        let mut detail = detail;
        if let Some(map) = detail.as_object_mut() {
            map.insert("step".into(), (step as u8).into());
        }
        self.state
            .audit
            .record(
                Event::new(kind, &self.page.realm.id)
                    .origin(self.addr, self.page.headers())
                    .detail(detail),
            )
            .await;
    }

    /// A step refused for `reason` (a wrong or expired code, too many tries).
    pub async fn audit_refused(&self, step: Step, reason: &str) {
        self.audit(
            Kind::EnrolStepRefused,
            step,
            serde_json::json!({ "reason": reason }),
        )
        .await;
    }

    /// Saves the enrolment after step `done`, records it, and goes to the step it stands at.
    pub async fn advance(&self, e: &Enrolment, done: Step) -> Result<Response, PageError> {
        self.save(e).await?;
        self.audit(Kind::EnrolStepCompleted, done, serde_json::json!({}))
            .await;
        Ok(self.go(e.step()))
    }

    /// Binds the enrolment to this browser (see [`bind_browser`]).
    pub fn bind_browser(&mut self, e: &mut Enrolment) {
        bind_browser(&mut self.page, &self.state.secret_hasher, e);
    }

    pub fn path(&self, step: Step) -> String {
        format!(
            "/{}/register/{}/{}",
            self.page.realm.id,
            self.tx,
            step.path()
        )
    }

    /// A 303 to the step's page, with the cookies.
    pub fn go(&self, step: Step) -> Response {
        (self.page.jar.clone(), Redirect::to(&self.path(step))).into_response()
    }

    /// The step's page on the layout, with the step indicator, its form's CSRF token and
    /// action, and `ctx`.
    pub fn page(self, step: Step, status: StatusCode, ctx: Value) -> Result<Response, PageError> {
        let path = self.path(step);
        let mut page = self.page;
        page.at(path.clone());
        let ctx = minijinja::context! {
            ..minijinja::context! { csrf => page.csrf(), action => &path },
            ..ctx
        };
        render(
            page,
            &format!("register/{}.html", step.path()),
            step as u8,
            status,
            ctx,
        )
    }
}

/// An enrolment page on the layout, with the step indicator (`step` of [`STEPS`]).
fn render(
    page: Page,
    template: &str,
    step: u8,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, PageError> {
    let ctx = minijinja::context! {
        ..minijinja::context! { step => step, steps => STEPS },
        ..ctx
    };
    page.render(status, template, ctx)
}
