//! Recovery without a phone call (issue 12).
//!
//! - `password`: « Mot de passe oublié ? » — the address, the code of a mail, the second
//!   factor, then a new password. Every session and grant ends; the person then logs in
//!   as usual (see below).
//! - `lost_phone`: « J'ai perdu mon téléphone » — e-mail and password ask for a new
//!   activation letter, queued for the caisse's mailroom.
//! - `new_phone`: the requested letter's code (entered where every letter's code is, at
//!   `/register`), e-mail and password, then a new mobile number proved by SMS: it replaces
//!   every second factor of the account.
//!
//! No recovery logs anybody in. Each ends on a page that leads to the login, where the
//! person proves password and second factor again: a recovery proves two factors at most
//! once each, across minutes and possibly two devices, and a session must come from the one
//! path that checks the account's current factors together and answers the relying party
//! through the protocol's seam. So a recovery can never be a way in with one factor.
//!
//! Every step counts against the realm's `[recovery]` limits (or, for passwords and SMS, the
//! login's and the SMS limits), and is audited. Nothing a step shows or how long it takes
//! depends on whether an address has an account; only the mail tells, and only its owner.

mod flow;
mod lost_phone;
pub mod new_phone;
mod password;

use axum::{
    middleware,
    routing::{get, post},
    Router,
};
use serde_json::Value;

use crate::{
    app::AppState,
    audit::{Audit, Event, Kind},
    http::{page as pages, ClientAddr, Page},
    keys::SecretHasher,
    storage::Ephemeral,
};
use flow::Flows;

/// The recoveries under way, of each kind.
#[derive(Clone)]
pub struct Recoveries {
    passwords: Flows<password::Reset>,
    phones: Flows<new_phone::NewPhone>,
}

impl Recoveries {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher) -> Self {
        Recoveries {
            passwords: Flows::new(store, hasher, ("reset", "reset-attempts", "connect_reset")),
            phones: Flows::new(
                store,
                hasher,
                ("new-phone", "new-phone-attempts", "connect_new_phone"),
            ),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/{realm}/password/forgot",
            get(password::show_address).post(password::submit_address),
        )
        .route("/{realm}/password/forgot/done", get(password::done))
        .route(
            "/{realm}/password/forgot/{tx}/mail",
            get(password::show_mail_code).post(password::submit_mail_code),
        )
        .route(
            "/{realm}/password/forgot/{tx}/sms",
            get(password::show_sms).post(password::submit_sms),
        )
        .route(
            "/{realm}/password/forgot/{tx}/sms/resend",
            post(password::resend_sms),
        )
        .route(
            "/{realm}/password/forgot/{tx}/app",
            get(password::show_app).post(password::submit_app),
        )
        .route(
            "/{realm}/password/forgot/{tx}/recovery-code",
            get(password::show_recovery_code).post(password::submit_recovery_code),
        )
        .route(
            "/{realm}/password/forgot/{tx}/new",
            get(password::show_new).post(password::submit_new),
        )
        .route(
            "/{realm}/phone/lost",
            get(lost_phone::show).post(lost_phone::submit),
        )
        .route("/{realm}/phone/new/done", get(new_phone::done))
        .route(
            "/{realm}/phone/new/{tx}/login",
            get(new_phone::show_login).post(new_phone::submit_login),
        )
        .route(
            "/{realm}/phone/new/{tx}/mail",
            get(new_phone::show_mail).post(new_phone::submit_mail),
        )
        .route(
            "/{realm}/phone/new/{tx}/number",
            get(new_phone::show_number).post(new_phone::submit_number),
        )
        .route(
            "/{realm}/phone/new/{tx}/sms",
            get(new_phone::show_sms).post(new_phone::submit_sms),
        )
        .route(
            "/{realm}/phone/new/{tx}/sms/resend",
            post(new_phone::resend_sms),
        )
        .layer(middleware::from_fn(pages::render_failures))
}

/// One step of a recovery for the audit trail: which recovery (`password`, `lost_phone`,
/// `new_phone`), the step, and non-secret facts.
async fn audit(
    audit: &Audit,
    page: &Page,
    addr: ClientAddr,
    kind: Kind,
    account: Option<&str>,
    detail: Value,
) {
    let mut event = Event::new(kind, &page.realm.id)
        .origin(addr, page.headers())
        .detail(detail);
    if let Some(id) = account {
        event = event.account(id);
    }
    audit.record(event).await;
}

/// The login page, with the relying party's login flow when there is one.
fn login_path(realm: &str, flow: Option<&str>) -> String {
    match flow {
        Some(f) => format!("/{realm}/login?flow={f}"),
        None => format!("/{realm}/login"),
    }
}

/// A login flow id as the login page passes it on (see `protocol::interaction::valid_id`).
fn login_flow(flow: Option<&str>) -> Option<String> {
    crate::protocol::interaction::valid_id(flow).map(str::to_owned)
}
