//! Login: e-mail and password, then the SMS code sent to the account's mobile number. Ends by
//! starting the SSO session and finishing the protocol's interaction that sent the person
//! here (`protocol::interaction`), or on the account page.
//!
//! Wrong passwords slow the next attempts for that address down (a growing delay, the same
//! for known and unknown addresses) instead of locking the account; only after the realm's
//! `lock_after_failures` consecutive failures (at most 100) is an account locked, for the
//! realm's `lock_minutes`, and the person told by mail. An account with a mobile number never
//! logs in without its SMS code: when the stored number no longer parses, the person is sent
//! to support.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod sms;
mod throttle;

pub use sms::{resend_sms, show_sms, submit_sms};
use throttle::Throttles;

use super::sms::CodeFor;
use crate::{
    app::AppState,
    audit::{Audit, Event, Kind},
    domain::{Email, Password, PhoneNumber},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    keys::SecretHasher,
    limits::Limit,
    notify::messages::AccountNotice,
    passwords::PasswordError,
    protocol::interaction::{self, Interactions, View},
    realm::Realm,
    session::{random_token, Sessions},
    storage::{
        accounts::{self, Account, AccountStatus},
        ephemeral::{Counter, Record},
        Db, Ephemeral,
    },
};

/// The page that sends a person whose stored number no longer works to support.
fn phone_unusable(mut page: Page) -> Result<Response, PageError> {
    page.at(format!("/{}/login", page.realm.id));
    page.render(StatusCode::FORBIDDEN, "login/support.html", context! {})
}

pub use crate::domain::acr::{MFA as ACR_MFA, PASSWORD as ACR_PASSWORD};

/// The password was right; the login waits for the SMS code. Kept under the interaction's
/// id when a relying party sent the person, under its own otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SmsStep {
    /// The protocol's interaction this login finishes, if any.
    interaction: Option<String>,
    account_id: String,
    phone: String,
    code_hash: String,
    expires_at: i64,
    sent_at: i64,
}

/// The login's own short-lived state: SMS steps, their wrong codes, password throttles.
#[derive(Clone)]
pub struct LoginStore {
    steps: Record<SmsStep>,
    wrong_codes: Counter,
    throttles: Throttles,
}

impl LoginStore {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, db: &Db) -> Self {
        LoginStore {
            steps: Record::plain(store, "login-sms"),
            wrong_codes: Counter::plain(store, "login-sms-attempts"),
            throttles: Throttles::new(store, hasher, db),
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    flow: Option<String>,
    enrolled: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    flow: Option<String>,
    email: String,
    password: SecretString,
}

csrf_forms!(LoginForm);

use interaction::valid_id;

/// The pending interaction named by `id`, if any; the page that says it is over when it is.
async fn load_interaction(
    interactions: &Interactions,
    realm: &Realm,
    id: Option<&str>,
) -> Result<Option<View>, PageError> {
    let Some(id) = valid_id(id) else {
        return Ok(None);
    };
    let view = interactions.view(realm, id).await?;
    view.map(Some).ok_or_else(expired)
}

/// The page that says the login is over.
fn expired() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-flow-expired")
}

/// What the login form shows besides the layout.
struct LoginPage<'a> {
    flow: Option<&'a str>,
    email: &'a str,
    error: Option<&'a str>,
    n: Option<u64>,
    enrolled: bool,
}

fn render(mut page: Page, form: LoginPage<'_>, status: StatusCode) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let (path, register) = match form.flow {
        Some(f) => (
            format!("/{realm}/login?flow={f}"),
            format!("/{realm}/register?flow={f}"),
        ),
        None => (format!("/{realm}/login"), format!("/{realm}/register")),
    };
    page.at(path);
    let ctx = context! {
        csrf => page.csrf(), flow => form.flow, email => form.email, error => form.error,
        n => form.n, enrolled => form.enrolled, register => register,
        action => format!("/{realm}/login"),
    };
    page.render(status, "login/login.html", ctx)
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let pending = load_interaction(&state.interactions, &page.realm, q.flow.as_deref()).await?;
    page.prefer(pending.as_ref().and_then(|p| p.ui_locales.as_deref()));
    let hint = pending.and_then(|p| p.login_hint).unwrap_or_default();
    let form = LoginPage {
        flow: valid_id(q.flow.as_deref()),
        email: &hint,
        error: None,
        n: None,
        enrolled: q.enrolled.is_some(),
    };
    render(page, form, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let headers = page.headers().clone();
    let flow_id = valid_id(form.flow.as_deref());
    // An expired interaction is told before the password is checked.
    load_interaction(&state.interactions, &realm, flow_id).await?;
    let fail_page = |page: Page, error: &'static str, n: Option<u64>, status| {
        let form = LoginPage {
            flow: flow_id,
            email: &form.email,
            error: Some(error),
            n,
            enrolled: false,
        };
        render(page, form, status)
    };

    let now = state.clock.unix();
    // An event of this attempt for the audit trail, from this client.
    let event = |kind, account: Option<&str>, detail: serde_json::Value| {
        let e = Event::new(kind, &realm.id)
            .origin(addr, &headers)
            .detail(detail);
        match account {
            Some(id) => e.account(id),
            None => e,
        }
    };
    // Passwords checked per client address, whatever the accounts (credential stuffing).
    let subject = addr.subject();
    let per_address = [
        (
            Limit::per_hour(
                "login_passwords_per_address_hour",
                realm.login.attempts_per_address_per_hour,
            ),
            subject.as_str(),
        ),
        (
            Limit::per_day(
                "login_passwords_per_address_day",
                realm.login.attempts_per_address_per_day,
            ),
            subject.as_str(),
        ),
    ];
    if let Err(e) = state.limits.charge(realm.id.as_str(), &per_address).await? {
        return Err(PageError::Limited(e.retry_after));
    }
    // The attempt is counted before its password is checked (see `throttle`).
    let throttle = state.login.throttles.for_address(&realm, &form.email);
    if let Some(wait) = throttle.take_turn(now).await? {
        return fail_page(
            page,
            "error-login-delay",
            Some(wait),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }

    // Unknown e-mail, malformed e-mail and wrong password look and take the same.
    let mut account = match form.email.parse::<Email>() {
        Ok(email) => accounts::by_email(&state.db, &realm.id, &email).await?,
        Err(_) => None,
    };
    if let Some(a) = account.as_ref().filter(|a| !a.active && a.may_log_in(now)) {
        // Its lock has ended by itself: lifted before this password counts.
        accounts::lift_ended_lock(&state.db, &a.id, now).await?;
        account = accounts::by_id(&state.db, &realm.id, &a.id).await?;
    }
    let verified = state
        .passwords
        .verify(
            Password::presented(&form.password),
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await;
    let ok = match verified {
        Ok(ok) => ok,
        Err(PasswordError::Busy) => return Err(PageError::busy(&realm)),
        Err(e) => return Err(e.into()),
    };
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => if ok { "password_ok" } else { "failure" }).increment(1);
    let account = match account {
        Some(a) if ok => a,
        account => {
            let locked = throttle.failed(account.as_ref(), now).await?;
            tracing::info!(realm = %realm.id, "login failed");
            let id = account.as_ref().map(|a| a.id.as_str());
            let failed = serde_json::json!({ "factor": "password" });
            state
                .audit
                .record(event(Kind::LoginFailed, id, failed))
                .await;
            if let (true, Some(a)) = (locked, &account) {
                let hours = realm.login.lock_duration.as_secs().div_ceil(3600);
                let until = now + realm.login.lock_duration.as_secs() as i64;
                let detail = serde_json::json!({ "by": "password_failures", "until": until });
                let locked = event(Kind::AccountLocked, Some(&a.id), detail);
                state.audit.record(locked).await;
                let notice = AccountNotice::LockedAfterFailures { hours };
                state.guard.restrict(&realm, a, notice).await?;
            }
            return fail_page(page, "login-failed", None, StatusCode::UNAUTHORIZED);
        }
    };
    if !account.may_log_in(now) {
        // Only someone who knows the password learns that the account is locked.
        let message = match account.status {
            AccountStatus::Disabled => "error-account-disabled",
            _ => "error-account-locked",
        };
        let detail = serde_json::json!({ "factor": "password", "refused": message });
        let refused = event(Kind::LoginFailed, Some(&account.id), detail);
        state.audit.record(refused).await;
        return fail_page(page, message, None, StatusCode::FORBIDDEN);
    }
    throttle.succeeded(&account).await?;

    let Some(stored_phone) = account.phone.as_deref() else {
        // Accounts that support created without a mobile number log in with the password only.
        let proof = Proved {
            account: &account,
            interaction: flow_id,
            acr: ACR_PASSWORD,
            amr: &["pwd"],
            addr,
        };
        return finish(&(&state).into(), page, proof).await;
    };
    let Ok(phone) = PhoneNumber::parse(stored_phone) else {
        // A number that no longer parses must not turn the login into a password-only one.
        tracing::warn!(realm = %realm.id, account = %account.id, "login refused: the stored mobile number does not parse");
        let detail = serde_json::json!({ "factor": "sms", "refused": "phone_unusable" });
        let refused = event(Kind::LoginFailed, Some(&account.id), detail);
        state.audit.record(refused).await;
        return phone_unusable(page);
    };
    let id = flow_id.map_or_else(random_token, str::to_owned);
    let to = CodeFor {
        phone: &phone,
        account: &format!("account:{}", account.id),
        purpose: &sms::purpose(&id),
        last_sent_at: None,
    };
    let sent = match state.sms.send(&realm, page.lang, &addr, to).await? {
        Ok(s) => s,
        Err(r) => {
            let (key, n, status) = r.message();
            return fail_page(page, key, n, status);
        }
    };
    let next = SmsStep {
        interaction: flow_id.map(str::to_owned),
        account_id: account.id.clone(),
        phone: phone.as_e164().to_owned(),
        code_hash: sent.code_hash,
        expires_at: sent.expires_at,
        sent_at: sent.sent_at,
    };
    state
        .login
        .steps
        .put(realm.id.as_str(), &id, &next, realm.lifetimes.login_flow)
        .await?;
    Ok(page.redirect(&format!("/{}/login/sms?flow={id}", realm.id)))
}

/// What a login proved, for [`finish`].
struct Proved<'a> {
    account: &'a Account,
    /// The protocol's interaction this login finishes, if any.
    interaction: Option<&'a str>,
    acr: &'a str,
    amr: &'a [&'a str],
    addr: ClientAddr,
}

/// What a login ends with: the SSO session, the audit trail, the protocol's interaction.
struct LoginEnds<'a> {
    sessions: &'a Sessions,
    audit: &'a Audit,
    interactions: &'a Interactions,
}

impl<'a> From<&'a AppState> for LoginEnds<'a> {
    fn from(state: &'a AppState) -> Self {
        LoginEnds {
            sessions: &state.sessions,
            audit: &state.audit,
            interactions: &state.interactions,
        }
    }
}

/// Starts the session, then finishes the interaction that sent the person here (the
/// protocol answers the relying party at its resume endpoint), or opens the account page.
async fn finish(
    ends: &LoginEnds<'_>,
    mut page: Page,
    proved: Proved<'_>,
) -> Result<Response, PageError> {
    let Proved {
        account,
        interaction,
        acr,
        amr,
        addr,
    } = proved;
    let realm = page.realm.clone();
    let amr_owned = amr.iter().map(|s| (*s).to_owned()).collect();
    let jar = std::mem::take(&mut page.jar);
    let (jar, session) = ends
        .sessions
        .start(&realm, jar, &account.id, acr, amr_owned)
        .await?;
    page.jar = jar;
    tracing::info!(realm = %realm.id, account = %account.id, acr, "login succeeded");
    ends.audit
        .record(
            Event::new(Kind::LoginSucceeded, &realm.id)
                .account(&account.id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({ "acr": acr, "amr": amr })),
        )
        .await;
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => "success").increment(1);
    let Some(id) = interaction else {
        return Ok(page.redirect(&format!("/{}/account", realm.id)));
    };
    match ends
        .interactions
        .finish(&realm, id, (&session).into())
        .await?
    {
        Some(to) => Ok(page.redirect(&to)),
        // The session stands (its cookie goes out); only the relying party's request is over.
        None => Err(PageError::answered((page.jar, expired()))),
    }
}
