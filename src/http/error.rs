//! The one place where errors become HTTP responses: a translated page, an OAuth error
//! object, or `application/problem+json`. Internal causes are logged here and never sent.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::templates;
use crate::{domain::Language, protocol::error::OAuthError};

#[derive(Debug)]
pub enum HttpError {
    /// A page in the person's language; `message` is a locale key.
    Page {
        status: StatusCode,
        lang: Language,
        message: &'static str,
    },
    /// The same, inside a realm: with the caisse's name, logo and support contact.
    RealmPage {
        realm: std::sync::Arc<crate::realm::Realm>,
        status: StatusCode,
        lang: Language,
        message: &'static str,
    },
    /// RFC 6749 error object, as JSON.
    OAuth(OAuthError),
    /// RFC 6750 §3: a protected resource refusing a token, with `WWW-Authenticate`.
    Bearer(OAuthError),
    /// RFC 9457 problem details, for the JSON APIs.
    Problem {
        status: StatusCode,
        title: &'static str,
        detail: String,
    },
    /// RFC 6750 §3 on a JSON API: problem details with a `Bearer` challenge. `error` is
    /// `None` when the request had no token at all (§3.1: then no error code); `scope`
    /// names what an `insufficient_scope` refusal lacks.
    BearerProblem {
        status: StatusCode,
        error: Option<&'static str>,
        scope: Option<&'static str>,
        detail: &'static str,
    },
    /// A failure inside; already logged, shown as a page that says nothing of its cause.
    Internal { lang: Language },
    /// The database or Redis cannot be reached; already logged: 503 with `Retry-After` and
    /// a page that says to try again in a minute.
    Unavailable { lang: Language },
    /// An abuse limit was reached: 429 with `Retry-After` and a page that says when.
    Limited {
        lang: Language,
        retry_after: std::time::Duration,
    },
}

/// An error's message followed by its causes: "error sending request: … Connection refused".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Logs an internal error with its `source()` chain. Error types here never carry secrets.
pub fn log_internal(source: &(dyn std::error::Error + 'static)) {
    tracing::error!(error = %error_chain(source), "internal error");
}

impl HttpError {
    pub fn page(status: StatusCode, lang: Language, message: &'static str) -> Self {
        HttpError::Page {
            status,
            lang,
            message,
        }
    }

    pub fn problem(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        HttpError::Problem {
            status,
            title,
            detail: detail.into(),
        }
    }

    /// For `map_err` in API handlers: logs `e` and answers 500 with problem details that say
    /// nothing of the cause.
    pub fn internal_problem<E: std::error::Error + 'static>() -> impl FnOnce(E) -> HttpError {
        move |e| {
            log_internal(&e);
            if crate::storage::unavailable(&e) {
                return HttpError::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    "a store the service needs cannot be reached; try again in a minute",
                );
            }
            HttpError::problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
                "the request could not be completed; try again later",
            )
        }
    }

    /// For `map_err` in page handlers: logs `e` and answers with the internal-error page.
    pub fn internal<E: std::error::Error + 'static>(lang: Language) -> impl FnOnce(E) -> HttpError {
        move |e| {
            log_internal(&e);
            if crate::storage::unavailable(&e) {
                HttpError::Unavailable { lang }
            } else {
                HttpError::Internal { lang }
            }
        }
    }
}

impl HttpError {
    /// A page error shown inside `realm` (its name, logo and support contact in the layout);
    /// other errors are left as they are.
    pub fn in_realm(self, realm: &std::sync::Arc<crate::realm::Realm>) -> HttpError {
        match self {
            HttpError::Page {
                status,
                lang,
                message,
            } => HttpError::RealmPage {
                realm: realm.clone(),
                status,
                lang,
                message,
            },
            other => other,
        }
    }
}

impl From<OAuthError> for HttpError {
    fn from(e: OAuthError) -> Self {
        HttpError::OAuth(e)
    }
}

/// How long a client is asked to wait while a store cannot be reached.
pub(crate) const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 30;

/// 503 with `Retry-After` and the page saying the service cannot be reached for now.
pub(crate) fn unavailable_response(
    realm: Option<&crate::realm::Realm>,
    lang: Language,
) -> Response {
    let mut res = error_response(
        realm,
        StatusCode::SERVICE_UNAVAILABLE,
        lang,
        "error-unavailable",
        None,
    );
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS),
    );
    res
}

/// 429 with `Retry-After` and a page that says in how many minutes to try again.
pub(crate) fn limited_response(
    realm: Option<&crate::realm::Realm>,
    lang: Language,
    retry_after: std::time::Duration,
) -> Response {
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    let mut res = error_response(
        realm,
        StatusCode::TOO_MANY_REQUESTS,
        lang,
        "error-limit",
        Some(minutes),
    );
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs()),
    );
    res
}

/// The translated error page saying `message`; inside `realm`, with the caisse's name, logo
/// and support contact. `minutes` fills a message that says when to try again.
pub(crate) fn error_response(
    realm: Option<&crate::realm::Realm>,
    status: StatusCode,
    lang: Language,
    message: &str,
    minutes: Option<u64>,
) -> Response {
    let ctx = match realm {
        Some(realm) => minijinja::context! {
            lang => lang.code(),
            message => message,
            minutes => minutes,
            realm => realm.id.as_str(),
            realm_name => realm.display_name.get(lang),
            support_phone => realm.support_phone,
            support_hours => realm.support_hours.get(lang),
            logo => realm.logo.as_ref().map(|_| format!("/{}/logo", realm.id)),
        },
        None => minijinja::context! { lang => lang.code(), message => message, minutes => minutes },
    };
    match templates::render("error.html", ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            log_internal(&e);
            (status, templates::translate(lang, message)).into_response()
        }
    }
}

/// RFC 9457 problem details; `type` stays `about:blank`, the title names the problem.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({ "type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail });
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS),
        );
    }
    res
}

fn oauth_body(e: &OAuthError) -> Json<serde_json::Value> {
    Json(json!({ "error": e.code, "error_description": e.description }))
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res = (self.status, oauth_body(&self)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"connect\""),
            );
        }
        res
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Page {
                status,
                lang,
                message,
            } => error_response(None, status, lang, message, None),
            HttpError::RealmPage {
                realm,
                status,
                lang,
                message,
            } => error_response(Some(&realm), status, lang, message, None),
            HttpError::Internal { lang } => error_response(
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                "error-internal",
                None,
            ),
            HttpError::Unavailable { lang } => unavailable_response(None, lang),
            HttpError::Limited { lang, retry_after } => limited_response(None, lang, retry_after),
            HttpError::OAuth(e) => e.into_response(),
            HttpError::Bearer(e) => {
                // RFC 6750 §3.1: no error code or other error information when the request
                // had no token at all; just the challenge.
                let no_token = e.code == "invalid_request" && e.description == "no access token";
                let challenge = if no_token {
                    "Bearer realm=\"connect\"".to_owned()
                } else {
                    format!("Bearer realm=\"connect\", error=\"{}\"", e.code)
                };
                let mut res = if no_token {
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::CACHE_CONTROL, "no-store")],
                    )
                        .into_response()
                } else {
                    (e.status, oauth_body(&e)).into_response()
                };
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
            HttpError::Problem {
                status,
                title,
                detail,
            } => problem(status, title, &detail),
            HttpError::BearerProblem {
                status,
                error,
                scope,
                detail,
            } => {
                let mut challenge = "Bearer realm=\"connect\"".to_owned();
                if let Some(code) = error {
                    challenge.push_str(&format!(", error=\"{code}\""));
                }
                if let Some(scope) = scope {
                    challenge.push_str(&format!(", scope=\"{scope}\""));
                }
                let title = match error {
                    None => "Access token required",
                    Some("insufficient_scope") => "Insufficient scope",
                    Some(_) => "Invalid access token",
                };
                let mut res = problem(status, title, detail);
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
        }
    }
}
