//! « Changer de numéro de portable »: after a fresh proof of the current second factor (the
//! step-up gate), the new number gets a code by SMS under the realm's limits; the code back
//! proves it. Then every other session and grant ends and the person is told by mail.

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
    domain::{PhoneError, PhoneNumber},
    flows::sms::CodeFor,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    keys::SecretHasher,
    notify::messages::AccountNotice,
    otp,
    realm::Realm,
    session::random_token,
    storage::{
        accounts,
        ephemeral::{Counter, Record},
        Ephemeral,
    },
};

/// A new number waiting for its code, bound to one session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PhoneChange {
    sid: String,
    account_id: String,
    /// E.164.
    phone: String,
    code_hash: String,
    expires_at: i64,
    sent_at: i64,
}

/// Changes of number under way and their wrong codes.
#[derive(Clone)]
pub struct PhoneChanges {
    pending: Record<PhoneChange>,
    wrong_codes: Counter,
}

impl PhoneChanges {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher) -> Self {
        PhoneChanges {
            pending: Record::hashed(store, "phone-change", hasher, "phone-change:"),
            wrong_codes: Counter::hashed(store, "phone-change-attempts", hasher, "phone-change:"),
        }
    }
}

csrf_forms! {
    pub struct NumberForm { phone: String }
    pub struct CodeForm { flow: String, code: String }
    pub struct ResendForm { flow: String }
}

#[derive(Deserialize)]
pub struct CodeQuery {
    flow: String,
}

fn purpose(flow: &str) -> String {
    format!("phone-change:{flow}")
}

fn expired() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-change-expired")
}

fn number_page(
    mut page: Page,
    typed: &str,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/phone"));
    let ctx = context! {
        csrf => page.csrf(),
        phone => typed,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
        action => format!("/{realm}/account/phone"),
        back => format!("/{realm}/account"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/phone.html", ctx)
}

fn code_page(
    mut page: Page,
    flow: &str,
    change: &PhoneChange,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/phone/code?flow={flow}"));
    let ctx = context! {
        csrf => page.csrf(),
        flow => flow,
        title => "account-phone-code-title",
        intro => "account-phone-code-intro",
        number => super::masked_phone(&change.phone),
        label => "stepup-code-label",
        submit => "account-phone-code-submit",
        action => format!("/{realm}/account/phone/code"),
        resend => format!("/{realm}/account/phone/resend"),
        back => format!("/{realm}/account"),
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/code.html", ctx)
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Phone).await?;
    number_page(page, "", None)
}

/// The number typed, under the realm's rules (countries, mobile only).
fn parse(realm: &Realm, typed: &str) -> Result<PhoneNumber, Problem> {
    let rules = &realm.sms;
    let countries: Vec<&str> = rules.allowed_countries.iter().map(String::as_str).collect();
    let bad = |key| (key, None, StatusCode::BAD_REQUEST);
    PhoneNumber::parse(typed)
        .and_then(|p| {
            p.check_allowed(&countries, rules.mobile_only)?;
            Ok(p)
        })
        .map_err(|e| match e {
            PhoneError::Country => bad("error-phone-country"),
            PhoneError::NotMobile => bad("error-phone-mobile"),
            PhoneError::Invalid => bad("error-phone-format"),
        })
}

/// Sends a code for `flow` to `phone`; the new state of the change, or why not.
async fn send(
    state: &AppState,
    page: &Page,
    me: &Me,
    addr: &ClientAddr,
    flow: &str,
    phone: &PhoneNumber,
    last_sent_at: Option<i64>,
) -> Result<Result<PhoneChange, Problem>, PageError> {
    let to = CodeFor {
        phone,
        account: &format!("account:{}", me.account.id),
        purpose: &purpose(flow),
        last_sent_at,
    };
    let sent = state.sms.send(&page.realm, page.lang, addr, to).await?;
    Ok(sent
        .map(|sent| PhoneChange {
            sid: me.session.sid.clone(),
            account_id: me.account.id.clone(),
            phone: phone.as_e164().to_owned(),
            code_hash: sent.code_hash,
            expires_at: sent.expires_at,
            sent_at: sent.sent_at,
        })
        .map_err(|refused| refused.message()))
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<NumberForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Phone).await?;
    let phone = match parse(&page.realm, &form.phone) {
        Ok(p) => p,
        Err(problem) => return number_page(page, &form.phone, Some(problem)),
    };
    if me.account.phone.as_deref() == Some(phone.as_e164()) {
        let same = ("error-phone-same", None, StatusCode::BAD_REQUEST);
        return number_page(page, &form.phone, Some(same));
    }
    let flow = random_token();
    let change = match send(&state, &page, &me, &addr, &flow, &phone, None).await? {
        Ok(c) => c,
        Err(problem) => return number_page(page, &form.phone, Some(problem)),
    };
    let realm = page.realm.clone();
    state
        .account
        .phones
        .pending
        .put(
            realm.id.as_str(),
            &flow,
            &change,
            realm.lifetimes.login_flow,
        )
        .await?;
    Ok(page.redirect(&format!("/{}/account/phone/code?flow={flow}", realm.id)))
}

/// The change `flow` of this session, or the page that says it is over.
async fn change_of(
    state: &AppState,
    realm: &Realm,
    me: &Me,
    flow: &str,
) -> Result<PhoneChange, PageError> {
    let owner: fn(&PhoneChange) -> (&str, &str) = |r| (&r.sid, &r.account_id);
    started_here(&state.account.phones.pending, realm, me, flow, owner)
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

pub async fn resend(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let change = change_of(&state, &page.realm, &me, &form.flow).await?;
    let phone = PhoneNumber::parse(&change.phone)?;
    let sent = send(
        &state,
        &page,
        &me,
        &addr,
        &form.flow,
        &phone,
        Some(change.sent_at),
    )
    .await?;
    match sent {
        Ok(next) => {
            let realm = &page.realm;
            state
                .account
                .phones
                .pending
                .put(
                    realm.id.as_str(),
                    &form.flow,
                    &next,
                    realm.lifetimes.login_flow,
                )
                .await?;
            let resent = ("sms-resent", None, StatusCode::OK);
            code_page(page, &form.flow, &next, Some(resent))
        }
        Err(problem) => code_page(page, &form.flow, &change, Some(problem)),
    }
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
    let phones = &state.account.phones;
    // Wrong codes count per change; a new code does not reset the count.
    let attempts = phones
        .wrong_codes
        .hit(scope, &form.flow, realm.lifetimes.login_flow)
        .await?;
    let headers = page.headers().clone();
    let refused = |why: &'static str| {
        Event::new(Kind::StepUpRefused, &realm.id)
            .account(&me.account.id)
            .origin(addr, &headers)
            .detail(serde_json::json!({ "action": "phone", "factor": "new_phone", "refused": why }))
    };
    if attempts > realm.sms.code_attempts {
        phones.pending.delete(scope, &form.flow).await?;
        state.audit.record(refused("too_many")).await;
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "error-change-too-many",
        ));
    }
    if !otp::matches(
        &state.secret_hasher,
        &purpose(&form.flow),
        &change.code_hash,
        &form.code,
    ) {
        state.audit.record(refused("wrong_code")).await;
        let wrong = ("error-sms-code-wrong", None, StatusCode::UNAUTHORIZED);
        return code_page(page, &form.flow, &change, Some(wrong));
    }
    let now = state.clock.unix();
    if change.expires_at <= now {
        state.audit.record(refused("expired_code")).await;
        let late = ("error-sms-code-expired", None, StatusCode::UNAUTHORIZED);
        return code_page(page, &form.flow, &change, Some(late));
    }
    let Some(change) = phones.pending.take(scope, &form.flow).await? else {
        return Err(expired());
    };
    accounts::change_phone(&state.db, &me.account.id, &change.phone, now).await?;
    state
        .account
        .stepups
        .spend(&realm, &me, Action::Phone)
        .await?;
    let masked = super::masked_phone(&change.phone);
    state
        .audit
        .record(
            Event::new(Kind::PhoneChanged, &realm.id)
                .account(&me.account.id)
                .origin(addr, &headers)
                .detail(serde_json::json!({ "by": "person", "phone": masked })),
        )
        .await;
    tracing::info!(realm = %realm.id, account = %me.account.id, "mobile number changed by the person");
    let notice = AccountNotice::PhoneChangedByPerson { masked: &masked };
    state
        .guard
        .restrict_others(&realm, &me.account, &me.session.sid, notice)
        .await?;
    Ok(page.redirect(&format!("/{}/account?done=phone", realm.id)))
}
