//! Step 6 « Numéro de portable » and step 7 « Code » — « Confirmer et conclure », where the
//! account is opened.

use axum::{
    extract::{rejection::FormRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{count_attempt, end, go, load, reached, render, save, Enrolment, Step, StepPage};
use crate::{
    app::AppState,
    domain::{Email, Language, PhoneError, PhoneNumber},
    flows::{
        login::LoginFlow,
        page::{self, check_csrf, read_form},
        sms::{self, Refused},
    },
    http::{ClientAddr, CurrentRealm, HttpError},
    otp,
    protocol::authorize::flow_key,
    realm::Realm,
    storage::{accounts, Conflict, StoreError},
};

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

#[derive(Deserialize)]
pub struct NumberForm {
    csrf: String,
    phone: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

#[derive(Deserialize)]
pub struct ResendForm {
    csrf: String,
}

fn purpose(tx: &str) -> String {
    format!("enrol-sms:{tx}")
}

/// A message key and, for some, a number of seconds or minutes to show in it.
type Problem = (&'static str, Option<u64>);

fn refusal(r: Refused) -> Problem {
    match r {
        Refused::Cooldown(s) => ("error-sms-cooldown", Some(s)),
        Refused::Limited(d) => ("error-limit", Some(d.as_secs().div_ceil(60))),
        Refused::Failed => ("error-sms-failed", None),
    }
}

fn status_of(p: &Problem) -> StatusCode {
    match p.0 {
        "error-limit" => StatusCode::TOO_MANY_REQUESTS,
        "error-sms-failed" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn number_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    phone: &str,
    problem: Option<Problem>,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/phone", realm.id);
    let status = problem.as_ref().map_or(StatusCode::OK, status_of);
    let ctx = context! {
        csrf => csrf,
        action => &path,
        phone => phone,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/phone.html",
            path: &path,
            step: 6,
            ctx,
            status,
        },
    )
}

fn code_page(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    e: &Enrolment,
    problem: Option<Problem>,
) -> Result<Response, HttpError> {
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = format!("/{}/register/{tx}/sms", realm.id);
    let masked = e
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
        .map(|p| p.masked())
        .unwrap_or_default();
    let status = problem.as_ref().map_or(StatusCode::OK, status_of);
    let ctx = context! {
        csrf => csrf,
        action => &path,
        resend => format!("{path}/resend"),
        change => format!("/{}/register/{tx}/phone", realm.id),
        masked => masked,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/sms.html",
            path: &path,
            step: 7,
            ctx,
            status,
        },
    )
}

pub async fn show_number(
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
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Phone) {
        return Ok(redirect.into_response());
    }
    let phone = e.phone.clone().unwrap_or_default();
    number_page(&state, &realm, &tx, lang, jar, &phone, None)
}

/// Sends a code to `phone` for this enrolment and records it; the problem to show if not.
async fn send(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    e: &mut Enrolment,
    phone: &PhoneNumber,
    addr: &ClientAddr,
) -> Result<Option<Problem>, HttpError> {
    let subject = format!("person:{}", e.ahv.as_str());
    let sent = sms::send_code(
        state,
        realm,
        lang,
        phone,
        &subject,
        addr,
        e.sms_sent_at,
        &purpose(tx),
    )
    .await?;
    match sent {
        Ok(sent) => {
            e.phone = Some(phone.as_e164().to_owned());
            e.sms_code = Some(sent.code_hash);
            e.sms_code_expires_at = sent.expires_at;
            e.sms_sent_at = Some(sent.sent_at);
            save(state, realm, tx, e, lang).await?;
            Ok(None)
        }
        Err(r) => Ok(Some(refusal(r))),
    }
}

pub async fn submit_number(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<NumberForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Phone) {
        return Ok(redirect.into_response());
    }
    let countries: Vec<&str> = realm
        .sms
        .allowed_countries
        .iter()
        .map(String::as_str)
        .collect();
    let phone = PhoneNumber::parse(&form.phone).and_then(|p| {
        p.check_allowed(&countries, realm.sms.mobile_only)?;
        Ok(p)
    });
    let phone = match phone {
        Ok(p) => p,
        Err(err) => {
            let key = match err {
                PhoneError::Country => "error-phone-country",
                PhoneError::NotMobile => "error-phone-mobile",
                _ => "error-phone-format",
            };
            return number_page(
                &state,
                &realm,
                &tx,
                lang,
                jar,
                &form.phone,
                Some((key, None)),
            );
        }
    };
    match send(&state, &realm, &tx, lang, &mut e, &phone, &addr).await? {
        None => Ok(go(&realm, &tx, Step::Sms).into_response()),
        Some(problem) => number_page(&state, &realm, &tx, lang, jar, &form.phone, Some(problem)),
    }
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
    let e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Sms) {
        return Ok(redirect.into_response());
    }
    code_page(&state, &realm, &tx, lang, jar, &e, None)
}

pub async fn resend(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Path((_, tx)): Path<(String, String)>,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let mut e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Sms) {
        return Ok(redirect.into_response());
    }
    let Some(phone) = e.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) else {
        return Ok(go(&realm, &tx, Step::Phone).into_response());
    };
    let problem = send(&state, &realm, &tx, lang, &mut e, &phone, &addr).await?;
    let problem = problem.or(Some(("sms-resent", None)));
    let status_ok = problem.is_some_and(|p| p.0 == "sms-resent");
    let mut res = code_page(&state, &realm, &tx, lang, jar, &e, problem)?;
    if status_ok {
        *res.status_mut() = StatusCode::OK;
    }
    Ok(res)
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
    let e = load(&state, &realm, &tx, &jar, lang, false).await?;
    if let Some(redirect) = reached(&realm, &tx, &e, Step::Sms) {
        return Ok(redirect.into_response());
    }
    let attempts = count_attempt(&state, &realm, &tx, "sms", lang).await?;
    if attempts > realm.sms.code_attempts {
        let jar = end(&state, &realm, &tx, jar, lang).await?;
        tracing::warn!(realm = %realm.id, "enrolment ended: too many wrong SMS codes");
        return Ok((
            jar,
            HttpError::page(StatusCode::TOO_MANY_REQUESTS, lang, "error-enrol-too-many"),
        )
            .into_response());
    }
    let ok = e.sms_code.as_deref().is_some_and(|stored| {
        otp::matches(&state.secret_hasher, &purpose(&tx), stored, &form.code)
    });
    if !ok {
        return code_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &e,
            Some(("error-sms-code-wrong", None)),
        );
    }
    if e.sms_code_expires_at <= state.clock.unix() {
        return code_page(
            &state,
            &realm,
            &tx,
            lang,
            jar,
            &e,
            Some(("error-sms-code-expired", None)),
        );
    }
    complete(&state, &realm, &tx, lang, jar, e).await
}

/// Opens the account, ends the enrolment and sends the person to the login page (which
/// finishes the relying party's request, when there was one).
async fn complete(
    state: &AppState,
    realm: &Realm,
    tx: &str,
    lang: Language,
    jar: CookieJar,
    e: Enrolment,
) -> Result<Response, HttpError> {
    let (Some(email), Some(password_hash), Some(terms_version), Some(accepted_at)) = (
        e.email.as_deref(),
        e.password_hash.as_deref(),
        e.terms_version.as_deref(),
        e.terms_accepted_at,
    ) else {
        return Ok(go(realm, tx, e.step()).into_response());
    };
    let email: Email = email.parse().map_err(HttpError::internal(lang))?;
    let new = accounts::NewAccount {
        realm: &realm.id,
        email: &email,
        password_hash,
        given_name: &e.given_name,
        family_name: &e.family_name,
        ahv: Some(&e.ahv),
        phone: e.phone.as_deref(),
        language: e.language,
    };
    let terms = accounts::AcceptedTerms {
        version: terms_version,
        accepted_at,
    };
    let opened =
        accounts::open_enrolled(&state.db, &e.code_id, &new, &terms, state.clock.unix()).await;
    let refused = |key| {
        metrics::counter!("connect_enrolments_total", "realm" => realm.id.to_string(), "outcome" => "refused").increment(1);
        HttpError::page(StatusCode::CONFLICT, lang, key)
    };
    match opened {
        Ok(_) => {}
        Err(StoreError::Conflict(Conflict::CodeSpent | Conflict::AhvTaken)) => {
            let jar = end(state, realm, tx, jar, lang).await?;
            return Ok((jar, refused("error-code-used")).into_response());
        }
        Err(StoreError::Conflict(Conflict::EmailTaken)) => {
            let jar = end(state, realm, tx, jar, lang).await?;
            return Ok((jar, refused("error-email-taken")).into_response());
        }
        Err(other) => return Err(HttpError::internal(lang)(other)),
    }
    let jar = end(state, realm, tx, jar, lang).await?;
    tracing::info!(realm = %realm.id, "enrolment completed, account opened");
    metrics::counter!("connect_enrolments_total", "realm" => realm.id.to_string(), "outcome" => "completed").increment(1);
    // The relying party's request, if it is still waiting, is finished by the login.
    let flow = match e.login_flow.as_deref() {
        Some(id) => {
            let waiting: Option<LoginFlow> = state
                .ephemeral
                .get_json(&flow_key(realm, id))
                .await
                .map_err(HttpError::internal(lang))?;
            waiting.map(|_| id.to_owned())
        }
        None => None,
    };
    let to = match flow {
        Some(f) => format!("/{}/login?flow={f}&enrolled=1", realm.id),
        None => format!("/{}/login?enrolled=1", realm.id),
    };
    Ok((jar, Redirect::to(&to)).into_response())
}
