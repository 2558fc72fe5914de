//! « J'ai perdu mon téléphone »: the person proves e-mail and password (with the login's
//! limits and throttles) and asks for a new activation letter. The request joins the realm's
//! queue, which the caisse's mailroom prints with `connect admin code letters`; the page says
//! how many days the letter takes and gives the support contact, and a mail says it again.
//!
//! The password alone opens nothing here: it only sends a letter to the postal address in
//! the register, whose code later registers a new number (`new_phone`).

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::{audit, login_flow, login_path, password::notice};
use crate::{
    app::AppState,
    audit::Kind,
    flows::login::{Checked, Presented},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    limits::Limit,
    notify::messages::AccountNotice,
    storage::{
        letter_requests::{self, Queued},
        persons,
    },
};

#[derive(Deserialize)]
pub struct FlowQuery {
    flow: Option<String>,
}

csrf_forms! {
    pub struct CredentialsForm {
        flow: Option<String>,
        email: String,
        password: SecretString,
    }
}

fn page_with(
    mut page: Page,
    flow: Option<&str>,
    email: &str,
    problem: Option<(&'static str, Option<u64>, StatusCode)>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(match flow {
        Some(f) => format!("/{realm}/phone/lost?flow={f}"),
        None => format!("/{realm}/phone/lost"),
    });
    let ctx = context! {
        csrf => page.csrf(), flow => flow, email => email,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("/{realm}/phone/lost"),
        title => "lost-phone-title", intro => "lost-phone-intro", submit => "lost-phone-submit",
        forgot => format!("/{realm}/password/forgot"),
        login => login_path(realm.as_str(), flow),
        phone => &page.realm.support_phone, hours => page.realm.support_hours.get(page.lang),
        days => page.realm.recovery.letter_days,
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/credentials.html", ctx)
}

pub async fn show(page: Page, Query(q): Query<FlowQuery>) -> Result<Response, PageError> {
    let flow = login_flow(q.flow.as_deref());
    page_with(page, flow.as_deref(), "", None)
}

pub async fn submit(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let flow = login_flow(form.flow.as_deref());
    let headers = page.headers().clone();
    let presented = Presented {
        email: &form.email,
        password: &form.password,
        addr,
        headers: &headers,
    };
    let account = match state.credentials.check(&realm, presented).await? {
        Checked::Proved(account) => *account,
        Checked::Refused { message, n, status } => {
            return page_with(
                page,
                flow.as_deref(),
                &form.email,
                Some((message, n, status)),
            )
        }
    };
    let per_account = Limit::per_day(
        "letter-requests-per-account",
        realm.recovery.letter_requests_per_account_per_day,
    );
    let subject = format!("account:{}", account.id);
    if let Err(e) = state
        .limits
        .charge(realm.id.as_str(), &[(per_account, subject.as_str())])
        .await?
    {
        return Err(PageError::Limited(e.retry_after));
    }
    // A letter goes to the postal address of the register; an account without one (created
    // by support) is for support.
    let person = match &account.ahv {
        Some(ahv) => persons::by_ahv(&state.db, &realm.id, ahv).await?,
        None => None,
    };
    let Some(person) = person else {
        let detail = json!({ "recovery": "lost_phone", "reason": "no_postal_address" });
        let kind = Kind::RecoveryStepRefused;
        audit(&state.audit, &page, addr, kind, Some(&account.id), detail).await;
        return notice(
            page,
            "lost-phone-no-address-title",
            "lost-phone-no-address-text",
            None,
        );
    };
    let now = state.clock.unix();
    let queued =
        letter_requests::queue(&state.db, &realm.id, &account.id, &person.ahv, now).await?;
    let detail = json!({
        "ahv": person.ahv.masked(),
        "queued": queued == Queued::New,
    });
    audit(
        &state.audit,
        &page,
        addr,
        Kind::LetterRequested,
        Some(&account.id),
        detail,
    )
    .await;
    tracing::info!(realm = %realm.id, account = %account.id, ?queued, "letter requested after a lost phone");
    if queued == Queued::New {
        let days = realm.recovery.letter_days;
        let notice = AccountNotice::LetterRequested { days };
        state.guard.tell(&realm, &account, notice).await;
    }
    let login = login_path(realm.id.as_str(), flow.as_deref());
    notice(
        page,
        "lost-phone-requested-title",
        "lost-phone-requested-text",
        Some(login),
    )
}
