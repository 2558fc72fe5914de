//! What every page's layout needs: language, realm, and the language switcher's links.

use axum_extra::extract::CookieJar;
use minijinja::{context, Value};
use serde::Serialize;

use crate::{domain::Language, http::language, realm::Realm};

#[derive(Serialize)]
struct SwitchLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

/// `path` is the page's own path and query without `lang`, so the switcher keeps the flow.
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
        realm_name => realm.display_name,
        logo => realm.logo.as_ref().map(|_| format!("/{}/logo", realm.id)),
        support_phone => realm.support_phone,
        support_hours => realm.support_hours,
        languages => languages,
    }
}

/// An explicit `?lang=` wins and is remembered in a cookie.
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

/// The form of a POST, or the page a person should see when it cannot be read.
pub fn read_form<T>(
    form: Result<crate::http::params::Form<T>, crate::http::params::FormRejection>,
    lang: Language,
) -> Result<T, crate::http::HttpError> {
    use axum::http::StatusCode;
    form.map(|crate::http::params::Form(f)| f)
        .map_err(|rejection| {
            // Too large stays 413; any other unreadable form is a bad request.
            let status = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            crate::http::HttpError::page(status, lang, "error-bad-request")
        })
}

/// Refuses a form whose CSRF token does not belong to this browser.
pub fn check_csrf(
    state: &crate::app::AppState,
    jar: &CookieJar,
    token: &str,
    lang: Language,
) -> Result<(), crate::http::HttpError> {
    if state.csrf.verify(jar, state.config.is_https(), token) {
        Ok(())
    } else {
        Err(crate::http::HttpError::page(
            axum::http::StatusCode::FORBIDDEN,
            lang,
            "error-csrf",
        ))
    }
}

/// The caisse's logo, for the header of every page.
pub async fn logo(
    crate::http::CurrentRealm(realm): crate::http::CurrentRealm,
) -> axum::response::Response {
    logo_response(&realm)
}

/// The realm's logo with a day of caching, or 404.
pub fn logo_response(realm: &Realm) -> axum::response::Response {
    use axum::{http::header, response::IntoResponse};
    match &realm.logo {
        Some(logo) => (
            [
                (header::CONTENT_TYPE, logo.content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            logo.bytes.clone(),
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
