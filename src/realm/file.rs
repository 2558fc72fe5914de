//! The realm file as written, and its checks. Unknown keys are refused.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;

use super::{
    AuditRules, AuthorizeRules, Client, ClientKind, ClientRegistry, ConsoleRules, DocumentRules,
    EnrolmentRules, GrantType, Lifetimes, LoginRules, Logo, Realm, RecoveryRules, SigningAlg,
    SmsRules, StaffRules, Terms, Texts,
};
use crate::domain::{Language, PasswordPolicy, RealmId};

/// A realm file that cannot be used, with file, key and reason.
#[derive(Debug, thiserror::Error)]
#[error("realm file {file}: key `{key}`: {reason}")]
pub struct RealmFileError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl RealmFileError {
    pub(super) fn new(file: &Path, key: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            file: file.display().to_string(),
            key: key.into(),
            reason: reason.to_string(),
        }
    }

    pub(super) fn io(path: &Path, e: std::io::Error) -> Self {
        Self::new(path, "(file)", e)
    }

    pub(super) fn none_in(dir: &Path) -> Self {
        Self::new(dir, "(directory)", "no realm file (*.toml) found")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    display_name: RawTexts,
    languages: Vec<Language>,
    default_language: Language,
    support_phone: String,
    support_hours: RawTexts,
    /// The place printed before the date on letters, e.g. "Berne".
    #[serde(default)]
    letter_place: Option<RawTexts>,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    password: PasswordPolicy,
    #[serde(default)]
    enrolment: RawEnrolment,
    #[serde(default)]
    sms: RawSms,
    #[serde(default)]
    login: RawLogin,
    #[serde(default)]
    recovery: RawRecovery,
    terms: RawTerms,
    #[serde(default)]
    documents: RawDocuments,
    #[serde(default)]
    audit: RawAudit,
    /// A file relative to the realm directory (`.svg` or `.png`, at most 256 KiB).
    logo: Option<String>,
    #[serde(default)]
    authorize: RawAuthorize,
    /// Present in a staff realm: its accounts are the support desk's staff.
    staff: Option<RawStaff>,
    /// Present in a caisse that has a console (`/{realm}/console`).
    console: Option<RawConsole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    /// The client of this realm that the consoles log in with.
    console_client: String,
    /// How long a staff member's invitation link stays usable.
    #[serde(default = "default_invitation_hours")]
    invitation_hours: u64,
}

fn default_invitation_hours() -> u64 {
    72
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    /// The staff realm whose members log in to this caisse's console.
    staff_realm: RealmId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuthorize {
    flows_per_address_per_hour: u64,
}

impl Default for RawAuthorize {
    fn default() -> Self {
        // A caisse's office behind one address starts a few hundred logins an hour at most.
        Self {
            flows_per_address_per_hour: 300,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDocuments {
    retention_years: u32,
}

impl Default for RawDocuments {
    fn default() -> Self {
        Self { retention_years: 5 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAudit {
    retention_days: u32,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: 730,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnrolment {
    activation_code_days: u64,
    email_code_minutes: u64,
    email_code_attempts: u64,
    email_sends: u64,
    transaction_minutes: u64,
    code_guesses_per_address_per_hour: u64,
    enrolments_per_code_per_day: u64,
}

impl Default for RawEnrolment {
    fn default() -> Self {
        Self {
            activation_code_days: 30,
            email_code_minutes: 30,
            email_code_attempts: 5,
            email_sends: 3,
            transaction_minutes: 120,
            code_guesses_per_address_per_hour: 20,
            enrolments_per_code_per_day: 10,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSms {
    code_seconds: u64,
    code_attempts: u64,
    resend_cooldown_seconds: u64,
    allowed_countries: Vec<String>,
    mobile_only: bool,
    per_number_per_hour: u64,
    per_number_per_day: u64,
    per_account_per_hour: u64,
    per_account_per_day: u64,
    per_address_per_hour: u64,
    per_address_per_day: u64,
}

impl Default for RawSms {
    fn default() -> Self {
        Self {
            code_seconds: 300,
            code_attempts: 5,
            resend_cooldown_seconds: 60,
            allowed_countries: vec!["CH".into(), "LI".into()],
            mobile_only: true,
            per_number_per_hour: 3,
            per_number_per_day: 10,
            per_account_per_hour: 5,
            per_account_per_day: 20,
            per_address_per_hour: 10,
            per_address_per_day: 50,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLogin {
    free_password_failures: u64,
    max_password_delay_seconds: u64,
    lock_after_failures: u64,
    lock_minutes: u64,
    password_attempts_per_address_per_hour: u64,
    password_attempts_per_address_per_day: u64,
}

impl Default for RawLogin {
    fn default() -> Self {
        Self {
            free_password_failures: 5,
            max_password_delay_seconds: 900,
            lock_after_failures: 100,
            lock_minutes: 24 * 60,
            password_attempts_per_address_per_hour: 50,
            password_attempts_per_address_per_day: 200,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRecovery {
    email_code_minutes: u64,
    code_attempts: u64,
    transaction_minutes: u64,
    starts_per_address_per_hour: u64,
    starts_per_email_per_day: u64,
    letter_requests_per_account_per_day: u64,
    letter_days: u64,
}

impl Default for RawRecovery {
    fn default() -> Self {
        Self {
            email_code_minutes: 30,
            code_attempts: 5,
            transaction_minutes: 60,
            starts_per_address_per_hour: 10,
            starts_per_email_per_day: 5,
            letter_requests_per_account_per_day: 3,
            // B-Post within Switzerland, plus a day or two for the mailroom's next batch.
            letter_days: 5,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerms {
    version: String,
    text: BTreeMap<Language, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTokens {
    authorization_code_seconds: u64,
    access_token_seconds: u64,
    id_token_seconds: u64,
    refresh_token_seconds: u64,
    session_seconds: u64,
    login_flow_seconds: u64,
    access_token_alg: SigningAlg,
    grant_absolute_seconds: u64,
}

impl Default for RawTokens {
    fn default() -> Self {
        Self {
            authorization_code_seconds: 60,
            access_token_seconds: 300,
            id_token_seconds: 300,
            refresh_token_seconds: 8 * 3600,
            session_seconds: 8 * 3600,
            login_flow_seconds: 30 * 60,
            access_token_alg: SigningAlg::ES256,
            grant_absolute_seconds: 30 * 86400,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    name: String,
    #[serde(rename = "type")]
    kind: RawKind,
    secret_sha256: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<GrantType>,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_id_token_alg")]
    id_token_signed_response_alg: SigningAlg,
    #[serde(default)]
    backchannel_logout_uri: Option<String>,
    #[serde(default = "default_true")]
    backchannel_logout_session_required: bool,
    #[serde(default)]
    resource_server: bool,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Public,
    Confidential,
}

fn default_scopes() -> Vec<String> {
    [
        "openid",
        "profile",
        "email",
        "phone",
        "address",
        "ahv",
        "offline_access",
    ]
    .map(String::from)
    .to_vec()
}

fn default_true() -> bool {
    true
}

// OIDC Core §15.1: RS256 is what every relying party can verify.
fn default_id_token_alg() -> SigningAlg {
    SigningAlg::RS256
}

pub(super) fn load(path: &Path) -> Result<Realm, RealmFileError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id: RealmId = stem
        .parse()
        .map_err(|e| RealmFileError::new(path, "(file name)", e))?;
    let text = std::fs::read_to_string(path).map_err(|e| RealmFileError::io(path, e))?;
    let de = toml::Deserializer::new(&text);
    let raw: RawRealm = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        RealmFileError::new(
            path,
            if key == "." { "(top)".into() } else { key },
            inner.message(),
        )
    })?;
    check(path, id, raw)
}

const MAX_LOGO: u64 = 256 * 1024;

fn load_logo(path: &Path, name: &str) -> Result<Logo, RealmFileError> {
    let bad = |reason: String| Keys::top(path).bad("logo", reason);
    let content_type = match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
    {
        Some(ext) if ext == "svg" => "image/svg+xml",
        Some(ext) if ext == "png" => "image/png",
        _ => return Err(bad(format!("`{name}` must be an .svg or .png file"))),
    };
    if name.contains("..") || Path::new(name).is_absolute() {
        return Err(bad(format!(
            "`{name}` must be a path inside the realm directory"
        )));
    }
    let file = path.parent().unwrap_or(Path::new(".")).join(name);
    let size = std::fs::metadata(&file)
        .map_err(|e| bad(format!("{}: {e}", file.display())))?
        .len();
    if size > MAX_LOGO {
        return Err(bad(format!("`{name}` is larger than 256 KiB")));
    }
    let bytes = std::fs::read(&file).map_err(|e| bad(format!("{}: {e}", file.display())))?;
    Ok(Logo {
        bytes: bytes.into(),
        content_type,
    })
}

/// Where a section of a realm file is: every error names the file and the dotted key.
struct Keys<'a> {
    file: &'a Path,
    /// The section's own key (`tokens`, `clients[2]`), empty at the top of the file.
    section: String,
}

impl<'a> Keys<'a> {
    fn top(file: &'a Path) -> Self {
        Self::section(file, "")
    }

    fn section(file: &'a Path, section: impl Into<String>) -> Self {
        Self {
            file,
            section: section.into(),
        }
    }

    fn key(&self, key: &str) -> String {
        match self.section.as_str() {
            "" => key.to_owned(),
            section => format!("{section}.{key}"),
        }
    }

    fn bad(&self, key: &str, reason: impl ToString) -> RealmFileError {
        RealmFileError::new(self.file, self.key(key), reason)
    }

    /// An error about the section as a whole.
    fn bad_section(&self, reason: impl ToString) -> RealmFileError {
        RealmFileError::new(self.file, self.section.clone(), reason)
    }

    fn secs(&self, key: &str, n: u64, max: u64) -> Result<Duration, RealmFileError> {
        if n == 0 || n > max {
            return Err(self.bad(key, format!("must be between 1 and {max} seconds")));
        }
        Ok(Duration::from_secs(n))
    }

    fn count(&self, key: &str, n: u64) -> Result<u64, RealmFileError> {
        if n == 0 {
            return Err(self.bad(key, "must be at least 1"));
        }
        Ok(n)
    }

    fn uri(&self, key: &str, uri: &str) -> Result<(), RealmFileError> {
        let url = url::Url::parse(uri)
            .map_err(|e| self.bad(key, format!("`{uri}` is not an absolute URL: {e}")))?;
        if url.fragment().is_some() {
            return Err(self.bad(key, "a redirect URI must not have a fragment"));
        }
        Ok(())
    }

    /// Back-Channel Logout 1.0 §2.2: an absolute URL, which MUST NOT include a fragment; only
    /// http(s), since we POST to it.
    fn backchannel_uri(&self, key: &str, uri: &str) -> Result<url::Url, RealmFileError> {
        let url = url::Url::parse(uri)
            .map_err(|e| self.bad(key, format!("`{uri}` is not an absolute URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.bad(key, format!("`{uri}` must be an http or https URL")));
        }
        if url.fragment().is_some() {
            return Err(self.bad(key, "a back-channel logout URI must not have a fragment"));
        }
        Ok(url)
    }
}

impl RawTokens {
    fn check(&self, at: &Keys) -> Result<Lifetimes, RealmFileError> {
        Ok(Lifetimes {
            // RFC 6749 §4.1.2: codes live ten minutes at most.
            authorization_code: at.secs(
                "authorization_code_seconds",
                self.authorization_code_seconds,
                600,
            )?,
            access_token: at.secs("access_token_seconds", self.access_token_seconds, 3600)?,
            id_token: at.secs("id_token_seconds", self.id_token_seconds, 3600)?,
            refresh_token: at.secs(
                "refresh_token_seconds",
                self.refresh_token_seconds,
                90 * 86400,
            )?,
            session: at.secs("session_seconds", self.session_seconds, 7 * 86400)?,
            login_flow: at.secs("login_flow_seconds", self.login_flow_seconds, 86400)?,
            grant_absolute: at.secs(
                "grant_absolute_seconds",
                self.grant_absolute_seconds,
                400 * 86400,
            )?,
        })
    }
}

impl RawClient {
    fn check(self, at: &Keys) -> Result<(Client, Option<[u8; 32]>), RealmFileError> {
        let c = self;
        if c.client_id.is_empty()
            || !c
                .client_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(at.bad("client_id", "letters, digits, - _ . only"));
        }
        let digest = match (&c.kind, &c.secret_sha256) {
            (RawKind::Public, None) => None,
            (RawKind::Public, Some(_)) => {
                return Err(at.bad("secret_sha256", "a public client has no secret"))
            }
            (RawKind::Confidential, None) => {
                return Err(at.bad(
                    "secret_sha256",
                    "a confidential client needs the SHA-256 of its secret",
                ))
            }
            (RawKind::Confidential, Some(hex_digest)) => {
                let bytes = hex::decode(hex_digest)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                Some(bytes.ok_or_else(|| at.bad("secret_sha256", "64 hexadecimal digits"))?)
            }
        };
        if c.grant_types.is_empty() {
            return Err(at.bad("grant_types", "at least one grant type"));
        }
        let wants_redirect = c.grant_types.contains(&GrantType::AuthorizationCode);
        if wants_redirect && c.redirect_uris.is_empty() {
            return Err(at.bad(
                "redirect_uris",
                "authorization_code needs at least one redirect URI",
            ));
        }
        if c.kind == RawKind::Public && c.resource_server {
            return Err(at.bad(
                "resource_server",
                "a public client cannot introspect tokens",
            ));
        }
        if c.kind == RawKind::Public && c.grant_types.contains(&GrantType::ClientCredentials) {
            return Err(at.bad(
                "grant_types",
                "a public client cannot use client_credentials",
            ));
        }
        for u in &c.redirect_uris {
            at.uri("redirect_uris", u)?;
        }
        for u in &c.post_logout_redirect_uris {
            at.uri("post_logout_redirect_uris", u)?;
        }
        let backchannel_logout_uri = match &c.backchannel_logout_uri {
            Some(u) => Some(at.backchannel_uri("backchannel_logout_uri", u)?),
            None => None,
        };
        // Only a login makes a client part of a session; anything else would never be told.
        if backchannel_logout_uri.is_some() && !wants_redirect {
            return Err(at.bad(
                "backchannel_logout_uri",
                "only a client with authorization_code takes part in sessions",
            ));
        }
        if let Some(bad) = c.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && ch != '"' && ch != '\\')
        }) {
            return Err(at.bad("scopes", format!("`{bad}` is not a scope token")));
        }
        let client = Client {
            id: c.client_id,
            name: c.name,
            kind: if c.kind == RawKind::Public {
                ClientKind::Public
            } else {
                ClientKind::Confidential
            },
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            scopes: c.scopes,
            id_token_alg: c.id_token_signed_response_alg,
            backchannel_logout_uri,
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            resource_server: c.resource_server,
        };
        Ok((client, digest))
    }
}

fn check_clients(path: &Path, raw: Vec<RawClient>) -> Result<ClientRegistry, RealmFileError> {
    let clients = raw
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.check(&Keys::section(path, format!("clients[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    ClientRegistry::new(clients).map_err(|e| Keys::section(path, "clients").bad_section(e))
}

// NIST SP 800-63B-4: at least 8 with a second factor, a permitted maximum of at least 64.
fn check_password(at: &Keys, policy: PasswordPolicy) -> Result<PasswordPolicy, RealmFileError> {
    if policy.min_length < 8 {
        return Err(at.bad("min_length", "must be at least 8"));
    }
    if policy.max_length < 64.max(policy.min_length) {
        return Err(at.bad("max_length", "must be at least 64 and at least min_length"));
    }
    Ok(policy)
}

impl RawEnrolment {
    fn check(&self, at: &Keys) -> Result<EnrolmentRules, RealmFileError> {
        Ok(EnrolmentRules {
            activation_code_validity: at.secs(
                "activation_code_days",
                self.activation_code_days.saturating_mul(86400),
                365 * 86400,
            )?,
            email_code_validity: at.secs(
                "email_code_minutes",
                self.email_code_minutes.saturating_mul(60),
                86400,
            )?,
            email_code_attempts: at.count("email_code_attempts", self.email_code_attempts)?,
            email_sends: at.count("email_sends", self.email_sends)?,
            transaction: at.secs(
                "transaction_minutes",
                self.transaction_minutes.saturating_mul(60),
                7 * 86400,
            )?,
            code_guesses_per_address_per_hour: at.count(
                "code_guesses_per_address_per_hour",
                self.code_guesses_per_address_per_hour,
            )?,
            enrolments_per_code_per_day: at.count(
                "enrolments_per_code_per_day",
                self.enrolments_per_code_per_day,
            )?,
        })
    }
}

impl RawSms {
    fn check(self, at: &Keys) -> Result<SmsRules, RealmFileError> {
        if let Some(bad) = self
            .allowed_countries
            .iter()
            .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()))
        {
            return Err(at.bad(
                "allowed_countries",
                format!("`{bad}` is not an ISO 3166 code such as CH"),
            ));
        }
        if self.allowed_countries.is_empty() {
            return Err(at.bad("allowed_countries", "at least one country"));
        }
        Ok(SmsRules {
            // NIST SP 800-63B-4 §3.1.3.1: an out-of-band secret lives 10 minutes at most.
            code_validity: at.secs("code_seconds", self.code_seconds, 600)?,
            code_attempts: at.count("code_attempts", self.code_attempts)?,
            resend_cooldown: at.secs(
                "resend_cooldown_seconds",
                self.resend_cooldown_seconds,
                3600,
            )?,
            mobile_only: self.mobile_only,
            per_number_per_hour: at.count("per_number_per_hour", self.per_number_per_hour)?,
            per_number_per_day: at.count("per_number_per_day", self.per_number_per_day)?,
            per_account_per_hour: at.count("per_account_per_hour", self.per_account_per_hour)?,
            per_account_per_day: at.count("per_account_per_day", self.per_account_per_day)?,
            per_address_per_hour: at.count("per_address_per_hour", self.per_address_per_hour)?,
            per_address_per_day: at.count("per_address_per_day", self.per_address_per_day)?,
            allowed_countries: self.allowed_countries,
        })
    }
}

impl RawLogin {
    fn check(&self, at: &Keys) -> Result<LoginRules, RealmFileError> {
        if self.lock_after_failures == 0 || self.lock_after_failures > 100 {
            return Err(at.bad("lock_after_failures", "must be between 1 and 100"));
        }
        Ok(LoginRules {
            free_password_failures: at
                .count("free_password_failures", self.free_password_failures)?,
            max_password_delay: at.secs(
                "max_password_delay_seconds",
                self.max_password_delay_seconds,
                86400,
            )?,
            lock_after_failures: self.lock_after_failures,
            lock_duration: at.secs(
                "lock_minutes",
                self.lock_minutes.saturating_mul(60),
                30 * 86400,
            )?,
            attempts_per_address_per_hour: at.count(
                "password_attempts_per_address_per_hour",
                self.password_attempts_per_address_per_hour,
            )?,
            attempts_per_address_per_day: at.count(
                "password_attempts_per_address_per_day",
                self.password_attempts_per_address_per_day,
            )?,
        })
    }
}

impl RawRecovery {
    fn check(&self, at: &Keys) -> Result<RecoveryRules, RealmFileError> {
        if self.letter_days == 0 || self.letter_days > 60 {
            return Err(at.bad("letter_days", "must be between 1 and 60"));
        }
        Ok(RecoveryRules {
            email_code_validity: at.secs(
                "email_code_minutes",
                self.email_code_minutes.saturating_mul(60),
                86400,
            )?,
            code_attempts: at.count("code_attempts", self.code_attempts)?,
            transaction: at.secs(
                "transaction_minutes",
                self.transaction_minutes.saturating_mul(60),
                86400,
            )?,
            starts_per_address_per_hour: at.count(
                "starts_per_address_per_hour",
                self.starts_per_address_per_hour,
            )?,
            starts_per_email_per_day: at
                .count("starts_per_email_per_day", self.starts_per_email_per_day)?,
            letter_requests_per_account_per_day: at.count(
                "letter_requests_per_account_per_day",
                self.letter_requests_per_account_per_day,
            )?,
            letter_days: self.letter_days,
        })
    }
}

impl RawTerms {
    /// The terms are needed in every language of the realm.
    fn check(self, at: &Keys, languages: &[Language]) -> Result<Terms, RealmFileError> {
        if self.version.trim().is_empty() {
            return Err(at.bad("version", "must not be empty"));
        }
        if let Some(missing) = languages.iter().find(|l| !self.text.contains_key(l)) {
            return Err(at.bad(
                &format!("text.{}", missing.code()),
                "the terms of use are needed in every language of the realm",
            ));
        }
        Ok(Terms {
            version: self.version,
            texts: self.text,
        })
    }
}

impl RawDocuments {
    fn check(&self, at: &Keys) -> Result<DocumentRules, RealmFileError> {
        if self.retention_years == 0 || self.retention_years > 50 {
            return Err(at.bad("retention_years", "must be between 1 and 50"));
        }
        Ok(DocumentRules {
            retention_years: self.retention_years,
        })
    }
}

impl RawAuthorize {
    fn check(&self, at: &Keys) -> Result<AuthorizeRules, RealmFileError> {
        Ok(AuthorizeRules {
            flows_per_address_per_hour: at.count(
                "flows_per_address_per_hour",
                self.flows_per_address_per_hour,
            )?,
        })
    }
}

impl RawAudit {
    fn check(&self, at: &Keys) -> Result<AuditRules, RealmFileError> {
        if !(30..=3650).contains(&self.retention_days) {
            return Err(at.bad("retention_days", "must be between 30 and 3650"));
        }
        Ok(AuditRules {
            retention: Duration::from_secs(u64::from(self.retention_days) * 86_400),
        })
    }
}

/// A text the caisse gives in one string for every language, or per language
/// (`display_name = { fr = "…", de = "…" }`): then in each language of the realm.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTexts {
    One(String),
    Each(BTreeMap<Language, String>),
}

impl RawTexts {
    fn check(
        self,
        at: &Keys,
        key: &str,
        languages: &[Language],
        default: Language,
    ) -> Result<Texts, RealmFileError> {
        let nonempty = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        match self {
            RawTexts::One(text) => {
                let text = nonempty(&text).ok_or_else(|| at.bad(key, "must not be empty"))?;
                Ok(Texts::one(text))
            }
            RawTexts::Each(map) => {
                if let Some(extra) = map.keys().find(|l| !languages.contains(l)) {
                    return Err(at.bad(
                        &format!("{key}.{extra}"),
                        "is not one of the realm's `languages`",
                    ));
                }
                let mut texts = BTreeMap::new();
                for lang in languages {
                    let text = map.get(lang).and_then(|t| nonempty(t)).ok_or_else(|| {
                        at.bad(
                            &format!("{key}.{lang}"),
                            "missing or empty: every language of the realm needs one",
                        )
                    })?;
                    texts.insert(*lang, text);
                }
                Ok(Texts::each(texts, default))
            }
        }
    }
}

fn check_languages(at: &Keys, raw: &RawRealm) -> Result<(), RealmFileError> {
    if raw.languages.is_empty() {
        return Err(at.bad("languages", "at least one language"));
    }
    if !raw.languages.contains(&raw.default_language) {
        return Err(at.bad("default_language", "must be one of `languages`"));
    }
    Ok(())
}

/// Each section checked in the order of the file's documentation; the first error stops.
fn check(path: &Path, id: RealmId, raw: RawRealm) -> Result<Realm, RealmFileError> {
    let section = |name: &str| Keys::section(path, name);
    let top = Keys::top(path);
    check_languages(&top, &raw)?;
    let (langs, default) = (&raw.languages, raw.default_language);
    let display_name = raw
        .display_name
        .check(&top, "display_name", langs, default)?;
    let support_hours = raw
        .support_hours
        .check(&top, "support_hours", langs, default)?;
    // An empty place (or none) prints the date alone.
    let letter_place = match raw.letter_place {
        Some(RawTexts::One(p)) if p.trim().is_empty() => None,
        Some(place) => Some(place.check(&top, "letter_place", langs, default)?),
        None => None,
    };
    let lifetimes = raw.tokens.check(&section("tokens"))?;
    let clients = check_clients(path, raw.clients)?;
    let password_policy = check_password(&section("password"), raw.password)?;
    let enrolment = raw.enrolment.check(&section("enrolment"))?;
    let sms = raw.sms.check(&section("sms"))?;
    let login = raw.login.check(&section("login"))?;
    let recovery = raw.recovery.check(&section("recovery"))?;
    let terms = raw.terms.check(&section("terms"), &raw.languages)?;
    let documents = raw.documents.check(&section("documents"))?;
    let authorize = raw.authorize.check(&section("authorize"))?;
    let audit = raw.audit.check(&section("audit"))?;
    let logo = match &raw.logo {
        Some(name) => Some(load_logo(path, name)?),
        None => None,
    };
    let staff = match raw.staff {
        Some(staff) => Some(staff.check(&section("staff"), &clients)?),
        None => None,
    };
    let console = raw.console.map(|c| ConsoleRules {
        staff_realm: c.staff_realm,
    });
    if staff.is_some() && console.is_some() {
        return Err(top.bad("console", "a staff realm has no console of its own"));
    }
    Ok(Realm {
        staff,
        console,
        authorize,
        logo,
        documents,
        audit,
        password_policy,
        enrolment,
        sms,
        login,
        recovery,
        terms,
        id,
        display_name,
        languages: raw.languages,
        default_language: raw.default_language,
        support_phone: raw.support_phone,
        support_hours,
        letter_place,
        lifetimes,
        access_token_alg: raw.tokens.access_token_alg,
        clients,
    })
}

impl RawStaff {
    fn check(self, at: &Keys, clients: &ClientRegistry) -> Result<StaffRules, RealmFileError> {
        if clients.get(&self.console_client).is_none() {
            return Err(at.bad(
                "console_client",
                format!("`{}` is not a client of this realm", self.console_client),
            ));
        }
        if !(1..=24 * 14).contains(&self.invitation_hours) {
            return Err(at.bad("invitation_hours", "must be between 1 and 336 hours"));
        }
        Ok(StaffRules {
            console_client: self.console_client,
            invitation: Duration::from_secs(self.invitation_hours * 3600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Realm, RealmFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    const GOOD: &str = r#"
display_name = "Test"
languages = ["fr", "de"]
default_language = "fr"
support_phone = "031 000 00 00"
support_hours = "8-12"
[terms]
version = "1"
[terms.text]
fr = "Conditions."
de = "Bedingungen."
[[clients]]
client_id = "app"
name = "App"
type = "public"
redirect_uris = ["http://127.0.0.1:1/cb"]
grant_types = ["authorization_code"]
"#;

    #[test]
    fn the_caisse_speaks_each_language_of_the_realm_or_one_for_all() {
        let realm = load_text("AK09.toml", GOOD).unwrap();
        assert_eq!(
            realm.display_name.get(Language::De),
            "Test",
            "one string serves all"
        );
        let each = GOOD
            .replace(
                "display_name = \"Test\"",
                "display_name = { fr = \"Caisse\", de = \"Kasse\" }",
            )
            .replace(
                "support_hours = \"8-12\"",
                "support_hours = { fr = \"lundi\", de = \"Montag\" }\nletter_place = { fr = \"Berne\", de = \"Bern\" }",
            );
        let realm = load_text("AK09.toml", &each).unwrap();
        assert_eq!(realm.display_name.get(Language::Fr), "Caisse");
        assert_eq!(realm.display_name.get(Language::De), "Kasse");
        assert_eq!(&*realm.display_name, "Caisse", "the default language's");
        assert_eq!(realm.support_hours.get(Language::De), "Montag");
        assert_eq!(
            realm.letter_place.as_ref().map(|p| p.get(Language::De)),
            Some("Bern")
        );
        let missing = GOOD.replace(
            "display_name = \"Test\"",
            "display_name = { fr = \"Caisse\" }",
        );
        let e = load_text("AK09.toml", &missing).unwrap_err().to_string();
        assert!(e.contains("display_name.de"), "{e}");
        let foreign = GOOD.replace(
            "support_hours = \"8-12\"",
            "support_hours = { fr = \"a\", de = \"b\", it = \"c\" }",
        );
        let e = load_text("AK09.toml", &foreign).unwrap_err().to_string();
        assert!(e.contains("support_hours.it"), "{e}");
    }

    #[test]
    fn a_good_file_loads() {
        let realm = load_text("AK09.toml", GOOD).unwrap();
        assert_eq!(realm.id.as_str(), "AK09");
        assert!(realm.clients.get("app").unwrap().is_public());
        let app = realm.clients.get("app").unwrap();
        assert!(realm.clients.redirect_allowed(app, "http://127.0.0.1:1/cb"));
        assert!(!realm
            .clients
            .redirect_allowed(app, "http://127.0.0.1:1/cb/"));
        assert!(!realm
            .clients
            .redirect_allowed(app, "http://127.0.0.1:1/cb?x=1"));
    }

    #[test]
    fn an_unknown_key_is_refused_with_file_key_and_reason() {
        let e = load_text(
            "AK09.toml",
            &GOOD.replace("support_hours", "colour = 1\nsupport_hours"),
        )
        .unwrap_err();
        assert!(e.file.ends_with("AK09.toml"));
        assert!(e.reason.contains("colour"), "{e}");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_key() {
        let e = load_text(
            "AK09.toml",
            &GOOD.replace("default_language = \"fr\"", "default_language = \"xx\""),
        )
        .unwrap_err();
        assert_eq!(e.key, "default_language", "{e}");
        let e = load_text("AK09.toml", &GOOD.replace("\"public\"", "\"secret\"")).unwrap_err();
        assert_eq!(e.key, "clients[0].type", "{e}");
        let e =
            load_text("AK09.toml", &GOOD.replace("\"public\"", "\"confidential\"")).unwrap_err();
        assert_eq!(e.key, "clients[0].secret_sha256", "{e}");
        let e = load_text(
            "AK09.toml",
            &GOOD.replace("http://127.0.0.1:1/cb", "/relative"),
        )
        .unwrap_err();
        assert_eq!(e.key, "clients[0].redirect_uris", "{e}");
        let e = load_text("ak9.toml", GOOD).unwrap_err();
        assert_eq!(e.key, "(file name)", "{e}");
    }

    #[test]
    fn the_recovery_section_has_defaults_and_checked_values() {
        let realm = load_text("AK09.toml", GOOD).unwrap();
        assert_eq!(realm.recovery.letter_days, 5);
        assert_eq!(
            realm.recovery.email_code_validity,
            Duration::from_secs(1800)
        );
        let with = |line: &str| load_text("AK09.toml", &format!("{GOOD}\n[recovery]\n{line}\n"));
        assert_eq!(with("letter_days = 10").unwrap().recovery.letter_days, 10);
        for (line, key) in [
            ("letter_days = 0", "recovery.letter_days"),
            ("letter_days = 61", "recovery.letter_days"),
            ("code_attempts = 0", "recovery.code_attempts"),
            ("email_code_minutes = 0", "recovery.email_code_minutes"),
            (
                "starts_per_email_per_day = 0",
                "recovery.starts_per_email_per_day",
            ),
        ] {
            let e = with(line).unwrap_err();
            assert_eq!(e.key, key, "{line}: {e}");
        }
        let e = with("letters = 1").unwrap_err();
        assert!(e.reason.contains("letters"), "{e}");
    }

    #[test]
    fn a_backchannel_logout_uri_must_be_absolute_http_without_fragment() {
        let with = |uri: &str| {
            load_text(
                "AK09.toml",
                &GOOD.replace(
                    "grant_types = [\"authorization_code\"]",
                    &format!(
                        "grant_types = [\"authorization_code\"]\nbackchannel_logout_uri = \"{uri}\""
                    ),
                ),
            )
        };
        let realm = with("https://app.example/bcl?x=1").unwrap();
        let app = realm.clients.get("app").unwrap();
        assert_eq!(
            app.backchannel_logout_uri.as_ref().map(|u| u.as_str()),
            Some("https://app.example/bcl?x=1")
        );
        assert!(app.backchannel_logout_session_required, "true by default");
        assert!(load_text("AK09.toml", GOOD)
            .unwrap()
            .clients
            .get("app")
            .unwrap()
            .backchannel_logout_uri
            .is_none());
        for bad in [
            "/relative",
            "https://app.example/bcl#frag",
            "ftp://app.example/bcl",
        ] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.key, "clients[0].backchannel_logout_uri", "{bad}: {e}");
        }
    }

    #[test]
    fn confidential_clients_authenticate_by_digest_in_constant_time() {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"s3cret"));
        let text = GOOD.replace(
            "type = \"public\"",
            &format!("type = \"confidential\"\nsecret_sha256 = \"{digest}\""),
        );
        let realm = load_text("AK09.toml", &text).unwrap();
        assert!(realm.clients.authenticate("app", Some("s3cret")).is_some());
        assert!(realm.clients.authenticate("app", Some("s3creT")).is_none());
        assert!(realm.clients.authenticate("app", None).is_none());
        assert!(realm
            .clients
            .authenticate("nobody", Some("s3cret"))
            .is_none());
    }
}
