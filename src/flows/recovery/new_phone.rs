//! A new mobile number with the code of a letter the person asked for after losing their
//! phone: the code (entered at `/register`, like every letter's code, which hands over
//! here), e-mail and password, the new number, and the SMS code sent to it. Then, in one SQL
//! transaction, the code is spent, every earlier second factor of the account goes and the
//! new number stands as proved; every session and grant ends and the person is told.
//!
//! The same steps serve the login of an account whose factors support removed (`connect admin
//! account reset-phone`): after e-mail and password at the login, a 12-character code by
//! e-mail, then the new number and its SMS code; the number is stored as proved and the
//! account's mark lifted. Like every recovery it ends on a page that leads to the login.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    audit,
    flow::{new_id, Bound, TxPage},
    login_flow, login_path,
    password::notice,
};
use crate::{
    app::AppState,
    audit::Kind,
    domain::{ActivationCode, PhoneError, PhoneNumber},
    flows::{
        login::{Checked, Presented},
        sms::{CodeFor, Sent},
    },
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    notify::messages::{self, AccountNotice},
    otp,
    storage::{
        accounts,
        letter_requests::{self, PrintedLetter},
        Conflict, StoreError,
    },
};

/// A new number being registered with a requested letter's code, or after support's reset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewPhone {
    proof: Proof,
    /// The relying party's login flow the person came with, to go back to at the end.
    login_flow: Option<String>,
    step: Step,
}

/// What started this: a letter's code, or a login (e-mail and password) of an account whose
/// factors support removed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Proof {
    Letter(Letter),
    SupportReset { account_id: String },
}

impl Proof {
    fn account_id(&self) -> &str {
        match self {
            Proof::Letter(l) => &l.account_id,
            Proof::SupportReset { account_id } => account_id,
        }
    }
}

/// The printed request whose code started this.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Letter {
    id: String,
    account_id: String,
    code_id: String,
}

impl From<PrintedLetter> for Letter {
    fn from(l: PrintedLetter) -> Self {
        Letter {
            id: l.id,
            account_id: l.account_id,
            code_id: l.code_id,
        }
    }
}

impl Letter {
    fn printed(&self) -> PrintedLetter {
        PrintedLetter {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            code_id: self.code_id.clone(),
        }
    }
}

/// Where it stands. Each transition consumes the step it leaves.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
enum Step {
    /// The letter's code is accepted; e-mail and password are awaited.
    CodeAccepted,
    /// After support's reset: e-mail and password are proved at the login, a code went to
    /// the address; it is awaited.
    MailSent { code_hash: String, expires_at: i64 },
    /// The account's e-mail and password are proved; the new number is awaited.
    Proved,
    /// A code went to the new number.
    SmsSent {
        phone: String,
        code_hash: String,
        expires_at: i64,
        sent_at: i64,
    },
}

impl Step {
    fn password_proved(self) -> Option<Step> {
        match self {
            Step::CodeAccepted => Some(Step::Proved),
            _ => None,
        }
    }

    fn mail_proved(self) -> Option<Step> {
        match self {
            Step::MailSent { .. } => Some(Step::Proved),
            _ => None,
        }
    }

    /// Before the person proved who they are, no number may be sent a code.
    fn awaits_proof(&self) -> bool {
        matches!(self, Step::CodeAccepted | Step::MailSent { .. })
    }

    /// A code went to `phone` (a first one, a new one, or one to another number).
    fn code_sent(self, phone: &PhoneNumber, sent: Sent) -> Option<Step> {
        match self {
            Step::Proved | Step::SmsSent { .. } => Some(Step::SmsSent {
                phone: phone.as_e164().to_owned(),
                code_hash: sent.code_hash,
                expires_at: sent.expires_at,
                sent_at: sent.sent_at,
            }),
            Step::CodeAccepted | Step::MailSent { .. } => None,
        }
    }

    fn page(&self) -> &'static str {
        match self {
            Step::CodeAccepted => "login",
            Step::MailSent { .. } => "mail",
            Step::Proved => "number",
            Step::SmsSent { .. } => "sms",
        }
    }
}

#[derive(Deserialize)]
pub struct FlowQuery {
    flow: Option<String>,
}

csrf_forms! {
    pub struct CredentialsForm {
        email: String,
        password: SecretString,
    }
}

csrf_forms! {
    pub struct NumberForm {
        phone: String,
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

/// A message key, the number it shows, and the page's status.
type Problem = (&'static str, Option<u64>, StatusCode);

fn bad(key: &'static str) -> Problem {
    (key, None, StatusCode::BAD_REQUEST)
}

fn sms_purpose(tx: &str) -> String {
    format!("new-phone-sms:{tx}")
}

fn step_path(page: &Page, tx: &str, step: &str) -> String {
    format!("/{}/phone/new/{tx}/{step}", page.realm.id)
}

fn go(req: TxPage, step: &Step) -> Response {
    let to = step_path(&req.page, &req.tx, step.page());
    req.page.redirect(&to)
}

/// The hand-over from `/register`: the code of the letter `letter` was entered; the person
/// goes on to prove e-mail and password, in this browser.
pub async fn start(
    state: &AppState,
    mut page: Page,
    addr: ClientAddr,
    letter: PrintedLetter,
    flow: Option<&str>,
) -> Result<Response, PageError> {
    let tx = new_id();
    let account = letter.account_id.clone();
    let new = NewPhone {
        proof: Proof::Letter(letter.into()),
        login_flow: login_flow(flow),
        step: Step::CodeAccepted,
    };
    state.recoveries.phones.start(&mut page, &tx, new).await?;
    let detail = json!({ "recovery": "new_phone" });
    let kind = Kind::RecoveryStarted;
    audit(&state.audit, &page, addr, kind, Some(&account), detail).await;
    let to = step_path(&page, &tx, Step::CodeAccepted.page());
    Ok(page.redirect(&to))
}

async fn refused(state: &AppState, req: &TxPage, account: &str, step: &str, reason: &str) {
    let detail = json!({ "recovery": "new_phone", "step": step, "reason": reason });
    let kind = Kind::RecoveryStepRefused;
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

async fn completed(state: &AppState, req: &TxPage, account: &str, step: &str) {
    let detail = json!({ "recovery": "new_phone", "step": step });
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

fn login_page(req: TxPage, email: &str, problem: Option<Problem>) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let action = step_path(&page, &tx, "login");
    page.at(action.clone());
    let realm = page.realm.id.clone();
    let ctx = context! {
        csrf => page.csrf(), email => email, action => action,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
        title => "new-phone-login-title", intro => "new-phone-login-intro", submit => "continue",
        forgot => format!("/{realm}/password/forgot"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/credentials.html", ctx)
}

pub async fn show_login(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    if !matches!(flow.state.step, Step::CodeAccepted) {
        return Ok(go(req, &flow.state.step));
    }
    login_page(req, "", None)
}

pub async fn submit_login(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.phones;
    let realm = req.page.realm.clone();
    let mut flow = flows.open(&req.page, &req.tx).await?;
    if !matches!(flow.state.step, Step::CodeAccepted) {
        return Ok(go(req, &flow.state.step));
    }
    let headers = req.page.headers().clone();
    let presented = Presented {
        email: &form.email,
        password: &form.password,
        addr: req.addr,
        headers: &headers,
    };
    let owner = flow.state.proof.account_id().to_owned();
    match state.credentials.check(&realm, presented).await? {
        Checked::Proved(account) if account.id == owner => {}
        Checked::Proved(_) => {
            // Another account's credentials: the letter is not theirs, and it reads like a
            // wrong password.
            refused(&state, &req, &owner, "login", "other_account").await;
            let problem = ("login-failed", None, StatusCode::UNAUTHORIZED);
            return login_page(req, &form.email, Some(problem));
        }
        Checked::Refused { message, n, status } => {
            refused(&state, &req, &owner, "login", "password").await;
            return login_page(req, &form.email, Some((message, n, status)));
        }
    }
    let Some(step) = flow.state.step.clone().password_proved() else {
        return Ok(go(req, &flow.state.step));
    };
    flow.state.step = step;
    flows.save(&realm, &req.tx, &flow).await?;
    completed(&state, &req, &owner, "login").await;
    Ok(go(req, &flow.state.step))
}

fn number_page(req: TxPage, phone: &str, problem: Option<Problem>) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let action = step_path(&page, &tx, "number");
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), phone => phone, action => action,
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/number.html", ctx)
}

pub async fn show_number(
    State(state): State<AppState>,
    req: TxPage,
) -> Result<Response, PageError> {
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    if flow.state.step.awaits_proof() {
        return Ok(go(req, &flow.state.step));
    }
    number_page(req, "", None)
}

pub async fn submit_number(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<NumberForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    if flow.state.step.awaits_proof() {
        return Ok(go(req, &flow.state.step));
    }
    let rules = &req.page.realm.sms;
    let countries: Vec<&str> = rules.allowed_countries.iter().map(String::as_str).collect();
    let phone = PhoneNumber::parse(&form.phone).and_then(|p| {
        p.check_allowed(&countries, rules.mobile_only)?;
        Ok(p)
    });
    let phone = match phone {
        Ok(p) => p,
        Err(PhoneError::Country) => {
            return number_page(req, &form.phone, Some(bad("error-phone-country")))
        }
        Err(PhoneError::NotMobile) => {
            return number_page(req, &form.phone, Some(bad("error-phone-mobile")))
        }
        Err(_) => return number_page(req, &form.phone, Some(bad("error-phone-format"))),
    };
    let last = match &flow.state.step {
        Step::SmsSent { sent_at, .. } => Some(*sent_at),
        _ => None,
    };
    let account = flow.state.proof.account_id().to_owned();
    let mut flow = flow;
    match send(&state, &req, &mut flow, &phone, last).await? {
        None => {
            let detail =
                json!({ "recovery": "new_phone", "step": "number", "phone": phone.masked() });
            let kind = Kind::RecoveryStepCompleted;
            audit(
                &state.audit,
                &req.page,
                req.addr,
                kind,
                Some(&account),
                detail,
            )
            .await;
            let to = step_path(&req.page, &req.tx, "sms");
            Ok(req.page.redirect(&to))
        }
        Some(problem) => number_page(req, &form.phone, Some(problem)),
    }
}

/// Sends a code to `phone` for this recovery and saves it; the problem to show when none
/// went out.
async fn send(
    state: &AppState,
    req: &TxPage,
    flow: &mut Bound<NewPhone>,
    phone: &PhoneNumber,
    last_sent_at: Option<i64>,
) -> Result<Option<Problem>, PageError> {
    let to = CodeFor {
        phone,
        account: &format!("account:{}", flow.state.proof.account_id()),
        purpose: &sms_purpose(&req.tx),
        last_sent_at,
    };
    let sent = match state
        .sms
        .send(&req.page.realm, req.page.lang, &req.addr, to)
        .await?
    {
        Ok(sent) => sent,
        Err(refused) => return Ok(Some(refused.message())),
    };
    let Some(step) = flow.state.step.clone().code_sent(phone, sent) else {
        return Ok(Some(bad("error-recovery-expired")));
    };
    flow.state.step = step;
    state
        .recoveries
        .phones
        .save(&req.page.realm, &req.tx, flow)
        .await?;
    Ok(None)
}

fn sms_page(
    req: TxPage,
    flow: &Bound<NewPhone>,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let Step::SmsSent { phone, .. } = &flow.state.step else {
        let to = step_path(&page, &tx, flow.state.step.page());
        return Ok(page.redirect(&to));
    };
    let masked = PhoneNumber::parse(phone)
        .map(|p| p.masked())
        .unwrap_or_default();
    let action = step_path(&page, &tx, "sms");
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), action => &action, resend => format!("{action}/resend"),
        change => step_path(&page, &tx, "number"),
        masked => masked,
        title => "new-phone-sms-title", intro => "new-phone-sms-intro",
        submit => "new-phone-sms-submit",
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/sms.html", ctx)
}

pub async fn show_sms(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    sms_page(req, &flow, None)
}

pub async fn resend_sms(
    State(state): State<AppState>,
    req: TxPage,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    req.page.read(form)?;
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    let (phone, last) = match &flow.state.step {
        Step::SmsSent { phone, sent_at, .. } => (PhoneNumber::parse(phone)?, *sent_at),
        step => return Ok(go(req, step)),
    };
    let mut flow = flow;
    let problem = send(&state, &req, &mut flow, &phone, Some(last)).await?;
    let shown = problem.unwrap_or(("sms-resent", None, StatusCode::OK));
    sms_page(req, &flow, Some(shown))
}

pub async fn submit_sms(
    State(state): State<AppState>,
    mut req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.phones;
    let realm = req.page.realm.clone();
    let flow = flows.open(&req.page, &req.tx).await?;
    let account = flow.state.proof.account_id().to_owned();
    let Step::SmsSent {
        phone,
        code_hash,
        expires_at,
        ..
    } = &flow.state.step
    else {
        return Ok(go(req, &flow.state.step));
    };
    if !flows
        .attempt(&realm, &req.tx, "sms", realm.recovery.code_attempts)
        .await?
    {
        refused(&state, &req, &account, "sms", "too_many_codes").await;
        flows.end(&mut req.page, &req.tx).await?;
        let over = PageError::new(StatusCode::TOO_MANY_REQUESTS, "error-recovery-too-many");
        return Err(PageError::answered((req.page.jar, over)));
    }
    if !otp::matches(
        &state.secret_hasher,
        &sms_purpose(&req.tx),
        code_hash,
        &form.code,
    ) {
        refused(&state, &req, &account, "sms", "wrong_code").await;
        let problem = ("error-sms-code-wrong", None, StatusCode::UNAUTHORIZED);
        return sms_page(req, &flow, Some(problem));
    }
    if *expires_at <= state.clock.unix() {
        refused(&state, &req, &account, "sms", "expired_code").await;
        let problem = ("error-sms-code-expired", None, StatusCode::UNAUTHORIZED);
        return sms_page(req, &flow, Some(problem));
    }
    let phone = PhoneNumber::parse(phone)?;
    // Taking the recovery is the one act that may finish it.
    let taken = flows.take(&realm, &req.tx).await?;
    let now = state.clock.unix();
    let letter = match &taken.state.proof {
        Proof::Letter(letter) => letter.printed(),
        Proof::SupportReset { .. } => {
            return after_reset(&state, req, &account, &phone, taken.state.login_flow).await;
        }
    };
    match letter_requests::register_new_phone(&state.db, &realm.id, &letter, phone.as_e164(), now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(Conflict::CodeSpent)) => {
            refused(&state, &req, &account, "sms", "code_spent").await;
            flows.end(&mut req.page, &req.tx).await?;
            let spent = PageError::new(StatusCode::CONFLICT, "error-code-used");
            return Err(PageError::answered((req.page.jar, spent)));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(realm = %realm.id, account = %account, "lost phone replaced with a letter's code");
    let masked = phone.masked();
    let events = [
        (Kind::ActivationCodeSpent, json!({ "for": "lost_phone" })),
        (Kind::SecondFactorsRemoved, json!({ "by": "letter" })),
        (
            Kind::PhoneChanged,
            json!({ "by": "letter", "phone": &masked }),
        ),
        (
            Kind::RecoveryStepCompleted,
            json!({ "recovery": "new_phone", "step": "sms" }),
        ),
    ];
    for (kind, detail) in events {
        audit(
            &state.audit,
            &req.page,
            req.addr,
            kind,
            Some(&account),
            detail,
        )
        .await;
    }
    if let Some(a) = accounts::by_id(&state.db, &realm.id, &account).await? {
        let notice = AccountNotice::PhoneReplacedByLetter { masked: &masked };
        state.guard.restrict(&realm, &a, notice).await?;
    }
    flows.end(&mut req.page, &req.tx).await?;
    let to = match taken.state.login_flow {
        Some(f) => format!("/{}/phone/new/done?flow={f}", realm.id),
        None => format!("/{}/phone/new/done", realm.id),
    };
    Ok(req.page.redirect(&to))
}

/// « Votre nouveau numéro est enregistré »: on to the login.
pub async fn done(page: Page, Query(q): Query<FlowQuery>) -> Result<Response, PageError> {
    let flow = login_flow(q.flow.as_deref());
    let login = login_path(page.realm.id.as_str(), flow.as_deref());
    notice(
        page,
        "new-phone-done-title",
        "new-phone-done-text",
        Some(login),
    )
}

/// What the login does for an account whose factors support removed, once e-mail and password
/// are right: a code to the address (`MailSent`), this browser bound to the steps that follow.
pub async fn start_after_reset(
    state: &AppState,
    mut page: Page,
    addr: ClientAddr,
    account: &accounts::Account,
    flow: Option<&str>,
) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let tx = new_id();
    let code = ActivationCode::generate();
    let validity = realm.recovery.email_code_validity;
    let new = NewPhone {
        proof: Proof::SupportReset {
            account_id: account.id.clone(),
        },
        login_flow: login_flow(flow),
        step: Step::MailSent {
            code_hash: otp::hash(&state.secret_hasher, &mail_purpose(&tx), code.as_str()),
            expires_at: state.clock.unix() + validity.as_secs() as i64,
        },
    };
    state.recoveries.phones.start(&mut page, &tx, new).await?;
    let mail = messages::new_phone_code(
        page.lang,
        &realm,
        &account.email,
        &code.to_string(),
        validity.as_secs() / 60,
    );
    if let Err(e) = state.notifier.send_mail(mail).await {
        tracing::error!(realm = %realm.id, account = %account.id, error = %e, "new-number mail not sent");
        return Err(PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "error-mail-failed",
        ));
    }
    let detail = json!({ "recovery": "new_phone", "after": "support_reset" });
    audit(
        &state.audit,
        &page,
        addr,
        Kind::RecoveryStarted,
        Some(&account.id),
        detail,
    )
    .await;
    let to = format!("/{}/phone/new/{tx}/mail", realm.id);
    Ok(page.redirect(&to))
}

/// What the mail's code is bound to.
fn mail_purpose(tx: &str) -> String {
    format!("new-phone-mail:{tx}")
}

fn mail_page(req: TxPage, problem: Option<Problem>) -> Result<Response, PageError> {
    let TxPage { mut page, tx, .. } = req;
    let action = step_path(&page, &tx, "mail");
    page.at(action.clone());
    let ctx = context! {
        csrf => page.csrf(), action => action,
        title => "new-phone-mail-title", intro => "new-phone-mail-intro",
        error => problem.map(|p| p.0), n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "recovery/mail_code.html", ctx)
}

pub async fn show_mail(State(state): State<AppState>, req: TxPage) -> Result<Response, PageError> {
    let flow = state.recoveries.phones.open(&req.page, &req.tx).await?;
    if !matches!(flow.state.step, Step::MailSent { .. }) {
        return Ok(go(req, &flow.state.step));
    }
    mail_page(req, None)
}

pub async fn submit_mail(
    State(state): State<AppState>,
    mut req: TxPage,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = req.page.read(form)?;
    let flows = &state.recoveries.phones;
    let realm = req.page.realm.clone();
    let mut flow = flows.open(&req.page, &req.tx).await?;
    let Step::MailSent {
        code_hash,
        expires_at,
    } = &flow.state.step
    else {
        return Ok(go(req, &flow.state.step));
    };
    let account = flow.state.proof.account_id().to_owned();
    if !flows
        .attempt(&realm, &req.tx, "mail", realm.recovery.code_attempts)
        .await?
    {
        refused(&state, &req, &account, "mail", "too_many_codes").await;
        flows.end(&mut req.page, &req.tx).await?;
        let over = PageError::new(StatusCode::TOO_MANY_REQUESTS, "error-recovery-too-many");
        return Err(PageError::answered((req.page.jar, over)));
    }
    let matches = form.code.parse::<ActivationCode>().is_ok_and(|code| {
        otp::matches(
            &state.secret_hasher,
            &mail_purpose(&req.tx),
            code_hash,
            code.as_str(),
        )
    });
    if !matches {
        refused(&state, &req, &account, "mail", "wrong_code").await;
        return mail_page(req, Some(bad("error-mail-code-wrong")));
    }
    if *expires_at <= state.clock.unix() {
        refused(&state, &req, &account, "mail", "expired_code").await;
        return mail_page(req, Some(bad("error-mail-code-expired")));
    }
    let Some(step) = flow.state.step.clone().mail_proved() else {
        return Ok(go(req, &flow.state.step));
    };
    flow.state.step = step;
    flows.save(&realm, &req.tx, &flow).await?;
    completed(&state, &req, &account, "mail").await;
    Ok(go(req, &flow.state.step))
}

/// The end after support's reset: the new number stands as proved and the mark is lifted;
/// the person is told and goes on to the login.
async fn after_reset(
    state: &AppState,
    mut req: TxPage,
    account: &str,
    phone: &PhoneNumber,
    login: Option<String>,
) -> Result<Response, PageError> {
    let realm = req.page.realm.clone();
    let now = state.clock.unix();
    accounts::new_phone_proved(&state.db, account, phone.as_e164(), now).await?;
    tracing::info!(realm = %realm.id, account = %account, "new number registered after support's reset");
    let masked = phone.masked();
    let detail = json!({ "by": "login_after_support_reset", "phone": &masked });
    audit(
        &state.audit,
        &req.page,
        req.addr,
        Kind::PhoneChanged,
        Some(account),
        detail,
    )
    .await;
    if let Some(a) = accounts::by_id(&state.db, &realm.id, account).await? {
        let notice = AccountNotice::PhoneChangedByPerson { masked: &masked };
        state.guard.tell(&realm, &a, notice).await;
    }
    state.recoveries.phones.end(&mut req.page, &req.tx).await?;
    let to = match login {
        Some(f) => format!("/{}/phone/new/done?flow={f}", realm.id),
        None => format!("/{}/phone/new/done", realm.id),
    };
    Ok(req.page.redirect(&to))
}
