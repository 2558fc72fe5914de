//! The overview and « Mes documents ». Every page needs a portal session; without one the
//! browser goes through the login and comes back to the page it asked for.

use axum::{
    extract::{OriginalUri, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{
    session::{self, PortalSession},
    PortalState,
};
use crate::{
    domain::Language,
    flows::page,
    http::{templates, HttpError},
};

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// The person's session, or the way through the login back to this page.
pub async fn require(
    state: &PortalState,
    jar: &CookieJar,
    uri: &OriginalUri,
) -> Result<Result<PortalSession, Response>, HttpError> {
    let lang = state.realm.default_language;
    match session::current(state, jar)
        .await
        .map_err(HttpError::internal(lang))?
    {
        Some(s) => Ok(Ok(s)),
        None => {
            let here = uri.0.path_and_query().map_or("/", |p| p.as_str());
            let mut to = url::form_urlencoded::Serializer::new(String::new());
            to.append_pair("return_to", here);
            Ok(Err(
                Redirect::to(&format!("/login?{}", to.finish())).into_response()
            ))
        }
    }
}

/// The page's language: `?lang=` (remembered), else the person's language.
fn language(
    state: &PortalState,
    s: &PortalSession,
    asked: Option<&str>,
    jar: CookieJar,
    headers: &HeaderMap,
) -> (CookieJar, Language) {
    let secure = state.config.portal_url.scheme() == "https";
    if asked.is_some() {
        return page::choose_language(&state.realm, asked, None, jar, headers, secure);
    }
    let remembered = jar
        .get(crate::http::language::COOKIE)
        .and_then(|c| Language::from_tag(c.value()))
        .filter(|l| state.realm.offers(*l));
    (jar, remembered.unwrap_or(s.language))
}

/// Renders a portal page on the layout with the portal's menu.
pub fn render(
    state: &PortalState,
    jar: CookieJar,
    lang: Language,
    path: &str,
    nav: &str,
    template: &str,
    ctx: Value,
) -> Result<Response, HttpError> {
    let secure = state.config.portal_url.scheme() == "https";
    let (jar, csrf) = state.csrf.token(jar, secure);
    let ctx = context! {
        ..page::layout(&state.realm, lang, path),
        ..context! { nav => nav, csrf => csrf },
        ..ctx
    };
    let html = templates::render(template, ctx).map_err(HttpError::internal(lang))?;
    Ok((StatusCode::OK, jar, Html(html)).into_response())
}

pub async fn overview(
    State(state): State<PortalState>,
    Query(q): Query<LangQuery>,
    uri: OriginalUri,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let s = match require(&state, &jar, &uri).await? {
        Ok(s) => s,
        Err(login) => return Ok(login),
    };
    let (jar, lang) = language(&state, &s, q.lang.as_deref(), jar, &headers);
    let ctx = context! {
        given_name => &s.given_name,
        family_name => &s.family_name,
        ahv => &s.ahv,
        email => &s.email,
        phone => &s.phone,
        language => s.language.endonym(),
        support_phone => &state.realm.support_phone,
        support_hours => &state.realm.support_hours,
    };
    render(
        &state,
        jar,
        lang,
        "/",
        "overview",
        "portal/overview.html",
        ctx,
    )
}
