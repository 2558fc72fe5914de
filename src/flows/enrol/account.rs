//! Step 4 « Ouverture de compte » (names, language, terms of use) and step 5 « Création du
//! mot de passe ».

use axum::{
    extract::{rejection::FormRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{go, load, reached, render, save, Enrolment, Step, StepPage};
use crate::{
    app::AppState,
    domain::{Language, Password, PasswordContext, PasswordError},
    flows::page::{self, check_csrf, read_form},
    http::{CurrentRealm, HttpError},
    realm::Realm,
};

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf: String,
    given_name: String,
    family_name: String,
    language: String,
    terms: Option<String>,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: SecretString,
    confirm: SecretString,
}

/// The longest name we keep; longer input is refused, not cut.
const MAX_NAME: usize = 100;

fn clean_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let ok =
        !name.is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

#[allow(clippy::too_many_arguments)]
fn profile_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    e: &Enrolment,
    values: (&str, &str, Language, bool),
    error: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/account", realm.id);
    let languages: Vec<_> = realm
        .languages
        .iter()
        .map(|l| context! { code => l.code(), name => l.endonym(), selected => *l == values.2 })
        .collect();
    let ctx = context! {
        csrf => csrf,
        action => &path,
        given_name => values.0,
        family_name => values.1,
        accepted => values.3,
        email => e.email.as_deref().unwrap_or_default(),
        languages => languages,
        terms_link => format!("/{}/terms", realm.id),
        error_field => error.map(|e| e.0),
        error => error.map(|e| e.1),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/account.html",
            path: &path,
            step: 4,
            ctx,
            status,
        },
    )
}

pub async fn show_profile(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        None,
        jar,
        &headers,
        state.config.is_https(),
    );
    let e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Account) {
        return Ok(redirect.into_response());
    }
    let values = (
        e.given_name.as_str(),
        e.family_name.as_str(),
        e.language,
        e.terms_accepted_at.is_some(),
    );
    profile_page(
        &state,
        &realm,
        &tx,
        lang,
        jar,
        &e,
        values,
        None,
        StatusCode::OK,
    )
}

pub async fn submit_profile(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<ProfileForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Account) {
        return Ok(redirect.into_response());
    }
    let chosen = form
        .language
        .parse::<Language>()
        .ok()
        .filter(|l| realm.offers(*l));
    let accepted = form.terms.as_deref() == Some("accept");
    let values = (
        form.given_name.as_str(),
        form.family_name.as_str(),
        chosen.unwrap_or(e.language),
        accepted,
    );
    let error = match (
        clean_name(&form.given_name),
        clean_name(&form.family_name),
        chosen,
    ) {
        (None, _, _) => Some(("given_name", "error-name")),
        (_, None, _) => Some(("family_name", "error-name")),
        (_, _, None) => Some(("language", "error-language")),
        _ if !accepted => Some(("terms", "error-terms")),
        (Some(given), Some(family), Some(language)) => {
            e.given_name = given;
            e.family_name = family;
            e.language = language;
            None
        }
    };
    if let Some(error) = error {
        return profile_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &e.clone(),
            values,
            Some(error),
            StatusCode::BAD_REQUEST,
        );
    }
    e.terms_version = Some(realm.terms.version.clone());
    e.terms_accepted_at = Some(state.clock.unix());
    save(&state, &realm, &tx, &e, lang).await?;
    Ok(go(&realm, &tx, Step::Password).into_response())
}

fn password_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    error: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/password", realm.id);
    let ctx = context! {
        csrf => csrf,
        action => &path,
        min => realm.password_policy.min_length,
        max => realm.password_policy.max_length,
        error_field => error.map(|e| e.0),
        error => error.map(|e| e.1),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/password.html",
            path: &path,
            step: 5,
            ctx,
            status,
        },
    )
}

pub async fn show_password(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        None,
        jar,
        &headers,
        state.config.is_https(),
    );
    let e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Password) {
        return Ok(redirect.into_response());
    }
    password_page(&state, &realm, &tx, lang, jar, None, StatusCode::OK)
}

pub async fn submit_password(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Password) {
        return Ok(redirect.into_response());
    }
    let context = PasswordContext {
        email_local_part: e
            .email
            .as_deref()
            .and_then(|m| m.split('@').next())
            .map(str::to_owned),
        names: vec![e.given_name.clone(), e.family_name.clone()],
    };
    let refuse = |jar, field, key| {
        password_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            Some((field, key)),
            StatusCode::BAD_REQUEST,
        )
    };
    let password = match Password::new(
        form.password.expose_secret(),
        &realm.password_policy,
        &context,
    ) {
        Ok(p) => p,
        Err(PasswordError::TooShort { .. }) => {
            return refuse(jar, "password", "error-password-short")
        }
        Err(PasswordError::TooLong { .. }) => {
            return refuse(jar, "password", "error-password-long")
        }
        Err(PasswordError::Common) => return refuse(jar, "password", "error-password-common"),
        Err(PasswordError::ContainsPersonalData) => {
            return refuse(jar, "password", "error-password-personal")
        }
    };
    // The confirmation is compared after the same normalisation as the password.
    let confirm = Password::new(
        form.confirm.expose_secret(),
        &realm.password_policy,
        &context,
    )
    .ok();
    if confirm.is_none_or(|c| c.expose() != password.expose()) {
        return refuse(jar, "confirm", "error-password-mismatch");
    }
    let hash = state
        .passwords
        .hash(SecretString::from(password.expose().to_owned()))
        .await
        .map_err(HttpError::internal(lang))?;
    e.password_hash = Some(hash);
    save(&state, &realm, &tx, &e, lang).await?;
    Ok(go(&realm, &tx, Step::Phone).into_response())
}

/// « Afficher les conditions d'utilisation »: the version in force, in the page's language.
pub async fn terms(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        None,
        jar,
        &headers,
        state.config.is_https(),
    );
    let paragraphs: Vec<&str> = realm
        .terms
        .text(lang)
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let path = format!("/{}/terms", realm.id);
    let ctx = minijinja::context! {
        ..page::layout(&realm, lang, &path),
        ..context! { version => &realm.terms.version, paragraphs => paragraphs }
    };
    let html = crate::http::templates::render("register/terms.html", ctx)
        .map_err(HttpError::internal(lang))?;
    Ok((jar, axum::response::Html(html)).into_response())
}
