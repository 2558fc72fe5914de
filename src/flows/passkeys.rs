//! The passkeys of the account page: listed with their name and last use, added (after a
//! fresh proof of the current factors), renamed, removed (after a fresh proof too).
//!
//! Adding or removing a passkey is a change of factor: it needs a fresh proof from the
//! step-up gate (`flows::account::stepup`, action `passkeys`), is audited, every other
//! session and grant of the account ends and the person is told by mail
//! (`Guard::restrict_others`); this browser stays logged in. The first passkey comes with
//! recovery codes, shown once, unless the account has some left. A new name is audited and
//! told.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::{
    account::{
        me,
        stepup::{self, Action},
    },
    factors::{self, codes},
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{PasskeyName, PasskeyNameError, MAX_PASSKEY_NAME_CHARS},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    letter::{swiss_date, swiss_format},
    notify::messages::AccountNotice,
    passkeys::{Holder, RegisterRefusal, MAX_PASSKEYS},
    storage::{accounts::Account, passkeys},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/account/passkeys", get(list))
        .route("/{realm}/account/passkeys/new", get(new).post(add))
        .route("/{realm}/account/passkeys/options", post(options))
        .route(
            "/{realm}/account/passkeys/{id}/rename",
            get(rename_form).post(rename),
        )
        .route(
            "/{realm}/account/passkeys/{id}/remove",
            get(remove_form).post(remove),
        )
}

csrf_forms! {
    pub struct NameForm {
        #[serde(default)]
        name: String,
    }
}

csrf_forms! {
    pub struct AddForm {
        #[serde(default)]
        name: String,
        #[serde(default)]
        ceremony: String,
        #[serde(default)]
        credential: String,
    }
}

csrf_forms! {
    pub struct ConfirmForm {
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
    key: Option<String>,
}

fn list_path(page: &Page) -> String {
    format!("/{}/account/passkeys", page.realm.id)
}

fn day(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| swiss_format(swiss_date(t)))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Listed {
    name: String,
    created: String,
    last_used: Option<String>,
    rename: String,
    remove: String,
}

pub async fn list(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let realm = page.realm.clone();
    let held = state.passkeys.of_account(&realm, &account.id).await?;
    let base = list_path(&page);
    let listed: Vec<Listed> = held
        .iter()
        .map(|k| Listed {
            name: k.name.to_string(),
            created: day(k.created_at),
            last_used: k.last_used_at.map(day),
            rename: format!("{base}/{}/rename", k.id),
            remove: format!("{base}/{}/remove", k.id),
        })
        .collect();
    // What was just done, named by the passkey it was done to (never by a name from the URL).
    let named = |id: &Option<String>| {
        held.iter()
            .find(|k| Some(&k.id) == id.as_ref())
            .map(|k| k.name.to_string())
    };
    let (notice, notice_name) = match q.done.as_deref() {
        Some("added") => match named(&q.key) {
            Some(name) => (Some("passkeys-added"), Some(name)),
            None => (None, None),
        },
        Some("renamed") => match named(&q.key) {
            Some(name) => (Some("passkeys-renamed"), Some(name)),
            None => (None, None),
        },
        Some("removed") => (Some("passkeys-removed"), None),
        _ => (None, None),
    };
    page.at(base.clone());
    let add = state.passkeys.available().then(|| format!("{base}/new"));
    let ctx = context! {
        passkeys => listed, notice => notice, notice_name => notice_name, add => add,
        back => format!("/{}/account", realm.id),
    };
    page.render(StatusCode::OK, "account/passkeys.html", ctx)
}

/// The form that adds a passkey, with a problem to show.
fn new_page(
    mut page: Page,
    name: &str,
    problem: Option<(&'static str, Option<usize>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let base = list_path(&page);
    page.at(format!("{base}/new"));
    let ctx = context! {
        csrf => page.csrf(), name => name, max => MAX_PASSKEY_NAME_CHARS,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("{base}/new"), options => format!("{base}/options"),
        back => base,
    };
    page.render(status, "account/passkeys_new.html", ctx)
}

/// The message for a name that does not parse, and its number.
pub(super) fn name_problem(e: PasskeyNameError) -> (&'static str, Option<usize>) {
    match e {
        PasskeyNameError::Empty => ("passkeys-error-name-empty", None),
        PasskeyNameError::TooLong => ("passkeys-error-name-long", Some(MAX_PASSKEY_NAME_CHARS)),
        PasskeyNameError::Control => ("passkeys-error-name-control", None),
    }
}

pub(super) fn register_problem(r: RegisterRefusal) -> ((&'static str, Option<usize>), StatusCode) {
    match r {
        RegisterRefusal::NoCeremony | RegisterRefusal::Invalid => {
            (("passkeys-error-failed", None), StatusCode::BAD_REQUEST)
        }
        RegisterRefusal::Taken => (("passkeys-error-taken", None), StatusCode::CONFLICT),
        RegisterRefusal::TooMany => (
            ("passkeys-error-too-many", Some(MAX_PASSKEYS)),
            StatusCode::CONFLICT,
        ),
    }
}

pub async fn new(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    if !state.passkeys.available() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-unavailable",
        ));
    }
    stepup::require(&state.account.stepups, &page.realm, &me, Action::Passkeys).await?;
    new_page(page, "", None, StatusCode::OK)
}

/// Starts the registration ceremony (`static/passkey.js`): the options as JSON. Anything
/// refused is a bare status: the script then posts the form, whose page says why.
pub async fn options(
    State(state): State<AppState>,
    mut page: Page,
    form: Result<Form<NameForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let (session, account) = (&me.session, &me.account);
    if !state.passkeys.available() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let stepups = &state.account.stepups;
    if !stepups.is_fresh(&page.realm, &me, Action::Passkeys).await? {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }
    if form.name.parse::<PasskeyName>().is_err() {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    }
    match state
        .passkeys
        .start_registration(&page.realm, account, Holder::Session(session))
        .await?
    {
        Ok(started) => Ok((page.jar, Json(started)).into_response()),
        Err(_) => Ok(StatusCode::CONFLICT.into_response()),
    }
}

pub async fn add(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<AddForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let (session, account) = (&me.session, &me.account);
    if !state.passkeys.available() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-unavailable",
        ));
    }
    stepup::require(&state.account.stepups, &page.realm, &me, Action::Passkeys).await?;
    let name = match form.name.parse::<PasskeyName>() {
        Ok(n) => n,
        Err(e) => {
            return new_page(
                page,
                &form.name,
                Some(name_problem(e)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    };
    if form.credential.is_empty() {
        let missing = Some(("passkeys-error-missing", None));
        return new_page(page, name.as_str(), missing, StatusCode::BAD_REQUEST);
    }
    let realm = page.realm.clone();
    let added = state
        .passkeys
        .finish_registration(
            &realm,
            Holder::Session(session),
            &form.ceremony,
            &form.credential,
            &name,
        )
        .await?;
    let event = |kind| {
        Event::new(kind, &realm.id)
            .account(&account.id)
            .origin(addr, page.headers())
    };
    let passkey = match added {
        Ok(p) => p,
        Err(refused) => {
            let detail = serde_json::json!({ "refused": refused.as_str() });
            state
                .audit
                .record(event(Kind::PasskeyRefused).detail(detail))
                .await;
            let (problem, status) = register_problem(refused);
            return new_page(page, name.as_str(), Some(problem), status);
        }
    };
    tracing::info!(realm = %realm.id, account = %account.id, "passkey added");
    let detail = serde_json::json!({ "passkey": passkey.id, "name": passkey.name.as_str() });
    state
        .audit
        .record(event(Kind::PasskeyAdded).detail(detail))
        .await;
    let notice = AccountNotice::PasskeyAdded;
    factors::changed(&state, &page, &me, Action::Passkeys, notice).await?;
    // The person who adds a passkey gets recovery codes with it, unless some are left.
    let to = format!("{}?done=added&key={}", list_path(&page), passkey.id);
    if state.recovery_codes.left(&realm.id, &account.id).await? == 0 {
        let fresh = codes::issue(&state, &page, addr, account, "passkey_added").await?;
        let done = Some("factors-passkey-added");
        return codes::fresh_codes_page(page, &fresh, done, Some(to));
    }
    Ok(page.redirect(&to))
}

/// The page for one passkey of the person (rename or remove), or 404.
async fn owned(
    state: &AppState,
    page: &Page,
    account: &Account,
    id: &str,
) -> Result<passkeys::StoredPasskey, PageError> {
    passkeys::of_account_by_id(&state.db, &page.realm.id, &account.id, id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "passkeys-error-unknown"))
}

fn rename_page(
    mut page: Page,
    id: &str,
    name: &str,
    problem: Option<(&'static str, Option<usize>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let base = list_path(&page);
    page.at(format!("{base}/{id}/rename"));
    let ctx = context! {
        csrf => page.csrf(), name => name, max => MAX_PASSKEY_NAME_CHARS,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("{base}/{id}/rename"), back => base,
    };
    page.render(status, "account/passkeys_rename.html", ctx)
}

pub async fn rename_form(
    State(state): State<AppState>,
    mut page: Page,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let passkey = owned(&state, &page, account, &id).await?;
    rename_page(page, &id, passkey.name.as_str(), None, StatusCode::OK)
}

pub async fn rename(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    Path((_, id)): Path<(String, String)>,
    form: Result<Form<NameForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let passkey = owned(&state, &page, account, &id).await?;
    let name = match form.name.parse::<PasskeyName>() {
        Ok(n) => n,
        Err(e) => {
            let problem = Some(name_problem(e));
            return rename_page(
                page,
                &id,
                &form.name,
                problem,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let realm = page.realm.clone();
    if !passkeys::rename(&state.db, &realm.id, &account.id, &passkey.id, &name).await? {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-error-unknown",
        ));
    }
    let detail = serde_json::json!({
        "passkey": passkey.id, "name": name.as_str(), "was": passkey.name.as_str(),
    });
    state
        .audit
        .record(
            Event::new(Kind::PasskeyRenamed, &realm.id)
                .account(&account.id)
                .origin(addr, page.headers())
                .detail(detail),
        )
        .await;
    state
        .guard
        .tell(&realm, account, AccountNotice::PasskeyRenamed)
        .await;
    let to = format!("{}?done=renamed&key={}", list_path(&page), passkey.id);
    Ok(page.redirect(&to))
}

pub async fn remove_form(
    State(state): State<AppState>,
    mut page: Page,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let passkey = owned(&state, &page, account, &id).await?;
    stepup::require(&state.account.stepups, &page.realm, &me, Action::Passkeys).await?;
    let base = list_path(&page);
    page.at(format!("{base}/{id}/remove"));
    let ctx = context! {
        csrf => page.csrf(), name => passkey.name.as_str(),
        action => format!("{base}/{id}/remove"), back => base,
    };
    page.render(StatusCode::OK, "account/passkeys_remove.html", ctx)
}

pub async fn remove(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    Path((_, id)): Path<(String, String)>,
    form: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, PageError> {
    page.read(form)?;
    let me = me(&state, &mut page).await?;
    let account = &me.account;
    let passkey = owned(&state, &page, account, &id).await?;
    stepup::require(&state.account.stepups, &page.realm, &me, Action::Passkeys).await?;
    let realm = page.realm.clone();
    if !passkeys::remove(&state.db, &realm.id, &account.id, &passkey.id).await? {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-error-unknown",
        ));
    }
    tracing::info!(realm = %realm.id, account = %account.id, "passkey removed");
    let detail = serde_json::json!({ "passkey": passkey.id, "name": passkey.name.as_str() });
    state
        .audit
        .record(
            Event::new(Kind::PasskeyRemoved, &realm.id)
                .account(&account.id)
                .origin(addr, page.headers())
                .detail(detail),
        )
        .await;
    let notice = AccountNotice::PasskeyRemoved;
    factors::changed(&state, &page, &me, Action::Passkeys, notice).await?;
    let to = format!("{}?done=removed", list_path(&page));
    Ok(page.redirect(&to))
}
