//! Step 6 « Numéro de portable » and step 7 « Code » — « Confirmer et conclure », where the
//! account is opened.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use minijinja::context;
use serde_json::json;

use super::{Enrolment, Step, StepRequest};
use crate::{
    audit::{Event, Kind},
    domain::{Email, PhoneError, PhoneNumber},
    flows::sms,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, PageError,
    },
    otp,
    storage::{accounts, Conflict, StoreError},
};

csrf_forms! {
    pub struct NumberForm {
        phone: String,
    }

    pub struct CodeForm {
        code: String,
    }

    pub struct ResendForm {}
}

fn purpose(tx: &str) -> String {
    format!("enrol-sms:{tx}")
}

/// A message key, the number it shows (seconds or minutes) and the status of the page.
type Problem = (&'static str, Option<u64>, StatusCode);

fn bad(key: &'static str) -> Problem {
    (key, None, StatusCode::BAD_REQUEST)
}

fn number_page(
    req: StepRequest,
    phone: &str,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    let ctx =
        context! { phone => phone, error => problem.map(|p| p.0), n => problem.and_then(|p| p.1) };
    req.page(Step::Phone, status, ctx)
}

fn code_page(
    req: StepRequest,
    e: &Enrolment,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let masked = e
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
        .map(|p| p.masked())
        .unwrap_or_default();
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    let ctx = context! {
        resend => format!("{}/resend", req.path(Step::Sms)),
        change => req.path(Step::Phone),
        masked => masked,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    req.page(Step::Sms, status, ctx)
}

/// Sends a code to `phone` for this enrolment and records it; the problem to show if not.
async fn send(
    req: &StepRequest,
    e: &mut Enrolment,
    phone: &PhoneNumber,
    addr: &ClientAddr,
) -> Result<Option<Problem>, PageError> {
    let subject = format!("person:{}", e.ahv.as_str());
    let purpose = purpose(&req.tx);
    let to = sms::CodeFor {
        phone,
        account: &subject,
        purpose: &purpose,
        last_sent_at: e.sms_sent_at,
    };
    let sent = req
        .state
        .sms
        .send(&req.page.realm, req.page.lang, addr, to)
        .await?;
    match sent {
        Ok(sent) => {
            e.phone = Some(phone.as_e164().to_owned());
            e.sms_code = Some(sent.code_hash);
            e.sms_code_expires_at = sent.expires_at;
            e.sms_sent_at = Some(sent.sent_at);
            req.save(e).await?;
            Ok(None)
        }
        Err(refused) => Ok(Some(refused.message())),
    }
}

pub async fn show_number(req: StepRequest) -> Result<Response, PageError> {
    let e = req.open(Step::Phone).await?;
    number_page(req, e.phone.as_deref().unwrap_or_default(), None)
}

pub async fn submit_number(
    req: StepRequest,
    addr: ClientAddr,
    form: Result<Form<NumberForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.read(form)?;
    let mut e = req.open(Step::Phone).await?;
    let rules = &req.page.realm.sms;
    let countries: Vec<&str> = rules.allowed_countries.iter().map(String::as_str).collect();
    let phone = PhoneNumber::parse(&form.phone).and_then(|p| {
        p.check_allowed(&countries, rules.mobile_only)?;
        Ok(p)
    });
    let phone = match phone {
        Ok(p) => p,
        Err(PhoneError::Country) => {
            return number_page(req, &form.phone, Some(bad("error-phone-country")))
        }
        Err(PhoneError::NotMobile) => {
            return number_page(req, &form.phone, Some(bad("error-phone-mobile")))
        }
        Err(_) => return number_page(req, &form.phone, Some(bad("error-phone-format"))),
    };
    match send(&req, &mut e, &phone, &addr).await? {
        None => {
            req.audit(
                Kind::EnrolStepCompleted,
                Step::Phone,
                json!({ "phone": phone.masked() }),
            )
            .await;
            Ok(req.go(Step::Sms))
        }
        Some(problem) => number_page(req, &form.phone, Some(problem)),
    }
}

pub async fn show_code(req: StepRequest) -> Result<Response, PageError> {
    let e = req.open(Step::Sms).await?;
    code_page(req, &e, None)
}

pub async fn resend(
    req: StepRequest,
    addr: ClientAddr,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    req.read(form)?;
    let mut e = req.open(Step::Sms).await?;
    let Some(phone) = e.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) else {
        return Ok(req.go(Step::Phone));
    };
    let problem = send(&req, &mut e, &phone, &addr).await?;
    code_page(
        req,
        &e,
        Some(problem.unwrap_or(("sms-resent", None, StatusCode::OK))),
    )
}

pub async fn submit_code(
    req: StepRequest,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.read(form)?;
    let e = req.open(Step::Sms).await?;
    let max = req.page.realm.sms.code_attempts;
    let req = req.count_attempt("sms", max).await?;
    let ok = e.sms_code.as_deref().is_some_and(|stored| {
        otp::matches(
            &req.state.secret_hasher,
            &purpose(&req.tx),
            stored,
            &form.code,
        )
    });
    if !ok {
        req.audit_refused(Step::Sms, "wrong_code").await;
        return code_page(req, &e, Some(bad("error-sms-code-wrong")));
    }
    if e.sms_code_expires_at <= req.state.clock.unix() {
        req.audit_refused(Step::Sms, "expired_code").await;
        return code_page(req, &e, Some(bad("error-sms-code-expired")));
    }
    complete(req, e).await
}

/// Opens the account, ends the enrolment and sends the person to the login page (which
/// finishes the relying party's request, when there was one).
async fn complete(req: StepRequest, e: Enrolment) -> Result<Response, PageError> {
    let (state, realm) = (req.state.clone(), req.page.realm.clone());
    let (Some(email), Some(password_hash), Some(terms_version), Some(accepted_at)) = (
        e.email.as_deref(),
        e.password_hash.as_deref(),
        e.terms_version.as_deref(),
        e.terms_accepted_at,
    ) else {
        return Ok(req.go(e.step()));
    };
    let email: Email = email.parse()?;
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
    let now = state.clock.unix();
    // The SMS code just matched: the number is proved now, the address at step 3.
    let proved = accounts::Proved {
        email_at: e.email_verified_at.unwrap_or(now),
        phone_at: now,
    };
    let opened = accounts::open_enrolled(&state.db, &e.code_id, &new, &terms, &proved, now).await;
    let refusal = match opened {
        Ok(account) => {
            let ahv = json!({ "ahv": e.ahv.masked() });
            state
                .audit
                .record(
                    Event::new(Kind::ActivationCodeSpent, &realm.id)
                        .account(&account)
                        .origin(req.addr, req.page.headers())
                        .detail(ahv.clone()),
                )
                .await;
            req.audit(Kind::EnrolStepCompleted, Step::Sms, ahv).await;
            None
        }
        Err(StoreError::Conflict(Conflict::CodeSpent | Conflict::AhvTaken)) => {
            Some("error-code-used")
        }
        Err(StoreError::Conflict(Conflict::EmailTaken)) => Some("error-email-taken"),
        Err(other) => return Err(other.into()),
    };
    if let Some(key) = refusal {
        req.audit_refused(Step::Sms, key).await;
    }
    // Opened or refused, this enrolment is over.
    let jar = req.end().await?;
    let outcome = if refusal.is_some() {
        "refused"
    } else {
        "completed"
    };
    metrics::counter!("connect_enrolments_total", "realm" => realm.id.to_string(), "outcome" => outcome).increment(1);
    if let Some(key) = refusal {
        let refused = PageError::new(StatusCode::CONFLICT, key);
        return Err(PageError::answered((jar, refused)));
    }
    tracing::info!(realm = %realm.id, "enrolment completed, account opened");
    // The relying party's request, if it is still waiting, is finished by the login.
    let waiting = match e.login_flow.as_deref() {
        Some(id) => state.interactions.view(&realm, id).await?.map(|_| id),
        None => None,
    };
    let to = match waiting {
        Some(f) => format!("/{}/login?flow={f}&enrolled=1", realm.id),
        None => format!("/{}/login?enrolled=1", realm.id),
    };
    Ok((jar, Redirect::to(&to)).into_response())
}
