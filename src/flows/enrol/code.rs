//! Step 1: « Entrez le code d'accès » — the code of the activation letter.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::{bind_browser, render, Enrolment, Step};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::ActivationCode,
    flows::recovery::new_phone,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    limits::Limit,
    session::random_token,
    storage::{
        accounts,
        activation_codes::{self, CodeState},
        letter_requests, persons,
    },
};

#[derive(Deserialize)]
pub struct StartQuery {
    /// The login flow of a relying party's request, when the person came from its login page.
    flow: Option<String>,
}

csrf_forms! {
    pub struct CodeForm {
        flow: Option<String>,
        code: String,
    }
}

fn valid_flow(flow: Option<&str>) -> Option<&str> {
    flow.filter(|f| !f.is_empty() && f.len() <= 64)
}

/// Step 1's page; `code` and `error` refill it after a refused code.
fn page(
    mut page: Page,
    flow: Option<&str>,
    (code, error): (&str, Option<&str>),
) -> Result<Response, PageError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let realm = page.realm.id.clone();
    page.at(match flow {
        Some(f) => format!("/{realm}/register?flow={f}"),
        None => format!("/{realm}/register"),
    });
    let ctx = context! {
        csrf => page.csrf(),
        flow => flow,
        code => code,
        error => error,
        action => format!("/{realm}/register"),
        login => format!("/{realm}/login"),
    };
    render(page, "register/code.html", 1, status, ctx)
}

pub async fn show(p: Page, Query(q): Query<StartQuery>) -> Result<Response, PageError> {
    page(p, valid_flow(q.flow.as_deref()), ("", None))
}

pub async fn submit(
    State(state): State<AppState>,
    mut p: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = p.read(form)?;
    let flow = valid_flow(form.flow.as_deref());
    let realm = p.realm.clone();
    let headers = p.headers().clone();
    let refuse = |p, key: &'static str| {
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
            page(p, flow, (&form.code, Some(key)))
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
        .await?
        .map_err(|e| PageError::Limited(e.retry_after))?;

    let Ok(code) = form.code.parse::<ActivationCode>() else {
        return refuse(p, "error-code-format").await;
    };
    let now = state.clock.unix();
    let stored =
        activation_codes::find(&state.db, &realm.id, &state.activation.hash(&code), now).await?;
    let Some(stored) = stored else {
        tracing::info!(realm = %realm.id, "wrong activation code");
        return refuse(p, "error-code-wrong").await;
    };
    match stored.state {
        CodeState::Usable => {}
        CodeState::Expired => return refuse(p, "error-code-expired").await,
        CodeState::Revoked => return refuse(p, "error-code-revoked").await,
        CodeState::Used => return refuse(p, "error-code-used").await,
    }
    let per_code = Limit::per_day(
        "enrolments-per-code",
        realm.enrolment.enrolments_per_code_per_day,
    );
    state
        .limits
        .charge(realm.id.as_str(), &[(per_code, &stored.id)])
        .await?
        .map_err(|e| PageError::Limited(e.retry_after))?;
    if accounts::by_ahv(&state.db, &realm.id, &stored.ahv)
        .await?
        .is_some()
    {
        // The code of a letter asked for after a lost phone registers a new number.
        return match letter_requests::printed_with_code(&state.db, &realm.id, &stored.id).await? {
            Some(letter) => new_phone::start(&state, p, addr, letter, flow).await,
            None => refuse(p, "error-code-used").await,
        };
    }
    let person = persons::by_ahv(&state.db, &realm.id, &stored.ahv)
        .await?
        .ok_or(PageError::new(StatusCode::BAD_REQUEST, "error-code-wrong"))?;

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
            p.lang
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
    bind_browser(&mut p, &state.secret_hasher, &mut enrolment);
    state
        .enrolments
        .records
        .put(
            realm.id.as_str(),
            &tx,
            &enrolment,
            realm.enrolment.transaction,
        )
        .await?;
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
    Ok(p.redirect(&next))
}
