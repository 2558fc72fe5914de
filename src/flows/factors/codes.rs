//! `/{realm}/account/recovery-codes`: how many recovery codes are left, and a new set that
//! replaces the old one. A new set is shown once, in the answer that made it.

use axum::{extract::State, http::StatusCode, response::Response};
use minijinja::context;

use super::{changed, day, record};
use crate::{
    app::AppState,
    audit::Kind,
    domain::RecoveryCode,
    factors::recovery::CODES_PER_SET,
    flows::account::{
        me,
        stepup::{self, Action},
    },
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    notify::messages::AccountNotice,
    storage::accounts::Account,
};

csrf_forms! {
    pub struct RenewForm {
    }
}

/// Makes a new set for the account (the old one stops working) and audits it; `why` says
/// what asked for it.
pub(crate) async fn issue(
    state: &AppState,
    page: &Page,
    addr: ClientAddr,
    account: &Account,
    why: &str,
) -> Result<Vec<RecoveryCode>, PageError> {
    let codes = state
        .recovery_codes
        .issue(&page.realm.id, &account.id)
        .await?;
    let detail = serde_json::json!({ "count": codes.len(), "why": why });
    record(
        state,
        page,
        addr,
        account,
        Kind::RecoveryCodesIssued,
        detail,
    )
    .await;
    Ok(codes)
}

/// The page that shows a new set, once: printable, each code on its own line.
/// `then` is where the person goes once the codes are put away (the account page unless
/// given).
pub(crate) fn fresh_codes_page(
    mut page: Page,
    codes: &[RecoveryCode],
    done: Option<&str>,
    then: Option<String>,
) -> Result<Response, PageError> {
    let shown: Vec<String> = codes.iter().map(ToString::to_string).collect();
    page.at(format!("/{}/account/recovery-codes", page.realm.id));
    let back = then.unwrap_or_else(|| format!("/{}/account", page.realm.id));
    let ctx = context! { codes => shown, done => done, back => back };
    page.render(StatusCode::OK, "account/recovery_codes_new.html", ctx)
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let realm = page.realm.clone();
    let set = state.recovery_codes.set_of(&realm.id, &account.id).await?;
    page.at(format!("/{}/account/recovery-codes", realm.id));
    let ctx = context! {
        csrf => page.csrf(),
        left => set.map(|s| s.left), of => CODES_PER_SET,
        created => set.map(|s| day(s.created_at)),
        action => format!("/{}/account/recovery-codes", realm.id),
        back => format!("/{}/account", realm.id),
    };
    page.render(StatusCode::OK, "account/recovery_codes.html", ctx)
}

pub async fn renew(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<RenewForm>, FormRejection>,
) -> Result<Response, PageError> {
    page.read(form)?;
    let me = me(&state, &mut page).await?;
    let action = Action::RecoveryCodes;
    stepup::require(&state.account.stepups, &page.realm, &me, action).await?;
    let codes = issue(&state, &page, addr, &me.account, "renewed").await?;
    let notice = AccountNotice::RecoveryCodesRenewed;
    changed(&state, &page, &me, action, notice).await?;
    fresh_codes_page(page, &codes, None, None)
}
