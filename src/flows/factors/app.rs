//! `/{realm}/account/app`: the authenticator app. Without one: the QR code (drawn here, see
//! `factors::qr`), the same secret as text, and a field for the first code, which proves the
//! app holds the secret. With one: when it was added and last used, and its removal.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::Deserialize;

use super::{changed, codes, day, record};
use crate::{
    app::AppState,
    audit::Kind,
    factors::{
        qr,
        totp::{otpauth_uri, AppSecret, Confirmed},
    },
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

#[derive(Deserialize)]
pub struct AppQuery {
    done: Option<String>,
}

csrf_forms! {
    pub struct CodeForm {
        code: String,
    }
}

csrf_forms! {
    pub struct RemoveForm {
    }
}

fn path(page: &Page) -> String {
    format!("/{}/account/app", page.realm.id)
}

/// The page that adds an app: QR code, secret as text, the first code (with a problem).
fn enrol_page(
    mut page: Page,
    account: &Account,
    secret: &AppSecret,
    problem: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let uri = otpauth_uri(secret, &page.realm.display_name, account.email.as_str());
    page.at(path(&page));
    let ctx = context! {
        csrf => page.csrf(), enrol => true,
        qr => qr::svg(&uri).map(minijinja::Value::from_safe_string),
        key => secret.text(), error => problem,
        action => path(&page), back => format!("/{}/account", page.realm.id),
    };
    page.render(status, "account/app.html", ctx)
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<AppQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let (session, account) = (&me.session, &me.account);
    let realm = page.realm.clone();
    let done = match q.done.as_deref() {
        Some("added") => Some("factors-app-added"),
        _ => None,
    };
    if let Some(app) = state.totp.registered(&realm.id, &account.id).await? {
        page.at(path(&page));
        let ctx = context! {
            csrf => page.csrf(), enrol => false, done => done,
            since => day(app.created_at), last_used => app.last_used_at.map(day),
            removable => account.phone.is_some(),
            remove => format!("/{}/account/app/remove", realm.id),
            back => format!("/{}/account", realm.id),
        };
        return page.render(StatusCode::OK, "account/app.html", ctx);
    }
    stepup::require(&state.account.stepups, &page.realm, &me, Action::App).await?;
    let secret = state
        .totp
        .begin(&realm.id, &session.sid, &account.id)
        .await?;
    enrol_page(page, account, &secret, done, StatusCode::OK)
}

pub async fn confirm(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let (session, account) = (&me.session, &me.account);
    stepup::require(&state.account.stepups, &page.realm, &me, Action::App).await?;
    let realm = page.realm.clone();
    let confirmed = state
        .totp
        .confirm(&realm.id, &session.sid, &account.id, &form.code)
        .await?;
    match confirmed {
        Confirmed::Added => {}
        Confirmed::HasOne => {
            let to = path(&page);
            return Ok(page.redirect(&to));
        }
        Confirmed::Wrong | Confirmed::Expired => {
            let problem = match confirmed {
                Confirmed::Wrong => "error-app-code-wrong",
                _ => "error-app-enrol-expired",
            };
            let secret = state
                .totp
                .begin(&realm.id, &session.sid, &account.id)
                .await?;
            return enrol_page(
                page,
                account,
                &secret,
                Some(problem),
                StatusCode::BAD_REQUEST,
            );
        }
    }
    let detail = serde_json::json!({ "factor": "app" });
    record(&state, &page, addr, account, Kind::AppAdded, detail).await;
    changed(&state, &page, &me, Action::App, AccountNotice::AppAdded).await?;
    // The person who adds an app gets recovery codes with it, unless some are left.
    if state.recovery_codes.left(&realm.id, &account.id).await? > 0 {
        let to = format!("{}?done=added", path(&page));
        return Ok(page.redirect(&to));
    }
    let fresh = codes::issue(&state, &page, addr, account, "app_added").await?;
    codes::fresh_codes_page(page, &fresh, Some("factors-app-added"), None)
}

pub async fn remove(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Result<Response, PageError> {
    page.read(form)?;
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    if account.phone.is_none() {
        // Without a mobile number the app is the only second factor: it stays.
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "error-app-only-factor",
        ));
    }
    stepup::require(&state.account.stepups, &page.realm, &me, Action::App).await?;
    let realm = page.realm.clone();
    if !state.totp.remove(&realm.id, &account.id).await? {
        let to = path(&page);
        return Ok(page.redirect(&to));
    }
    let detail = serde_json::json!({ "factor": "app" });
    record(&state, &page, addr, account, Kind::AppRemoved, detail).await;
    changed(&state, &page, &me, Action::App, AccountNotice::AppRemoved).await?;
    // Back to the overview: a new app would need a new proof first.
    let to = format!("/{}/account?done=app-removed", page.realm.id);
    Ok(page.redirect(&to))
}
