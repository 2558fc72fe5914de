//! The caisse's support desk: what staff may do to a person's account, for the command line
//! (and later the console). Every action names its operator and a mandatory reason, writes
//! exactly one audit event (the action's own, with what followed from it in its detail), and
//! tells the person by mail. Nothing here reads or returns a password hash, code or token.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::{
    activation::{Activation, ActivationError, By, IssuedCode},
    audit::{Audit, Event, Kind},
    clock::Clock,
    domain::{AhvNumber, Email, PhoneNumber},
    factors::{recovery::RecoveryCodes, totp::Totp},
    guard::Guard,
    notify::messages::AccountNotice,
    protocol::logout::Logouts,
    realm::Realm,
    session::Sessions,
    storage::{
        accounts::{self, Account, AccountStatus},
        activation_codes, audit as audit_store, grants,
        letter_requests::{self, Queued},
        passkeys, persons, Db, StoreError,
    },
};

/// The longest reason kept: a sentence or two and a ticket number, not a report.
pub const MAX_REASON: usize = 500;

/// Whom support acts on: the AHV number read over the phone, or the e-mail address.
#[derive(Clone, Debug)]
pub enum Who {
    Ahv(AhvNumber),
    Email(Email),
}

/// Why support acts, in the operator's words: trimmed, never empty, at most [`MAX_REASON`]
/// characters.
#[derive(Clone, Debug)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Reason, SupportError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(SupportError::EmptyReason);
        }
        if text.chars().count() > MAX_REASON {
            return Err(SupportError::ReasonTooLong);
        }
        Ok(Reason(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who acts and why; both go into the action's audit event.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub operator: &'a str,
    pub reason: &'a Reason,
}

impl Actor<'_> {
    fn by(&self) -> By<'_> {
        By {
            operator: self.operator,
            reason: self.reason.as_str(),
        }
    }
}

/// A factor support may take away (a lost device, lost codes).
#[derive(Clone, Debug)]
pub enum Factor {
    App,
    /// One passkey, by its id (as `show` lists it).
    Passkey(String),
    RecoveryCodes,
}

/// What support can do to an account.
#[derive(Clone, Debug)]
pub enum Action {
    Lock,
    Unlock,
    Disable,
    Enable,
    /// A lost phone: the number and every second factor go, sessions end; the next login asks
    /// for a code by e-mail and a new number.
    ResetPhone,
    RemoveFactor(Factor),
    EndSessions,
    Close,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::ResetPhone => "reset-phone",
            Action::RemoveFactor(_) => "remove-factor",
            Action::EndSessions => "end-sessions",
            Action::Close => "close",
        }
    }
}

/// How a new activation letter reaches the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The mailroom prints it with the next `connect admin letters print`.
    Queue,
    /// Its code is issued now, for a letter the caller writes at once.
    Now,
}

/// What a new letter came to.
pub enum Letter {
    /// Waits in the queue for the mailroom.
    Queued,
    /// Issued now: the caller writes the letter (and revokes the code if that fails).
    Issued(Box<IssuedCode>),
}

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("the reason must not be empty")]
    EmptyReason,
    #[error("the reason is longer than {MAX_REASON} characters")]
    ReasonTooLong,
    #[error("the operator must not be empty")]
    EmptyOperator,
    #[error("no account with this {0} in {1}")]
    NoAccount(&'static str, String),
    #[error("no person with this AHV number in the register of {0}")]
    NoPerson(String),
    /// The action does not apply to the account as it is; nothing changed.
    #[error("{0}; nothing changed")]
    NotApplicable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ActivationError> for SupportError {
    fn from(e: ActivationError) -> Self {
        match e {
            ActivationError::UnknownPerson(realm) => SupportError::NoPerson(realm),
            ActivationError::AlreadyEnrolled => {
                SupportError::NotApplicable("this person already has an account")
            }
            ActivationError::Store(e) => SupportError::Store(e),
        }
    }
}

/// What an action did, for the operator.
#[derive(Clone, Debug, Serialize)]
pub struct Done {
    pub action: &'static str,
    /// Sessions that ended (0 when the action leaves them).
    pub sessions_ended: usize,
}

/// The support desk as a service, built once in `AppState`.
#[derive(Clone)]
pub struct Support {
    db: Db,
    clock: Clock,
    audit: Audit,
    guard: Guard,
    logouts: Logouts,
    sessions: Sessions,
    activation: Activation,
    totp: Totp,
    recovery: RecoveryCodes,
}

/// What a support service needs; one struct, so that `AppState::open` names them once.
pub struct Parts<'a> {
    pub db: &'a Db,
    pub clock: &'a Clock,
    pub audit: &'a Audit,
    pub guard: &'a Guard,
    pub logouts: &'a Logouts,
    pub sessions: &'a Sessions,
    pub activation: &'a Activation,
    pub totp: &'a Totp,
    pub recovery: &'a RecoveryCodes,
}

impl Support {
    pub fn new(p: Parts<'_>) -> Self {
        Support {
            db: p.db.clone(),
            clock: p.clock.clone(),
            audit: p.audit.clone(),
            guard: p.guard.clone(),
            logouts: p.logouts.clone(),
            sessions: p.sessions.clone(),
            activation: p.activation.clone(),
            totp: p.totp.clone(),
            recovery: p.recovery.clone(),
        }
    }

    /// The account of `who` in the realm.
    pub async fn find(&self, realm: &Realm, who: &Who) -> Result<Account, SupportError> {
        let (found, by) = match who {
            Who::Ahv(ahv) => (
                accounts::by_ahv(&self.db, &realm.id, ahv).await?,
                "AHV number",
            ),
            Who::Email(email) => (
                accounts::by_email(&self.db, &realm.id, email).await?,
                "e-mail address",
            ),
        };
        found.ok_or_else(|| SupportError::NoAccount(by, realm.id.to_string()))
    }

    /// Does `action` to the account of `who`: one audit event, the person told by mail.
    pub async fn act(
        &self,
        realm: &Arc<Realm>,
        who: &Who,
        actor: Actor<'_>,
        action: Action,
    ) -> Result<Done, SupportError> {
        if actor.operator.trim().is_empty() {
            return Err(SupportError::EmptyOperator);
        }
        let account = self.find(realm, who).await?;
        let now = self.clock.unix();
        let id = account.id.as_str();
        tracing::info!(realm = %realm.id, account = %id, action = action.name(), "support action");
        let (kind, detail, notice, ended) = match &action {
            Action::Lock => {
                if !accounts::lock(&self.db, id, None, now).await? {
                    return Err(SupportError::NotApplicable(
                        "the account is not active (already locked or disabled)",
                    ));
                }
                let ended = self.end(realm, id).await?;
                (
                    Kind::AccountLocked,
                    json!({ "by": "support" }),
                    AccountNotice::LockedBySupport,
                    ended,
                )
            }
            Action::Unlock => {
                if !accounts::unlock(&self.db, id, now).await? {
                    return Err(SupportError::NotApplicable("the account is not locked"));
                }
                (Kind::AccountUnlocked, json!({}), AccountNotice::Unlocked, 0)
            }
            Action::Disable => {
                if !accounts::disable(&self.db, id, now).await? {
                    return Err(SupportError::NotApplicable(
                        "the account is already disabled",
                    ));
                }
                let ended = self.end(realm, id).await?;
                (
                    Kind::AccountDisabled,
                    json!({}),
                    AccountNotice::Disabled,
                    ended,
                )
            }
            Action::Enable => {
                if !accounts::enable(&self.db, id, now).await? {
                    return Err(SupportError::NotApplicable("the account is not disabled"));
                }
                (Kind::AccountEnabled, json!({}), AccountNotice::Enabled, 0)
            }
            Action::ResetPhone => {
                accounts::reset_phone(&self.db, id, now).await?;
                let ended = self.end(realm, id).await?;
                let phone = account
                    .phone
                    .as_deref()
                    .and_then(|p| PhoneNumber::parse(p).ok())
                    .map(|p| p.masked());
                (
                    Kind::SecondFactorsRemoved,
                    json!({ "by": "support", "phone": phone, "next_login": "new_phone" }),
                    AccountNotice::PhoneResetBySupport,
                    ended,
                )
            }
            Action::RemoveFactor(factor) => self.remove_factor(realm, &account, factor).await?,
            Action::EndSessions => {
                let ended = self.end(realm, id).await?;
                (
                    Kind::SessionsEnded,
                    json!({ "by": "support" }),
                    AccountNotice::SessionsEndedBySupport,
                    ended,
                )
            }
            Action::Close => {
                // Sessions and grants end first, while the grants still name the clients to
                // tell (as when the person closes the account).
                let ended = self.end(realm, id).await?;
                if !accounts::close(&self.db, &account, now).await? {
                    return Err(SupportError::NotApplicable("the account is already closed"));
                }
                (
                    Kind::AccountClosed,
                    json!({ "by": "support", "ahv": account.ahv.as_ref().map(AhvNumber::masked) }),
                    AccountNotice::ClosedBySupport,
                    ended,
                )
            }
        };
        let mut detail = detail;
        if let Some(map) = detail.as_object_mut() {
            map.insert("action".into(), json!(action.name()));
            map.insert("sessions".into(), json!(ended));
        }
        self.audit
            .record(
                Event::new(kind, &realm.id)
                    .account(id)
                    .operator(actor.operator)
                    .reason(actor.reason.as_str())
                    .detail(detail),
            )
            .await;
        self.guard.tell(realm, &account, notice).await;
        Ok(Done {
            action: action.name(),
            sessions_ended: ended,
        })
    }

    /// Ends every session and grant of the account (back-channel logout included); the
    /// count goes into the action's own event rather than one of its own.
    async fn end(&self, realm: &Arc<Realm>, account_id: &str) -> Result<usize, StoreError> {
        self.logouts.end_all(realm, account_id).await
    }

    async fn remove_factor(
        &self,
        realm: &Arc<Realm>,
        account: &Account,
        factor: &Factor,
    ) -> Result<(Kind, serde_json::Value, AccountNotice<'static>, usize), SupportError> {
        let id = account.id.as_str();
        let result = match factor {
            Factor::App => {
                if !self.totp.remove(&realm.id, id).await? {
                    return Err(SupportError::NotApplicable(
                        "the account has no authenticator app",
                    ));
                }
                // A lost device may still be logged in somewhere.
                let ended = self.end(realm, id).await?;
                (
                    Kind::AppRemoved,
                    json!({ "by": "support" }),
                    AccountNotice::AppRemovedBySupport,
                    ended,
                )
            }
            Factor::Passkey(passkey) => {
                let keys = passkeys::of_account(&self.db, &realm.id, id).await?;
                let Some(found) = keys.iter().find(|k| &k.id == passkey) else {
                    return Err(SupportError::NotApplicable(
                        "the account has no passkey with this id",
                    ));
                };
                if !passkeys::remove(&self.db, &realm.id, id, &found.id).await? {
                    return Err(SupportError::NotApplicable(
                        "the account has no passkey with this id",
                    ));
                }
                let ended = self.end(realm, id).await?;
                (
                    Kind::PasskeyRemoved,
                    json!({ "by": "support", "passkey": found.id, "name": found.name.to_string() }),
                    AccountNotice::PasskeyRemovedBySupport,
                    ended,
                )
            }
            Factor::RecoveryCodes => {
                let removed = self.recovery.remove_all(&realm.id, id).await?;
                if removed == 0 {
                    return Err(SupportError::NotApplicable(
                        "the account has no recovery codes",
                    ));
                }
                (
                    Kind::RecoveryCodesRemoved,
                    json!({ "by": "support", "removed": removed }),
                    AccountNotice::RecoveryCodesRemovedBySupport,
                    0,
                )
            }
        };
        // An account left with no factor at all must not fall back to the password alone.
        accounts::mark_reset_if_bare(&self.db, id, self.clock.unix()).await?;
        Ok(result)
    }

    /// A new activation letter for the person of `who`. A person with an account gets a
    /// letter whose code registers a new mobile number (the lost-phone letter); a person of
    /// the register without one gets an enrolment letter. Either way the open code is
    /// revoked, and one audit event names the operator and reason.
    pub async fn new_letter(
        &self,
        realm: &Realm,
        who: &Who,
        actor: Actor<'_>,
        delivery: Delivery,
    ) -> Result<Letter, SupportError> {
        if actor.operator.trim().is_empty() {
            return Err(SupportError::EmptyOperator);
        }
        let now = self.clock.unix();
        let account = match who {
            Who::Ahv(ahv) => accounts::by_ahv(&self.db, &realm.id, ahv).await?,
            Who::Email(_) => Some(self.find(realm, who).await?),
        };
        let Some(account) = account else {
            let Who::Ahv(ahv) = who else {
                unreachable!("an e-mail address finds an account or fails above")
            };
            return self.enrolment_letter(realm, ahv, actor, delivery).await;
        };
        let Some(ahv) = account.ahv.clone() else {
            return Err(SupportError::NotApplicable(
                "the account has no AHV number, so no letter can be addressed",
            ));
        };
        if persons::by_ahv(&self.db, &realm.id, &ahv).await?.is_none() {
            return Err(SupportError::NoPerson(realm.id.to_string()));
        }
        if letter_requests::queue(&self.db, &realm.id, &account.id, &ahv, now).await?
            == Queued::AlreadyWaiting
        {
            return Err(SupportError::NotApplicable(
                "a letter for this account already waits for the mailroom",
            ));
        }
        let days = realm.recovery.letter_days;
        let letter = match delivery {
            Delivery::Queue => {
                self.audit
                    .record(
                        Event::new(Kind::LetterRequested, &realm.id)
                            .account(&account.id)
                            .operator(actor.operator)
                            .reason(actor.reason.as_str())
                            .detail(json!({ "by": "support", "ahv": ahv.masked() })),
                    )
                    .await;
                Letter::Queued
            }
            Delivery::Now => {
                let waiting = letter_requests::waiting(&self.db, &realm.id)
                    .await?
                    .into_iter()
                    .find(|w| w.account_id == account.id)
                    .ok_or(SupportError::NotApplicable(
                        "the letter request could not be read back",
                    ))?;
                let request = waiting.id.clone();
                let issued = self
                    .activation
                    .issue_for_request_by(realm, waiting, Some(actor.by()))
                    .await?;
                letter_requests::mark_printed(&self.db, &realm.id, &request, now).await?;
                Letter::Issued(Box::new(issued))
            }
        };
        self.guard
            .tell(realm, &account, AccountNotice::LetterBySupport { days })
            .await;
        Ok(letter)
    }

    async fn enrolment_letter(
        &self,
        realm: &Realm,
        ahv: &AhvNumber,
        actor: Actor<'_>,
        delivery: Delivery,
    ) -> Result<Letter, SupportError> {
        if persons::by_ahv(&self.db, &realm.id, ahv).await?.is_none() {
            return Err(SupportError::NoPerson(realm.id.to_string()));
        }
        match delivery {
            Delivery::Now => Ok(Letter::Issued(Box::new(
                self.activation
                    .issue_by(realm, ahv, Some(actor.by()))
                    .await?,
            ))),
            Delivery::Queue => {
                // The mailroom's run writes a letter for every person without an account or
                // a usable code, but none by itself for a person who closed an account.
                if persons::account_closed(&self.db, &realm.id, ahv).await? {
                    return Err(SupportError::NotApplicable(
                        "this person closed their account, so the mailroom's run leaves them out: write the letter now",
                    ));
                }
                let revoked = self
                    .activation
                    .revoke_by(realm, ahv, Some(actor.by()))
                    .await?;
                if revoked == 0 {
                    return Err(SupportError::NotApplicable(
                        "this person has no open code, so the mailroom's next run writes their letter anyway",
                    ));
                }
                Ok(Letter::Queued)
            }
        }
    }

    /// What support sees of a person's account: no hash, code or token, the number masked.
    pub async fn show(&self, realm: &Realm, who: &Who) -> Result<Summary, SupportError> {
        let account = self.find(realm, who).await?;
        let now = self.clock.unix();
        let id = account.id.as_str();
        let person = match &account.ahv {
            Some(ahv) => persons::by_ahv(&self.db, &realm.id, ahv).await?,
            None => None,
        };
        let open_code_expires_at = match &account.ahv {
            Some(ahv) => activation_codes::open_code_expiry(&self.db, &realm.id, ahv, now).await?,
            None => None,
        };
        let app = self.totp.registered(&realm.id, id).await?;
        let keys = passkeys::of_account(&self.db, &realm.id, id).await?;
        let recovery_codes_left = self.recovery.left(&realm.id, id).await?;
        let sessions = self
            .sessions
            .list(realm, id, account.sessions_epoch)
            .await?
            .len();
        let applications = grants::clients_of_account(&self.db, &realm.id, id).await?;
        let letters_waiting = letter_requests::waiting_of_account(&self.db, &realm.id, id).await?;
        let events = audit_store::recent_of_account(&self.db, &realm.id, id, 200).await?;
        let pick = |kind: &str| -> Vec<LoginEvent> {
            events
                .iter()
                .filter(|e| e.kind == kind)
                .take(5)
                .map(|e| LoginEvent {
                    at: e.at,
                    client: e.client_id.clone(),
                    address: e.client_addr.clone(),
                })
                .collect()
        };
        let status = match account.status {
            AccountStatus::Active => "active",
            AccountStatus::Locked => "locked",
            AccountStatus::Disabled => "disabled",
            AccountStatus::Invited => "invited",
        };
        let lock_reason = match account.status {
            AccountStatus::Locked if account.locked_until.is_some() => Some("wrong passwords"),
            AccountStatus::Locked => Some("by support"),
            _ => None,
        };
        Ok(Summary {
            realm: realm.id.to_string(),
            account: account.id.clone(),
            register: person.map(|p| Register {
                ahv: p.ahv.to_string(),
                given_name: p.given_name,
                family_name: p.family_name,
                birth_date: p.birth_date.to_string(),
                language: p.language.code().to_owned(),
            }),
            given_name: account.given_name.clone(),
            family_name: account.family_name.clone(),
            language: account.language.code().to_owned(),
            status,
            lock_reason,
            locked_until: account.locked_until,
            may_log_in: account.may_log_in(now),
            email: account.email.to_string(),
            email_verified_at: account.email_verified_at,
            phone: account.phone.as_deref().map(|p| {
                PhoneNumber::parse(p).map_or_else(|_| "(unusable)".into(), |p| p.masked())
            }),
            phone_verified_at: account.phone_verified_at,
            phone_reset_at: account.phone_reset_at,
            app: app.is_some(),
            passkeys: keys
                .into_iter()
                .map(|k| PasskeySummary {
                    id: k.id,
                    name: k.name.to_string(),
                    created_at: k.created_at,
                    last_used_at: k.last_used_at,
                })
                .collect(),
            recovery_codes_left,
            open_code_expires_at,
            letters_waiting,
            sessions,
            applications: applications
                .into_iter()
                .map(|c| Application {
                    client: c.client_id,
                    first_at: c.first_at,
                    last_at: c.last_at,
                })
                .collect(),
            last_logins: pick(Kind::LoginSucceeded.as_str()),
            last_failures: pick(Kind::LoginFailed.as_str()),
            created_at: account.created_at,
        })
    }
}

/// A person's account as support sees it (`connect admin account show`). Times are Unix
/// seconds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub realm: String,
    pub account: String,
    pub register: Option<Register>,
    pub given_name: String,
    pub family_name: String,
    pub language: String,
    pub status: &'static str,
    pub lock_reason: Option<&'static str>,
    pub locked_until: Option<i64>,
    pub may_log_in: bool,
    pub email: String,
    pub email_verified_at: Option<i64>,
    /// Masked: `+41 79 *** ** 67`.
    pub phone: Option<String>,
    pub phone_verified_at: Option<i64>,
    /// Support took the factors away then; the next login registers a new number.
    pub phone_reset_at: Option<i64>,
    pub app: bool,
    pub passkeys: Vec<PasskeySummary>,
    pub recovery_codes_left: usize,
    pub open_code_expires_at: Option<i64>,
    /// When each letter still waiting for the mailroom was asked for.
    pub letters_waiting: Vec<i64>,
    pub sessions: usize,
    pub applications: Vec<Application>,
    pub last_logins: Vec<LoginEvent>,
    pub last_failures: Vec<LoginEvent>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Register {
    pub ahv: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
    pub language: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Application {
    pub client: String,
    pub first_at: i64,
    pub last_at: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoginEvent {
    pub at: i64,
    pub client: Option<String>,
    pub address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_bounded_and_never_empty() {
        assert_eq!(
            Reason::parse("  called, ticket 4711 ").unwrap().as_str(),
            "called, ticket 4711"
        );
        for empty in ["", "   ", "\n\t"] {
            assert!(matches!(
                Reason::parse(empty),
                Err(SupportError::EmptyReason)
            ));
        }
        assert!(Reason::parse(&"x".repeat(MAX_REASON)).is_ok());
        assert!(matches!(
            Reason::parse(&"x".repeat(MAX_REASON + 1)),
            Err(SupportError::ReasonTooLong)
        ));
    }
}
