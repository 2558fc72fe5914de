//! « Fermer mon compte »: after the password and a fresh second factor (the step-up gate),
//! the account and its factors are deleted, its sessions and grants end (clients told by
//! back-channel logout), and the person is told by mail. The caisse's register entry stays,
//! and no activation letter goes out to the person by itself again; the audit trail keeps
//! its events for the realm's retention.

use axum::{extract::State, http::StatusCode, response::Response};
use minijinja::context;

use super::{
    me,
    stepup::{require, Action},
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    notify::messages::AccountNotice,
    storage::accounts,
};

csrf_forms! {
    pub struct CloseForm {}
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Close).await?;
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/close"));
    let ctx = context! {
        csrf => page.csrf(),
        action => format!("/{realm}/account/close"),
        data => format!("/{realm}/account/data"),
        back => format!("/{realm}/account"),
    };
    page.render(StatusCode::OK, "account/close.html", ctx)
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<CloseForm>, FormRejection>,
) -> Result<Response, PageError> {
    page.read(form)?;
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    require(&state.account.stepups, &realm, &me, Action::Close).await?;
    // Sessions and grants end first, while the grants still name the clients to tell.
    let ended = state.logouts.end_all(&realm, &me.account.id).await?;
    let closed = accounts::close(&state.db, &me.account, state.clock.unix()).await?;
    state
        .audit
        .record(
            Event::new(Kind::AccountClosed, &realm.id)
                .account(&me.account.id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({
                    "sessions": ended,
                    "ahv": me.account.ahv.as_ref().map(|a| a.masked()),
                })),
        )
        .await;
    if closed {
        tracing::info!(realm = %realm.id, account = %me.account.id, "account closed by the person");
        state
            .guard
            .tell(&realm, &me.account, AccountNotice::Closed)
            .await;
    }
    let jar = std::mem::take(&mut page.jar);
    let (jar, _) = state.sessions.end(&realm, jar).await?;
    page.jar = jar;
    page.at(format!("/{}/login", realm.id));
    let ctx = context! { login => format!("/{}/login", realm.id) };
    page.render(StatusCode::OK, "account/closed.html", ctx)
}
