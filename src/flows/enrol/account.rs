//! Step 4 « Ouverture de compte » (names, language, terms of use) and step 5 « Création du
//! mot de passe »; and the terms of use themselves.

use crate::http::params::{Form, FormRejection};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Detour, Enrolment, Step, StepForm, StepRequest};
use crate::{
    app::AppState,
    domain::{Language, Password, PasswordContext, PasswordError},
    flows::page,
    http::{CurrentRealm, HttpError},
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

impl StepForm for ProfileForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl StepForm for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The longest name we keep; longer input is refused, not cut.
const MAX_NAME: usize = 100;

fn clean_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let ok =
        !name.is_empty() && name.chars().count() <= MAX_NAME && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// What step 4 shows in its fields.
struct Profile<'a> {
    given_name: &'a str,
    family_name: &'a str,
    language: Language,
    accepted: bool,
}

/// A field in error and the message for it.
type FieldError = (&'static str, &'static str);

fn profile_page(
    req: StepRequest,
    e: &Enrolment,
    values: Profile<'_>,
    error: Option<FieldError>,
) -> Result<Response, Detour> {
    let languages: Vec<_> = req
        .realm
        .languages
        .iter()
        .map(|l| context! { code => l.code(), name => l.endonym(), selected => *l == values.language })
        .collect();
    let ctx = context! {
        given_name => values.given_name,
        family_name => values.family_name,
        accepted => values.accepted,
        email => e.email.as_deref().unwrap_or_default(),
        languages => languages,
        terms_link => format!("/{}/terms", req.realm.id),
        error_field => error.map(|e| e.0),
        error => error.map(|e| e.1),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    req.page(Step::Account, status, ctx)
}

pub async fn show_profile(req: StepRequest) -> Result<Response, Detour> {
    let e = req.open(Step::Account).await?;
    let values = Profile {
        given_name: &e.given_name,
        family_name: &e.family_name,
        language: e.language,
        accepted: e.terms_accepted_at.is_some(),
    };
    profile_page(req, &e, values, None)
}

pub async fn submit_profile(
    req: StepRequest,
    form: Result<Form<ProfileForm>, FormRejection>,
) -> Result<Response, Detour> {
    let form = req.read(form)?;
    let mut e = req.open(Step::Account).await?;
    let chosen = form
        .language
        .parse::<Language>()
        .ok()
        .filter(|l| req.realm.offers(*l));
    let accepted = form.terms.as_deref() == Some("accept");
    let (given, family) = (clean_name(&form.given_name), clean_name(&form.family_name));
    let error = match (&given, &family, chosen) {
        (None, _, _) => Some(("given_name", "error-name")),
        (_, None, _) => Some(("family_name", "error-name")),
        (_, _, None) => Some(("language", "error-language")),
        _ if !accepted => Some(("terms", "error-terms")),
        _ => None,
    };
    if error.is_some() {
        let values = Profile {
            given_name: &form.given_name,
            family_name: &form.family_name,
            language: chosen.unwrap_or(e.language),
            accepted,
        };
        return profile_page(req, &e, values, error);
    }
    if let (Some(given), Some(family), Some(language)) = (given, family, chosen) {
        e.given_name = given;
        e.family_name = family;
        e.language = language;
    }
    e.terms_version = Some(req.realm.terms.version.clone());
    e.terms_accepted_at = Some(req.state.clock.unix());
    req.advance(&e, Step::Account).await
}

fn password_page(req: StepRequest, error: Option<FieldError>) -> Result<Response, Detour> {
    let policy = req.realm.password_policy;
    let ctx = context! {
        min => policy.min_length,
        max => policy.max_length,
        error_field => error.map(|e| e.0),
        error => error.map(|e| e.1),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    req.page(Step::Password, status, ctx)
}

pub async fn show_password(req: StepRequest) -> Result<Response, Detour> {
    req.open(Step::Password).await?;
    password_page(req, None)
}

pub async fn submit_password(
    req: StepRequest,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, Detour> {
    let form = req.read(form)?;
    let mut e = req.open(Step::Password).await?;
    let context = PasswordContext {
        email_local_part: e
            .email
            .as_deref()
            .and_then(|m| m.split('@').next())
            .map(str::to_owned),
        names: vec![e.given_name.clone(), e.family_name.clone()],
    };
    let policy = &req.realm.password_policy;
    let password = match Password::new(form.password.expose_secret(), policy, &context) {
        Ok(p) => p,
        Err(err) => {
            let key = match err {
                PasswordError::TooShort { .. } => "error-password-short",
                PasswordError::TooLong { .. } => "error-password-long",
                PasswordError::Common => "error-password-common",
                PasswordError::ContainsPersonalData => "error-password-personal",
            };
            return password_page(req, Some(("password", key)));
        }
    };
    // The confirmation is compared after the same normalisation as the password.
    let confirm = Password::new(form.confirm.expose_secret(), policy, &context).ok();
    if confirm.is_none_or(|c| c.expose() != password.expose()) {
        return password_page(req, Some(("confirm", "error-password-mismatch")));
    }
    let hash = match req
        .state
        .passwords
        .hash(SecretString::from(password.expose().to_owned()))
        .await
    {
        Ok(hash) => hash,
        Err(crate::passwords::PasswordError::Busy) => {
            return Err(Detour::to(crate::flows::login::busy(&req.realm, req.lang)))
        }
        Err(e) => return Err(HttpError::internal(req.lang)(e).into()),
    };
    e.password_hash = Some(hash);
    req.advance(&e, Step::Password).await
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
