//! The person's own account page.

use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::page;
use crate::{
    app::AppState,
    http::{templates, CurrentRealm, HttpError},
    storage::accounts,
};

#[derive(Deserialize)]
pub struct AccountQuery {
    lang: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<AccountQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let (jar, lang) = page::choose_language(&realm, q.lang.as_deref(), None, jar, &headers, secure);
    let current = state
        .sessions
        .current(&realm, &jar)
        .await
        .map_err(HttpError::internal(lang))?;
    let Some(s) = current else {
        return Ok((jar, Redirect::to(&format!("/{}/login", realm.id))).into_response());
    };
    let account = accounts::by_id(&state.db, &realm.id, &s.account_id)
        .await
        .map_err(HttpError::internal(lang))?;
    let Some(account) = account else {
        return Ok((jar, Redirect::to(&format!("/{}/login", realm.id))).into_response());
    };
    let (jar, csrf) = state.csrf.token(jar, secure);
    let ctx = context! {
        ..page::layout(&realm, lang, &format!("/{}/account", realm.id)),
        ..context! {
            csrf => csrf,
            given_name => account.given_name,
            family_name => account.family_name,
            email => account.email.as_str(),
            phone => account.phone.as_deref().map(crate::domain::PhoneNumber::for_display),
        }
    };
    let html = templates::render("account/account.html", ctx).map_err(HttpError::internal(lang))?;
    Ok((jar, Html(html)).into_response())
}
