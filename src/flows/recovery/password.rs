//! « Mot de passe oublié ? »: the address; the code of the mail sent to it; the second
//! factor (the SMS code to the registered number); a new password under the realm's policy.
//! Every session and grant of the account then ends and the person is told by mail.
//!
//! An address without an account (or whose account support disabled or locked) gets the
//! same page, after the same work (lookup, code drawn and hashed, recovery stored), and no
//! mail; the mail goes out after the answer, so its sending time shows in no response. Its
//! recovery simply never accepts a code.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use super::{
    audit,
    flow::{new_id, Bound, TxPage},
    login_flow, login_path,
};
use crate::{
    app::AppState,
    audit::Kind,
    domain::{ActivationCode, Email, Password, PasswordContext, PasswordError, PhoneNumber},
    factors::{HeldChecked, HeldCode, HeldCodes},
    flows::sms::{CodeFor, Refused, Sent},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    limits::Limit,
    notify::messages::{self, AccountNotice},
    otp,
    storage::{
        accounts::{self, Account, AccountStatus},
        StoreError,
    },
};

/// A forgotten password being replaced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reset {
    /// The relying party's login flow the person left, to go back to at the end.
    login_flow: Option<String>,
    step: Step,
}

/// Where a reset stands. Each transition consumes the step it leaves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
enum Step {
    /// The mail went out, unless the address has no account it may recover: then there is
    /// no code and none will match.
    MailSent {
        account: Option<String>,
        code_hash: Option<String>,
        expires_at: i64,
    },
    /// The address is proved; the second factor is awaited: an SMS code (`sms` once one
    /// went out), a code of the app or a recovery code, whichever the account has.
    SecondFactor {
        account: String,
        #[serde(default)]
        phone: Option<String>,
        sms: Option<SmsSent>,
        #[serde(default)]
        app: bool,
        #[serde(default)]
        recovery_codes: bool,
    },
    /// Both are proved; the new password is awaited.
    NewPassword { account: String },
}

/// An SMS code that went out: its keyed hash, bound to this reset.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SmsSent {
    code_hash: String,
    expires_at: i64,
    sent_at: i64,
}

impl From<Sent> for SmsSent {
    fn from(s: Sent) -> Self {
        SmsSent {
            code_hash: s.code_hash,
            expires_at: s.expires_at,
            sent_at: s.sent_at,
        }
    }
}

impl Step {
    /// The mail's code proved the address of the account, which holds these factors.
    fn address_proved(self, held: Held) -> Option<Step> {
        match self {
            Step::MailSent {
                account: Some(account),
                ..
            } => Some(Step::SecondFactor {
                account,
                phone: held.phone.map(|p| p.as_e164().to_owned()),
                sms: None,
                app: held.app,
                recovery_codes: held.recovery_codes,
            }),
            _ => None,
        }
    }

    /// A (new) SMS code went out.
    fn code_sent(self, sent: Sent) -> Option<Step> {
        match self {
            Step::SecondFactor {
                account,
                phone,
                app,
                recovery_codes,
                ..
            } => Some(Step::SecondFactor {
                account,
                phone,
                sms: Some(sent.into()),
                app,
                recovery_codes,
            }),
            _ => None,
        }
    }

    /// The second factor is proved.
    fn factor_proved(self) -> Option<Step> {
        match self {
            Step::SecondFactor { account, .. } => Some(Step::NewPassword { account }),
            _ => None,
        }
    }

    /// The path segment of the page this step shows.
    fn page(&self) -> &'static str {
        match self {
            Step::MailSent { .. } => "mail",
            // The app is the default for a person who has one, as at login.
            Step::SecondFactor { app: true, .. } => "app",
            Step::SecondFactor { phone: Some(_), .. } => "sms",
            Step::SecondFactor { .. } => "recovery-code",
            Step::NewPassword { .. } => "new",
        }
    }
}

/// The second factors an account holds, for the reset's choice.
struct Held {
    phone: Option<PhoneNumber>,
    app: bool,
    recovery_codes: bool,
}

impl Held {
    async fn of(state: &AppState, account: &Account) -> Result<Held, StoreError> {
        let (realm, id) = (&account.realm, account.id.as_str());
        Ok(Held {
            phone: account
                .phone
                .as_deref()
                .and_then(|p| PhoneNumber::parse(p).ok()),
            app: state.totp.registered(realm, id).await?.is_some(),
            recovery_codes: state.recovery_codes.left(realm, id).await? > 0,
        })
    }

    fn any(&self) -> bool {
        self.phone.is_some() || self.app || self.recovery_codes
    }
}

#[derive(Deserialize)]
pub struct FlowQuery {
    flow: Option<String>,
}

csrf_forms! {
    pub struct AddressForm {
        flow: Option<String>,
        email: String,
    }
}

csrf_forms! {
    pub struct CodeForm {
        code: String,
    }
}

csrf_forms! {
    pub struct ResendForm {
    }
}

csrf_forms! {
    pub struct PasswordForm {
        password: SecretString,
        confirm: SecretString,
    }
}

/// What the mail's code is bound to.
fn mail_purpose(tx: &str) -> String {
    format!("reset-mail:{tx}")
}

/// What the SMS code is bound to.
fn sms_purpose(tx: &str) -> String {
    format!("reset-sms:{tx}")
}

fn step_path(page: &Page, tx: &str, step: &str) -> String {
    format!("/{}/password/forgot/{tx}/{step}", page.realm.id)
}

/// Whether a forgotten password may be replaced: not when support disabled or locked the
/// account (that is for support to lift), but after a lock that wrong passwords caused.
fn recoverable(a: &Account) -> bool {
    match a.status {
        AccountStatus::Active => true,
        AccountStatus::Locked => a.locked_until.is_some(),
        AccountStatus::Disabled | AccountStatus::Invited => false,
    }
}

/// A message key, the number it shows, and the page's status.
type Problem = (&'static str, Option<u64>, StatusCode);

fn bad(key: &'static str) -> Problem {
    (key, None, StatusCode::BAD_REQUEST)
}

fn address_page(
    mut page: Page,
    flow: Option<&str>,
    email: &str,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(match flow {
        Some(f) => format!("/{realm}/password/forgot?flow={f}"),
        None => format!("/{realm}/password/forgot"),
    });
    let ctx = context! {
        csrf => page.csrf(), flow => flow, email => email,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        action => format!("/{realm}/password/forgot"),
        login => login_path(realm.as_str(), flow),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/forgot.html", ctx)
}

pub async fn show_address(page: Page, Query(q): Query<FlowQuery>) -> Result<Response, PageError> {
    let flow = login_flow(q.flow.as_deref());
    address_page(page, flow.as_deref(), "", None)
}

pub async fn submit_address(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<AddressForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let flow = login_flow(form.flow.as_deref());
    let rules = &realm.recovery;
    // Counted per client address and per typed address, before anything is looked up, so
    // that known and unknown addresses meet the same limits.
    let typed = form.email.trim().to_lowercase();
    let subject = addr.subject();
    let checks = [
        (
            Limit::per_hour(
                "recovery-starts-per-address",
                rules.starts_per_address_per_hour,
            ),
            subject.as_str(),
        ),
        (
            Limit::per_day("recovery-starts-per-email", rules.starts_per_email_per_day),
            typed.as_str(),
        ),
    ];
    if let Err(e) = state.limits.charge(realm.id.as_str(), &checks).await? {
        return Err(PageError::Limited(e.retry_after));
    }
    let Ok(email) = form.email.parse::<Email>() else {
        let problem = Some(bad("error-email-format"));
        return address_page(page, flow.as_deref(), &form.email, problem);
    };
    let now = state.clock.unix();
    let account = accounts::by_email(&state.db, &realm.id, &email)
        .await?
        .filter(recoverable);
    // The same work whether or not there is an account: a code is drawn and hashed.
    let tx = new_id();
    let code = ActivationCode::generate();
    let code_hash = otp::hash(&state.secret_hasher, &mail_purpose(&tx), code.as_str());
    let step = Step::MailSent {
        account: account.as_ref().map(|a| a.id.clone()),
        code_hash: account.as_ref().map(|_| code_hash),
        expires_at: now + rules.email_code_validity.as_secs() as i64,
    };
    let reset = Reset {
        login_flow: flow,
        step,
    };
    state
        .recoveries
        .passwords
        .start(&mut page, &tx, reset)
        .await?;
    if let Some(a) = &account {
        let issuer = state.config.issuer(&realm.id);
        let link = format!("{issuer}/password/forgot/{tx}/mail");
        let minutes = rules.email_code_validity.as_secs() / 60;
        let mail = messages::password_reset_code(
            page.lang,
            &realm,
            &a.email,
            &link,
            &code.to_string(),
            minutes,
        );
        // After the answer: how long a mail takes must not tell who has an account.
        let notifier = state.notifier.clone();
        let realm_id = realm.id.clone();
        tokio::spawn(
            async move {
                if let Err(e) = notifier.send_mail(mail).await {
                    tracing::error!(realm = %realm_id, error = %e, "recovery mail not sent");
                }
            }
            .in_current_span(),
        );
    }
    let account_id = account.as_ref().map(|a| a.id.as_str());
    let detail = json!({ "recovery": "password" });
    audit(
        &state.audit,
        &page,
        addr,
        Kind::RecoveryStarted,
        account_id,
        detail,
    )
    .await;
    let to = step_path(&page, &tx, "mail");
    Ok(page.redirect(&to))
}

/// A step of this reset refused for `reason`, in the audit trail.
async fn refused(state: &AppState, req: &TxPage, account: Option<&str>, step: &str, reason: &str) {
    let detail = json!({ "recovery": "password", "step": step, "reason": reason });
    let kind = Kind::RecoveryStepRefused;
    audit(&state.audit, &req.page, req.addr, kind, account, detail).await;
}

async fn completed(state: &AppState, req: &TxPage, account: &str, step: &str) {
    let detail = json!({ "recovery": "password", "step": step });
    let kind = Kind::RecoveryStepCompleted;
    audit(
        &state.audit,
        &req.page,
        req.addr,
        kind,
        Some(account),
        detail,
    )
    .await;
}

/// The reset is over after too many wrong codes: its state and cookie end, and a page says so.
async fn too_many(
    state: &AppState,
    mut req: TxPage,
    account: Option<&str>,
    step: &str,
) -> PageError {
    refused(state, &req, account, step, "too_many_codes").await;
    if let Err(e) = state.recoveries.passwords.end(&mut req.page, &req.tx).await {
        return e.into();
    }
    let over = PageError::new(StatusCode::TOO_MANY_REQUESTS, "error-recovery-too-many");
    PageError::answered((req.page.jar, over))
}

/// A 303 to the page of the step the reset stands at.
fn go(req: TxPage, step: &Step) -> Response {
    let to = step_path(&req.page, &req.tx, step.page());
    req.page.redirect(&to)
}

fn mail_code_page(req: TxPage, problem: Option<Problem>) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let action = step_path(&page, &tx, "mail");
    page.at(action.clone());
    let realm = page.realm.id.clone();
    let ctx = context! {
        csrf => page.csrf(), action => action,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        again => format!("/{realm}/password/forgot"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/mail_code.html", ctx)
}

pub async fn show_mail_code(
    State(state): State<AppState>,
    req: TxPage,
) -> Result<Response, PageError> {
    // The mail's link may be opened on another device: the code decides, not the browser.
    let flow = state
        .recoveries
        .passwords
        .open_anywhere(&req.page.realm, &req.tx)
        .await?;
    if !matches!(flow.state.step, Step::MailSent { .. }) {
        return Ok(go(req, &flow.state.step));
    }
    mail_code_page(req, None)
}

pub async fn submit_mail_code(
    State(state): State<AppState>,
    mut req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.passwords;
    let realm = req.page.realm.clone();
    let mut flow = flows.open_anywhere(&realm, &req.tx).await?;
    let Step::MailSent {
        account,
        code_hash,
        expires_at,
    } = &flow.state.step
    else {
        return Ok(go(req, &flow.state.step));
    };
    let account = account.clone();
    let max = realm.recovery.code_attempts;
    if !flows.attempt(&realm, &req.tx, "mail", max).await? {
        return Err(too_many(&state, req, account.as_deref(), "mail").await);
    }
    // Hashed and compared alike with or without a code to match (an unknown address).
    let presented = form.code.parse::<ActivationCode>().ok();
    let stored = code_hash.as_deref().unwrap_or_default();
    let matches = presented.is_some_and(|code| {
        otp::matches(
            &state.secret_hasher,
            &mail_purpose(&req.tx),
            stored,
            code.as_str(),
        )
    }) && code_hash.is_some();
    if !matches {
        refused(&state, &req, account.as_deref(), "mail", "wrong_code").await;
        return mail_code_page(req, Some(bad("error-mail-code-wrong")));
    }
    if *expires_at <= state.clock.unix() {
        refused(&state, &req, account.as_deref(), "mail", "expired_code").await;
        return mail_code_page(req, Some(bad("error-mail-code-expired")));
    }
    // A code matched, so the reset has an account.
    let Some(account_id) = account else {
        return Err(PageError::new(StatusCode::GONE, "error-recovery-expired"));
    };
    let account = accounts::by_id(&state.db, &realm.id, &account_id)
        .await?
        .filter(recoverable);
    let held = match &account {
        Some(a) => Some(Held::of(&state, a).await?),
        None => None,
    };
    let Some(held) = held.filter(Held::any) else {
        // No second factor to prove: a forgotten password is then for support to replace.
        refused(&state, &req, Some(&account_id), "mail", "no_second_factor").await;
        flows.end(&mut req.page, &req.tx).await?;
        return notice(
            req.page,
            "recovery-no-factor-title",
            "recovery-no-factor-text",
            None,
        );
    };
    let phone = held.phone.clone();
    let step = flow.state.step.address_proved(held);
    let Some(step) = step else {
        return Err(PageError::new(StatusCode::GONE, "error-recovery-expired"));
    };
    flow.state.step = step;
    // Whoever proved the address continues, on this device.
    flows.bind(&mut req.page, &mut flow);
    completed(&state, &req, &account_id, "mail").await;
    match phone {
        // An SMS goes out only when it is the person's default second factor.
        Some(phone) if flow.state.step.page() == "sms" => {
            send_and_show(&state, req, flow, &phone, None).await
        }
        _ => {
            flows.save(&realm, &req.tx, &flow).await?;
            Ok(go(req, &flow.state.step))
        }
    }
}

/// Sends an SMS code for this reset, saves it, and shows the SMS step (with the problem
/// when none went out).
async fn send_and_show(
    state: &AppState,
    req: TxPage,
    mut flow: Bound<Reset>,
    phone: &PhoneNumber,
    last_sent_at: Option<i64>,
) -> Result<Response, PageError> {
    let Step::SecondFactor { account, .. } = &flow.state.step else {
        return Ok(go(req, &flow.state.step));
    };
    let to = CodeFor {
        phone,
        account: &format!("account:{account}"),
        purpose: &sms_purpose(&req.tx),
        last_sent_at,
    };
    let sent = state
        .sms
        .send(&req.page.realm, req.page.lang, &req.addr, to)
        .await?;
    let problem = match sent {
        Ok(sent) => {
            let step = flow.state.step.clone().code_sent(sent);
            if let Some(step) = step {
                flow.state.step = step;
            }
            None
        }
        Err(refused) => Some(refused),
    };
    state
        .recoveries
        .passwords
        .save(&req.page.realm, &req.tx, &flow)
        .await?;
    match problem {
        None if last_sent_at.is_none() => {
            let to = step_path(&req.page, &req.tx, "sms");
            Ok(req.page.redirect(&to))
        }
        None => sms_page(req, &flow, Some(("sms-resent", None, StatusCode::OK))),
        Some(refused) => sms_page(req, &flow, Some(sms_problem(&refused))),
    }
}

fn sms_problem(refused: &Refused) -> Problem {
    refused.message()
}

fn sms_page(
    req: TxPage,
    flow: &Bound<Reset>,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let Step::SecondFactor {
        phone: Some(phone),
        sms,
        ..
    } = &flow.state.step
    else {
        let to = step_path(&page, &tx, flow.state.step.page());
        return Ok(page.redirect(&to));
    };
    let masked = PhoneNumber::parse(phone)
        .map(|p| p.masked())
        .unwrap_or_default();
    let action = step_path(&page, &tx, "sms");
    page.at(action.clone());
    let realm = page.realm.id.clone();
    let ctx = context! {
        csrf => page.csrf(), action => &action, resend => format!("{action}/resend"),
        masked => masked, sent => sms.is_some(),
        others => others(&page, &tx, &flow.state.step, "sms"),
        title => "forgot-sms-title", intro => "forgot-sms-intro", submit => "continue",
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        lost => format!("/{realm}/phone/lost"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/sms.html", ctx)
}

pub async fn show_sms(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.passwords.open(&req.page, &req.tx).await?;
    sms_page(req, &flow, None)
}

pub async fn resend_sms(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    req.page.read(form)?;
    let flow = state.recoveries.passwords.open(&req.page, &req.tx).await?;
    let (phone, last) = match &flow.state.step {
        Step::SecondFactor {
            phone: Some(phone),
            sms,
            ..
        } => (
            PhoneNumber::parse(phone)?,
            // Without a code yet (the first one was refused), there is no cooldown to keep.
            sms.as_ref().map_or(0, |s| s.sent_at),
        ),
        step => return Ok(go(req, step)),
    };
    send_and_show(&state, req, flow, &phone, Some(last)).await
}

pub async fn submit_sms(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.passwords;
    let realm = req.page.realm.clone();
    let mut flow = flows.open(&req.page, &req.tx).await?;
    let Step::SecondFactor { account, sms, .. } = &flow.state.step else {
        return Ok(go(req, &flow.state.step));
    };
    let account = account.clone();
    let max = realm.recovery.code_attempts;
    if !flows.attempt(&realm, &req.tx, "sms", max).await? {
        return Err(too_many(&state, req, Some(&account), "sms").await);
    }
    let ok = sms.as_ref().is_some_and(|s| {
        otp::matches(
            &state.secret_hasher,
            &sms_purpose(&req.tx),
            &s.code_hash,
            &form.code,
        )
    });
    if !ok {
        refused(&state, &req, Some(&account), "sms", "wrong_code").await;
        return sms_page(
            req,
            &flow,
            Some(("error-sms-code-wrong", None, StatusCode::UNAUTHORIZED)),
        );
    }
    if sms
        .as_ref()
        .is_none_or(|s| s.expires_at <= state.clock.unix())
    {
        refused(&state, &req, Some(&account), "sms", "expired_code").await;
        return sms_page(
            req,
            &flow,
            Some(("error-sms-code-expired", None, StatusCode::UNAUTHORIZED)),
        );
    }
    let Some(step) = flow.state.step.clone().factor_proved() else {
        return Ok(go(req, &flow.state.step));
    };
    flow.state.step = step;
    flows.save(&realm, &req.tx, &flow).await?;
    completed(&state, &req, &account, "sms").await;
    Ok(go(req, &flow.state.step))
}

/// The other second factors the reset's account holds, as links from the page of `current`.
fn others(page: &Page, tx: &str, step: &Step, current: &str) -> Vec<(String, &'static str)> {
    let Step::SecondFactor {
        phone,
        app,
        recovery_codes,
        ..
    } = step
    else {
        return Vec::new();
    };
    [
        (*app, "app", "login-use-app"),
        (phone.is_some(), "sms", "login-use-sms"),
        (*recovery_codes, "recovery-code", "login-use-recovery-code"),
    ]
    .into_iter()
    .filter(|(held, path, _)| *held && *path != current)
    .map(|(_, path, label)| (step_path(page, tx, path), label))
    .collect()
}

/// The page of a code the person holds (the app's or a recovery code).
fn held_page(
    req: TxPage,
    flow: &Bound<Reset>,
    kind: HeldCode,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let (path, title, intro, label) = match kind {
        HeldCode::App => (
            "app",
            "login-app-title",
            "login-app-intro",
            "login-app-label",
        ),
        HeldCode::RecoveryCode => (
            "recovery-code",
            "login-recovery-title",
            "login-recovery-intro",
            "login-recovery-label",
        ),
    };
    let holds = match &flow.state.step {
        Step::SecondFactor {
            app,
            recovery_codes,
            ..
        } => match kind {
            HeldCode::App => *app,
            HeldCode::RecoveryCode => *recovery_codes,
        },
        _ => false,
    };
    if !holds {
        let to = step_path(&page, &tx, flow.state.step.page());
        return Ok(page.redirect(&to));
    }
    let action = step_path(&page, &tx, path);
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), action => &action, title => title, intro => intro,
        label => label, numeric => kind == HeldCode::App,
        others => others(&page, &tx, &flow.state.step, path),
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        lost => format!("/{}/phone/lost", page.realm.id),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/held_code.html", ctx)
}

pub async fn show_app(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.passwords.open(&req.page, &req.tx).await?;
    held_page(req, &flow, HeldCode::App, None)
}

pub async fn show_recovery_code(
    State(state): State<AppState>,
    req: TxPage,
) -> Result<Response, PageError> {
    let flow = state.recoveries.passwords.open(&req.page, &req.tx).await?;
    held_page(req, &flow, HeldCode::RecoveryCode, None)
}

pub async fn submit_app(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    submit_held(state, req, form, HeldCode::App).await
}

pub async fn submit_recovery_code(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    submit_held(state, req, form, HeldCode::RecoveryCode).await
}

/// A code of the app or a recovery code for this reset: counted per reset (the realm's
/// `code_attempts`) and per account (`factors::guess_limits`), spent when right.
async fn submit_held(
    state: AppState,
    req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
    kind: HeldCode,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.passwords;
    let realm = req.page.realm.clone();
    let mut flow = flows.open(&req.page, &req.tx).await?;
    let Step::SecondFactor { account, .. } = &flow.state.step else {
        return Ok(go(req, &flow.state.step));
    };
    let account = account.clone();
    let step_name = match kind {
        HeldCode::App => "app",
        HeldCode::RecoveryCode => "recovery_code",
    };
    let max = realm.recovery.code_attempts;
    if !flows.attempt(&realm, &req.tx, step_name, max).await? {
        return Err(too_many(&state, req, Some(&account), step_name).await);
    }
    let codes = HeldCodes {
        totp: &state.totp,
        recovery_codes: &state.recovery_codes,
        limits: &state.limits,
    };
    let problem = match codes.check(&realm, &account, kind, &form.code).await? {
        HeldChecked::Right => None,
        HeldChecked::Wrong => Some((
            match kind {
                HeldCode::App => "error-app-code-wrong",
                HeldCode::RecoveryCode => "error-recovery-code-wrong",
            },
            None,
            StatusCode::UNAUTHORIZED,
        )),
        HeldChecked::Limited(minutes) => {
            Some(("error-limit", Some(minutes), StatusCode::TOO_MANY_REQUESTS))
        }
    };
    if let Some(problem) = problem {
        refused(&state, &req, Some(&account), step_name, "wrong_code").await;
        return held_page(req, &flow, kind, Some(problem));
    }
    let Some(step) = flow.state.step.clone().factor_proved() else {
        return Ok(go(req, &flow.state.step));
    };
    flow.state.step = step;
    flows.save(&realm, &req.tx, &flow).await?;
    completed(&state, &req, &account, step_name).await;
    Ok(go(req, &flow.state.step))
}

fn new_password_page(
    req: TxPage,
    error: Option<(&'static str, &'static str)>,
) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let policy = page.realm.password_policy;
    let action = step_path(&page, &tx, "new");
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), action => action,
        min => policy.min_length, max => policy.max_length,
        error_field => error.map(|e| e.0), error => error.map(|e| e.1),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page.render(status, "recovery/password.html", ctx)
}

pub async fn show_new(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.passwords.open(&req.page, &req.tx).await?;
    if !matches!(flow.state.step, Step::NewPassword { .. }) {
        return Ok(go(req, &flow.state.step));
    }
    new_password_page(req, None)
}

pub async fn submit_new(
    State(state): State<AppState>,
    mut req: TxPage,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.passwords;
    let realm = req.page.realm.clone();
    let flow = flows.open(&req.page, &req.tx).await?;
    let Step::NewPassword { account } = &flow.state.step else {
        return Ok(go(req, &flow.state.step));
    };
    let Some(account) = accounts::by_id(&state.db, &realm.id, account).await? else {
        flows.end(&mut req.page, &req.tx).await?;
        return Err(PageError::new(StatusCode::GONE, "error-recovery-expired"));
    };
    let context = PasswordContext {
        email_local_part: Some(account.email.local_part().to_owned()),
        names: vec![account.given_name.clone(), account.family_name.clone()],
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
            return new_password_page(req, Some(("password", key)));
        }
    };
    // The confirmation is compared after the same normalisation as the password.
    let confirm = Password::new(form.confirm.expose_secret(), policy, &context).ok();
    if confirm.is_none_or(|c| c.expose() != password.expose()) {
        return new_password_page(req, Some(("confirm", "error-password-mismatch")));
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
    // Taking the reset is the one act that may finish it: of two racing submissions, one
    // replaces the password.
    let taken = flows.take(&realm, &req.tx).await?;
    let login_flow = taken.state.login_flow;
    let now = state.clock.unix();
    if !accounts::reset_password(&state.db, &account.id, &hash, now).await? {
        return Err(PageError::new(StatusCode::GONE, "error-recovery-expired"));
    }
    tracing::info!(realm = %realm.id, account = %account.id, "forgotten password replaced");
    let detail = json!({ "by": "recovery" });
    let kind = Kind::PasswordChanged;
    audit(
        &state.audit,
        &req.page,
        req.addr,
        kind,
        Some(&account.id),
        detail,
    )
    .await;
    completed(&state, &req, &account.id, "new_password").await;
    // Every session and grant ends (the old password may be known to someone), and the
    // person is told.
    state
        .guard
        .restrict(&realm, &account, AccountNotice::PasswordReset)
        .await?;
    flows.end(&mut req.page, &req.tx).await?;
    let to = match login_flow {
        Some(f) => format!("/{}/password/forgot/done?flow={f}", realm.id),
        None => format!("/{}/password/forgot/done", realm.id),
    };
    Ok(req.page.redirect(&to))
}

/// « Votre mot de passe a été changé »: on to the login.
pub async fn done(page: Page, Query(q): Query<FlowQuery>) -> Result<Response, PageError> {
    let flow = login_flow(q.flow.as_deref());
    let login = login_path(page.realm.id.as_str(), flow.as_deref());
    notice(
        page,
        "recovery-done-title",
        "recovery-done-text",
        Some(login),
    )
}

/// A page that says what happened, with the support contact and a link on to the login.
pub(super) fn notice(
    page: Page,
    title: &'static str,
    text: &'static str,
    login: Option<String>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let login = login.unwrap_or_else(|| login_path(realm.as_str(), None));
    let ctx = context! {
        title => title, text => text, login => login,
        phone => &page.realm.support_phone, hours => page.realm.support_hours.get(page.lang),
        days => page.realm.recovery.letter_days,
    };
    page.render(StatusCode::OK, "recovery/notice.html", ctx)
}
