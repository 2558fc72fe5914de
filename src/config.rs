//! Layered settings (defaults < `connect.toml` < `CONNECT_*`) parsed into a typed `Config`.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// What the process runs with, every value already checked.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    /// Put in front of every Redis key, so that several installations can share a server.
    pub redis_prefix: String,
    /// IdP base URL; the issuer of realm R is `public_url/R`.
    pub public_url: Url,
    pub bind: SocketAddr,
    pub portal_bind: SocketAddr,
    pub portal_url: Url,
    pub realm_dir: PathBuf,
    pub master_key: MasterKeySource,
    pub log_format: LogFormat,
    pub log_level: String,
    pub password_hashing: PasswordHashing,
    pub max_body_bytes: usize,
    /// Dev mode adds `/_dev/outbox` and demo data. No setting or variable reaches it: only the
    /// `connect dev` command (and the bare `connect`) turns it on, so that `serve` and
    /// `portal` cannot be talked into showing every code.
    pub dev: bool,
    /// Whether `serve` and `portal` may start with the outbox as mail or SMS transport (a
    /// staging system); they refuse to otherwise, and warn at every start when allowed.
    pub allow_outbox: bool,
    /// `smtp://`, `smtps://` (implicit TLS) or `smtp://…?tls=required` (STARTTLS), with
    /// user and password in the URL when the server asks for them. Absent: the outbox.
    pub smtp_url: Option<SecretString>,
    /// A PEM file of extra trusted root certificates for SMTP over TLS (a caisse's own CA).
    pub smtp_ca_file: Option<PathBuf>,
    /// Longest wait for one mail to be handed to the SMTP server.
    pub smtp_timeout_seconds: u64,
    /// The `From:` of every mail.
    pub mail_from: String,
    /// The HTTP SMS gateway; absent URL: the outbox.
    pub sms: SmsGateway,
    /// Where mail and SMS go without SMTP or gateway: `data_dir/outbox`.
    pub outbox_dir: PathBuf,
    /// A header that a trusted reverse proxy sets to the client's address (`x-forwarded-for`);
    /// absent: the socket peer. Read only from `trusted_proxies`.
    pub client_ip_header: Option<String>,
    /// The reverse proxies whose `client_ip_header` is believed: the client is the right-most
    /// address of the header that is not one of them.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The listener of `/metrics`, apart from the public one. After the IdP has bound it, the
    /// address it got (tests ask for port 0).
    pub metrics_bind: SocketAddr,
    /// How long a client may take to send a request's head, and then its body; a request whose
    /// body has not arrived by then is answered 408 (slowloris).
    pub read_timeout: std::time::Duration,
    /// After SIGTERM or Ctrl-C, how long open requests may take to finish before the server
    /// exits anyway.
    pub shutdown_timeout: std::time::Duration,
    /// How long a server trusts its cached signing keys before reading them again from the
    /// database: the longest a key rotation by another replica or `connect admin` takes to
    /// reach this one.
    pub keys_reload: std::time::Duration,
    /// The document portal (`connect portal`, and `connect dev` beside the IdP).
    pub portal: PortalConfig,
}

/// The portal's settings, checked.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// The realm whose caisse the portal serves and whose IdP it logs in through.
    pub realm: crate::domain::RealmId,
    /// The IdP's issuer, found by discovery: `public_url/realm` unless set.
    pub issuer: Url,
    pub client_id: String,
    /// `None` outside dev mode means: not configured (the portal refuses to start).
    pub client_secret: Option<SecretString>,
    /// Where document bodies go: a local directory (default `data_dir/documents`) or an
    /// S3-compatible bucket (`s3://bucket/prefix`, credentials from the usual `AWS_*` variables).
    pub store_url: String,
    pub max_document_bytes: usize,
    pub session_seconds: u64,
    /// The portal's own database (`sqlite://data_dir/portal.db` unless set): never the IdP's.
    pub database_url: String,
    /// The portal's own short-lived store; absent: in-process. Never the IdP's Redis, whose
    /// sessions and flows a compromised portal could otherwise rewrite.
    pub redis_url: Option<String>,
    /// The portal's own secret key (CSRF, session and login-binding hashes), created at
    /// first start like the IdP's master key; never the IdP's master key.
    pub secret_key: MasterKeySource,
    /// The client ids whose access tokens may use the delivery API; `None`: not configured
    /// (`caisse-docs` and `bench-cc` in dev mode, nobody otherwise).
    pub delivery_clients: Option<Vec<String>>,
    /// The listener of the portal's `/metrics`, apart from its public one. After the portal
    /// has bound it, the address it got (tests ask for port 0).
    pub metrics_bind: SocketAddr,
}

impl PortalConfig {
    /// The sample caisse systems of the shipped realm files, allowed to deliver in dev mode.
    pub const DEV_DELIVERY_CLIENTS: [&'static str; 2] = ["caisse-docs", "bench-cc"];

    /// Who may deliver: the configured list, else the dev clients in dev mode, else nobody.
    pub fn delivery_clients(&self, dev: bool) -> Vec<String> {
        match (&self.delivery_clients, dev) {
            (Some(list), _) => list.clone(),
            (None, true) => Self::DEV_DELIVERY_CLIENTS.map(str::to_owned).to_vec(),
            (None, false) => Vec::new(),
        }
    }
}

/// The portal's settings as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPortal {
    pub realm: crate::domain::RealmId,
    #[serde(deserialize_with = "typed::optional_http_url")]
    pub issuer: Option<Url>,
    pub client_id: String,
    #[serde(skip_serializing)]
    pub client_secret: Option<SecretString>,
    pub store_url: Option<String>,
    pub max_document_bytes: usize,
    pub session_seconds: u64,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    #[serde(skip_serializing)]
    pub secret_key: Option<SecretString>,
    pub secret_key_file: Option<PathBuf>,
    pub delivery_clients: Option<Vec<String>>,
    #[serde(deserialize_with = "typed::socket_addr")]
    pub metrics_bind: SocketAddr,
}

impl Default for RawPortal {
    fn default() -> Self {
        Self {
            realm: "AK00".parse().expect("a realm name"),
            issuer: None,
            client_id: "portal".into(),
            client_secret: None,
            store_url: None,
            max_document_bytes: 20 * 1024 * 1024,
            session_seconds: 8 * 3600,
            database_url: None,
            redis_url: None,
            secret_key: None,
            secret_key_file: None,
            delivery_clients: None,
            metrics_bind: SocketAddr::from(([127, 0, 0, 1], 9465)),
        }
    }
}

/// A generic HTTP SMS gateway: one POST per message with a JSON body made from
/// `body_template`, where `{to}`, `{text}` and `{sender}` are replaced by JSON-escaped values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsGateway {
    pub url: Option<String>,
    /// Sent as the `Authorization` header, e.g. `Bearer …` (a secret: from the environment).
    #[serde(skip_serializing)]
    pub auth_header: Option<SecretString>,
    pub body_template: String,
    /// The sender name or number shown on the phone, where the gateway allows one.
    pub sender: String,
    pub timeout_seconds: u64,
    /// Attempts in all when the gateway answers 5xx or does not answer (no retry on 4xx).
    pub max_attempts: u32,
}

impl Default for SmsGateway {
    fn default() -> Self {
        Self {
            url: None,
            auth_header: None,
            body_template: r#"{"to":"{to}","text":"{text}","from":"{sender}"}"#.into(),
            sender: "connect".into(),
            timeout_seconds: 10,
            max_attempts: 3,
        }
    }
}

#[derive(Clone, Debug)]
pub enum MasterKeySource {
    /// Base64 of 32 bytes, from `CONNECT_MASTER_KEY`.
    Inline(SecretString),
    /// A file holding the base64 key; created with a fresh key when missing.
    File(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Argon2id cost. The defaults are OWASP's (19 MiB, 2 passes, 1 lane).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once; bounds memory under a login storm.
    pub concurrency: usize,
    /// How many more may wait for a turn; beyond that a login answers 503 with `Retry-After`
    /// at once instead of queueing without bound.
    #[serde(default = "default_hash_queue")]
    pub queue: usize,
}

fn default_hash_queue() -> usize {
    64
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: default_hash_queue(),
        }
    }
}

/// The settings as written, before checking. Every field has a default.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    data_dir: String,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: String,
    #[serde(deserialize_with = "typed::http_url")]
    public_url: Url,
    #[serde(deserialize_with = "typed::socket_addr")]
    bind: SocketAddr,
    #[serde(deserialize_with = "typed::socket_addr")]
    portal_bind: SocketAddr,
    #[serde(deserialize_with = "typed::http_url")]
    portal_url: Url,
    realm_dir: PathBuf,
    #[serde(skip_serializing)]
    master_key: Option<SecretString>,
    master_key_file: Option<PathBuf>,
    log_format: LogFormat,
    log_level: String,
    password_hashing: PasswordHashing,
    max_body_bytes: usize,
    allow_outbox: bool,
    #[serde(skip_serializing)]
    smtp_url: Option<SecretString>,
    smtp_ca_file: Option<PathBuf>,
    smtp_timeout_seconds: u64,
    mail_from: String,
    sms: SmsGateway,
    client_ip_header: Option<String>,
    #[serde(
        deserialize_with = "typed::networks",
        serialize_with = "typed::as_strings"
    )]
    trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(deserialize_with = "typed::socket_addr")]
    metrics_bind: SocketAddr,
    read_timeout_seconds: u64,
    shutdown_timeout_seconds: u64,
    keys_reload_seconds: u64,
    portal: RawPortal,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            database_url: None,
            redis_url: None,
            redis_prefix: "connect:".into(),
            public_url: Url::parse("http://127.0.0.1:8080").expect("a URL"),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            portal_bind: SocketAddr::from(([127, 0, 0, 1], 8090)),
            portal_url: Url::parse("http://127.0.0.1:8090").expect("a URL"),
            realm_dir: "realm-config".into(),
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            password_hashing: PasswordHashing::default(),
            max_body_bytes: 64 * 1024,
            allow_outbox: false,
            smtp_url: None,
            smtp_ca_file: None,
            smtp_timeout_seconds: 30,
            mail_from: "connect <no-reply@connect.localhost>".into(),
            sms: SmsGateway::default(),
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            metrics_bind: SocketAddr::from(([127, 0, 0, 1], 9464)),
            read_timeout_seconds: 30,
            shutdown_timeout_seconds: 20,
            keys_reload_seconds: 30,
            portal: RawPortal::default(),
        }
    }
}

/// A setting that is wrong, named by its key.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

fn bad(key: &str, problem: impl ToString) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.to_string(),
    }
}

impl Config {
    /// Reads defaults, then the TOML file if given (or `connect.toml` when present), then
    /// `CONNECT_*` variables, where `__` separates nested keys.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(bad(
                    "--config",
                    format!("{} does not exist", path.display()),
                ))
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("connect.toml")),
        }
        // CONNECT_TEST_* belong to the test suite and CONNECT_OPERATOR to `connect admin`
        // (who runs a command), not to the server's settings.
        figment = figment.merge(
            Env::prefixed("CONNECT_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    !k.starts_with("test_") && k != "operator"
                })
                .split("__"),
        );
        Self::extract(&figment)
    }

    /// Every value as serde reads it (a wrong one named by its key and where it came from),
    /// then each section checked.
    fn extract(figment: &Figment) -> Result<Config, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(|e| {
            if matches!(&e.kind, figment::error::Kind::UnknownField(field, _) if field == "dev") {
                return bad(
                    "dev",
                    "is not a setting: dev mode (demo data, /_dev/outbox) is the `connect dev` command",
                );
            }
            let key = if e.path.is_empty() {
                "(file)".to_owned()
            } else {
                e.path.join(".")
            };
            let problem = e.kind.to_string();
            let origin = e.metadata.as_ref().map(|m| m.name.to_string());
            match origin {
                Some(origin) => bad(&key, format!("{problem} (from {origin})")),
                None => bad(&key, problem),
            }
        })?;
        raw.into_config()
    }

    /// The issuer of a realm: the public URL with the realm as last path segment.
    pub fn issuer(&self, realm: &crate::domain::RealmId) -> String {
        format!(
            "{}/{}",
            self.public_url.as_str().trim_end_matches('/'),
            realm
        )
    }

    /// Whether cookies may carry `Secure` and the `__Host-` prefix.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// Settings that serde reads into their types, with problems told as the checks by hand
/// told them; figment adds the key and where the value came from.
mod typed {
    use std::net::SocketAddr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use url::Url;

    /// An http(s) URL without query or fragment.
    pub(super) fn check_http_url(value: &str) -> Result<Url, String> {
        let url = Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or a fragment".into());
        }
        Ok(url)
    }

    pub(super) fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        check_http_url(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    pub(super) fn optional_http_url<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Url>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|value| check_http_url(&value).map_err(D::Error::custom))
            .transpose()
    }

    pub(super) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let value = String::deserialize(d)?;
        value.parse().map_err(|_| {
            D::Error::custom(format!(
                "`{value}` is not an address such as 127.0.0.1:8080"
            ))
        })
    }

    /// A list in TOML, or one comma-separated string (as an environment variable gives it).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        List(Vec<String>),
        Text(String),
    }

    /// Networks in CIDR notation, or single addresses (a network of one).
    pub(super) fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        let items: Vec<String> = match OneOrMany::deserialize(d)? {
            OneOrMany::List(items) => items,
            OneOrMany::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        items
            .iter()
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
            .map(|value| {
                value
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        D::Error::custom(format!(
                            "`{value}` is not an address or a CIDR such as 10.0.0.0/8"
                        ))
                    })
            })
            .collect()
    }

    pub(super) fn as_strings<S: Serializer>(
        items: &[ipnet::IpNet],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(items.iter().map(ToString::to_string))
    }
}

/// lettre's `from_url` forms: `smtp://` plain, `smtp://…?tls=required|opportunistic`
/// (STARTTLS), `smtps://` (implicit TLS), credentials as `user:password@`. Problems are
/// told without the URL, which may hold a password.
fn check_smtp_url(value: &str) -> Result<(), ConfigError> {
    const KEY: &str = "smtp_url";
    let url = Url::parse(value).map_err(|e| bad(KEY, format!("not a URL ({e})")))?;
    let mut tls = None;
    for (name, value) in url.query_pairs() {
        match &*name {
            "tls" if tls.is_none() => tls = Some(value.into_owned()),
            _ => return Err(bad(KEY, "the only query parameter is `tls`, once")),
        }
    }
    match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required" | "opportunistic")) | ("smtps", None) => {}
        ("smtp", Some(_)) => return Err(bad(KEY, "`tls` must be `required` or `opportunistic`")),
        ("smtps", Some(_)) => return Err(bad(KEY, "`tls` is for smtp://; smtps:// is always TLS")),
        _ => return Err(bad(KEY, "must start with smtp:// or smtps://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(KEY, "has no host"));
    }
    if url.fragment().is_some() {
        return Err(bad(KEY, "must not have a fragment"));
    }
    // lettre uses credentials only when a password is present: a lone user would be ignored.
    if url.username().is_empty() != url.password().is_none() {
        return Err(bad(
            KEY,
            "give both user and password (`user:password@host`), or neither",
        ));
    }
    let decodes = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .is_ok()
    };
    if !decodes(url.username()) || !url.password().is_none_or(decodes) {
        return Err(bad(KEY, "user and password must be percent-encoded UTF-8"));
    }
    Ok(())
}

/// A readable PEM file with at least one certificate.
fn check_pem_file(key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    let path = path.display();
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad(key, format!("{path} holds no PEM certificate")));
    }
    Ok(())
}

impl SmsGateway {
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            // The URL is not repeated: a gateway may take its key in the query.
            let parsed = Url::parse(url).map_err(|e| bad("sms.url", format!("not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad("sms.url", "must be an http or https URL"));
            }
        }
        if let Some(header) = &self.auth_header {
            let value = header.expose_secret();
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                return Err(bad(
                    "sms.auth_header",
                    "must be a non-empty header value of visible ASCII",
                ));
            }
        }
        if self.timeout_seconds == 0 {
            return Err(bad("sms.timeout_seconds", "must be at least 1"));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(bad("sms.max_attempts", "must be between 1 and 10"));
        }
        const KEY: &str = "sms.body_template";
        for placeholder in ["{to}", "{text}"] {
            if !self.body_template.contains(placeholder) {
                return Err(bad(KEY, format!("must contain {placeholder}")));
            }
        }
        // Quotes, a backslash, a line break and accents must all survive as JSON strings.
        let (to, text) = ("+41790000000", "Code \"12\\34\"\nvalable é");
        let body: serde_json::Value = serde_json::from_str(&crate::notify::render_sms_body(
            &self.body_template,
            &self.sender,
            to,
            text,
        ))
        .map_err(|e| bad(KEY, format!("does not give valid JSON ({e})")))?;
        if !holds_string(&body, to) || !holds_string(&body, text) {
            return Err(bad(KEY, "{to} and {text} must stand inside JSON strings"));
        }
        Ok(())
    }
}

/// Whether some string in `value` (key or value, at any depth) contains `needle`.
fn holds_string(value: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|v| holds_string(v, needle)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(needle) || holds_string(v, needle)),
        _ => false,
    }
}

/// Where the IdP keeps what the portal must never share.
struct IdpSecrets<'a> {
    database_url: &'a str,
    master_key: &'a MasterKeySource,
}

fn check_database_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(())
    } else {
        Err(bad(key, "must start with sqlite: or postgres://"))
    }
}

fn check_redis_url(key: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(())
    } else {
        Err(bad(key, "must start with redis:// or rediss://"))
    }
}

/// Whether two key sources name the same key (the same inline value or the same file).
fn same_key(a: &MasterKeySource, b: &MasterKeySource) -> bool {
    match (a, b) {
        (MasterKeySource::Inline(a), MasterKeySource::Inline(b)) => {
            a.expose_secret().trim() == b.expose_secret().trim()
        }
        (MasterKeySource::File(a), MasterKeySource::File(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        _ => false,
    }
}

/// One key given inline or as a file, never both; absent, the file `default`.
fn key_source(
    key: &str,
    inline: Option<SecretString>,
    file: Option<PathBuf>,
    default: PathBuf,
) -> Result<MasterKeySource, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(bad(key, format!("set {key} or {key}_file, not both"))),
        (Some(key), None) => Ok(MasterKeySource::Inline(key)),
        (None, Some(file)) => Ok(MasterKeySource::File(file)),
        (None, None) => Ok(MasterKeySource::File(default)),
    }
}

/// The database URL as given, else the SQLite file `name` in the data directory.
fn database_url(
    key: &str,
    given: Option<String>,
    data_dir: &str,
    name: &str,
) -> Result<String, ConfigError> {
    match given {
        Some(url) => {
            check_database_url(key, &url)?;
            Ok(url)
        }
        None => Ok(format!(
            "sqlite://{}/{name}",
            data_dir.trim_end_matches('/')
        )),
    }
}

impl RawPortal {
    fn check(
        self,
        public_url: &Url,
        data_dir: &str,
        idp: IdpSecrets<'_>,
    ) -> Result<PortalConfig, ConfigError> {
        let realm = self.realm;
        let issuer = match self.issuer {
            Some(issuer) => issuer,
            None => typed::check_http_url(&format!(
                "{}/{realm}",
                public_url.as_str().trim_end_matches('/')
            ))
            .map_err(|e| bad("portal.issuer", e))?,
        };
        let store_url = match self.store_url {
            Some(u) if u.starts_with("s3://") || u.starts_with("file://") || u.starts_with('/') => {
                u
            }
            Some(_) => {
                return Err(bad(
                    "portal.store_url",
                    "must be s3://bucket[/prefix], file:///dir or an absolute directory",
                ))
            }
            None => format!("{}/documents", data_dir.trim_end_matches('/')),
        };
        if self.max_document_bytes < 1024 {
            return Err(bad("portal.max_document_bytes", "must be at least 1024"));
        }
        if self.session_seconds < 60 {
            return Err(bad("portal.session_seconds", "must be at least 60"));
        }
        if self.client_id.is_empty() {
            return Err(bad("portal.client_id", "must not be empty"));
        }
        // Design: the portal holds nothing of the IdP's, so that its compromise yields no
        // password hash, grant or signing key.
        let database_url = database_url(
            "portal.database_url",
            self.database_url,
            data_dir,
            "portal.db",
        )?;
        if database_url == idp.database_url {
            return Err(bad(
                "portal.database_url",
                "must not be the IdP's database (database_url)",
            ));
        }
        if let Some(url) = &self.redis_url {
            check_redis_url("portal.redis_url", url)?;
        }
        let secret_key = key_source(
            "portal.secret_key",
            self.secret_key,
            self.secret_key_file,
            PathBuf::from(data_dir).join("portal.key"),
        )?;
        if same_key(&secret_key, idp.master_key) {
            return Err(bad(
                "portal.secret_key",
                "must not be the IdP's master key: give the portal a key of its own",
            ));
        }
        if let Some(clients) = &self.delivery_clients {
            if clients.iter().any(|c| c.trim().is_empty() || c.trim() != c) {
                return Err(bad(
                    "portal.delivery_clients",
                    "client ids must be non-empty, without spaces around them",
                ));
            }
        }
        Ok(PortalConfig {
            realm,
            issuer,
            client_id: self.client_id,
            client_secret: self.client_secret,
            store_url,
            max_document_bytes: self.max_document_bytes,
            session_seconds: self.session_seconds,
            database_url,
            redis_url: self.redis_url,
            secret_key,
            delivery_clients: self.delivery_clients,
            metrics_bind: self.metrics_bind,
        })
    }
}

impl PasswordHashing {
    fn check(&self) -> Result<(), ConfigError> {
        if self.memory_kib < 8 * self.parallelism.max(1)
            || self.iterations == 0
            || self.parallelism == 0
        {
            return Err(bad(
                "password_hashing",
                "memory_kib must be at least 8 per lane, iterations and parallelism at least 1",
            ));
        }
        if self.concurrency == 0 {
            return Err(bad("password_hashing.concurrency", "must be at least 1"));
        }
        Ok(())
    }
}

/// The mail settings: the SMTP server, if any, and the sender.
fn check_mail(raw: &RawConfig) -> Result<(), ConfigError> {
    if let Some(url) = &raw.smtp_url {
        check_smtp_url(url.expose_secret())?;
    }
    if let Some(path) = &raw.smtp_ca_file {
        check_pem_file("smtp_ca_file", path)?;
    }
    if raw.smtp_timeout_seconds == 0 {
        return Err(bad("smtp_timeout_seconds", "must be at least 1"));
    }
    raw.mail_from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| {
            bad(
                "mail_from",
                format!("not a mail address such as `connect <no-reply@example.ch>` ({e})"),
            )
        })?;
    Ok(())
}

/// The HTTP server's limits and the proxies it believes.
fn check_server(raw: &RawConfig) -> Result<(), ConfigError> {
    if raw.max_body_bytes < 1024 {
        return Err(bad("max_body_bytes", "must be at least 1024"));
    }
    if raw.client_ip_header.is_some() && raw.trusted_proxies.is_empty() {
        return Err(bad(
            "trusted_proxies",
            "client_ip_header is set: name the proxies (addresses or CIDRs) it is read from",
        ));
    }
    if raw.read_timeout_seconds == 0 {
        return Err(bad("read_timeout_seconds", "must be at least 1"));
    }
    if raw.keys_reload_seconds == 0 {
        return Err(bad("keys_reload_seconds", "must be at least 1"));
    }
    Ok(())
}

impl RawConfig {
    fn into_config(self) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(&self.data_dir);
        let database_url = database_url(
            "database_url",
            self.database_url.clone(),
            &self.data_dir,
            "connect.db",
        )?;
        if let Some(url) = &self.redis_url {
            check_redis_url("redis_url", url)?;
        }
        let master_key = key_source(
            "master_key",
            self.master_key.clone(),
            self.master_key_file.clone(),
            data_dir.join("master.key"),
        )?;
        let portal = self.portal.clone().check(
            &self.public_url,
            &self.data_dir,
            IdpSecrets {
                database_url: &database_url,
                master_key: &master_key,
            },
        )?;
        self.password_hashing.check()?;
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| bad("log_level", e))?;
        check_mail(&self)?;
        self.sms.check()?;
        check_server(&self)?;
        Ok(Config {
            public_url: self.public_url,
            bind: self.bind,
            portal_bind: self.portal_bind,
            portal_url: self.portal_url,
            realm_dir: self.realm_dir,
            database_url,
            redis_url: self.redis_url,
            redis_prefix: self.redis_prefix,
            master_key,
            log_format: self.log_format,
            log_level: self.log_level,
            password_hashing: self.password_hashing,
            max_body_bytes: self.max_body_bytes,
            dev: false,
            allow_outbox: self.allow_outbox,
            smtp_url: self.smtp_url,
            smtp_ca_file: self.smtp_ca_file,
            smtp_timeout_seconds: self.smtp_timeout_seconds,
            mail_from: self.mail_from,
            sms: self.sms,
            outbox_dir: data_dir.join("outbox"),
            data_dir,
            client_ip_header: self.client_ip_header.map(|h| h.to_ascii_lowercase()),
            trusted_proxies: self.trusted_proxies,
            metrics_bind: self.metrics_bind,
            read_timeout: std::time::Duration::from_secs(self.read_timeout_seconds),
            shutdown_timeout: std::time::Duration::from_secs(self.shutdown_timeout_seconds),
            keys_reload: std::time::Duration::from_secs(self.keys_reload_seconds),
            portal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(RawConfig) -> RawConfig) -> Result<Config, ConfigError> {
        f(RawConfig::default()).into_config()
    }

    /// The defaults with `toml` on top, read as `load` reads a file.
    fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        Config::extract(
            &Figment::from(Serialized::defaults(RawConfig::default())).merge(Toml::string(toml)),
        )
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = with(|r| r).unwrap();
        assert_eq!(c.database_url, "sqlite://data/connect.db");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.issuer(&"AK00".parse().unwrap()),
            "http://127.0.0.1:8080/AK00"
        );
        assert!(!c.is_https());
    }

    #[test]
    fn metrics_listen_on_loopback_and_reads_have_a_deadline_by_default() {
        let c = with(|r| r).unwrap();
        assert_eq!(c.metrics_bind.to_string(), "127.0.0.1:9464");
        assert_ne!(c.metrics_bind, c.bind);
        // `connect dev` runs both servers: their metrics listeners must not collide.
        assert_eq!(c.portal.metrics_bind.to_string(), "127.0.0.1:9465");
        let e = from_toml("portal.metrics_bind = \"everywhere\"").unwrap_err();
        assert_eq!(e.key, "portal.metrics_bind");
        assert_eq!(c.read_timeout, std::time::Duration::from_secs(30));
        assert!(!c.dev && !c.allow_outbox);
        let e = with(|r| RawConfig {
            read_timeout_seconds: 0,
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "read_timeout_seconds");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidrs_and_the_header_needs_them() {
        let proxies = |list: &str| {
            from_toml(&format!(
                "client_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = {list}"
            ))
        };
        let c = proxies("\"10.0.0.0/8, 127.0.0.1 ,::1\"").unwrap();
        assert_eq!(c.client_ip_header.as_deref(), Some("x-forwarded-for"));
        let shown: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        let c = proxies("[\"192.0.2.7/24\"]").unwrap();
        assert_eq!(c.trusted_proxies[0].to_string(), "192.0.2.0/24");
        for bad in ["10.0.0.0/33", "proxy.example.ch", "10.0.0"] {
            let e = proxies(&format!("[\"{bad}\"]")).unwrap_err();
            assert_eq!(e.key, "trusted_proxies", "{bad}");
            assert!(
                e.problem
                    .contains(&format!("`{bad}` is not an address or a CIDR")),
                "{e}"
            );
        }
        let e = proxies("[]").unwrap_err();
        assert_eq!(
            e.key, "trusted_proxies",
            "a header from nobody in particular"
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness error type
    fn dev_is_no_setting_and_trusted_proxies_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CONNECT_CLIENT_IP_HEADER", "x-forwarded-for");
            jail.set_env("CONNECT_TRUSTED_PROXIES", "10.1.0.0/16,10.2.0.1");
            // Who runs `connect admin`, not a setting: no unknown-key error.
            jail.set_env("CONNECT_OPERATOR", "m.muster");
            let c = Config::load(None).unwrap();
            assert_eq!(c.trusted_proxies.len(), 2);
            jail.create_file("dev.toml", "dev = true")?;
            let e = Config::load(Some("dev.toml".as_ref())).unwrap_err();
            assert_eq!(e.key, "dev");
            assert!(e.to_string().contains("connect dev"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let e = from_toml("bind = \"nowhere\"").unwrap_err();
        assert_eq!(e.key, "bind");
        assert!(
            e.problem
                .starts_with("`nowhere` is not an address such as 127.0.0.1:8080"),
            "{e}"
        );
        let e = from_toml("public_url = \"ftp://x\"").unwrap_err();
        assert_eq!(e.key, "public_url");
        assert!(e.problem.starts_with("must be an http or https URL"), "{e}");
        let e = from_toml("portal.issuer = \"https://idp.example.ch/AK00?x=1\"").unwrap_err();
        assert_eq!(e.key, "portal.issuer");
        let e = from_toml("portal.realm = \"ak 00\"").unwrap_err();
        assert_eq!(e.key, "portal.realm");
        let e = with(|r| RawConfig {
            database_url: Some("mysql://x".into()),
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "database_url");
        let e = with(|r| RawConfig {
            log_level: "[[[".into(),
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "log_level");
    }

    #[test]
    fn smtp_urls_are_checked_without_showing_the_password() {
        let smtp = |url: &str| {
            with(|r| RawConfig {
                smtp_url: Some(url.to_owned().into()),
                ..r
            })
        };
        for good in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.ch:587?tls=required",
            "smtp://mail.example.ch?tls=opportunistic",
            "smtps://user:p%40ss@mail.example.ch:465",
            "smtp://user:pw@mail.example.ch:587/client.example.ch?tls=required",
        ] {
            assert!(smtp(good).is_ok(), "{good}");
        }
        for bad in [
            "mail.example.ch:25",
            "http://mail.example.ch",
            "smtp://user:s3cret@mail.example.ch:notaport",
            "smtp://user:s3cret@mail.example.ch?tls=always",
            "smtps://user:s3cret@mail.example.ch?tls=required",
            "smtp://user:s3cret@mail.example.ch?tls=required&x=1",
            "smtp://user@mail.example.ch",
            "smtp://:s3cret@mail.example.ch",
            "smtp://user:%ff%fe@mail.example.ch",
        ] {
            let e = smtp(bad).unwrap_err();
            assert_eq!(e.key, "smtp_url", "{bad}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let e = with(|r| RawConfig {
            smtp_ca_file: Some("/nonexistent/ca.pem".into()),
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "smtp_ca_file");
        let e = with(|r| RawConfig {
            mail_from: "not an address".into(),
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "mail_from");
    }

    #[test]
    fn sms_body_template_must_give_json_with_to_and_text() {
        let gateway = |template: &str| {
            with(|r| RawConfig {
                sms: SmsGateway {
                    body_template: template.into(),
                    ..SmsGateway::default()
                },
                ..r
            })
        };
        assert!(
            gateway(r#"{"messages":[{"to":["{to}"],"body":"{text}","from":"{sender}"}]}"#).is_ok()
        );
        assert!(gateway(r#"{"to":"{to}","text":"Code: {text}"}"#).is_ok());
        for bad in [
            r#"{"to":"{to}"}"#,
            r#"{"text":"{text}"}"#,
            r#"{"to":{to},"text":"{text}"}"#,
            r#"{"to":"{to}","text":"{text}""#,
            r#"to={to}&text={text}"#,
        ] {
            assert_eq!(gateway(bad).unwrap_err().key, "sms.body_template", "{bad}");
        }
        let e = with(|r| RawConfig {
            sms: SmsGateway {
                url: Some("ftp://sms.example.ch".into()),
                ..SmsGateway::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "sms.url");
        let e = with(|r| RawConfig {
            sms: SmsGateway {
                max_attempts: 0,
                ..SmsGateway::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "sms.max_attempts");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness error type
    fn environment_overrides_file_and_typos_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "bind = \"127.0.0.1:9000\"\nlog_level = \"debug\"")?;
            jail.set_env("CONNECT_BIND", "127.0.0.1:9100");
            jail.set_env("CONNECT_PASSWORD_HASHING__ITERATIONS", "3");
            let c = Config::load(Some("c.toml".as_ref())).unwrap();
            assert_eq!(c.bind.to_string(), "127.0.0.1:9100");
            assert_eq!(c.log_level, "debug");
            assert_eq!(c.password_hashing.iterations, 3);
            jail.create_file("typo.toml", "bnd = \"x\"")?;
            let e = Config::load(Some("typo.toml".as_ref())).unwrap_err();
            assert!(e.to_string().contains("bnd"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_portal_has_its_own_database_store_and_key_by_default() {
        let c = with(|r| r).unwrap();
        assert_eq!(c.portal.database_url, "sqlite://data/portal.db");
        assert_ne!(c.portal.database_url, c.database_url);
        assert!(c.portal.redis_url.is_none());
        assert!(matches!(
            &c.portal.secret_key,
            MasterKeySource::File(p) if p == std::path::Path::new("data/portal.key")
        ));
    }

    #[test]
    fn the_portal_refuses_the_idps_database_and_master_key() {
        let e = with(|r| RawConfig {
            database_url: Some("postgres://db/connect".into()),
            portal: RawPortal {
                database_url: Some("postgres://db/connect".into()),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "portal.database_url");
        let e = with(|r| RawConfig {
            portal: RawPortal {
                database_url: Some("mysql://db/portal".into()),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "portal.database_url");
        let key = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
        let e = with(|r| RawConfig {
            master_key: Some(key.to_owned().into()),
            portal: RawPortal {
                secret_key: Some(key.to_owned().into()),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "portal.secret_key");
        assert!(!e.to_string().contains(key), "{e}");
        let e = with(|r| RawConfig {
            master_key_file: Some("/etc/connect/master.key".into()),
            portal: RawPortal {
                secret_key_file: Some("/etc/connect/master.key".into()),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "portal.secret_key");
    }

    #[test]
    fn delivery_clients_are_the_dev_clients_in_dev_mode_and_nobody_otherwise() {
        let c = with(|r| r).unwrap();
        assert_eq!(c.portal.delivery_clients(true), ["caisse-docs", "bench-cc"]);
        assert!(c.portal.delivery_clients(false).is_empty());
        let c = with(|r| RawConfig {
            portal: RawPortal {
                delivery_clients: Some(vec!["rentes".into()]),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap();
        assert_eq!(c.portal.delivery_clients(true), ["rentes"]);
        assert_eq!(c.portal.delivery_clients(false), ["rentes"]);
        let e = with(|r| RawConfig {
            portal: RawPortal {
                delivery_clients: Some(vec![" ".into()]),
                ..RawPortal::default()
            },
            ..r
        })
        .unwrap_err();
        assert_eq!(e.key, "portal.delivery_clients");
    }
}
