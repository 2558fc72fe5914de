//! The person's second factors besides SMS, from the account page: the authenticator app
//! (`/{realm}/account/app`: add with a QR code and a first code, remove) and recovery codes
//! (`/{realm}/account/recovery-codes`: how many are left, a new set).
//!
//! Every page needs the session of a full login (`flows::account::me`); every change needs a
//! fresh proof of the factors (`flows::account::stepup`, actions `app` and `recovery-codes`),
//! is audited, ends the account's other sessions and grants and is told to the person by mail
//! (`guard::Guard::restrict_others`). The browser that made the change stays logged in.

mod app;
pub(crate) mod codes;

use axum::{
    routing::{get, post},
    Router,
};
use chrono::DateTime;

use super::account::{stepup::Action, Me};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    http::{ClientAddr, Page, PageError},
    letter,
    notify::messages::AccountNotice,
    storage::accounts::Account,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/account/app", get(app::show).post(app::confirm))
        .route("/{realm}/account/app/remove", post(app::remove))
        .route(
            "/{realm}/account/recovery-codes",
            get(codes::show).post(codes::renew),
        )
}

/// A day as the pages show it (DD.MM.YYYY, Swiss time).
fn day(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| letter::swiss_format(letter::swiss_date(t)))
        .unwrap_or_default()
}

/// The audit event of a change made on these pages, from this browser.
async fn record(
    state: &AppState,
    page: &Page,
    addr: ClientAddr,
    account: &Account,
    kind: Kind,
    detail: serde_json::Value,
) {
    let event = Event::new(kind, &page.realm.id)
        .account(&account.id)
        .origin(addr, page.headers())
        .detail(detail);
    state.audit.record(event).await;
}

/// What follows every change of a factor, once it is audited: the proof that opened it is
/// spent, every other session and grant of the account ends and the person is told by mail
/// (`Guard::restrict_others`); this browser, which just proved its factors, stays logged in.
pub(crate) async fn changed(
    state: &AppState,
    page: &Page,
    me: &Me,
    action: Action,
    notice: AccountNotice<'_>,
) -> Result<(), PageError> {
    let realm = &page.realm;
    state.account.stepups.spend(realm, me, action).await?;
    state
        .guard
        .restrict_others(realm, &me.account, &me.session.sid, notice)
        .await?;
    Ok(())
}
