//! Steps 2 and 3: « Identifier le compte utilisateur » (the address) and « Entrez le code
//! d'accès » (the code of the mail, which proves the address; the mail's link may open it on
//! another device).

use axum::{http::StatusCode, response::Response};
use minijinja::context;

use super::{Enrolment, Step, StepRequest};
use crate::{
    domain::{ActivationCode, Email},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        PageError,
    },
    notify::messages,
    otp,
    storage::accounts,
};

csrf_forms! {
    pub struct AddressForm {
        email: String,
    }

    pub struct CodeForm {
        code: String,
    }
}

fn purpose(tx: &str) -> String {
    format!("enrol-mail:{tx}")
}

fn address_page(
    req: StepRequest,
    email: &str,
    error: Option<(&str, StatusCode)>,
) -> Result<Response, PageError> {
    let status = error.map_or(StatusCode::OK, |e| e.1);
    req.page(
        Step::Email,
        status,
        context! { email => email, error => error.map(|e| e.0) },
    )
}

fn code_page(req: StepRequest, e: &Enrolment, error: Option<&str>) -> Result<Response, PageError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let ctx = context! {
        error => error,
        email => e.email.as_deref().unwrap_or_default(),
        change => req.path(Step::Email),
    };
    req.page(Step::Confirm, status, ctx)
}

pub async fn show_address(req: StepRequest) -> Result<Response, PageError> {
    let e = req.open(Step::Email).await?;
    if e.email_verified {
        return Ok(req.go(e.step()));
    }
    let email = e.email.clone().unwrap_or_default();
    address_page(req, &email, None)
}

pub async fn submit_address(
    req: StepRequest,
    form: Result<Form<AddressForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.read(form)?;
    let mut e = req.open(Step::Email).await?;
    if e.email_verified {
        return Ok(req.go(e.step()));
    }
    let Ok(email) = form.email.parse::<Email>() else {
        return address_page(
            req,
            &form.email,
            Some(("error-email-format", StatusCode::BAD_REQUEST)),
        );
    };
    let (state, realm, lang) = (&req.state, &req.page.realm, req.page.lang);
    if e.mails_sent >= realm.enrolment.email_sends {
        return Err(PageError::Limited(realm.enrolment.transaction));
    }
    let taken = accounts::by_email(&state.db, &realm.id, &email)
        .await?
        .is_some();
    // The same page follows either way; only the owner of the address learns, by mail, that
    // it already has an account.
    let issuer = state.config.issuer(&realm.id);
    let (mail, code_hash) = if taken {
        (
            messages::address_in_use(lang, realm, &email, &format!("{issuer}/login")),
            None,
        )
    } else {
        let code = ActivationCode::generate();
        let link = format!("{issuer}/register/{}/confirm", req.tx);
        let minutes = realm.enrolment.email_code_validity.as_secs() / 60;
        let mail = messages::enrolment_code(lang, realm, &email, &link, &code.to_string(), minutes);
        (
            mail,
            Some(otp::hash(
                &state.secret_hasher,
                &purpose(&req.tx),
                code.as_str(),
            )),
        )
    };
    if let Err(err) = state.notifier.send_mail(mail).await {
        tracing::error!(realm = %realm.id, error = %err, "enrolment mail not sent");
        return address_page(
            req,
            &form.email,
            Some(("error-mail-failed", StatusCode::SERVICE_UNAVAILABLE)),
        );
    }
    e.email = Some(email.as_str().to_owned());
    e.email_code = code_hash;
    e.email_code_expires_at =
        state.clock.unix() + realm.enrolment.email_code_validity.as_secs() as i64;
    e.mails_sent += 1;
    e.language = lang;
    req.advance(&e, Step::Email).await
}

pub async fn show_code(req: StepRequest) -> Result<Response, PageError> {
    // The mail's link may be opened on another device: the code decides, not the browser.
    let e = req.open_anywhere(Step::Confirm).await?;
    if e.email_verified {
        return Ok(req.go(e.step()));
    }
    code_page(req, &e, None)
}

pub async fn submit_code(
    req: StepRequest,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.read(form)?;
    let mut e = req.open_anywhere(Step::Confirm).await?;
    if e.email_verified {
        return Ok(req.go(e.step()));
    }
    let max = req.page.realm.enrolment.email_code_attempts;
    let mut req = req.count_attempt("mail", max).await?;
    let presented = form.code.parse::<ActivationCode>().ok();
    let matches = match (&e.email_code, presented) {
        (Some(stored), Some(code)) => otp::matches(
            &req.state.secret_hasher,
            &purpose(&req.tx),
            stored,
            code.as_str(),
        ),
        _ => false,
    };
    if !matches {
        req.audit_refused(Step::Confirm, "wrong_code").await;
        return code_page(req, &e, Some("error-mail-code-wrong"));
    }
    if e.email_code_expires_at <= req.state.clock.unix() {
        req.audit_refused(Step::Confirm, "expired_code").await;
        return code_page(req, &e, Some("error-mail-code-expired"));
    }
    e.email_verified = true;
    e.email_verified_at = Some(req.state.clock.unix());
    e.email_code = None;
    // Whoever proved the address continues, on this device.
    req.bind_browser(&mut e);
    req.advance(&e, Step::Confirm).await
}
