//! One page shape. Every HTML handler takes a [`Page`] (realm, language, cookies, CSRF-checked
//! forms, rendering on the common layout) and returns `Result<Response, PageError>`.
//!
//! Any error converts into a [`PageError`] with `?`, although `From` cannot know the page's
//! language: the failure travels in the response, and [`render_failures`], the layer around
//! the page routes, renders it in the realm and language the `Page` left in the request. So a
//! handler never names its language to fail, and a failure never shows another language than
//! the page it replaces.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{FromRef, FromRequestParts, Query, Request},
    http::{header, request::Parts, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::{
    csrf::CsrfKey,
    error::{error_response, limited_response, log_internal, unavailable_response},
    language,
    params::{Form, FormRejection},
    templates, CurrentRealm, HttpError,
};
use crate::{domain::Language, realm::Realm};

/// What pages need of the server besides the realm: the CSRF key, and whether cookies are
/// `Secure` (and `__Host-`).
#[derive(Clone)]
pub struct PageSettings {
    pub csrf: CsrfKey,
    pub secure: bool,
}

/// A form posted by a page: read only once its CSRF token belongs to this browser.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// Declares the forms a page posts: each struct gets a `csrf: String` field first, serde's
/// `Deserialize` and [`CsrfForm`], so that `page.read(form)` checks its token.
///
/// ```ignore
/// csrf_forms! {
///     pub struct CodeForm { flow: String, code: String }
///     pub struct ResendForm { flow: String }
/// }
/// ```
macro_rules! csrf_forms {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        $vis struct $name {
            csrf: String,
            $( $(#[$fmeta])* $fvis $field: $ty, )*
        }

        impl $crate::http::page::CsrfForm for $name {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
pub(crate) use csrf_forms;

/// How long a person is asked to wait when every place in the hashing queue is taken.
const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

/// Why a page handler does not show its page.
#[derive(Debug)]
pub enum PageError {
    /// The error page saying `message` (a locale key).
    Refused {
        status: StatusCode,
        message: &'static str,
    },
    /// An abuse limit was reached: 429 with `Retry-After` and a page that says when.
    Limited(Duration),
    /// Every place in the password hashing queue is taken (see `passwords`): 503 with
    /// `Retry-After` and a page that says to try again in a moment.
    Busy,
    /// A failure inside; already logged, shown as a page that says nothing of its cause.
    Internal,
    /// The database or Redis cannot be reached: 503 with `Retry-After`, a page that says to
    /// try again in a minute.
    Unavailable,
    /// The request is answered otherwise: a redirect to where a journey stands, or a page
    /// with cookies to set.
    Answered(Box<Response>),
    /// An error that is complete in itself (an OAuth error, or a page that knows its realm).
    Http(HttpError),
}

impl PageError {
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        PageError::Refused { status, message }
    }

    /// The request is answered by `res` instead of the page.
    pub fn answered(res: impl IntoResponse) -> Self {
        PageError::Answered(Box::new(res.into_response()))
    }

    /// [`PageError::Busy`], counted for the operator.
    pub fn busy(realm: &Realm) -> Self {
        metrics::counter!("connect_password_queue_full_total", "realm" => realm.id.to_string())
            .increment(1);
        PageError::Busy
    }
}

/// Internal errors (storage, templates, …) are logged here, once, with their causes.
impl<E: std::error::Error + 'static> From<E> for PageError {
    fn from(e: E) -> Self {
        log_internal(&e);
        if crate::storage::unavailable(&e) {
            PageError::Unavailable
        } else {
            PageError::Internal
        }
    }
}

impl From<HttpError> for PageError {
    fn from(e: HttpError) -> Self {
        PageError::Http(e)
    }
}

/// An OAuth error answers as it would at any endpoint (its own status and body).
impl From<crate::protocol::error::OAuthError> for PageError {
    fn from(e: crate::protocol::error::OAuthError) -> Self {
        PageError::Http(e.into())
    }
}

/// A failure waiting for [`render_failures`] to know its language.
#[derive(Clone, Copy, Debug)]
enum Failure {
    Refused(StatusCode, &'static str),
    Limited(Duration),
    Busy,
    Internal,
    Unavailable,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let failure = match self {
            PageError::Refused { status, message } => Failure::Refused(status, message),
            PageError::Limited(d) => Failure::Limited(d),
            PageError::Busy => Failure::Busy,
            PageError::Internal => Failure::Internal,
            PageError::Unavailable => Failure::Unavailable,
            PageError::Answered(res) => return *res,
            PageError::Http(e) => return e.into_response(),
        };
        let mut res = failure.status().into_response();
        res.extensions_mut().insert(failure);
        res
    }
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::Refused(status, _) => status,
            Failure::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn render(self, realm: Option<&Realm>, lang: Language) -> Response {
        match self {
            Failure::Refused(status, message) => error_response(realm, status, lang, message, None),
            Failure::Internal => error_response(
                realm,
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                "error-internal",
                None,
            ),
            Failure::Unavailable => unavailable_response(realm, lang),
            Failure::Limited(retry_after) => limited_response(realm, lang, retry_after),
            Failure::Busy => {
                let mut res = error_response(
                    realm,
                    StatusCode::SERVICE_UNAVAILABLE,
                    lang,
                    "error-hashing-busy",
                    None,
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(BUSY_RETRY_AFTER_SECONDS),
                );
                res
            }
        }
    }
}

/// Where the page's realm and language wait for a failure to be rendered. The portal leaves
/// no realm: its error pages name no caisse address of the IdP.
#[derive(Clone, Default)]
pub struct PageContext(Arc<Mutex<Option<Speaker>>>);

/// The realm (if any) and language a page's failures are rendered in.
type Speaker = (Option<Arc<Realm>>, Language);

impl PageContext {
    /// Records the page's realm and language for its failures.
    pub fn set(parts: &Parts, realm: Option<Arc<Realm>>, lang: Language) {
        if let Some(ctx) = parts.extensions.get::<PageContext>() {
            if let Ok(mut slot) = ctx.0.lock() {
                *slot = Some((realm, lang));
            }
        }
    }

    fn update_language(&self, lang: Language) {
        if let Ok(mut slot) = self.0.lock() {
            if let Some((_, l)) = slot.as_mut() {
                *l = lang;
            }
        }
    }

    fn get(&self) -> Option<Speaker> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The layer around page routes (`axum::middleware::from_fn(render_failures)`): renders a
/// [`PageError`] as the error page in the language of the page it replaces, keeping the
/// headers (cookies) the handler set.
pub async fn render_failures(mut req: Request, next: Next) -> Response {
    let ctx = PageContext::default();
    req.extensions_mut().insert(ctx.clone());
    let res = next.run(req).await;
    let Some(failure) = res.extensions().get::<Failure>().copied() else {
        return res;
    };
    // A failure before any page knew its language cannot happen with a `Page` (its own
    // rejections are complete responses); French is the seed caisse's language.
    let (realm, lang) = ctx.get().unwrap_or((None, Language::Fr));
    let rendered = failure.render(realm.as_deref(), lang);
    let (mut parts, _) = res.into_parts();
    let (rendered, body) = rendered.into_parts();
    parts.status = rendered.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.remove::<Failure>();
    for (name, value) in &rendered.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}

#[derive(Serialize)]
struct SwitchLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

/// What the common layout needs: language, realm, logo, support footer, and the language
/// switcher. `path` is the page's own path and query without `lang`, so the switcher keeps
/// the page's place.
pub fn layout(realm: &Realm, lang: Language, path: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let languages: Vec<SwitchLink> = realm
        .languages
        .iter()
        .map(|l| SwitchLink {
            code: l.code(),
            name: l.endonym(),
            href: format!("{path}{sep}lang={}", l.code()),
            current: *l == lang,
        })
        .collect();
    context! {
        lang => lang.code(),
        realm => realm.id.as_str(),
        realm_name => realm.display_name.get(lang),
        logo => realm.logo.as_ref().map(|_| format!("/{}/logo", realm.id)),
        support_phone => realm.support_phone,
        support_hours => realm.support_hours.get(lang),
        languages => languages,
    }
}

/// An explicit `?lang=` wins and is remembered in a cookie; else `fallback` (a list such as
/// `ui_locales`), the cookie, `Accept-Language`, the realm's default.
pub fn choose_language(
    realm: &Realm,
    asked: Option<&str>,
    fallback: Option<&str>,
    jar: CookieJar,
    headers: &axum::http::HeaderMap,
    secure: bool,
) -> (CookieJar, Language) {
    match asked
        .and_then(Language::from_tag)
        .filter(|l| realm.offers(*l))
    {
        Some(l) => (language::remember(jar, l, secure), l),
        None => {
            let l = language::negotiate(realm, fallback, &jar, headers);
            (jar, l)
        }
    }
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The path and query of `uri` without `lang`.
fn own_path(uri: &axum::http::Uri) -> String {
    let rest: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if rest.is_empty() {
        return uri.path().to_owned();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(rest)
        .finish();
    format!("{}?{query}", uri.path())
}

/// What every page request of a realm starts with. A GET may switch the language with
/// `?lang=` (remembered in a cookie, which `jar` then carries).
pub struct Page {
    pub realm: Arc<Realm>,
    pub lang: Language,
    pub jar: CookieJar,
    settings: PageSettings,
    /// Whether `?lang=` chose the language (then nothing else may).
    asked: bool,
    /// The page's own path and query without `lang`, for the language switcher.
    path: String,
    headers: axum::http::HeaderMap,
    context: Option<PageContext>,
}

impl<S> FromRequestParts<S> for Page
where
    S: Send + Sync,
    CurrentRealm: FromRequestParts<S, Rejection = HttpError>,
    PageSettings: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let CurrentRealm(realm) = CurrentRealm::from_request_parts(parts, state).await?;
        let settings = PageSettings::from_ref(state);
        let jar = CookieJar::from_headers(&parts.headers);
        let asked = if parts.method == Method::GET {
            Query::<LangQuery>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|q| q.0.lang)
        } else {
            None
        };
        let (jar, lang) = choose_language(
            &realm,
            asked.as_deref(),
            None,
            jar,
            &parts.headers,
            settings.secure,
        );
        PageContext::set(parts, Some(realm.clone()), lang);
        Ok(Page {
            asked: asked
                .as_deref()
                .and_then(Language::from_tag)
                .is_some_and(|l| realm.offers(l)),
            realm,
            lang,
            jar,
            settings,
            path: own_path(&parts.uri),
            headers: parts.headers.clone(),
            context: parts.extensions.get::<PageContext>().cloned(),
        })
    }
}

impl Page {
    /// Lets a list of preferred languages (`ui_locales` of a relying party's request) choose
    /// before the cookie and `Accept-Language`, unless `?lang=` chose.
    pub fn prefer(&mut self, languages: Option<&str>) {
        if self.asked || languages.is_none() {
            return;
        }
        self.lang = language::negotiate(&self.realm, languages, &self.jar, &self.headers);
        if let Some(ctx) = &self.context {
            ctx.update_language(self.lang);
        }
    }

    /// The page's path and query for the language switcher, when it is not the request's own
    /// (a page shown in answer to a POST links to its GET address).
    pub fn at(&mut self, path: impl Into<String>) {
        self.path = path.into();
    }

    /// The request's headers (for the audit trail's origin).
    pub fn headers(&self) -> &axum::http::HeaderMap {
        &self.headers
    }

    pub fn secure(&self) -> bool {
        self.settings.secure
    }

    /// The posted form, once it could be read strictly and its CSRF token belongs to this
    /// browser.
    pub fn read<T: CsrfForm>(&self, form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
        let Form(form) = form.map_err(|rejection| {
            // Too large stays 413; any other unreadable form is a bad request.
            let status = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            PageError::new(status, "error-bad-request")
        })?;
        if !self
            .settings
            .csrf
            .verify(&self.jar, self.settings.secure, form.csrf())
        {
            return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
        }
        Ok(form)
    }

    /// Whether `token` is this browser's CSRF token (for forms whose token is optional).
    pub fn csrf_matches(&self, token: &str) -> bool {
        self.settings
            .csrf
            .verify(&self.jar, self.settings.secure, token)
    }

    /// The CSRF token for a form on this page; its cookie goes out with the page.
    pub fn csrf(&mut self) -> String {
        let jar = std::mem::take(&mut self.jar);
        let (jar, token) = self.settings.csrf.token(jar, self.settings.secure);
        self.jar = jar;
        token
    }

    /// `template` on the common layout, with `ctx`, and the cookies.
    pub fn render(
        self,
        status: StatusCode,
        template: &str,
        ctx: Value,
    ) -> Result<Response, PageError> {
        let ctx = context! {
            ..layout(&self.realm, self.lang, &self.path),
            ..ctx
        };
        let html = templates::render(template, ctx)?;
        Ok((status, self.jar, Html(html)).into_response())
    }

    /// A 303 to `to`, with the cookies.
    pub fn redirect(self, to: &str) -> Response {
        (self.jar, Redirect::to(to)).into_response()
    }
}

/// The caisse's logo, for the header of every page.
pub async fn logo(CurrentRealm(realm): CurrentRealm) -> Response {
    logo_response(&realm)
}

/// The realm's logo with a day of caching, or 404.
pub fn logo_response(realm: &Realm) -> Response {
    match &realm.logo {
        Some(logo) => (
            [
                (header::CONTENT_TYPE, logo.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            logo.bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
