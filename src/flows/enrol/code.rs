//! Step 1: « Entrez le code d'accès » — the code of the activation letter.

use crate::http::params::{Form, FormRejection};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::{bind_browser, render, Enrolment, Step, StepPage};
use crate::{
    activation,
    app::AppState,
    audit::{Event, Kind},
    domain::{ActivationCode, Language},
    flows::page::{self, check_csrf, read_form},
    http::{ClientAddr, CurrentRealm, HttpError},
    limits::Limit,
    realm::Realm,
    session::random_token,
    storage::{
        accounts,
        activation_codes::{self, CodeState},
        persons,
    },
};

#[derive(Deserialize)]
pub struct StartQuery {
    lang: Option<String>,
    /// The login flow of a relying party's request, when the person came from its login page.
    flow: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    flow: Option<String>,
    code: String,
}

fn page(
    state: &AppState,
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    flow: Option<&str>,
    (code, error): (&str, Option<&str>),
) -> Result<Response, HttpError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let (jar, csrf) = state.csrf.token(jar, state.config.is_https());
    let path = match flow {
        Some(f) => format!("/{}/register?flow={f}", realm.id),
        None => format!("/{}/register", realm.id),
    };
    let ctx = context! {
        csrf => csrf,
        flow => flow,
        code => code,
        error => error,
        action => format!("/{}/register", realm.id),
        login => format!("/{}/login", realm.id),
    };
    render(
        realm,
        lang,
        jar,
        StepPage {
            template: "register/code.html",
            path: &path,
            step: 1,
            ctx,
            status,
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<StartQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let (jar, lang) = page::choose_language(&realm, q.lang.as_deref(), None, jar, &headers, secure);
    let flow = q.flow.as_deref().filter(|f| !f.is_empty() && f.len() <= 64);
    page(&state, &realm, lang, jar, flow, ("", None))
}

pub async fn submit(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    addr: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let form = read_form(form, lang)?;
    check_csrf(&state, &jar, &form.csrf, lang)?;
    let flow = form
        .flow
        .as_deref()
        .filter(|f| !f.is_empty() && f.len() <= 64);
    let refuse = |jar, key: &'static str| {
        let (state, realm, headers, form) = (&state, &realm, &headers, &form);
        async move {
            state
                .audit
                .record(
                    Event::new(Kind::EnrolStepRefused, &realm.id)
                        .origin(addr, headers)
                        .detail(json!({ "step": 1, "reason": key })),
                )
                .await;
            page(state, realm, lang, jar, flow, (&form.code, Some(key)))
        }
    };

    // Every try counts against the client's address, before anything is looked up.
    let guesses = Limit::per_hour(
        "activation-code-guesses-per-address",
        realm.enrolment.code_guesses_per_address_per_hour,
    );
    let subject = addr.subject();
    state
        .limits
        .charge(realm.id.as_str(), &[(guesses, &subject)])
        .await
        .map_err(HttpError::internal(lang))?
        .map_err(|e| HttpError::Limited {
            lang,
            retry_after: e.retry_after,
        })?;

    let Ok(code) = form.code.parse::<ActivationCode>() else {
        return refuse(jar, "error-code-format").await;
    };
    let now = state.clock.unix();
    let stored =
        activation_codes::find(&state.db, &realm.id, &activation::hash(&state, &code), now)
            .await
            .map_err(HttpError::internal(lang))?;
    let Some(stored) = stored else {
        tracing::info!(realm = %realm.id, "wrong activation code");
        return refuse(jar, "error-code-wrong").await;
    };
    match stored.state {
        CodeState::Usable => {}
        CodeState::Expired => return refuse(jar, "error-code-expired").await,
        CodeState::Revoked => return refuse(jar, "error-code-revoked").await,
        CodeState::Used => return refuse(jar, "error-code-used").await,
    }
    if accounts::by_ahv(&state.db, &realm.id, &stored.ahv)
        .await
        .map_err(HttpError::internal(lang))?
        .is_some()
    {
        return refuse(jar, "error-code-used").await;
    }
    let per_code = Limit::per_day(
        "enrolments-per-code",
        realm.enrolment.enrolments_per_code_per_day,
    );
    state
        .limits
        .charge(realm.id.as_str(), &[(per_code, &stored.id)])
        .await
        .map_err(HttpError::internal(lang))?
        .map_err(|e| HttpError::Limited {
            lang,
            retry_after: e.retry_after,
        })?;
    let person = persons::by_ahv(&state.db, &realm.id, &stored.ahv)
        .await
        .map_err(HttpError::internal(lang))?
        .ok_or_else(|| HttpError::page(StatusCode::BAD_REQUEST, lang, "error-code-wrong"))?;

    let mut enrolment = Enrolment {
        ahv: stored.ahv,
        code_id: stored.id,
        browser: String::new(),
        login_flow: flow.map(str::to_owned),
        given_name: person.given_name,
        family_name: person.family_name,
        language: if realm.offers(person.language) {
            person.language
        } else {
            lang
        },
        email: None,
        email_code: None,
        email_code_expires_at: 0,
        mails_sent: 0,
        email_verified: false,
        email_verified_at: None,
        terms_version: None,
        terms_accepted_at: None,
        password_hash: None,
        phone: None,
        sms_code: None,
        sms_code_expires_at: 0,
        sms_sent_at: None,
    };
    let tx = random_token();
    let jar = bind_browser(&state, &realm, jar, &mut enrolment);
    state
        .enrolments
        .records
        .put(
            realm.id.as_str(),
            &tx,
            &enrolment,
            realm.enrolment.transaction,
        )
        .await
        .map_err(HttpError::internal(lang))?;
    tracing::info!(realm = %realm.id, "enrolment started");
    state
        .audit
        .record(
            Event::new(Kind::EnrolStepCompleted, &realm.id)
                .origin(addr, &headers)
                .detail(json!({ "step": 1, "ahv": enrolment.ahv.masked() })),
        )
        .await;
    metrics::counter!("connect_enrolments_total", "realm" => realm.id.to_string(), "outcome" => "started").increment(1);
    let next = format!("/{}/register/{tx}/{}", realm.id, Step::Email.path());
    Ok((jar, axum::response::Redirect::to(&next)).into_response())
}
