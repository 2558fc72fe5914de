//! `connect admin`: support and operator commands, on the same data as a running server.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use clap::Subcommand;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::{import, letters, progress};
use serde_json::json;

use crate::{
    activation::IssuedCode,
    app::AppState,
    audit::{Event, Kind},
    clock::Clock,
    config::Config,
    domain::{AhvNumber, Email, Language, Password, PasswordContext, PhoneNumber, RealmId},
    letter::{swiss_date, ActivationLetter},
    notify::messages::AccountNotice,
    portal::{PortalStartError, PortalState},
    realm::Realm,
    storage::{accounts, persons, Conflict, StoreError},
    support::{Action, Actor as SupportActor, Delivery, Factor, Letter, Reason, Summary, Who},
};

/// `connect admin [--operator WHO] [--reason WHY] <command>`: every command that changes
/// something is written to the realm's audit trail with who ran it and why.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// Who runs the command, for the audit trail (default: $CONNECT_OPERATOR, $SUDO_USER or $USER).
    #[arg(long, global = true, value_name = "WHO")]
    operator: Option<String>,
    /// Why, for the audit trail (e.g. "called the support desk, ticket 4711").
    #[arg(long, global = true, value_name = "WHY")]
    reason: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// The realm's audit trail as JSON lines, oldest first.
    Audit {
        #[arg(long)]
        realm: RealmId,
        /// Only this account: its id (the `sub`) or its e-mail address.
        #[arg(long)]
        account: Option<String>,
        /// From this day (YYYY-MM-DD, UTC) or this time (RFC 3339) on.
        #[arg(long)]
        since: Option<String>,
    },
    /// Accounts of persons.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The register of insured persons.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Activation codes and the letters that carry them.
    #[command(subcommand)]
    Code(CodeCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Relying parties.
    #[command(subcommand)]
    Client(ClientCommand),
    /// The portal's documents.
    #[command(subcommand)]
    Documents(DocumentsCommand),
    /// Activation letters of single persons, and the mailroom's run.
    #[command(subcommand)]
    Letters(LettersCommand),
    /// The support desk's staff (accounts of a staff realm).
    #[command(subcommand)]
    Staff(super::staff::StaffCommand),
}

#[derive(Subcommand)]
pub enum DocumentsCommand {
    /// Remove the documents whose issue date is past the realm's `documents.retention_years`
    /// (body and metadata); prints how many. The portal also does this once a day.
    Purge {
        #[arg(long)]
        realm: RealmId,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account directly (for testing, until enrolment is used).
    Create {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        ahv: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        language: Option<Language>,
    },
    /// Unlock a locked account (after wrong passwords, or by support); its count starts
    /// again. The person is told by mail.
    Unlock {
        #[command(flatten)]
        who: Support,
    },
    /// Lock an account until support unlocks it: its sessions and grants end at once and the
    /// person is told by mail.
    Lock {
        #[command(flatten)]
        who: Support,
    },
    /// Disable an account (it can no longer log in) until it is enabled again: its sessions
    /// and grants end at once and the person is told by mail.
    Disable {
        #[command(flatten)]
        who: Support,
    },
    /// Enable a disabled account again; the person is told by mail.
    Enable {
        #[command(flatten)]
        who: Support,
    },
    /// What support sees of an account: register data, state, e-mail, masked phone,
    /// factors, open code's expiry, letters, sessions, applications, last logins. Never a
    /// hash, code or token.
    Show {
        #[command(flatten)]
        who: Support,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A lost phone: the mobile number and every second factor are removed and the sessions
    /// end; at the next login, after e-mail and password, a code by e-mail, then a new number
    /// and its SMS code.
    ResetPhone {
        #[command(flatten)]
        who: Support,
    },
    /// Remove a lost authenticator app, one passkey or the recovery codes.
    RemoveFactor {
        #[command(flatten)]
        who: Support,
        #[command(flatten)]
        factor: FactorArg,
    },
    /// End every session and grant of the account (back-channel logout).
    EndSessions {
        #[command(flatten)]
        who: Support,
    },
    /// Close the account as the person can: account and factors deleted, sessions and grants
    /// ended, the register entry kept.
    Close {
        #[command(flatten)]
        who: Support,
    },
    /// Register a new mobile number for the SMS codes (a lost or changed phone). Sessions and
    /// grants end, the person is told by mail at their address, and the number counts as
    /// verified only once an SMS code sent to it comes back at login.
    Phone {
        #[command(flatten)]
        who: Support,
        /// The new number, e.g. "079 123 45 67" or "+41 79 123 45 67".
        #[arg(long)]
        phone: String,
    },
}

/// Which account a support command acts on: by AHV number or by e-mail address, exactly one.
/// Who acts and why are `connect admin`'s `--operator` and `--reason`, the reason required.
#[derive(clap::Args)]
pub struct Support {
    #[arg(long)]
    realm: RealmId,
    /// The person's AHV number, in any usual formatting.
    #[arg(long, conflicts_with = "email", required_unless_present = "email")]
    ahv: Option<String>,
    /// The account's e-mail address.
    #[arg(long)]
    email: Option<String>,
}

impl Support {
    fn who(&self) -> anyhow::Result<Who> {
        match (&self.ahv, &self.email) {
            (Some(ahv), None) => Ok(Who::Ahv(ahv.parse().context("--ahv")?)),
            (None, Some(email)) => Ok(Who::Email(email.parse().context("--email")?)),
            _ => bail!("give exactly one of --ahv and --email"),
        }
    }
}

/// Which factor `remove-factor` takes away: exactly one.
#[derive(clap::Args)]
#[group(id = "factor", required = true, multiple = false)]
pub struct FactorArg {
    /// The authenticator app.
    #[arg(long)]
    app: bool,
    /// One passkey, by the id `account show` lists.
    #[arg(long, value_name = "ID")]
    passkey: Option<String>,
    /// Every recovery code.
    #[arg(long)]
    recovery_codes: bool,
}

impl FactorArg {
    fn factor(self) -> Factor {
        match self.passkey {
            Some(id) => Factor::Passkey(id),
            None if self.app => Factor::App,
            None => Factor::RecoveryCodes,
        }
    }
}

#[derive(Subcommand)]
pub enum LettersCommand {
    /// A new activation letter for one person: their open code is revoked. A person with an
    /// account gets the letter that registers a new mobile number and is told by mail. Queued
    /// for the mailroom's next `letters print`, or written now with `--pdf`.
    Queue {
        #[command(flatten)]
        who: Support,
        /// Write the letter to this PDF file now instead of queueing it; prints the code,
        /// like `code issue`.
        #[arg(long, value_name = "FILE.pdf")]
        pdf: Option<PathBuf>,
    },
    /// What `code letters` does: a letter in DIR for every person who waits for one, the
    /// queue included, and the mailroom's batch PDF.
    Print {
        #[arg(long)]
        realm: RealmId,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Who runs an admin command and why.
struct Actor {
    operator: String,
    reason: Option<String>,
}

#[derive(Subcommand)]
pub enum PersonCommand {
    /// Add an insured person to the register.
    Add {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        ahv: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        birth_date: chrono::NaiveDate,
        #[arg(long)]
        language: Language,
        /// "Street 1, 3000 City"
        #[arg(long)]
        address: Option<String>,
    },
    /// Add the persons of a CSV file, all or none (format in the README).
    Import {
        #[arg(long)]
        realm: RealmId,
        /// Header `ahv,given_name,family_name,birth_date,language`, optionally
        /// `street,postal_code,locality,country`; comma or semicolon separated, UTF-8.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum CodeCommand {
    /// Issue a new activation code for a person of the register; their earlier unused code
    /// stops working. Prints the code, then its expiry.
    Issue {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        ahv: AhvNumber,
        /// Also write the activation letter to this PDF file.
        #[arg(long, value_name = "FILE.pdf")]
        letter: Option<PathBuf>,
    },
    /// Revoke the person's unused activation code; prints how many were revoked.
    Revoke {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        ahv: AhvNumber,
    },
    /// Issue a code and write a letter, DIR/<AHV digits>.pdf, for every person of the register
    /// with neither an account nor a usable code, and for every letter asked for after a lost
    /// phone (each then marked printed; its code replaces the person's earlier one).
    Letters {
        #[arg(long)]
        realm: RealmId,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add new signing keys; the old ones stay published until their tokens expire.
    Rotate {
        #[arg(long)]
        realm: RealmId,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Generate a client secret (256 bits): prints the secret once, then the SHA-256 for the realm file.
    Secret,
}

pub async fn run(config: Config, args: AdminArgs) -> anyhow::Result<()> {
    let cmd = args.command;
    if let AdminCommand::Client(ClientCommand::Secret) = cmd {
        let secret = crate::session::random_token();
        println!("{secret}");
        println!(
            "secret_sha256 = \"{}\"",
            hex::encode(Sha256::digest(secret.as_bytes()))
        );
        return Ok(());
    }
    if let AdminCommand::Documents(cmd) = cmd {
        return documents(config, cmd).await;
    }
    let state = AppState::open(config, Clock::System).await?;
    let audited = audited(&cmd);
    let actor = Actor {
        operator: args.operator.unwrap_or_else(default_operator),
        reason: args.reason,
    };
    let result = dispatch(&state, cmd, &actor).await;
    if let Some((realm, command)) = audited {
        let operator = &actor.operator;
        let mut event = Event::new(Kind::AdminCommand, &realm)
            .operator(operator)
            .detail(json!({ "command": command, "outcome": if result.is_ok() { "done" } else { "failed" } }));
        if let Some(reason) = &actor.reason {
            event = event.reason(reason);
        }
        state.audit.record(event).await;
    }
    // Logout Tokens go out in background tasks, which would die with this process: one
    // delivery with its retry takes at most about 11 s.
    state
        .backchannel
        .settle(std::time::Duration::from_secs(12))
        .await;
    state.db.close().await;
    result
}

/// The operator's name when `--operator` is not given: whoever is logged in (the one who
/// became root with sudo rather than root), else the name of the process's user.
fn default_operator() -> String {
    ["CONNECT_OPERATOR", "SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .or_else(login_name)
        .unwrap_or_else(|| "unknown".into())
}

/// The name of the process's user from the password database (a cron job or a container may
/// have no `$USER`).
fn login_name() -> Option<String> {
    // SAFETY: getpwuid returns null or a pointer to a static record, read and copied at once;
    // no other thread of this command calls getpw*, so the record is not overwritten meanwhile.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_str()
            .ok()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// The realm and name of a command that changes something (reading the audit trail does not).
fn audited(cmd: &AdminCommand) -> Option<(RealmId, &'static str)> {
    Some(match cmd {
        AdminCommand::Audit { .. }
        | AdminCommand::Client(ClientCommand::Secret)
        | AdminCommand::Documents(_) => return None,
        // Each staff command writes its own one event (`staff list` only reads).
        AdminCommand::Staff(_) => return None,
        AdminCommand::Account(AccountCommand::Create { realm, .. }) => {
            (realm.clone(), "account create")
        }
        // The support desk's actions write their own one event, with operator and reason.
        AdminCommand::Account(
            AccountCommand::Show { .. }
            | AccountCommand::Unlock { .. }
            | AccountCommand::Lock { .. }
            | AccountCommand::Disable { .. }
            | AccountCommand::Enable { .. }
            | AccountCommand::ResetPhone { .. }
            | AccountCommand::RemoveFactor { .. }
            | AccountCommand::EndSessions { .. }
            | AccountCommand::Close { .. },
        )
        | AdminCommand::Letters(LettersCommand::Queue { .. }) => return None,
        AdminCommand::Account(AccountCommand::Phone { who, .. }) => {
            (who.realm.clone(), "account phone")
        }
        AdminCommand::Letters(LettersCommand::Print { realm, .. }) => {
            (realm.clone(), "letters print")
        }
        AdminCommand::Person(PersonCommand::Add { realm, .. }) => (realm.clone(), "person add"),
        AdminCommand::Person(PersonCommand::Import { realm, .. }) => {
            (realm.clone(), "person import")
        }
        AdminCommand::Code(CodeCommand::Issue { realm, .. }) => (realm.clone(), "code issue"),
        AdminCommand::Code(CodeCommand::Revoke { realm, .. }) => (realm.clone(), "code revoke"),
        AdminCommand::Code(CodeCommand::Letters { realm, .. }) => (realm.clone(), "code letters"),
        AdminCommand::Keys(KeysCommand::Rotate { realm }) => (realm.clone(), "keys rotate"),
    })
}

/// `--since`: a day (from its midnight, UTC) or an RFC 3339 time, as Unix seconds.
fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .with_context(|| format!("--since: `{text}` is neither YYYY-MM-DD nor an RFC 3339 time"))
}

async fn dispatch(state: &AppState, cmd: AdminCommand, actor: &Actor) -> anyhow::Result<()> {
    let now = state.clock.unix();
    match cmd {
        AdminCommand::Staff(cmd) => {
            super::staff::run(state, cmd, &actor.operator, actor.reason.as_deref()).await?;
        }
        AdminCommand::Audit {
            realm,
            account,
            since,
        } => {
            let realm = realm_named(state, &realm)?;
            let since = since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
            let account = match account {
                Some(a) if a.contains('@') => {
                    let email: Email = a.parse().context("--account")?;
                    let found = accounts::by_email(&state.db, &realm.id, &email)
                        .await?
                        .with_context(|| {
                            format!("no account with this e-mail address in {}", realm.id)
                        })?;
                    Some(found.id)
                }
                other => other,
            };
            let mut out = std::io::stdout().lock();
            for event in state
                .audit
                .read(&realm.id, account.as_deref(), since)
                .await?
            {
                use std::io::Write;
                writeln!(out, "{event}")?;
            }
        }
        AdminCommand::Account(AccountCommand::Create {
            realm,
            email,
            password_stdin: _,
            given_name,
            family_name,
            ahv,
            phone,
            language,
        }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            let email: Email = email.parse().context("--email")?;
            let ahv: Option<AhvNumber> = ahv.map(|a| a.parse()).transpose().context("--ahv")?;
            let mut line = String::new();
            std::io::stdin()
                .read_to_string(&mut line)
                .context("reading the password from stdin")?;
            if given_name.trim().is_empty() || family_name.trim().is_empty() {
                bail!("--given-name and --family-name must not be empty");
            }
            // The rules of enrolment step 5: the realm's policy, common passwords, names.
            let context = PasswordContext {
                email_local_part: email.as_str().split('@').next().map(str::to_owned),
                names: vec![given_name.trim().to_owned(), family_name.trim().to_owned()],
            };
            let password = Password::new(
                line.lines().next().unwrap_or_default(),
                &realm.password_policy,
                &context,
            )
            .context("the password from stdin")?;
            let phone = phone
                .as_deref()
                .map(|p| mobile_number(realm, p))
                .transpose()?;
            let hash = state
                .passwords
                .hash(SecretString::from(password.expose().to_owned()))
                .await?;
            let new = accounts::NewAccount {
                realm: &realm.id,
                email: &email,
                password_hash: &hash,
                given_name: given_name.trim(),
                family_name: family_name.trim(),
                ahv: ahv.as_ref(),
                phone: phone.as_ref().map(PhoneNumber::as_e164),
                language: language.unwrap_or(realm.default_language),
            };
            match accounts::create(&state.db, &new, now).await {
                Ok(id) => println!("{id}"),
                Err(StoreError::Conflict(c)) => bail!("not created: {c:?}"),
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::Account(cmd) => account(state, cmd, actor).await?,
        AdminCommand::Person(PersonCommand::Add {
            realm,
            ahv,
            given_name,
            family_name,
            birth_date,
            language,
            address,
        }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            let person = persons::Person {
                ahv: ahv.parse().context("--ahv")?,
                given_name,
                family_name,
                birth_date,
                language,
                address: address.as_deref().map(parse_address).unwrap_or_default(),
            };
            match persons::add(&state.db, &realm.id, &person, now).await {
                Ok(()) => println!("{}", person.ahv),
                Err(StoreError::Conflict(c)) => bail!("not added: {c:?}"),
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::Person(PersonCommand::Import { realm, file }) => {
            let realm = realm_named(state, &realm)?;
            import_persons(state, realm, &file).await?;
        }
        AdminCommand::Code(cmd) => code(state, cmd).await?,
        AdminCommand::Letters(LettersCommand::Print { realm, out }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            letters::write_letters(state, realm.clone(), &out).await?;
        }
        AdminCommand::Letters(LettersCommand::Queue { who, pdf }) => {
            new_letter(state, &who, pdf, actor).await?
        }
        AdminCommand::Keys(KeysCommand::Rotate { realm }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            for kid in state.keys.rotate(realm).await? {
                println!("{kid}");
            }
        }
        AdminCommand::Client(ClientCommand::Secret) | AdminCommand::Documents(_) => {
            unreachable!("handled before opening storage")
        }
    }
    Ok(())
}

/// `connect admin documents …` works on the portal's storage (database and object store),
/// without the IdP and without the portal's client secret.
async fn documents(mut config: Config, cmd: DocumentsCommand) -> anyhow::Result<()> {
    match cmd {
        DocumentsCommand::Purge { realm } => {
            config.portal.realm = realm.clone();
            let state = match PortalState::open_offline(config, Clock::System).await {
                Err(PortalStartError::UnknownRealm(_)) => bail!("no realm {realm}"),
                opened => opened?,
            };
            let counts = crate::portal::retention::purge(&state).await;
            state.db.close().await;
            let counts = counts?;
            println!("{} document(s) purged in {realm}", counts.purged);
            if counts.failed > 0 {
                bail!(
                    "{} document(s) past retention could not be removed (see the log); run the purge again",
                    counts.failed
                );
            }
        }
    }
    Ok(())
}

/// The support commands on one account, through the support desk's service
/// (`support::Support`): each writes one audit event with its operator and reason, ends what
/// it says and tells the person by mail. Bad input changes nothing.
async fn account(state: &AppState, cmd: AccountCommand, actor: &Actor) -> anyhow::Result<()> {
    let who = match &cmd {
        AccountCommand::Create { .. } => unreachable!("handled in dispatch"),
        AccountCommand::Show { who, .. }
        | AccountCommand::Unlock { who }
        | AccountCommand::Lock { who }
        | AccountCommand::Disable { who }
        | AccountCommand::Enable { who }
        | AccountCommand::ResetPhone { who }
        | AccountCommand::RemoveFactor { who, .. }
        | AccountCommand::EndSessions { who }
        | AccountCommand::Close { who }
        | AccountCommand::Phone { who, .. } => who,
    };
    let realm = state
        .realms
        .get(&who.realm)
        .with_context(|| format!("no realm {}", who.realm))?;
    let person = who.who()?;
    if let AccountCommand::Show { json, .. } = &cmd {
        let summary = state.support.show(realm, &person).await?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", readable(&summary));
        }
        return Ok(());
    }
    let reason = reason(actor)?;
    let by = SupportActor {
        operator: &actor.operator,
        reason: &reason,
    };
    let action = match cmd {
        AccountCommand::Create { .. } | AccountCommand::Show { .. } => {
            unreachable!("handled above")
        }
        AccountCommand::Phone { phone, .. } => {
            return set_phone(state, realm, &person, &phone, by).await
        }
        AccountCommand::Unlock { .. } => Action::Unlock,
        AccountCommand::Lock { .. } => Action::Lock,
        AccountCommand::Disable { .. } => Action::Disable,
        AccountCommand::Enable { .. } => Action::Enable,
        AccountCommand::ResetPhone { .. } => Action::ResetPhone,
        AccountCommand::RemoveFactor { factor, .. } => Action::RemoveFactor(factor.factor()),
        AccountCommand::EndSessions { .. } => Action::EndSessions,
        AccountCommand::Close { .. } => Action::Close,
    };
    let done = state.support.act(realm, &person, by, action).await?;
    let said = match done.action {
        "lock" => "locked; sessions and grants ended",
        "unlock" => "unlocked",
        "disable" => "disabled; sessions and grants ended",
        "enable" => "enabled",
        "reset-phone" => "mobile number and second factors removed; sessions and grants ended; a new number is registered at the next login",
        "remove-factor" => "factor removed",
        "end-sessions" => "sessions and grants ended",
        "close" => "closed; sessions and grants ended",
        other => other,
    };
    match done.action {
        "unlock" | "enable" | "remove-factor" if done.sessions_ended == 0 => println!("{said}"),
        _ => println!("{said} ({} session(s) ended)", done.sessions_ended),
    }
    Ok(())
}

/// `--reason`, required and checked for every support action before anything is read.
fn reason(actor: &Actor) -> anyhow::Result<Reason> {
    Reason::parse(actor.reason.as_deref().unwrap_or_default())
        .context("--reason is required: why support acts on this account")
}

/// `account phone`: support registers a new mobile number (kept from issue 9; the number
/// counts as proved only once an SMS code sent to it comes back at login).
async fn set_phone(
    state: &AppState,
    realm: &std::sync::Arc<Realm>,
    person: &Who,
    phone: &str,
    by: SupportActor<'_>,
) -> anyhow::Result<()> {
    let phone = mobile_number(realm, phone)?;
    let account = state.support.find(realm, person).await?;
    let now = state.clock.unix();
    accounts::set_phone(&state.db, &account.id, phone.as_e164(), now).await?;
    let masked = phone.masked();
    state
        .audit
        .record(
            Event::new(Kind::PhoneChanged, &realm.id)
                .account(&account.id)
                .operator(by.operator)
                .reason(by.reason.as_str())
                .detail(json!({ "phone": masked, "verified": false })),
        )
        .await;
    let notice = AccountNotice::PhoneChanged { masked: &masked };
    state.guard.restrict(realm, &account, notice).await?;
    println!("{masked}");
    Ok(())
}

/// `letters queue`: a new letter for one person, queued for the mailroom or written now.
async fn new_letter(
    state: &AppState,
    who: &Support,
    pdf: Option<PathBuf>,
    actor: &Actor,
) -> anyhow::Result<()> {
    let realm = realm_named(state, &who.realm)?;
    let person = who.who()?;
    let reason = reason(actor)?;
    let by = SupportActor {
        operator: &actor.operator,
        reason: &reason,
    };
    let delivery = if pdf.is_some() {
        Delivery::Now
    } else {
        Delivery::Queue
    };
    match state
        .support
        .new_letter(realm, &person, by, delivery)
        .await?
    {
        Letter::Queued => println!("queued for the mailroom's next `connect admin letters print`"),
        Letter::Issued(issued) => {
            let path = pdf.context("a letter issued now needs --pdf")?;
            write_letter(state, realm, &issued, &path).await?;
            // As `code issue`: the mailroom needs the code exactly as the letter prints it.
            println!("{}", issued.code);
            println!(
                "valid until {} ({} days)",
                swiss_date(issued.expires_at),
                letters::validity_days(realm)
            );
            println!("letter written to {}", path.display());
        }
    }
    Ok(())
}

/// `account show` for a person at the desk: one fact a line.
fn readable(s: &Summary) -> String {
    use std::fmt::Write;
    let time = |t: Option<i64>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<22}{value}");
    };
    line("realm", s.realm.clone());
    line("account", s.account.clone());
    match &s.register {
        Some(r) => {
            line("AHV number", r.ahv.clone());
            line(
                "register",
                format!(
                    "{} {}, born {}, {}",
                    r.given_name, r.family_name, r.birth_date, r.language
                ),
            );
        }
        None => line("register", "no entry".into()),
    }
    line("name", format!("{} {}", s.given_name, s.family_name));
    line("language", s.language.clone());
    let state = match (s.status, s.lock_reason) {
        (status, Some(why)) => format!(
            "{status} ({why}{})",
            s.locked_until
                .map(|t| format!(", until {}", time(Some(t))))
                .unwrap_or_default()
        ),
        (status, None) => status.to_owned(),
    };
    line("state", state);
    line("may log in", if s.may_log_in { "yes" } else { "no" }.into());
    line(
        "e-mail",
        format!("{} (verified: {})", s.email, time(s.email_verified_at)),
    );
    line(
        "mobile",
        match &s.phone {
            Some(p) => format!("{p} (verified: {})", time(s.phone_verified_at)),
            None if s.phone_reset_at.is_some() => format!(
                "none: reset by support {}, a new one is registered at the next login",
                time(s.phone_reset_at)
            ),
            None => "none".into(),
        },
    );
    line("authenticator app", if s.app { "yes" } else { "no" }.into());
    if s.passkeys.is_empty() {
        line("passkeys", "none".into());
    }
    for k in &s.passkeys {
        line(
            "passkey",
            format!(
                "{} \"{}\" (added {}, last used {})",
                k.id,
                k.name,
                time(Some(k.created_at)),
                time(k.last_used_at)
            ),
        );
    }
    line("recovery codes left", s.recovery_codes_left.to_string());
    line(
        "open activation code",
        s.open_code_expires_at.map_or_else(
            || "none".into(),
            |t| format!("valid until {}", time(Some(t))),
        ),
    );
    line(
        "letters waiting",
        if s.letters_waiting.is_empty() {
            "none".into()
        } else {
            s.letters_waiting
                .iter()
                .map(|t| format!("asked {}", time(Some(*t))))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    line("sessions", s.sessions.to_string());
    line(
        "applications",
        if s.applications.is_empty() {
            "none".into()
        } else {
            s.applications
                .iter()
                .map(|a| format!("{} (last {})", a.client, time(Some(a.last_at))))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    for (label, events) in [
        ("last login", &s.last_logins),
        ("last failure", &s.last_failures),
    ] {
        if events.is_empty() {
            line(label, "none".into());
        }
        for e in events {
            line(
                label,
                format!(
                    "{}{}",
                    time(Some(e.at)),
                    e.address
                        .as_deref()
                        .map(|a| format!(" from {a}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    line("created", time(Some(s.created_at)));
    out
}

fn realm_named<'a>(state: &'a AppState, id: &RealmId) -> anyhow::Result<&'a Realm> {
    state
        .realms
        .get(id)
        .map(|r| &**r)
        .with_context(|| format!("no realm {id}"))
}

/// Checks the whole file, then the register, and writes only when nothing is wrong. A bar on
/// a terminal follows the register lookups and the writes.
async fn import_persons(state: &AppState, realm: &Realm, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut rows = import::read(&bytes, swiss_date(state.clock.now()))
        .with_context(|| format!("{}: nothing imported", file.display()))?;
    let ahvs: Vec<AhvNumber> = rows.iter().filter_map(|r| r.ahv.clone()).collect();
    let bar = progress::bar(ahvs.len() as u64, "checking");
    let registered =
        persons::registered(&state.db, &realm.id, &ahvs, |n| bar.set_position(n)).await?;
    for row in &mut rows {
        if let Some(ahv) = row.ahv.as_ref().filter(|a| registered.contains(*a)) {
            row.problems.push(format!(
                "ahv: {ahv} is already in the register of {}",
                realm.id
            ));
            row.person = None;
        }
    }
    let bad: Vec<_> = rows.iter().filter(|r| !r.problems.is_empty()).collect();
    if !bad.is_empty() {
        bar.finish_and_clear();
        for row in &bad {
            eprintln!(
                "{}: line {}: {}",
                file.display(),
                row.line,
                row.problems.join("; ")
            );
        }
        bail!(
            "{}: {} bad row(s) of {}; nothing imported",
            file.display(),
            bad.len(),
            rows.len()
        );
    }
    let people: Vec<_> = rows.into_iter().filter_map(|r| r.person).collect();
    progress::stage(&bar, people.len() as u64, "importing");
    let added =
        persons::add_many_reporting(&state.db, &realm.id, &people, state.clock.unix(), |n| {
            bar.set_position(n)
        })
        .await;
    bar.finish_and_clear();
    match added {
        Ok(n) => println!("imported {n} person(s) into {}", realm.id),
        Err(StoreError::Conflict(Conflict::PersonExists)) => {
            bail!("a person of the file was added to the register meanwhile; nothing imported")
        }
        Err(e) => return Err(anyhow::Error::new(e).context("nothing imported")),
    }
    Ok(())
}

async fn code(state: &AppState, cmd: CodeCommand) -> anyhow::Result<()> {
    match cmd {
        CodeCommand::Issue { realm, ahv, letter } => {
            let realm = realm_named(state, &realm)?;
            let issued = state
                .activation
                .issue(realm, &ahv)
                .await
                .with_context(|| format!("no code issued for {ahv}"))?;
            if let Some(path) = &letter {
                write_letter(state, realm, &issued, path).await?;
            }
            // First line: the code exactly as the letter prints it.
            println!("{}", issued.code);
            println!(
                "valid until {} ({} days)",
                swiss_date(issued.expires_at),
                letters::validity_days(realm)
            );
            if let Some(path) = letter {
                println!("letter written to {}", path.display());
            }
        }
        CodeCommand::Revoke { realm, ahv } => {
            let realm = realm_named(state, &realm)?;
            if persons::by_ahv(&state.db, &realm.id, &ahv).await?.is_none() {
                bail!(
                    "no person with AHV number {ahv} in the register of {}",
                    realm.id
                );
            }
            let n = state.activation.revoke(realm, &ahv).await?;
            println!("{n} code(s) revoked");
        }
        CodeCommand::Letters { realm, out } => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            letters::write_letters(state, realm.clone(), &out).await?;
        }
    }
    Ok(())
}

/// Renders the letter of a code just issued and writes it whole (a temporary file, then a
/// rename). If that fails the code is revoked again: a code nobody can read must not keep the
/// person out of the next batch.
async fn write_letter(
    state: &AppState,
    realm: &Realm,
    issued: &IssuedCode,
    path: &Path,
) -> anyhow::Result<()> {
    let link = format!("{}/register", state.config.issuer(&realm.id));
    // A lost phone's letter says so: the code registers a new number.
    let letter = ActivationLetter::for_issued(realm, issued, &link, swiss_date(state.clock.now()));
    let written = letter
        .pdf()
        .map_err(anyhow::Error::new)
        .and_then(|pdf| letters::write_whole(path, &pdf));
    if let Err(e) = written {
        state.activation.revoke(realm, &issued.person.ahv).await?;
        return Err(e.context(format!(
            "the letter for {} was not written to {}; its code is revoked",
            issued.person.ahv,
            path.display()
        )));
    }
    Ok(())
}

/// "Rue 1, 3000 Bern" → street, postal code, locality; Swiss unless told otherwise.
pub fn parse_address(raw: &str) -> persons::PostalAddress {
    let (street, rest) = raw
        .rsplit_once(',')
        .map_or((None, raw), |(s, r)| (Some(s.trim().to_owned()), r));
    let rest = rest.trim();
    let (postal_code, locality) = match rest.split_once(' ') {
        Some((code, city)) if code.chars().all(|c| c.is_ascii_digit()) => {
            (Some(code.to_owned()), Some(city.trim().to_owned()))
        }
        _ => (None, Some(rest.to_owned()).filter(|s| !s.is_empty())),
    };
    persons::PostalAddress {
        street,
        postal_code,
        locality,
        country: Some("CH".into()),
    }
}

/// A mobile number the realm accepts for SMS codes.
fn mobile_number(realm: &Realm, raw: &str) -> anyhow::Result<PhoneNumber> {
    let phone = PhoneNumber::parse(raw).context("--phone")?;
    let countries: Vec<&str> = realm
        .sms
        .allowed_countries
        .iter()
        .map(String::as_str)
        .collect();
    phone
        .check_allowed(&countries, realm.sms.mobile_only)
        .context("--phone")?;
    Ok(phone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_street_code_and_city() {
        let a = parse_address("Rue 1, 3000 Bern");
        assert_eq!(a.street.as_deref(), Some("Rue 1"));
        assert_eq!(a.postal_code.as_deref(), Some("3000"));
        assert_eq!(a.locality.as_deref(), Some("Bern"));
    }
}
