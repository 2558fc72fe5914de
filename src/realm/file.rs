//! The realm file as written, and its checks. Unknown keys are refused.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;

use super::{
    AuditRules, AuthorizeRules, Client, ClientKind, ClientRegistry, DocumentRules, EnrolmentRules,
    GrantType, Lifetimes, LoginRules, Logo, Realm, SigningAlg, SmsRules, Terms,
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
    fn new(file: &Path, key: impl Into<String>, reason: impl ToString) -> Self {
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
    display_name: String,
    languages: Vec<Language>,
    default_language: Language,
    support_phone: String,
    support_hours: String,
    /// The place printed before the date on letters, e.g. "Berne".
    #[serde(default)]
    letter_place: Option<String>,
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
    terms: RawTerms,
    #[serde(default)]
    documents: RawDocuments,
    #[serde(default)]
    audit: RawAudit,
    /// A file relative to the realm directory (`.svg` or `.png`, at most 256 KiB).
    logo: Option<String>,
    #[serde(default)]
    authorize: RawAuthorize,
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
    let bad = |reason: String| RealmFileError::new(path, "logo", reason);
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

fn secs(path: &Path, key: &str, n: u64, max: u64) -> Result<Duration, RealmFileError> {
    if n == 0 || n > max {
        return Err(RealmFileError::new(
            path,
            key,
            format!("must be between 1 and {max} seconds"),
        ));
    }
    Ok(Duration::from_secs(n))
}

fn check_uri(path: &Path, key: &str, uri: &str) -> Result<(), RealmFileError> {
    let url = url::Url::parse(uri).map_err(|e| {
        RealmFileError::new(path, key, format!("`{uri}` is not an absolute URL: {e}"))
    })?;
    if url.fragment().is_some() {
        return Err(RealmFileError::new(
            path,
            key,
            "a redirect URI must not have a fragment",
        ));
    }
    Ok(())
}

/// Back-Channel Logout 1.0 §2.2: an absolute URL, which MUST NOT include a fragment; only
/// http(s), since we POST to it.
fn check_backchannel_uri(path: &Path, key: &str, uri: &str) -> Result<url::Url, RealmFileError> {
    let url = url::Url::parse(uri).map_err(|e| {
        RealmFileError::new(path, key, format!("`{uri}` is not an absolute URL: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RealmFileError::new(
            path,
            key,
            format!("`{uri}` must be an http or https URL"),
        ));
    }
    if url.fragment().is_some() {
        return Err(RealmFileError::new(
            path,
            key,
            "a back-channel logout URI must not have a fragment",
        ));
    }
    Ok(url)
}

fn check(path: &Path, id: RealmId, raw: RawRealm) -> Result<Realm, RealmFileError> {
    if raw.languages.is_empty() {
        return Err(RealmFileError::new(
            path,
            "languages",
            "at least one language",
        ));
    }
    if !raw.languages.contains(&raw.default_language) {
        return Err(RealmFileError::new(
            path,
            "default_language",
            "must be one of `languages`",
        ));
    }
    let t = &raw.tokens;
    let lifetimes = Lifetimes {
        // RFC 6749 §4.1.2: codes live ten minutes at most.
        authorization_code: secs(
            path,
            "tokens.authorization_code_seconds",
            t.authorization_code_seconds,
            600,
        )?,
        access_token: secs(
            path,
            "tokens.access_token_seconds",
            t.access_token_seconds,
            3600,
        )?,
        id_token: secs(path, "tokens.id_token_seconds", t.id_token_seconds, 3600)?,
        refresh_token: secs(
            path,
            "tokens.refresh_token_seconds",
            t.refresh_token_seconds,
            90 * 86400,
        )?,
        session: secs(path, "tokens.session_seconds", t.session_seconds, 7 * 86400)?,
        login_flow: secs(
            path,
            "tokens.login_flow_seconds",
            t.login_flow_seconds,
            86400,
        )?,
        grant_absolute: secs(
            path,
            "tokens.grant_absolute_seconds",
            t.grant_absolute_seconds,
            400 * 86400,
        )?,
    };
    let mut clients = Vec::new();
    for (i, c) in raw.clients.into_iter().enumerate() {
        let key = |k: &str| format!("clients[{i}].{k}");
        if c.client_id.is_empty()
            || !c
                .client_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(RealmFileError::new(
                path,
                key("client_id"),
                "letters, digits, - _ . only",
            ));
        }
        let digest = match (&c.kind, &c.secret_sha256) {
            (RawKind::Public, None) => None,
            (RawKind::Public, Some(_)) => {
                return Err(RealmFileError::new(
                    path,
                    key("secret_sha256"),
                    "a public client has no secret",
                ))
            }
            (RawKind::Confidential, None) => {
                return Err(RealmFileError::new(
                    path,
                    key("secret_sha256"),
                    "a confidential client needs the SHA-256 of its secret",
                ))
            }
            (RawKind::Confidential, Some(hex_digest)) => {
                let bytes = hex::decode(hex_digest)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                Some(bytes.ok_or_else(|| {
                    RealmFileError::new(path, key("secret_sha256"), "64 hexadecimal digits")
                })?)
            }
        };
        if c.grant_types.is_empty() {
            return Err(RealmFileError::new(
                path,
                key("grant_types"),
                "at least one grant type",
            ));
        }
        let wants_redirect = c.grant_types.contains(&GrantType::AuthorizationCode);
        if wants_redirect && c.redirect_uris.is_empty() {
            return Err(RealmFileError::new(
                path,
                key("redirect_uris"),
                "authorization_code needs at least one redirect URI",
            ));
        }
        if c.kind == RawKind::Public && c.resource_server {
            return Err(RealmFileError::new(
                path,
                key("resource_server"),
                "a public client cannot introspect tokens",
            ));
        }
        if c.kind == RawKind::Public && c.grant_types.contains(&GrantType::ClientCredentials) {
            return Err(RealmFileError::new(
                path,
                key("grant_types"),
                "a public client cannot use client_credentials",
            ));
        }
        for u in &c.redirect_uris {
            check_uri(path, &key("redirect_uris"), u)?;
        }
        for u in &c.post_logout_redirect_uris {
            check_uri(path, &key("post_logout_redirect_uris"), u)?;
        }
        let backchannel_logout_uri = match &c.backchannel_logout_uri {
            Some(u) => Some(check_backchannel_uri(
                path,
                &key("backchannel_logout_uri"),
                u,
            )?),
            None => None,
        };
        // Only a login makes a client part of a session; anything else would never be told.
        if backchannel_logout_uri.is_some() && !wants_redirect {
            return Err(RealmFileError::new(
                path,
                key("backchannel_logout_uri"),
                "only a client with authorization_code takes part in sessions",
            ));
        }
        if let Some(bad) = c.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && ch != '"' && ch != '\\')
        }) {
            return Err(RealmFileError::new(
                path,
                key("scopes"),
                format!("`{bad}` is not a scope token"),
            ));
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
        clients.push((client, digest));
    }
    let clients =
        ClientRegistry::new(clients).map_err(|e| RealmFileError::new(path, "clients", e))?;
    let password_policy = raw.password;
    // NIST SP 800-63B-4: at least 8 with a second factor, a permitted maximum of at least 64.
    if password_policy.min_length < 8 {
        return Err(RealmFileError::new(
            path,
            "password.min_length",
            "must be at least 8",
        ));
    }
    if password_policy.max_length < 64.max(password_policy.min_length) {
        return Err(RealmFileError::new(
            path,
            "password.max_length",
            "must be at least 64 and at least min_length",
        ));
    }
    let e = &raw.enrolment;
    let count = |key: &str, n: u64| {
        if n == 0 {
            Err(RealmFileError::new(path, key, "must be at least 1"))
        } else {
            Ok(n)
        }
    };
    let enrolment = EnrolmentRules {
        activation_code_validity: secs(
            path,
            "enrolment.activation_code_days",
            e.activation_code_days.saturating_mul(86400),
            365 * 86400,
        )?,
        email_code_validity: secs(
            path,
            "enrolment.email_code_minutes",
            e.email_code_minutes.saturating_mul(60),
            86400,
        )?,
        email_code_attempts: count("enrolment.email_code_attempts", e.email_code_attempts)?,
        email_sends: count("enrolment.email_sends", e.email_sends)?,
        transaction: secs(
            path,
            "enrolment.transaction_minutes",
            e.transaction_minutes.saturating_mul(60),
            7 * 86400,
        )?,
        code_guesses_per_address_per_hour: count(
            "enrolment.code_guesses_per_address_per_hour",
            e.code_guesses_per_address_per_hour,
        )?,
        enrolments_per_code_per_day: count(
            "enrolment.enrolments_per_code_per_day",
            e.enrolments_per_code_per_day,
        )?,
    };
    let m = &raw.sms;
    if let Some(bad) = m
        .allowed_countries
        .iter()
        .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()))
    {
        return Err(RealmFileError::new(
            path,
            "sms.allowed_countries",
            format!("`{bad}` is not an ISO 3166 code such as CH"),
        ));
    }
    if m.allowed_countries.is_empty() {
        return Err(RealmFileError::new(
            path,
            "sms.allowed_countries",
            "at least one country",
        ));
    }
    let sms = SmsRules {
        // NIST SP 800-63B-4 §3.1.3.1: an out-of-band secret lives 10 minutes at most.
        code_validity: secs(path, "sms.code_seconds", m.code_seconds, 600)?,
        code_attempts: count("sms.code_attempts", m.code_attempts)?,
        resend_cooldown: secs(
            path,
            "sms.resend_cooldown_seconds",
            m.resend_cooldown_seconds,
            3600,
        )?,
        allowed_countries: m.allowed_countries.clone(),
        mobile_only: m.mobile_only,
        per_number_per_hour: count("sms.per_number_per_hour", m.per_number_per_hour)?,
        per_number_per_day: count("sms.per_number_per_day", m.per_number_per_day)?,
        per_account_per_hour: count("sms.per_account_per_hour", m.per_account_per_hour)?,
        per_account_per_day: count("sms.per_account_per_day", m.per_account_per_day)?,
        per_address_per_hour: count("sms.per_address_per_hour", m.per_address_per_hour)?,
        per_address_per_day: count("sms.per_address_per_day", m.per_address_per_day)?,
    };
    let l = &raw.login;
    if l.lock_after_failures == 0 || l.lock_after_failures > 100 {
        return Err(RealmFileError::new(
            path,
            "login.lock_after_failures",
            "must be between 1 and 100",
        ));
    }
    let login = LoginRules {
        free_password_failures: count("login.free_password_failures", l.free_password_failures)?,
        max_password_delay: secs(
            path,
            "login.max_password_delay_seconds",
            l.max_password_delay_seconds,
            86400,
        )?,
        lock_after_failures: l.lock_after_failures,
        lock_duration: secs(
            path,
            "login.lock_minutes",
            l.lock_minutes.saturating_mul(60),
            30 * 86400,
        )?,
        attempts_per_address_per_hour: count(
            "login.password_attempts_per_address_per_hour",
            l.password_attempts_per_address_per_hour,
        )?,
        attempts_per_address_per_day: count(
            "login.password_attempts_per_address_per_day",
            l.password_attempts_per_address_per_day,
        )?,
    };
    if raw.terms.version.trim().is_empty() {
        return Err(RealmFileError::new(
            path,
            "terms.version",
            "must not be empty",
        ));
    }
    if let Some(missing) = raw
        .languages
        .iter()
        .find(|l| !raw.terms.text.contains_key(l))
    {
        return Err(RealmFileError::new(
            path,
            format!("terms.text.{}", missing.code()),
            "the terms of use are needed in every language of the realm",
        ));
    }
    let terms = Terms {
        version: raw.terms.version,
        texts: raw.terms.text,
    };
    if raw.documents.retention_years == 0 || raw.documents.retention_years > 50 {
        return Err(RealmFileError::new(
            path,
            "documents.retention_years",
            "must be between 1 and 50",
        ));
    }
    let documents = DocumentRules {
        retention_years: raw.documents.retention_years,
    };
    if raw.authorize.flows_per_address_per_hour == 0 {
        return Err(RealmFileError::new(
            path,
            "authorize.flows_per_address_per_hour",
            "must be at least 1",
        ));
    }
    let authorize = AuthorizeRules {
        flows_per_address_per_hour: raw.authorize.flows_per_address_per_hour,
    };
    if !(30..=3650).contains(&raw.audit.retention_days) {
        return Err(RealmFileError::new(
            path,
            "audit.retention_days",
            "must be between 30 and 3650",
        ));
    }
    let audit = AuditRules {
        retention: Duration::from_secs(u64::from(raw.audit.retention_days) * 86_400),
    };
    let logo = match &raw.logo {
        Some(name) => Some(load_logo(path, name)?),
        None => None,
    };
    Ok(Realm {
        authorize,
        logo,
        documents,
        audit,
        password_policy,
        enrolment,
        sms,
        login,
        terms,
        id,
        display_name: raw.display_name,
        languages: raw.languages,
        default_language: raw.default_language,
        support_phone: raw.support_phone,
        support_hours: raw.support_hours,
        letter_place: raw
            .letter_place
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty()),
        lifetimes,
        access_token_alg: raw.tokens.access_token_alg,
        clients,
    })
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
