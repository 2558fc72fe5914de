//! The step-up gate: a sensitive action of the account page (a new password, number or
//! address, closing the account, …) needs a fresh proof of the person, not only a session.
//! `/{realm}/account/confirm?next=<action>` asks for what the [`Action`] needs (the current
//! password and/or a second factor), marks the session as freshly proved for that action for
//! [`FRESH_FOR`], and returns to the action's page, which calls [`require`] before it shows
//! its form and again before it acts, and [`StepUps::spend`] once it has acted.
//!
//! Wrong passwords and codes count per session, like the login's SMS step (the realm's
//! `sms.code_attempts`); over the limit the session ends, so a stolen session cannot be used
//! to guess the password or the code. Every refusal and every proof is audited
//! (`step_up_refused`, `step_up_passed`).
//!
//! ## Adding a second factor
//!
//! A factor is a variant of [`SecondFactor`]. To add one (say `Totp`):
//! 1. add the variant and its arms in `SecondFactor`'s methods: [`SecondFactor::name`] (the
//!    form value), `label` and `detail` (what the choice shows), `code_intro` (the code
//!    page's sentence), `amr` (RFC 8176), and whether a new code can be sent (`resendable`);
//! 2. offer it in [`SecondFactor::of`] when the account has it (the first offered is the
//!    default choice);
//! 3. in `challenge`, start the proof (SMS sends a code; an app needs nothing: return a
//!    [`Challenge`] without a hash), and in `check`, decide what the person typed (an app
//!    code against the account's secret, a recovery code against its stored hashes, spending
//!    it); the service it needs goes into [`Factors`], built from `AppState`.
//!
//! A new sensitive action is a variant of [`Action`]: its name (`?next=`), whether it needs
//! the password besides the second factor, its page (where the gate returns), and the
//! sentence that says what the proof is for.

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{Redirect, Response},
};
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{me, started_here, Me};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    clock::Clock,
    domain::{Language, Password, PhoneNumber},
    factors::{recovery::RecoveryCodes, totp::Totp, HeldChecked, HeldCode, HeldCodes},
    flows::sms::{CodeFor, SmsCodes},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    keys::SecretHasher,
    limits::Limits,
    otp,
    passwords::PasswordError,
    realm::Realm,
    session::random_token,
    storage::{
        accounts::Account,
        ephemeral::{Counter, Record},
        Ephemeral, StoreError,
    },
};

/// How long a proof opens its action: long enough to type a new password or number, short
/// enough that a session left open is not an open door.
pub const FRESH_FOR: Duration = Duration::from_secs(600);

/// A message key, the number it shows, and the page's status.
pub(super) type Problem = (&'static str, Option<u64>, StatusCode);

/// A sensitive action of the account page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Password,
    Phone,
    Email,
    Close,
    /// Add or remove the authenticator app.
    App,
    /// Make a new set of recovery codes.
    RecoveryCodes,
    /// Add or remove a passkey.
    Passkeys,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Password,
        Action::Phone,
        Action::Email,
        Action::Close,
        Action::App,
        Action::RecoveryCodes,
        Action::Passkeys,
    ];

    /// Its name in `?next=` and in the store.
    pub fn name(self) -> &'static str {
        match self {
            Action::Password => "password",
            Action::Phone => "phone",
            Action::Email => "email",
            Action::Close => "close",
            Action::App => "app",
            Action::RecoveryCodes => "recovery-codes",
            Action::Passkeys => "passkeys",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the proof includes the current password; a second factor is always asked.
    /// A new number needs only the current factor: the password does not change it.
    pub fn needs_password(self) -> bool {
        !matches!(self, Action::Phone)
    }

    /// The page the action is taken on, where the gate returns.
    pub fn page(self, realm: &Realm) -> String {
        format!("/{}/account/{}", realm.id, self.name())
    }

    /// The sentence that says what the proof is for (a locale key).
    fn purpose(self) -> &'static str {
        match self {
            Action::Password => "stepup-for-password",
            Action::Phone => "stepup-for-phone",
            Action::Email => "stepup-for-email",
            Action::Close => "stepup-for-close",
            Action::App => "stepup-for-app",
            Action::RecoveryCodes => "stepup-for-recovery-codes",
            Action::Passkeys => "stepup-for-passkeys",
        }
    }
}

/// A second factor the gate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A code sent by SMS to the account's mobile number.
    Sms,
    /// A code of the account's authenticator app.
    App,
    /// One of the account's recovery codes, spent by the proof.
    RecoveryCode,
}

/// What a factor's proof was started with, kept until the code comes back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Challenge {
    /// The keyed hash of the code sent (bound to the proof), if the factor sends one.
    pub code_hash: Option<String>,
    /// When the code sent expires.
    pub expires_at: i64,
    /// When the code was sent, for the resend cooldown.
    pub sent_at: Option<i64>,
}

/// How a typed code compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Right,
    Wrong,
    Expired,
    /// The account's budget of app and recovery codes is spent for now: minutes to wait.
    Limited(u64),
}

/// What the second factors need to be proved; built from `AppState` in handlers.
pub struct Factors<'a> {
    pub sms: &'a SmsCodes,
    pub totp: &'a Totp,
    pub recovery_codes: &'a RecoveryCodes,
    pub limits: &'a Limits,
    pub hasher: &'a SecretHasher,
    pub clock: &'a Clock,
}

impl<'a> From<&'a AppState> for Factors<'a> {
    fn from(state: &'a AppState) -> Self {
        Factors {
            sms: &state.sms,
            totp: &state.totp,
            recovery_codes: &state.recovery_codes,
            limits: &state.limits,
            hasher: &state.secret_hasher,
            clock: &state.clock,
        }
    }
}

/// Where a factor's proof is asked from, for its limits and its words.
pub struct Asked<'a> {
    pub realm: &'a Realm,
    pub lang: Language,
    pub addr: &'a ClientAddr,
    /// The proof's id, which its code is bound to.
    pub flow: &'a str,
}

/// What a code of this proof is bound to.
fn purpose(flow: &str) -> String {
    format!("stepup:{flow}")
}

impl SecondFactor {
    /// Its value in the form and in the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            SecondFactor::Sms => "sms",
            SecondFactor::App => "app",
            SecondFactor::RecoveryCode => "recovery_code",
        }
    }

    pub fn parse(name: &str) -> Option<SecondFactor> {
        [
            SecondFactor::Sms,
            SecondFactor::App,
            SecondFactor::RecoveryCode,
        ]
        .into_iter()
        .find(|f| f.name() == name)
    }

    /// The factors the account can prove now; the first is the default choice: the app for
    /// a person who has one (as at login), then SMS, then a recovery code.
    pub async fn of(f: &Factors<'_>, account: &Account) -> Result<Vec<SecondFactor>, StoreError> {
        let mut offered = Vec::new();
        if f.totp
            .registered(&account.realm, &account.id)
            .await?
            .is_some()
        {
            offered.push(SecondFactor::App);
        }
        if account
            .phone
            .as_deref()
            .is_some_and(|p| PhoneNumber::parse(p).is_ok())
        {
            offered.push(SecondFactor::Sms);
        }
        if f.recovery_codes.left(&account.realm, &account.id).await? > 0 {
            offered.push(SecondFactor::RecoveryCode);
        }
        Ok(offered)
    }

    /// What the choice is called (a locale key).
    fn label(self) -> &'static str {
        match self {
            SecondFactor::Sms => "stepup-factor-sms",
            SecondFactor::App => "stepup-factor-app",
            SecondFactor::RecoveryCode => "stepup-factor-recovery-code",
        }
    }

    /// What tells the choice apart for the person (the masked number).
    fn detail(self, account: &Account) -> Option<String> {
        match self {
            SecondFactor::Sms => account.phone.as_deref().map(super::masked_phone),
            SecondFactor::App | SecondFactor::RecoveryCode => None,
        }
    }

    /// The code page's sentence (a locale key; `number` is the detail).
    fn code_intro(self) -> &'static str {
        match self {
            SecondFactor::Sms => "stepup-code-sms",
            SecondFactor::App => "stepup-code-app",
            SecondFactor::RecoveryCode => "stepup-code-recovery-code",
        }
    }

    /// Whether the person may ask for a new code.
    fn resendable(self) -> bool {
        matches!(self, SecondFactor::Sms)
    }

    /// The RFC 8176 method, for the audit trail.
    pub fn amr(self) -> &'static str {
        match self {
            SecondFactor::Sms => "sms",
            // As at login (docs/decisions.md, "amr of the app and of recovery codes").
            SecondFactor::App | SecondFactor::RecoveryCode => "otp",
        }
    }

    /// Starts the proof; `last` is the previous challenge of this proof, for a resend.
    async fn challenge(
        self,
        f: &Factors<'_>,
        asked: &Asked<'_>,
        account: &Account,
        last: Option<&Challenge>,
    ) -> Result<Result<Challenge, Problem>, StoreError> {
        match self {
            SecondFactor::Sms => {
                let Some(phone) = account
                    .phone
                    .as_deref()
                    .and_then(|p| PhoneNumber::parse(p).ok())
                else {
                    return Ok(Err(no_factor()));
                };
                let to = CodeFor {
                    phone: &phone,
                    account: &format!("account:{}", account.id),
                    purpose: &purpose(asked.flow),
                    last_sent_at: last.and_then(|c| c.sent_at),
                };
                Ok(f.sms
                    .send(asked.realm, asked.lang, asked.addr, to)
                    .await?
                    .map(|sent| Challenge {
                        code_hash: Some(sent.code_hash),
                        expires_at: sent.expires_at,
                        sent_at: Some(sent.sent_at),
                    })
                    .map_err(|refused| refused.message()))
            }
            // Nothing is sent: the person reads the code from the app or from the list.
            SecondFactor::App | SecondFactor::RecoveryCode => Ok(Ok(Challenge {
                code_hash: None,
                expires_at: i64::MAX,
                sent_at: None,
            })),
        }
    }

    /// Decides the code the person typed for this proof.
    async fn check(
        self,
        f: &Factors<'_>,
        realm: &Realm,
        pending: (&str, &Pending),
        code: &str,
    ) -> Result<Checked, StoreError> {
        let (
            flow,
            Pending {
                account_id,
                challenge,
                ..
            },
        ) = pending;
        let kind = match self {
            SecondFactor::App => HeldCode::App,
            SecondFactor::RecoveryCode => HeldCode::RecoveryCode,
            SecondFactor::Sms => {
                let right = challenge
                    .code_hash
                    .as_deref()
                    .is_some_and(|stored| otp::matches(f.hasher, &purpose(flow), stored, code));
                return Ok(if !right {
                    Checked::Wrong
                } else if challenge.expires_at <= f.clock.unix() {
                    Checked::Expired
                } else {
                    Checked::Right
                });
            }
        };
        let codes = HeldCodes {
            totp: f.totp,
            recovery_codes: f.recovery_codes,
            limits: f.limits,
        };
        Ok(match codes.check(realm, account_id, kind, code).await? {
            HeldChecked::Right => Checked::Right,
            HeldChecked::Wrong => Checked::Wrong,
            HeldChecked::Limited(minutes) => Checked::Limited(minutes),
        })
    }
}

fn no_factor() -> Problem {
    ("account-no-second-factor", None, StatusCode::FORBIDDEN)
}

/// A proof under way: the password was right (when asked), the second factor's code is
/// awaited. Bound to one session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    sid: String,
    account_id: String,
    action: String,
    factor: SecondFactor,
    challenge: Challenge,
}

/// A session proved itself for one action.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Fresh {
    account_id: String,
    factor: SecondFactor,
    at: i64,
}

/// The gate's state: proofs under way, fresh proofs, and wrong attempts per session.
#[derive(Clone)]
pub struct StepUps {
    /// Fresh proofs under `<sid>:<action>`.
    fresh: Record<Fresh>,
    /// Proofs under way, by the keyed hash of their id.
    pending: Record<Pending>,
    /// Wrong passwords and codes of a session, by its `sid`.
    attempts: Counter,
    /// A fresh proof's age is read on this clock (Redis expires the record on its own).
    clock: Clock,
}

impl StepUps {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, clock: &Clock) -> Self {
        StepUps {
            fresh: Record::plain(store, "stepup"),
            pending: Record::hashed(store, "stepup-flow", hasher, "stepup-flow:"),
            attempts: Counter::plain(store, "stepup-attempts"),
            clock: clock.clone(),
        }
    }

    fn key(me: &Me, action: Action) -> String {
        format!("{}:{}", me.session.sid, action.name())
    }

    /// Whether this session proved itself for `action` within [`FRESH_FOR`].
    pub async fn is_fresh(
        &self,
        realm: &Realm,
        me: &Me,
        action: Action,
    ) -> Result<bool, StoreError> {
        let fresh = self
            .fresh
            .get(realm.id.as_str(), &Self::key(me, action))
            .await?;
        let since = self.clock.unix() - FRESH_FOR.as_secs() as i64;
        Ok(fresh.is_some_and(|f| f.account_id == me.account.id && f.at > since))
    }

    /// The proof is used up by the action it opened.
    pub async fn spend(&self, realm: &Realm, me: &Me, action: Action) -> Result<(), StoreError> {
        self.fresh
            .delete(realm.id.as_str(), &Self::key(me, action))
            .await
    }
}

/// Ok when this session proved itself for `action` a moment ago; otherwise the answer that
/// sends the person to the gate, which returns to the action's page.
pub async fn require(
    stepups: &StepUps,
    realm: &Realm,
    me: &Me,
    action: Action,
) -> Result<(), PageError> {
    if stepups.is_fresh(realm, me, action).await? {
        return Ok(());
    }
    let to = format!("/{}/account/confirm?next={}", realm.id, action.name());
    Err(PageError::answered(Redirect::to(&to)))
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    next: String,
}

#[derive(Deserialize)]
pub struct CodeQuery {
    flow: String,
}

csrf_forms! {
    pub struct ConfirmForm {
        next: String,
        factor: String,
        #[serde(default)]
        password: Option<SecretString>,
    }
    pub struct CodeForm { flow: String, code: String }
    pub struct ResendForm { flow: String }
}

fn bad_request() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-bad-request")
}

fn expired() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-stepup-expired")
}

/// One choice of factor on the confirmation page.
#[derive(Serialize)]
struct Choice {
    name: &'static str,
    label: &'static str,
    detail: Option<String>,
    checked: bool,
}

/// The confirmation page: the password when the action needs it, and the choice of factor.
fn confirm_page(
    mut page: Page,
    me: &Me,
    action: Action,
    offered: &[SecondFactor],
    chosen: SecondFactor,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let choices: Vec<Choice> = offered
        .iter()
        .map(|f| Choice {
            name: f.name(),
            label: f.label(),
            detail: f.detail(&me.account),
            checked: *f == chosen,
        })
        .collect();
    page.at(format!("/{realm}/account/confirm?next={}", action.name()));
    let ctx = context! {
        csrf => page.csrf(),
        next => action.name(),
        purpose => action.purpose(),
        password => action.needs_password(),
        choices => choices,
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
        action => format!("/{realm}/account/confirm"),
        back => format!("/{realm}/account"),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/confirm.html", ctx)
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<ConfirmQuery>,
) -> Result<Response, PageError> {
    let action = Action::parse(&q.next).ok_or_else(bad_request)?;
    let me = me(&state, &mut page).await?;
    let offered = SecondFactor::of(&(&state).into(), &me.account).await?;
    let Some(first) = offered.first().copied() else {
        let (key, _, status) = no_factor();
        return Err(PageError::new(status, key));
    };
    confirm_page(page, &me, action, &offered, first, None)
}

/// The event of a refused or passed proof.
fn event(kind: Kind, page: &Page, me: &Me, addr: ClientAddr, detail: serde_json::Value) -> Event {
    Event::new(kind, &page.realm.id)
        .account(&me.account.id)
        .origin(addr, page.headers())
        .detail(detail)
}

/// Counts one attempt of this session before it is checked (so that parallel guesses get no
/// more checks than sequential ones); over the realm's limit the session ends.
async fn count_attempt(
    state: &AppState,
    page: Page,
    me: &Me,
    addr: ClientAddr,
    action: &str,
) -> Result<Page, PageError> {
    let realm = page.realm.clone();
    let n = state
        .account
        .stepups
        .attempts
        .hit(
            realm.id.as_str(),
            &me.session.sid,
            realm.lifetimes.login_flow,
        )
        .await?;
    if n <= realm.sms.code_attempts {
        return Ok(page);
    }
    let detail = serde_json::json!({ "action": action, "refused": "too_many" });
    state
        .audit
        .record(event(Kind::StepUpRefused, &page, me, addr, detail))
        .await;
    tracing::warn!(realm = %realm.id, "session ended: too many wrong answers at the step-up gate");
    let mut page = page;
    let jar = std::mem::take(&mut page.jar);
    let (jar, ended) = state.sessions.end(&realm, jar).await?;
    if let Some(s) = ended {
        state.logouts.session_ended(&realm, &s).await?;
    }
    let refused = PageError::new(StatusCode::TOO_MANY_REQUESTS, "error-stepup-too-many");
    Err(PageError::answered((jar, refused)))
}

pub async fn submit(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let action = Action::parse(&form.next).ok_or_else(bad_request)?;
    let me = me(&state, &mut page).await?;
    let factors = Factors::from(&state);
    let offered = SecondFactor::of(&factors, &me.account).await?;
    let factor = SecondFactor::parse(&form.factor)
        .filter(|f| offered.contains(f))
        .ok_or_else(bad_request)?;
    let page = count_attempt(&state, page, &me, addr, action.name()).await?;
    if action.needs_password() {
        let typed = form.password.as_ref().map(Password::presented);
        let verified = match typed {
            Some(typed) => {
                state
                    .passwords
                    .verify(typed, Some(me.account.password_hash.as_str()))
                    .await
            }
            None => Ok(false),
        };
        let right = match verified {
            Ok(right) => right,
            Err(PasswordError::Busy) => return Err(PageError::busy(&page.realm)),
            Err(e) => return Err(e.into()),
        };
        if !right {
            let detail = serde_json::json!({ "action": action.name(), "factor": "password" });
            state
                .audit
                .record(event(Kind::StepUpRefused, &page, &me, addr, detail))
                .await;
            let wrong = ("error-current-password", None, StatusCode::UNAUTHORIZED);
            return confirm_page(page, &me, action, &offered, factor, Some(wrong));
        }
    }
    let flow = random_token();
    let asked = Asked {
        realm: &page.realm,
        lang: page.lang,
        addr: &addr,
        flow: &flow,
    };
    let challenge = match factor
        .challenge(&factors, &asked, &me.account, None)
        .await?
    {
        Ok(c) => c,
        Err(problem) => return confirm_page(page, &me, action, &offered, factor, Some(problem)),
    };
    let pending = Pending {
        sid: me.session.sid.clone(),
        account_id: me.account.id.clone(),
        action: action.name().to_owned(),
        factor,
        challenge,
    };
    let realm = page.realm.clone();
    state
        .account
        .stepups
        .pending
        .put(
            realm.id.as_str(),
            &flow,
            &pending,
            realm.lifetimes.login_flow,
        )
        .await?;
    Ok(page.redirect(&format!("/{}/account/confirm/code?flow={flow}", realm.id)))
}

/// The proof `flow` of this session, or the page that says it is over.
async fn pending_of(
    state: &AppState,
    realm: &Realm,
    me: &Me,
    flow: &str,
) -> Result<Pending, PageError> {
    let owner: fn(&Pending) -> (&str, &str) = |r| (&r.sid, &r.account_id);
    started_here(&state.account.stepups.pending, realm, me, flow, owner)
        .await?
        .ok_or_else(expired)
}

/// The code page of a proof, with a problem to show.
fn code_page(
    mut page: Page,
    me: &Me,
    flow: &str,
    pending: &Pending,
    problem: Option<Problem>,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/confirm/code?flow={flow}"));
    let factor = pending.factor;
    let ctx = context! {
        csrf => page.csrf(),
        flow => flow,
        title => "stepup-title",
        intro => factor.code_intro(),
        number => factor.detail(&me.account),
        label => "stepup-code-label",
        submit => "stepup-code-submit",
        action => format!("/{realm}/account/confirm/code"),
        resend => factor.resendable().then(|| format!("/{realm}/account/confirm/resend")),
        back => format!("/{realm}/account"),
        error => problem.map(|p| p.0),
        n => problem.and_then(|p| p.1),
    };
    let status = problem.map_or(StatusCode::OK, |p| p.2);
    page.render(status, "account/code.html", ctx)
}

pub async fn show_code(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let pending = pending_of(&state, &page.realm, &me, &q.flow).await?;
    code_page(page, &me, &q.flow, &pending, None)
}

pub async fn resend(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let mut pending = pending_of(&state, &page.realm, &me, &form.flow).await?;
    if !pending.factor.resendable() {
        return Err(bad_request());
    }
    let asked = Asked {
        realm: &page.realm,
        lang: page.lang,
        addr: &addr,
        flow: &form.flow,
    };
    let factors = Factors::from(&state);
    let sent = pending
        .factor
        .challenge(&factors, &asked, &me.account, Some(&pending.challenge))
        .await?;
    match sent {
        Ok(challenge) => {
            pending.challenge = challenge;
            let realm = &page.realm;
            state
                .account
                .stepups
                .pending
                .put(
                    realm.id.as_str(),
                    &form.flow,
                    &pending,
                    realm.lifetimes.login_flow,
                )
                .await?;
            let resent = ("sms-resent", None, StatusCode::OK);
            code_page(page, &me, &form.flow, &pending, Some(resent))
        }
        Err(problem) => code_page(page, &me, &form.flow, &pending, Some(problem)),
    }
}

pub async fn submit_code(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let pending = pending_of(&state, &page.realm, &me, &form.flow).await?;
    let page = count_attempt(&state, page, &me, addr, &pending.action).await?;
    let factor = pending.factor;
    let checked = factor
        .check(
            &(&state).into(),
            &page.realm,
            (&form.flow, &pending),
            &form.code,
        )
        .await?;
    if checked != Checked::Right {
        let (key, n, status, why) = match checked {
            Checked::Expired => (
                "stepup-code-expired",
                None,
                StatusCode::UNAUTHORIZED,
                "expired_code",
            ),
            Checked::Limited(minutes) => (
                "error-limit",
                Some(minutes),
                StatusCode::TOO_MANY_REQUESTS,
                "limited",
            ),
            _ => (
                "stepup-code-wrong",
                None,
                StatusCode::UNAUTHORIZED,
                "wrong_code",
            ),
        };
        let detail = serde_json::json!({
            "action": pending.action, "factor": factor.name(), "refused": why,
        });
        state
            .audit
            .record(event(Kind::StepUpRefused, &page, &me, addr, detail))
            .await;
        let problem = (key, n, status);
        return code_page(page, &me, &form.flow, &pending, Some(problem));
    }
    let realm = page.realm.clone();
    let scope = realm.id.as_str();
    // Taking the proof is the one act that may complete it: of two racing submissions, one
    // goes on.
    let stepups = &state.account.stepups;
    let Some(pending) = stepups.pending.take(scope, &form.flow).await? else {
        return Err(expired());
    };
    let action = Action::parse(&pending.action).ok_or_else(bad_request)?;
    let fresh = Fresh {
        account_id: me.account.id.clone(),
        factor,
        at: state.clock.unix(),
    };
    stepups
        .fresh
        .put(scope, &StepUps::key(&me, action), &fresh, FRESH_FOR)
        .await?;
    // A proof given clears the session's count of wrong answers.
    stepups.attempts.delete(scope, &me.session.sid).await?;
    let detail = serde_json::json!({
        "action": action.name(),
        "factor": factor.name(),
        "password": action.needs_password(),
    });
    state
        .audit
        .record(event(Kind::StepUpPassed, &page, &me, addr, detail))
        .await;
    Ok(page.redirect(&action.page(&realm)))
}
