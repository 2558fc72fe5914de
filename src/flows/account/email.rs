//! « Changer d'adresse e-mail »: after the password and a fresh second factor (the step-up
//! gate), a code goes to the new address; the code back proves it. The old address is told,
//! with the support contact; every other session and grant ends.
//!
//! An address that already has an account is answered as enrolment answers it: the same page
//! follows, its owner gets a mail saying someone tried to use it, and no code exists that
//! could match. So the page tells nobody more than enrolment already does.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{
    me, started_here,
    stepup::{require, Action, Problem},
    Me,
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{ActivationCode, Email},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    keys::SecretHasher,
    limits::Limit,
    notify::messages::{self, AccountNotice},
    otp,
    realm::Realm,
    session::random_token,
    storage::{
        accounts,
        ephemeral::{Counter, Record},
        Conflict, Ephemeral, StoreError,
    },
};

/// Mails one account may send to new addresses in a day: enough for typos, too few to spam.
const MAILS_PER_ACCOUNT_PER_DAY: u64 = 10;

/// A new address waiting for its code, bound to one session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EmailChange {
    sid: String,
    account_id: String,
    email: String,
    /// `None` when the address has an account: no code was sent, none will match.
    code_hash: Option<String>,
    expires_at: i64,
}

/// Changes of address under way and their wrong codes.
#[derive(Clone)]
pub struct EmailChanges {
    pending: Record<EmailChange>,
    wrong_codes: Counter,
}

impl EmailChanges {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher) -> Self {
        EmailChanges {
            pending: Record::hashed(store, "email-change", hasher, "email-change:"),
            wrong_codes: Counter::hashed(store, "email-change-attempts", hasher, "email-change:"),
        }
    }
}

csrf_forms! {
    pub struct AddressForm { email: String }
    pub struct CodeForm { flow: String, code: String }
}

#[derive(Deserialize)]
pub struct CodeQuery {
    flow: String,
}

fn purpose(flow: &str) -> String {
    format!("email-change:{flow}")
}

fn expired() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-change-expired")
}

fn address_page(
    mut page: Page,
    me: &Me,
    typed: &str,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/email"));
    let ctx = context! {
        csrf => page.csrf(),
        current => me.account.email.as_str(),
        email => typed,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
        action => format!("/{realm}/account/email"),
        back => format!("/{realm}/account"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/email.html", ctx)
}

fn code_page(
    mut page: Page,
    flow: &str,
    change: &EmailChange,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/email/code?flow={flow}"));
    let ctx = context! {
        csrf => page.csrf(),
        flow => flow,
        title => "account-email-code-title",
        intro => "account-email-code-intro",
        number => change.email,
        label => "account-email-code-label",
        submit => "account-email-code-submit",
        action => format!("/{realm}/account/email/code"),
        change => format!("/{realm}/account/email"),
        back => format!("/{realm}/account"),
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/code.html", ctx)
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Email).await?;
    address_page(page, &me, "", None)
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    form: Result<Form<AddressForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Email).await?;
    let bad = |key| (key, None, StatusCode::BAD_REQUEST);
    let Ok(email) = form.email.parse::<Email>() else {
        return address_page(page, &me, &form.email, Some(bad("error-email-format")));
    };
    if email
        .as_str()
        .eq_ignore_ascii_case(me.account.email.as_str())
    {
        return address_page(page, &me, &form.email, Some(bad("error-email-same")));
    }
    let realm = page.realm.clone();
    let per_day = [(
        Limit::per_day(
            "email-change-mails-per-account-day",
            MAILS_PER_ACCOUNT_PER_DAY,
        ),
        me.account.id.as_str(),
    )];
    if let Err(e) = state.limits.charge(realm.id.as_str(), &per_day).await? {
        return Err(PageError::Limited(e.retry_after));
    }
    let taken = accounts::by_email(&state.db, &realm.id, &email)
        .await?
        .is_some();
    let flow = random_token();
    let lang = page.lang;
    let issuer = state.config.issuer(&realm.id);
    let validity = realm.enrolment.email_code_validity;
    // The same page follows either way; only the owner of a taken address learns, by mail,
    // that someone tried to use it.
    let (mail, code_hash) = if taken {
        let login = format!("{issuer}/login");
        (messages::address_in_use(lang, &realm, &email, &login), None)
    } else {
        let code = ActivationCode::generate();
        let minutes = validity.as_secs().div_ceil(60);
        let mail = messages::email_change_code(lang, &realm, &email, &code.to_string(), minutes);
        let hash = otp::hash(&state.secret_hasher, &purpose(&flow), code.as_str());
        (mail, Some(hash))
    };
    if let Err(err) = state.notifier.send_mail(mail).await {
        tracing::error!(realm = %realm.id, error = %err, "mail to a new address not sent");
        let failed = ("error-mail-failed", None, StatusCode::SERVICE_UNAVAILABLE);
        return address_page(page, &me, &form.email, Some(failed));
    }
    let change = EmailChange {
        sid: me.session.sid.clone(),
        account_id: me.account.id.clone(),
        email: email.as_str().to_owned(),
        code_hash,
        expires_at: state.clock.unix() + validity.as_secs() as i64,
    };
    // Kept past the code's expiry, so that a late code is told it expired.
    let keep = validity + realm.lifetimes.login_flow;
    state
        .account
        .emails
        .pending
        .put(realm.id.as_str(), &flow, &change, keep)
        .await?;
    Ok(page.redirect(&format!("/{}/account/email/code?flow={flow}", realm.id)))
}

/// The change `flow` of this session, or the page that says it is over.
async fn change_of(
    state: &AppState,
    realm: &Realm,
    me: &Me,
    flow: &str,
) -> Result<EmailChange, PageError> {
    let owner: fn(&EmailChange) -> (&str, &str) = |r| (&r.sid, &r.account_id);
    started_here(&state.account.emails.pending, realm, me, flow, owner)
        .await?
        .ok_or_else(expired)
}

pub async fn show_code(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let change = change_of(&state, &page.realm, &me, &q.flow).await?;
    code_page(page, &q.flow, &change, None)
}

pub async fn submit_code(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let scope = realm.id.as_str();
    let change = change_of(&state, &realm, &me, &form.flow).await?;
    let emails = &state.account.emails;
    // Wrong codes count per change; over the limit the change ends.
    let attempts = emails
        .wrong_codes
        .hit(scope, &form.flow, realm.lifetimes.login_flow)
        .await?;
    let headers = page.headers().clone();
    let refused = |why: &'static str| {
        Event::new(Kind::StepUpRefused, &realm.id)
            .account(&me.account.id)
            .origin(addr, &headers)
            .detail(serde_json::json!({ "action": "email", "factor": "new_email", "refused": why }))
    };
    if attempts > realm.enrolment.email_code_attempts {
        emails.pending.delete(scope, &form.flow).await?;
        state.audit.record(refused("too_many")).await;
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "error-change-too-many",
        ));
    }
    let presented = form.code.parse::<ActivationCode>().ok();
    let right = match (&change.code_hash, presented) {
        (Some(stored), Some(code)) => otp::matches(
            &state.secret_hasher,
            &purpose(&form.flow),
            stored,
            code.as_str(),
        ),
        _ => false,
    };
    if !right {
        state.audit.record(refused("wrong_code")).await;
        let wrong = ("error-mail-code-wrong", None, StatusCode::UNAUTHORIZED);
        return code_page(page, &form.flow, &change, Some(wrong));
    }
    let now = state.clock.unix();
    if change.expires_at <= now {
        state.audit.record(refused("expired_code")).await;
        let late = ("error-mail-code-expired", None, StatusCode::UNAUTHORIZED);
        return code_page(page, &form.flow, &change, Some(late));
    }
    let Some(change) = emails.pending.take(scope, &form.flow).await? else {
        return Err(expired());
    };
    let email: Email = change.email.parse()?;
    match accounts::change_email(&state.db, &me.account.id, &email, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::EmailTaken)) => {
            return Err(PageError::new(StatusCode::CONFLICT, "error-email-taken"));
        }
        Err(e) => return Err(e.into()),
    }
    state
        .account
        .stepups
        .spend(&realm, &me, Action::Email)
        .await?;
    state
        .audit
        .record(
            Event::new(Kind::EmailChanged, &realm.id)
                .account(&me.account.id)
                .origin(addr, &headers)
                .detail(serde_json::json!({ "by": "person", "to": masked_email(&email) })),
        )
        .await;
    tracing::info!(realm = %realm.id, account = %me.account.id, "e-mail address changed by the person");
    // The account as it was: the notice goes to the old address.
    let masked = masked_email(&email);
    let notice = AccountNotice::EmailChanged { masked: &masked };
    state
        .guard
        .restrict_others(&realm, &me.account, &me.session.sid, notice)
        .await?;
    Ok(page.redirect(&format!("/{}/account?done=email", realm.id)))
}

/// `a***@example.ch`: enough for the owner to recognise the address, too little to use it.
pub(super) fn masked_email(email: &Email) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or(("", email.as_str()));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}
