//! Realms: one per caisse, read from `realm-config/<REALM>.toml` and checked at start.

mod client;
mod file;

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

pub use client::{Client, ClientKind, ClientRegistry, GrantType};
pub use file::RealmFileError;

use crate::domain::{Language, PasswordPolicy, RealmId};

/// Signature algorithms a realm signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::ES256, SigningAlg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

/// Lifetimes of what a realm issues.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    pub authorization_code: Duration,
    pub access_token: Duration,
    pub id_token: Duration,
    pub refresh_token: Duration,
    pub session: Duration,
    pub login_flow: Duration,
    /// How long a grant may be refreshed, counted from the login it came from, however
    /// often it is refreshed.
    pub grant_absolute: Duration,
}

impl Lifetimes {
    /// Logout Tokens (Back-Channel Logout 1.0) are delivered within seconds; two minutes
    /// cover the retry and clock skew at the client.
    pub const LOGOUT_TOKEN: Duration = Duration::from_secs(120);

    /// The longest any signed token of this realm stays valid: how long a retired key must
    /// stay in the JWKS.
    pub fn longest_signed_token(&self) -> Duration {
        self.access_token.max(self.id_token).max(Self::LOGOUT_TOKEN)
    }
}

/// Enrolment by activation letter: lifetimes and limits.
#[derive(Clone, Debug)]
pub struct EnrolmentRules {
    pub activation_code_validity: Duration,
    pub email_code_validity: Duration,
    /// Wrong e-mail codes in one enrolment before it ends.
    pub email_code_attempts: u64,
    /// Mails one enrolment may send (the first included).
    pub email_sends: u64,
    /// How long an enrolment may stay idle between two steps.
    pub transaction: Duration,
    /// Wrong activation codes per client address per hour.
    pub code_guesses_per_address_per_hour: u64,
    /// Enrolments one valid code may start per day (a stolen letter cannot be hammered).
    pub enrolments_per_code_per_day: u64,
}

/// SMS codes and the limits that keep SMS pumping away.
#[derive(Clone, Debug)]
pub struct SmsRules {
    pub code_validity: Duration,
    /// Wrong SMS codes per enrolment or login before it ends.
    pub code_attempts: u64,
    pub resend_cooldown: Duration,
    /// ISO 3166 regions whose numbers are accepted.
    pub allowed_countries: Vec<String>,
    pub mobile_only: bool,
    pub per_number_per_hour: u64,
    pub per_number_per_day: u64,
    pub per_account_per_hour: u64,
    pub per_account_per_day: u64,
    pub per_address_per_hour: u64,
    pub per_address_per_day: u64,
}

/// Password attempts: a growing delay, never a hard lockout before `lock_after_failures`.
#[derive(Clone, Debug)]
pub struct LoginRules {
    /// Consecutive failures for an e-mail address before each further attempt must wait.
    pub free_password_failures: u64,
    /// The delay doubles with each failure up to this.
    pub max_password_delay: Duration,
    /// Consecutive failures after which the account is locked for `lock_duration` or until
    /// support unlocks it (NIST SP 800-63B-4 §3.2.2: at most 100).
    pub lock_after_failures: u64,
    /// How long that lock lasts.
    pub lock_duration: Duration,
    /// Passwords checked per client address, whatever the accounts (credential stuffing).
    pub attempts_per_address_per_hour: u64,
    pub attempts_per_address_per_day: u64,
}

/// Recovery without a phone call: a forgotten password, a lost phone.
#[derive(Clone, Debug)]
pub struct RecoveryRules {
    /// How long the code of a « mot de passe oublié » mail works.
    pub email_code_validity: Duration,
    /// Wrong mail codes (and, separately, wrong second-factor codes) before a recovery ends.
    pub code_attempts: u64,
    /// How long a recovery may stay idle between two steps.
    pub transaction: Duration,
    /// Recoveries one client address may start per hour.
    pub starts_per_address_per_hour: u64,
    /// Recoveries started per day for one e-mail address (and so for one account).
    pub starts_per_email_per_day: u64,
    /// Letters one account may ask for per day (each request sends a mail).
    pub letter_requests_per_account_per_day: u64,
    /// The days a requested letter takes to arrive, as the person is told.
    pub letter_days: u64,
}

/// The portal's documents of this caisse.
#[derive(Clone, Debug)]
pub struct DocumentRules {
    /// Documents are purged this many years after their issue date.
    pub retention_years: u32,
}

/// The audit trail of this caisse.
#[derive(Clone, Debug)]
pub struct AuditRules {
    /// Events older than this are purged (daily by the server).
    pub retention: Duration,
}

/// The caisse's logo, shown in every page's header: an SVG or PNG file beside the realm files.
#[derive(Clone, Debug)]
pub struct Logo {
    pub bytes: bytes::Bytes,
    pub content_type: &'static str,
}

/// The terms of use in force: a version and its text per language.
#[derive(Clone, Debug)]
pub struct Terms {
    pub version: String,
    pub texts: BTreeMap<Language, String>,
}

impl Terms {
    /// The text in `lang`, else in the first language that has one.
    pub fn text(&self, lang: Language) -> &str {
        self.texts
            .get(&lang)
            .or_else(|| self.texts.values().next())
            .map_or("", String::as_str)
    }
}

/// A text of the caisse in each language of the realm (display name, support hours, the
/// letter's place): one string for all, or one per language, complete over the realm's
/// languages (checked when the realm file is read). Derefs to the default language's text,
/// for what has no reader (logs, the mailroom's batch title).
#[derive(Clone, Debug)]
pub struct Texts {
    default: String,
    each: BTreeMap<Language, String>,
}

impl Texts {
    pub fn one(text: String) -> Texts {
        Texts {
            default: text,
            each: BTreeMap::new(),
        }
    }

    /// `each` holds every language of the realm; `default` is the realm's default language.
    pub fn each(each: BTreeMap<Language, String>, default: Language) -> Texts {
        let text = each.get(&default).cloned().unwrap_or_default();
        Texts {
            default: text,
            each,
        }
    }

    /// The text in the reader's language.
    pub fn get(&self, lang: Language) -> &str {
        self.each.get(&lang).unwrap_or(&self.default)
    }
}

impl std::ops::Deref for Texts {
    type Target = str;
    fn deref(&self) -> &str {
        &self.default
    }
}

impl std::fmt::Display for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.default)
    }
}

impl serde::Serialize for Texts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.default)
    }
}

/// One caisse: its settings and its relying parties.
#[derive(Debug)]
pub struct Realm {
    pub id: RealmId,
    pub display_name: Texts,
    pub languages: Vec<Language>,
    pub default_language: Language,
    pub support_phone: String,
    pub support_hours: Texts,
    /// The place before the date on letters; without it, letters carry the date alone.
    pub letter_place: Option<Texts>,
    pub lifetimes: Lifetimes,
    pub access_token_alg: SigningAlg,
    pub clients: ClientRegistry,
    pub password_policy: PasswordPolicy,
    pub enrolment: EnrolmentRules,
    pub sms: SmsRules,
    pub login: LoginRules,
    pub recovery: RecoveryRules,
    pub terms: Terms,
    pub documents: DocumentRules,
    pub audit: AuditRules,
    pub logo: Option<Logo>,
    pub authorize: AuthorizeRules,
    /// Set in a staff realm: its accounts are the support desk's staff.
    pub staff: Option<StaffRules>,
    /// Set in a caisse whose console staff open at `/{realm}/console`.
    pub console: Option<ConsoleRules>,
}

/// What makes a realm a staff realm.
#[derive(Clone, Debug)]
pub struct StaffRules {
    /// The client of the staff realm that every caisse's console logs in with.
    pub console_client: String,
    /// How long an invitation link stays usable.
    pub invitation: std::time::Duration,
}

/// A caisse's console.
#[derive(Clone, Debug)]
pub struct ConsoleRules {
    /// The staff realm whose members log in to it.
    pub staff_realm: RealmId,
}

/// Limits at the authorization endpoint.
#[derive(Clone, Debug)]
pub struct AuthorizeRules {
    /// Login flows one client address may start per hour: each one is stored until it
    /// expires, for anybody who asks.
    pub flows_per_address_per_hour: u64,
}

impl Realm {
    pub fn offers(&self, lang: Language) -> bool {
        self.languages.contains(&lang)
    }
}

/// All realms, by id.
#[derive(Clone, Debug, Default)]
pub struct Realms(Arc<BTreeMap<RealmId, Arc<Realm>>>);

impl Realms {
    /// Reads every `*.toml` in `dir`; the first bad file stops the start.
    pub fn load_dir(dir: &Path) -> Result<Realms, RealmFileError> {
        let entries = std::fs::read_dir(dir).map_err(|e| RealmFileError::io(dir, e))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut realms = BTreeMap::new();
        for path in paths {
            let realm = file::load(&path)?;
            realms.insert(realm.id.clone(), Arc::new(realm));
        }
        if realms.is_empty() {
            return Err(RealmFileError::none_in(dir));
        }
        for realm in realms.values() {
            if let Some(console) = &realm.console {
                let staff = realms.get(&console.staff_realm);
                if staff.is_none_or(|s| s.staff.is_none()) {
                    return Err(RealmFileError::new(
                        &dir.join(format!("{}.toml", realm.id)),
                        "console.staff_realm",
                        format!(
                            "`{}` is not a staff realm of this directory",
                            console.staff_realm
                        ),
                    ));
                }
            }
        }
        Ok(Realms(Arc::new(realms)))
    }

    pub fn get(&self, id: &RealmId) -> Option<&Arc<Realm>> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Realm>> {
        self.0.values()
    }
}
