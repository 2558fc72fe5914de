//! What the login handlers use until they take an `http::Page`: reading a form and checking
//! its CSRF token by hand.

use axum::http::StatusCode;
use axum_extra::extract::CookieJar;

pub use crate::http::page::{choose_language, layout};
use crate::{
    app::AppState,
    domain::Language,
    http::{
        params::{Form, FormRejection},
        HttpError,
    },
};

/// The form of a POST, or the page a person should see when it cannot be read.
pub fn read_form<T>(form: Result<Form<T>, FormRejection>, lang: Language) -> Result<T, HttpError> {
    form.map(|Form(f)| f).map_err(|rejection| {
        // Too large stays 413; any other unreadable form is a bad request.
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        HttpError::page(status, lang, "error-bad-request")
    })
}

/// Refuses a form whose CSRF token does not belong to this browser.
pub fn check_csrf(
    state: &AppState,
    jar: &CookieJar,
    token: &str,
    lang: Language,
) -> Result<(), HttpError> {
    if state.csrf.verify(jar, state.config.is_https(), token) {
        Ok(())
    } else {
        Err(HttpError::page(StatusCode::FORBIDDEN, lang, "error-csrf"))
    }
}
