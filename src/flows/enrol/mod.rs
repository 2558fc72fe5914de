//! Enrolment by activation letter, steps 1–7 of the user guide. The enrolment is a
//! transaction in the ephemeral store (any replica can continue it); nothing durable is
//! written until step 7, where spending the code and opening the account are one SQL
//! transaction.

mod account;
mod code;
mod email;
mod phone;

use std::sync::Arc;

use crate::http::params::{Form, FormRejection};
use axum::{
    extract::{FromRequestParts, Path, Query},
    http::{request::Parts, HeaderMap, Method, StatusCode},
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

use super::page::{self, check_csrf, read_form};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{AhvNumber, Language},
    http::{templates, ClientAddr, CurrentRealm, HttpError},
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

fn browser_hash(state: &AppState, value: &str) -> String {
    state.secret_hasher.hash(&format!("enrol-browser:{value}"))
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
fn bind_browser(state: &AppState, realm: &Realm, jar: CookieJar, e: &mut Enrolment) -> CookieJar {
    let secure = state.config.is_https();
    let value = random_token();
    e.browser = browser_hash(state, &value);
    jar.add(enrol_cookie(realm, secure, value))
}

/// Where a step's handler goes instead of its own page: an error page, or a redirect to
/// the step the enrolment stands at.
pub struct Detour(Box<Response>);

impl Detour {
    fn to(res: Response) -> Self {
        Detour(Box::new(res))
    }
}

impl From<HttpError> for Detour {
    fn from(e: HttpError) -> Self {
        Detour::to(e.into_response())
    }
}

impl StepRequest {
    /// An error page of this realm (its support contact in the footer).
    fn refuse(&self, status: StatusCode, key: &'static str) -> Detour {
        HttpError::page(status, self.lang, key)
            .in_realm(&self.realm)
            .into()
    }
}

impl IntoResponse for Detour {
    fn into_response(self) -> Response {
        *self.0
    }
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// A form of a step: read only after its CSRF token is checked.
pub trait StepForm {
    fn csrf(&self) -> &str;
}

/// What every request of steps 2–7 starts with: the realm, the enrolment's id from the path,
/// the page's language and the cookies. GET may switch the language with `?lang=`.
pub struct StepRequest {
    pub state: AppState,
    pub realm: Arc<Realm>,
    pub tx: String,
    pub lang: Language,
    pub jar: CookieJar,
    /// Where the request came from, for the audit trail.
    pub addr: ClientAddr,
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for StepRequest {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        let CurrentRealm(realm) = CurrentRealm::from_request_parts(parts, state).await?;
        let Ok(Path((_, tx))) = Path::<(String, String)>::from_request_parts(parts, state).await
        else {
            let lang = realm.default_language;
            return Err(
                HttpError::page(StatusCode::NOT_FOUND, lang, "error-not-found").in_realm(&realm),
            );
        };
        let Ok(addr) = ClientAddr::from_request_parts(parts, state).await;
        let jar = CookieJar::from_headers(&parts.headers);
        let (jar, lang) = if parts.method == Method::GET {
            let asked = Query::<LangQuery>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|q| q.0.lang);
            page::choose_language(
                &realm,
                asked.as_deref(),
                None,
                jar,
                &parts.headers,
                state.config.is_https(),
            )
        } else {
            let lang = crate::http::language::negotiate(&realm, None, &jar, &parts.headers);
            (jar, lang)
        };
        Ok(StepRequest {
            state: state.clone(),
            realm,
            tx,
            lang,
            jar,
            addr,
            headers: parts.headers.clone(),
        })
    }
}

impl StepRequest {
    /// The enrolment, bound to this browser, if it has reached `step`.
    pub async fn open(&self, step: Step) -> Result<Enrolment, Detour> {
        let e = self.open_anywhere(step).await?;
        let cookie = self
            .jar
            .get(&cookie_name(&self.realm, self.state.config.is_https()));
        let ours = cookie.is_some_and(|c| {
            bool::from(
                browser_hash(&self.state, c.value())
                    .as_bytes()
                    .ct_eq(e.browser.as_bytes()),
            )
        });
        if !ours {
            return Err(self.refuse(StatusCode::FORBIDDEN, "error-enrol-other-browser"));
        }
        Ok(e)
    }

    /// The enrolment, in whatever browser (the mail's link), if it has reached `step`.
    pub async fn open_anywhere(&self, step: Step) -> Result<Enrolment, Detour> {
        let e = self
            .state
            .enrolments
            .records
            .get(self.realm.id.as_str(), &self.tx)
            .await
            .map_err(HttpError::internal(self.lang))?;
        let e = e.ok_or_else(|| self.refuse(StatusCode::GONE, "error-enrol-expired"))?;
        if e.step() < step {
            return Err(Detour::to(self.go(e.step())));
        }
        Ok(e)
    }

    /// The posted form, once it could be read and its CSRF token belongs to this browser.
    pub fn read<T: StepForm>(&self, form: Result<Form<T>, FormRejection>) -> Result<T, Detour> {
        let form = read_form(form, self.lang)?;
        check_csrf(&self.state, &self.jar, form.csrf(), self.lang)?;
        Ok(form)
    }

    pub async fn save(&self, e: &Enrolment) -> Result<(), Detour> {
        self.state
            .enrolments
            .records
            .put(
                self.realm.id.as_str(),
                &self.tx,
                e,
                self.realm.enrolment.transaction,
            )
            .await
            .map_err(HttpError::internal(self.lang))?;
        Ok(())
    }

    /// Counts a code entry of one kind in this enrolment; past `max` the enrolment ends with
    /// a page that says so. Asking for a new code never resets this count.
    pub async fn count_attempt(self, kind: &str, max: u64) -> Result<Self, Detour> {
        let n = self
            .state
            .enrolments
            .attempts
            .hit(
                self.realm.id.as_str(),
                &format!("{kind}:{}", self.tx),
                self.realm.enrolment.transaction,
            )
            .await
            .map_err(HttpError::internal(self.lang))?;
        if n <= max {
            return Ok(self);
        }
        tracing::warn!(realm = %self.realm.id, kind, "enrolment ended: too many wrong codes");
        let step = if kind == "mail" {
            Step::Confirm
        } else {
            Step::Sms
        };
        self.audit_refused(step, "too_many_codes").await;
        let page = self.refuse(StatusCode::TOO_MANY_REQUESTS, "error-enrol-too-many");
        let jar = self.end().await?;
        Err(Detour::to((jar, page).into_response()))
    }

    /// Ends the enrolment: its state and its cookie.
    pub async fn end(self) -> Result<CookieJar, Detour> {
        self.state
            .enrolments
            .records
            .delete(self.realm.id.as_str(), &self.tx)
            .await
            .map_err(HttpError::internal(self.lang))?;
        let secure = self.state.config.is_https();
        Ok(self
            .jar
            .remove(enrol_cookie(&self.realm, secure, String::new())))
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
                Event::new(kind, &self.realm.id)
                    .origin(self.addr, &self.headers)
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
    pub async fn advance(&self, e: &Enrolment, done: Step) -> Result<Response, Detour> {
        self.save(e).await?;
        self.audit(Kind::EnrolStepCompleted, done, serde_json::json!({}))
            .await;
        Ok(self.go(e.step()))
    }

    /// Binds the enrolment to this browser (see [`bind_browser`]).
    pub fn bind_browser(&mut self, e: &mut Enrolment) {
        let jar = std::mem::take(&mut self.jar);
        self.jar = bind_browser(&self.state, &self.realm, jar, e);
    }

    pub fn path(&self, step: Step) -> String {
        format!("/{}/register/{}/{}", self.realm.id, self.tx, step.path())
    }

    /// A 303 to the step's page, with the cookies.
    pub fn go(&self, step: Step) -> Response {
        (self.jar.clone(), Redirect::to(&self.path(step))).into_response()
    }

    /// The step's page on the layout, with the step indicator, its form's CSRF token and
    /// action, and `ctx`.
    pub fn page(self, step: Step, status: StatusCode, ctx: Value) -> Result<Response, Detour> {
        let (jar, csrf) = self
            .state
            .csrf
            .token(self.jar, self.state.config.is_https());
        let path = format!("/{}/register/{}/{}", self.realm.id, self.tx, step.path());
        let ctx = minijinja::context! {
            ..minijinja::context! { csrf => csrf, action => &path },
            ..ctx
        };
        let page = StepPage {
            template: &format!("register/{}.html", step.path()),
            path: &path,
            step: step as u8,
            ctx,
            status,
        };
        Ok(render(&self.realm, self.lang, jar, page)?)
    }
}

/// A page of the enrolment: its template, its own path (for the language switcher), its
/// number in the step indicator.
pub struct StepPage<'a> {
    pub template: &'a str,
    pub path: &'a str,
    pub step: u8,
    pub ctx: Value,
    pub status: StatusCode,
}

/// Renders an enrolment page on the layout, with the step indicator.
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
