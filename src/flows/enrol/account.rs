//! Step 4 « Ouverture de compte » (names, language, terms of use) and step 5 « Création du
//! mot de passe »; and the terms of use themselves.

use axum::{http::StatusCode, response::Response};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};

use super::{Enrolment, Step, StepRequest};
use crate::{
    domain::{Language, Password, PasswordContext, PasswordError},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        Page, PageError,
    },
};

csrf_forms! {
    pub struct ProfileForm {
        given_name: String,
        family_name: String,
        language: String,
        terms: Option<String>,
    }

    pub struct PasswordForm {
        password: SecretString,
        confirm: SecretString,
    }
}

/// The longest name we keep; longer input is refused, not cut.
const MAX_NAME: usize = 100;

pub(in crate::flows) fn clean_name(raw: &str) -> Option<String> {
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
) -> Result<Response, PageError> {
    let languages: Vec<_> = req
        .page
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
        terms_link => format!("/{}/terms", req.page.realm.id),
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

pub async fn show_profile(req: StepRequest) -> Result<Response, PageError> {
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
) -> Result<Response, PageError> {
    let form = req.read(form)?;
    let mut e = req.open(Step::Account).await?;
    let chosen = form
        .language
        .parse::<Language>()
        .ok()
        .filter(|l| req.page.realm.offers(*l));
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
    e.terms_version = Some(req.page.realm.terms.version.clone());
    e.terms_accepted_at = Some(req.state.clock.unix());
    req.advance(&e, Step::Account).await
}

fn password_page(req: StepRequest, error: Option<FieldError>) -> Result<Response, PageError> {
    let policy = req.page.realm.password_policy;
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

pub async fn show_password(req: StepRequest) -> Result<Response, PageError> {
    req.open(Step::Password).await?;
    password_page(req, None)
}

pub async fn submit_password(
    req: StepRequest,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
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
    let policy = &req.page.realm.password_policy;
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
        Err(crate::passwords::PasswordError::Busy) => return Err(PageError::busy(&req.page.realm)),
        Err(e) => return Err(e.into()),
    };
    e.password_hash = Some(hash);
    req.advance(&e, Step::Password).await
}

/// « Afficher les conditions d'utilisation »: the version in force, in the page's language.
pub async fn terms(mut page: Page) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let paragraphs: Vec<&str> = realm
        .terms
        .text(page.lang)
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    page.at(format!("/{}/terms", realm.id));
    let ctx = context! { version => &realm.terms.version, paragraphs => paragraphs };
    page.render(StatusCode::OK, "register/terms.html", ctx)
}
