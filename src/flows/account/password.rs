//! « Changer le mot de passe »: after the current password and a fresh second factor (the
//! step-up gate), a new password under the realm's policy; every other session and grant
//! ends and the person is told by mail.

use axum::{extract::State, http::StatusCode, response::Response};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};

use super::{
    me,
    stepup::{require, Action},
    Me,
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{Password, PasswordContext, PasswordError},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    notify::messages::AccountNotice,
    passwords,
    storage::accounts,
};

csrf_forms! {
    pub struct PasswordForm { password: SecretString, confirm: SecretString }
}

/// The form, with the field that is wrong and why.
fn form_page(mut page: Page, problem: Option<(&str, &str)>) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    page.at(format!("/{}/account/password", realm.id));
    let ctx = context! {
        csrf => page.csrf(),
        min => realm.password_policy.min_length,
        max => realm.password_policy.max_length,
        error_field => problem.map(|p| p.0),
        error => problem.map(|p| p.1),
        action => format!("/{}/account/password", realm.id),
        back => format!("/{}/account", realm.id),
    };
    let status = problem.map_or(StatusCode::OK, |_| StatusCode::BAD_REQUEST);
    page.render(status, "account/password.html", ctx)
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Password).await?;
    form_page(page, None)
}

/// The realm's policy, with the person's names and address as what a password must not hold.
fn checked(me: &Me, page: &Page, raw: &SecretString) -> Result<Password, PasswordError> {
    let context = PasswordContext {
        email_local_part: me
            .account
            .email
            .as_str()
            .split('@')
            .next()
            .map(str::to_owned),
        names: vec![
            me.account.given_name.clone(),
            me.account.family_name.clone(),
        ],
    };
    Password::new(raw.expose_secret(), &page.realm.password_policy, &context)
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    require(&state.account.stepups, &page.realm, &me, Action::Password).await?;
    let password = match checked(&me, &page, &form.password) {
        Ok(p) => p,
        Err(e) => {
            let key = match e {
                PasswordError::TooShort { .. } => "error-password-short",
                PasswordError::TooLong { .. } => "error-password-long",
                PasswordError::Common => "error-password-common",
                PasswordError::ContainsPersonalData => "error-password-personal",
            };
            return form_page(page, Some(("password", key)));
        }
    };
    let confirm = checked(&me, &page, &form.confirm).ok();
    if confirm.is_none_or(|c| c.expose() != password.expose()) {
        return form_page(page, Some(("confirm", "error-password-mismatch")));
    }
    let hash = state
        .passwords
        .hash(SecretString::from(password.expose().to_owned()))
        .await;
    let hash = match hash {
        Ok(h) => h,
        Err(passwords::PasswordError::Busy) => return Err(PageError::busy(&page.realm)),
        Err(e) => return Err(e.into()),
    };
    let realm = page.realm.clone();
    accounts::set_password(&state.db, &me.account.id, &hash, state.clock.unix()).await?;
    state
        .account
        .stepups
        .spend(&realm, &me, Action::Password)
        .await?;
    state
        .audit
        .record(
            Event::new(Kind::PasswordChanged, &realm.id)
                .account(&me.account.id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({ "by": "person" })),
        )
        .await;
    tracing::info!(realm = %realm.id, account = %me.account.id, "password changed by the person");
    state
        .guard
        .restrict_others(
            &realm,
            &me.account,
            &me.session.sid,
            AccountNotice::PasswordChanged,
        )
        .await?;
    Ok(page.redirect(&format!("/{}/account?done=password", realm.id)))
}
