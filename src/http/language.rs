//! Which language a page speaks: `ui_locales` or `?lang=`, then the cookie, then
//! `Accept-Language`, then the realm's default. Only languages the realm offers count.

use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::{domain::Language, realm::Realm};

pub const COOKIE: &str = "connect_lang";

/// `explicit` is a space-separated list such as `ui_locales` carries.
pub fn negotiate(
    realm: &Realm,
    explicit: Option<&str>,
    jar: &CookieJar,
    headers: &HeaderMap,
) -> Language {
    let offered = |l: &Language| realm.offers(*l);
    explicit
        .and_then(|list| {
            list.split_whitespace()
                .filter_map(Language::from_tag)
                .find(offered)
        })
        .or_else(|| {
            jar.get(COOKIE)
                .and_then(|c| Language::from_tag(c.value()))
                .filter(offered)
        })
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| from_accept_language(v, realm))
        })
        .unwrap_or(realm.default_language)
}

/// RFC 9110 §12.5.4: the offered language with the highest q-value; ties keep header order.
fn from_accept_language(value: &str, realm: &Realm) -> Option<Language> {
    let mut best: Option<(Language, f32)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        if let Some(lang) = Language::from_tag(tag).filter(|l| realm.offers(*l)) {
            if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
                best = Some((lang, q));
            }
        }
    }
    best.map(|(l, _)| l)
}

/// Remembers an explicit choice for the next pages.
pub fn remember(jar: CookieJar, lang: Language, secure: bool) -> CookieJar {
    let cookie = Cookie::build((COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time_days(365))
        .build();
    jar.add(cookie)
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}
