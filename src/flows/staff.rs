//! A staff member's enrolment, from the invitation's link to a registered passkey, and what
//! sets a staff realm apart from a caisse's pages.
//!
//! `GET|POST /{realm}/staff/enrol/{token}`: names, a password twice under the realm's policy,
//! and the staff realm's terms. The answer starts the enrolment's transaction in the ephemeral
//! store, named by a random id in a cookie of this browser, and leads to
//! `/{realm}/staff/passkey`, where `static/passkey.js` registers a passkey: the transaction,
//! not a session, authorises the ceremony (`passkeys::Holder::Enrolment`); the account cannot
//! log in before. Only when the passkey is registered are the invitation spent and the account
//! opened, in one SQL transaction (`StaffAccounts::enrolled`); then `/{realm}/staff/done` names
//! the console of each caisse the member serves. A link that is unknown, expired or spent
//! answers one page (410) that does not say which.
//!
//! A staff realm logs in with a passkey alone (`flows::login`), and has no enrolment by
//! letter, no recovery and no second-factor steps: [`not_in_staff_realm`] answers 404 there.
//! The staff pages exist only in a staff realm ([`staff_realm_only`]).

use std::time::Duration;

use axum::{
    extract::{Path, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    enrol::clean_name,
    passkeys::{name_problem, register_problem},
};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{
        Language, PasskeyName, Password, PasswordContext, PasswordError, RealmId,
        MAX_PASSKEY_NAME_CHARS,
    },
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    keys::SecretHasher,
    passkeys::Holder,
    session::random_token,
    storage::{
        accounts::{self, Account},
        ephemeral::Record,
        passkeys, staff,
        staff_invitations::{Enrolled, Invitation},
        Conflict, Ephemeral, StoreError,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/staff/enrol/{token}", get(show).post(submit))
        .route(
            "/{realm}/staff/passkey",
            get(show_passkey).post(add_passkey),
        )
        .route("/{realm}/staff/passkey/options", post(passkey_options))
        .route("/{realm}/staff/done", get(done))
}

/// How long an enrolment may take between the names and the passkey.
const TRANSACTION: Duration = Duration::from_secs(30 * 60);

/// The enrolments under way, by the keyed hash of their transaction id.
#[derive(Clone)]
pub struct StaffEnrolments {
    records: Record<Transaction>,
}

impl StaffEnrolments {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher) -> Self {
        StaffEnrolments {
            records: Record::hashed(store, "staff-enrol", hasher, "staff-enrol:"),
        }
    }
}

/// What the first page gave, waiting for the passkey.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Transaction {
    invitation: String,
    account_id: String,
    /// The invitation's end: past it, the enrolment is over too.
    expires_at: i64,
    given_name: String,
    family_name: String,
    password_hash: String,
    language: Language,
    terms_version: String,
    terms_accepted_at: i64,
    /// The passkey is registered and the account open: only the last page is left.
    done: bool,
}

csrf_forms! {
    pub struct EnrolForm {
        #[serde(default)]
        given_name: String,
        #[serde(default)]
        family_name: String,
        password: SecretString,
        confirm: SecretString,
        terms: Option<String>,
    }

    pub struct NameForm {
        #[serde(default)]
        name: String,
    }

    pub struct PasskeyForm {
        #[serde(default)]
        name: String,
        #[serde(default)]
        ceremony: String,
        #[serde(default)]
        credential: String,
    }
}

/// The layer on a caisse's person-only routes (enrolment by letter, recovery, the second
/// factors of a password login): they do not exist in a staff realm.
pub async fn not_in_staff_realm(page: Page, req: Request, next: Next) -> Response {
    if page.realm.staff.is_some() {
        return PageError::new(StatusCode::NOT_FOUND, "error-not-found").into_response();
    }
    next.run(req).await
}

/// The layer on the staff pages: they exist only in a staff realm.
pub async fn staff_realm_only(page: Page, req: Request, next: Next) -> Response {
    if page.realm.staff.is_none() {
        return PageError::new(StatusCode::NOT_FOUND, "error-not-found").into_response();
    }
    next.run(req).await
}

/// The one page for a link that is unknown, expired or spent, and for an enrolment that is
/// over: it does not say which.
fn gone() -> PageError {
    PageError::new(StatusCode::GONE, "staff-link-unusable")
}

/// The cookie that names this browser's enrolment. `__Host-` under https.
fn cookie_name(realm: &RealmId, secure: bool) -> String {
    if secure {
        format!("__Host-connect_staff_enrol_{realm}")
    } else {
        format!("connect_staff_enrol_{realm}")
    }
}

/// The enrolment of this browser, while its invitation lasts: its id and state.
async fn transaction(state: &AppState, page: &Page) -> Result<(String, Transaction), PageError> {
    let realm = &page.realm;
    let id = page
        .jar
        .get(&cookie_name(&realm.id, page.secure()))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .ok_or_else(gone)?;
    let tx = state
        .staff_enrolments
        .records
        .get(realm.id.as_str(), &id)
        .await?
        .ok_or_else(gone)?;
    if !tx.done && tx.expires_at <= state.clock.unix() {
        return Err(gone());
    }
    Ok((id, tx))
}

/// What the first page shows in its fields.
struct Fields<'a> {
    given_name: &'a str,
    family_name: &'a str,
    accepted: bool,
}

/// A field in error and the message for it.
type FieldError = (&'static str, &'static str);

fn enrol_page(
    mut page: Page,
    token: &str,
    email: &str,
    fields: Fields<'_>,
    error: Option<FieldError>,
) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let action = format!("/{}/staff/enrol/{token}", realm.id);
    page.at(action.clone());
    let paragraphs: Vec<&str> = realm
        .terms
        .text(page.lang)
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let policy = realm.password_policy;
    let ctx = context! {
        csrf => page.csrf(), action => action, email => email,
        given_name => fields.given_name, family_name => fields.family_name,
        accepted => fields.accepted, min => policy.min_length, max => policy.max_length,
        terms_version => &realm.terms.version, paragraphs => paragraphs,
        error_field => error.map(|e| e.0), error => error.map(|e| e.1),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page.render(status, "staff/enrol.html", ctx)
}

/// The invitation of the link and the account it opens, or the page that says the link
/// does not work.
async fn invited(
    state: &AppState,
    page: &Page,
    token: &str,
) -> Result<(Invitation, Account), PageError> {
    let invitation = state
        .staff
        .invitation(&page.realm, token)
        .await?
        .ok_or_else(gone)?;
    let account = accounts::by_id(&state.db, &page.realm.id, &invitation.account_id)
        .await?
        .filter(|a| a.status == accounts::AccountStatus::Invited)
        .ok_or_else(gone)?;
    Ok((invitation, account))
}

pub async fn show(
    State(state): State<AppState>,
    page: Page,
    Path((_, token)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (_, account) = invited(&state, &page, &token).await?;
    let empty = Fields {
        given_name: "",
        family_name: "",
        accepted: false,
    };
    enrol_page(page, &token, account.email.as_str(), empty, None)
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    Path((_, token)): Path<(String, String)>,
    form: Result<Form<EnrolForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let (invitation, account) = invited(&state, &page, &token).await?;
    let realm = page.realm.clone();
    let accepted = form.terms.as_deref() == Some("accept");
    let (given, family) = (clean_name(&form.given_name), clean_name(&form.family_name));
    let fields = Fields {
        given_name: &form.given_name,
        family_name: &form.family_name,
        accepted,
    };
    let email = account.email.as_str();
    let (Some(given), Some(family)) = (given, family) else {
        let field = if clean_name(&form.given_name).is_none() {
            "given_name"
        } else {
            "family_name"
        };
        return enrol_page(page, &token, email, fields, Some((field, "error-name")));
    };
    let context = PasswordContext {
        email_local_part: email.split('@').next().map(str::to_owned),
        names: vec![given.clone(), family.clone()],
    };
    let policy = &realm.password_policy;
    let password = match Password::new(form.password.expose_secret(), policy, &context) {
        Ok(p) => p,
        Err(err) => {
            let key = match err {
                PasswordError::TooShort { .. } => "error-password-short",
                PasswordError::TooLong { .. } => "error-password-long",
                PasswordError::Common => "error-password-common",
                PasswordError::ContainsPersonalData => "error-password-personal",
            };
            return enrol_page(page, &token, email, fields, Some(("password", key)));
        }
    };
    // The confirmation is compared after the same normalisation as the password.
    let confirm = Password::new(form.confirm.expose_secret(), policy, &context).ok();
    if confirm.is_none_or(|c| c.expose() != password.expose()) {
        let mismatch = Some(("confirm", "error-password-mismatch"));
        return enrol_page(page, &token, email, fields, mismatch);
    }
    if !accepted {
        return enrol_page(page, &token, email, fields, Some(("terms", "error-terms")));
    }
    let hash = match state
        .passwords
        .hash(SecretString::from(password.expose().to_owned()))
        .await
    {
        Ok(hash) => hash,
        Err(crate::passwords::PasswordError::Busy) => return Err(PageError::busy(&realm)),
        Err(e) => return Err(e.into()),
    };
    let tx = Transaction {
        invitation: invitation.id,
        account_id: account.id,
        expires_at: invitation.expires_at,
        given_name: given,
        family_name: family,
        password_hash: hash,
        language: page.lang,
        terms_version: realm.terms.version.clone(),
        terms_accepted_at: state.clock.unix(),
        done: false,
    };
    let id = random_token();
    state
        .staff_enrolments
        .records
        .put(realm.id.as_str(), &id, &tx, TRANSACTION)
        .await?;
    let cookie = Cookie::build((cookie_name(&realm.id, page.secure()), id))
        .path("/")
        .http_only(true)
        .secure(page.secure())
        .same_site(SameSite::Strict)
        .build();
    page.jar = std::mem::take(&mut page.jar).add(cookie);
    Ok(page.redirect(&format!("/{}/staff/passkey", realm.id)))
}

fn passkey_page(
    mut page: Page,
    name: &str,
    problem: Option<(&'static str, Option<usize>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let action = format!("/{realm}/staff/passkey");
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), action => action, options => format!("/{realm}/staff/passkey/options"),
        name => name, max => MAX_PASSKEY_NAME_CHARS,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
    };
    page.render(status, "staff/passkey.html", ctx)
}

pub async fn show_passkey(
    State(state): State<AppState>,
    page: Page,
) -> Result<Response, PageError> {
    let (_, tx) = transaction(&state, &page).await?;
    if tx.done {
        let to = format!("/{}/staff/done", page.realm.id);
        return Ok(page.redirect(&to));
    }
    if !state.passkeys.available() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-unavailable",
        ));
    }
    let name = crate::http::templates::translate(page.lang, "staff-passkey-default-name");
    passkey_page(page, &name, None, StatusCode::OK)
}

/// The waiting account as the passkey's ceremony names it: with the names just given.
async fn account_of(state: &AppState, page: &Page, tx: &Transaction) -> Result<Account, PageError> {
    let mut account = accounts::by_id(&state.db, &page.realm.id, &tx.account_id)
        .await?
        .filter(|a| a.status == accounts::AccountStatus::Invited)
        .ok_or_else(gone)?;
    account.given_name.clone_from(&tx.given_name);
    account.family_name.clone_from(&tx.family_name);
    Ok(account)
}

/// Starts the registration ceremony (`static/passkey.js`): the options as JSON; anything
/// refused is a bare status, and the form's page then says why.
pub async fn passkey_options(
    State(state): State<AppState>,
    page: Page,
    form: Result<Form<NameForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let Ok((id, tx)) = transaction(&state, &page).await else {
        return Ok(StatusCode::GONE.into_response());
    };
    if tx.done || !state.passkeys.available() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    if form.name.parse::<PasskeyName>().is_err() {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    }
    let account = account_of(&state, &page, &tx).await?;
    let holder = Holder::Enrolment {
        transaction: &id,
        account_id: &tx.account_id,
    };
    match state
        .passkeys
        .start_registration(&page.realm, &account, holder)
        .await?
    {
        Ok(started) => Ok((page.jar, Json(started)).into_response()),
        Err(_) => Ok(StatusCode::CONFLICT.into_response()),
    }
}

pub async fn add_passkey(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let (id, mut tx) = transaction(&state, &page).await?;
    let realm = page.realm.clone();
    if tx.done {
        return Ok(page.redirect(&format!("/{}/staff/done", realm.id)));
    }
    if !state.passkeys.available() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "passkeys-unavailable",
        ));
    }
    let name = match form.name.parse::<PasskeyName>() {
        Ok(n) => n,
        Err(e) => {
            let problem = Some(name_problem(e));
            return passkey_page(page, &form.name, problem, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    if form.credential.is_empty() {
        let missing = Some(("passkeys-error-missing", None));
        return passkey_page(page, name.as_str(), missing, StatusCode::BAD_REQUEST);
    }
    account_of(&state, &page, &tx).await?;
    let holder = Holder::Enrolment {
        transaction: &id,
        account_id: &tx.account_id,
    };
    let added = state
        .passkeys
        .finish_registration(&realm, holder, &form.ceremony, &form.credential, &name)
        .await?;
    let event = |kind| {
        Event::new(kind, &realm.id)
            .account(&tx.account_id)
            .origin(addr, page.headers())
    };
    let passkey = match added {
        Ok(p) => p,
        Err(refused) => {
            let detail =
                serde_json::json!({ "refused": refused.as_str(), "staff_enrolment": true });
            state
                .audit
                .record(event(Kind::PasskeyRefused).detail(detail))
                .await;
            let (problem, status) = register_problem(refused);
            return passkey_page(page, name.as_str(), Some(problem), status);
        }
    };
    let invitation = Invitation {
        id: tx.invitation.clone(),
        account_id: tx.account_id.clone(),
        expires_at: tx.expires_at,
    };
    let enrolled = Enrolled {
        given_name: &tx.given_name,
        family_name: &tx.family_name,
        password_hash: &tx.password_hash,
        language: tx.language,
        terms_version: &tx.terms_version,
        terms_accepted_at: tx.terms_accepted_at,
    };
    let opened = state
        .staff
        .enrolled(
            &realm,
            &invitation,
            &enrolled,
            &passkey.id,
            event(Kind::StaffEnrolled),
        )
        .await;
    match opened {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::CodeSpent)) => {
            // Another browser finished with this link first, or it ended meanwhile: the
            // passkey of this ceremony opens nothing.
            passkeys::remove(&state.db, &realm.id, &tx.account_id, &passkey.id).await?;
            state
                .staff_enrolments
                .records
                .delete(realm.id.as_str(), &id)
                .await?;
            return Err(gone());
        }
        Err(e) => {
            passkeys::remove(&state.db, &realm.id, &tx.account_id, &passkey.id).await?;
            return Err(e.into());
        }
    }
    tracing::info!(realm = %realm.id, account = %tx.account_id, "staff enrolment finished");
    tx.done = true;
    // What the last page needs; the password's hash is no longer kept.
    tx.password_hash.clear();
    state
        .staff_enrolments
        .records
        .put(realm.id.as_str(), &id, &tx, TRANSACTION)
        .await?;
    Ok(page.redirect(&format!("/{}/staff/done", realm.id)))
}

/// The last page: the console of each caisse the member serves.
pub async fn done(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let (_, tx) = transaction(&state, &page).await?;
    if !tx.done {
        let to = format!("/{}/staff/passkey", page.realm.id);
        return Ok(page.redirect(&to));
    }
    let member = staff::by_account(&state.db, &page.realm.id, &tx.account_id).await?;
    let consoles: Vec<_> = member
        .map(|m| m.caisses)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| state.realms.get(c))
        .map(|c| {
            context! {
                name => c.display_name.get(page.lang),
                href => format!("/{}/console", c.id),
            }
        })
        .collect();
    page.at(format!("/{}/staff/done", page.realm.id));
    let ctx = context! { consoles => consoles, given_name => &tx.given_name };
    page.render(StatusCode::OK, "staff/done.html", ctx)
}
