//! Steps 2 and 3: « Identifier le compte utilisateur » (the address) and « Entrez le code
//! d'accès » (the code of the mail, which proves the address; the mail's link may open it on
//! another device).

use axum::{
    extract::{rejection::FormRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{
    bind_browser, count_attempt, end, go, load, reached, render, save, Enrolment, Step, StepPage,
};
use crate::{
    app::AppState,
    domain::{ActivationCode, Email, Language},
    flows::page::{self, check_csrf, read_form},
    http::{CurrentRealm, HttpError},
    notify::messages,
    otp,
    realm::Realm,
    storage::accounts,
};

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

#[derive(Deserialize)]
pub struct AddressForm {
    csrf: String,
    email: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

fn purpose(tx: &str) -> String {
    format!("enrol-mail:{tx}")
}

#[allow(clippy::too_many_arguments)]
fn address_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/email", realm.id);
    let ctx = context! { csrf => csrf, email => email, error => error, action => &path };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/email.html",
            path: &path,
            step: 2,
            ctx,
            status,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn code_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    e: &Enrolment,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/confirm", realm.id);
    let ctx = context! {
        csrf => csrf,
        error => error,
        action => &path,
        email => e.email.as_deref().unwrap_or_default(),
        change => format!("/{}/register/{tx}/email", realm.id),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/confirm.html",
            path: &path,
            step: 3,
            ctx,
            status,
        },
    )
}

pub async fn show_address(
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
    if e.email_verified {
        return Ok(go(&realm, &tx, e.step()).into_response());
    }
    let email = e.email.clone().unwrap_or_default();
    address_page(&state, &realm, &tx, lang, jar, &email, None, StatusCode::OK)
}

pub async fn submit_address(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<AddressForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if e.email_verified {
        return Ok(go(&realm, &tx, e.step()).into_response());
    }
    let Ok(email) = form.email.parse::<Email>() else {
        return address_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &form.email,
            Some("error-email-format"),
            StatusCode::BAD_REQUEST,
        );
    };
    if e.mails_sent >= realm.enrolment.email_sends {
        return Err(HttpError::Limited {
            lang,
            retry_after: realm.enrolment.transaction,
        });
    }
    let taken = accounts::by_email(&state.db, &realm.id, &email)
        .await
        .map_err(HttpError::internal(lang))?
        .is_some();
    let now = state.clock.unix();
    // The same page follows either way; only the owner of the address learns, by mail, that
    // it already has an account.
    let (mail, code_hash) = if taken {
        let login = format!("{}/login", state.config.issuer(&realm.id));
        (messages::address_in_use(lang, &realm, &email, &login), None)
    } else {
        let code = ActivationCode::generate();
        let link = format!("{}/register/{tx}/confirm", state.config.issuer(&realm.id));
        let minutes = realm.enrolment.email_code_validity.as_secs() / 60;
        let mail =
            messages::enrolment_code(lang, &realm, &email, &link, &code.to_string(), minutes);
        (
            mail,
            Some(otp::hash(
                &state.secret_hasher,
                &purpose(&tx),
                code.as_str(),
            )),
        )
    };
    if let Err(err) = state.notifier.send_mail(mail).await {
        tracing::error!(realm = %realm.id, error = %err, "enrolment mail not sent");
        return address_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &form.email,
            Some("error-mail-failed"),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    e.email = Some(email.as_str().to_owned());
    e.email_taken = taken;
    e.email_code = code_hash;
    e.email_code_expires_at = now + realm.enrolment.email_code_validity.as_secs() as i64;
    e.mails_sent += 1;
    e.language = lang;
    save(&state, &realm, &tx, &e, lang).await?;
    Ok(go(&realm, &tx, Step::Confirm).into_response())
}

pub async fn show_code(
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
    // The mail's link may be opened on another device: the code decides, not the browser.
    let e = load(&state, &realm, &tx, &jar, lang, true).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Confirm) {
        return Ok(redirect.into_response());
    }
    if e.email_verified {
        return Ok(go(&realm, &tx, e.step()).into_response());
    }
    code_page(&state, &realm, &tx, lang, jar, &e, None, StatusCode::OK)
}

pub async fn submit_code(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, true).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Confirm) {
        return Ok(redirect.into_response());
    }
    if e.email_verified {
        return Ok(go(&realm, &tx, e.step()).into_response());
    }
    let attempts = count_attempt(&state, &realm, &tx, "mail", lang).await?;
    if attempts > realm.enrolment.email_code_attempts {
        let jar = end(&state, &realm, &tx, jar, lang).await?;
        tracing::warn!(realm = %realm.id, "enrolment ended: too many wrong mail codes");
        return Ok((
            jar,
            HttpError::page(StatusCode::TOO_MANY_REQUESTS, lang, "error-enrol-too-many"),
        )
            .into_response());
    }
    let now = state.clock.unix();
    let presented = form.code.parse::<ActivationCode>().ok();
    let matches = match (&e.email_code, presented) {
        (Some(stored), Some(code)) => {
            otp::matches(&state.secret_hasher, &purpose(&tx), stored, code.as_str())
        }
        _ => false,
    };
    if !matches {
        return code_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &e,
            Some("error-mail-code-wrong"),
            StatusCode::BAD_REQUEST,
        );
    }
    if e.email_code_expires_at <= now {
        return code_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &e,
            Some("error-mail-code-expired"),
            StatusCode::BAD_REQUEST,
        );
    }
    e.email_verified = true;
    e.email_code = None;
    // Whoever proved the address continues, on this device.
    let jar = bind_browser(&state, &realm, jar, &mut e);
    save(&state, &realm, &tx, &e, lang).await?;
    Ok((jar, go(&realm, &tx, Step::Account)).into_response())
}
