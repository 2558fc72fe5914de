//! `spawn_app()` and what tests do with a running server.

use std::time::Duration;

use connect::{
    app::{App, AppState},
    clock::Clock,
    config::{Config, MasterKeySource, PasswordHashing},
    domain::{Email, Language, RealmId},
    keys::{KeyRing, MasterKey},
    realm::{Realms, SigningAlg},
    storage::{accounts, Db},
};
use reqwest::{redirect::Policy, Response};
use url::Url;
use webauthn_authenticator_rs::{softpasskey::SoftPasskey, WebauthnAuthenticator};
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
};

pub const PORTAL_SECRET: &str = "portal-dev-secret";
pub const PORTAL_REDIRECT: &str = "http://127.0.0.1:8090/callback";
pub const MOBILE_REDIRECT: &str = "http://127.0.0.1:8091/callback";
pub const PASSWORD: &str = "Velo-Bern-1950";
/// The PKCE verifier of the tests' code flows (every client sends PKCE, RFC 9700 §2.1.1):
/// `authorize_and_login` sends its challenge unless the query has its own.
pub const PORTAL_VERIFIER: &str = "test-verifier-of-the-portal-0123456789-abcdefghij";

/// The S256 challenge of `PORTAL_VERIFIER` (BASE64URL(SHA-256(verifier))).
pub const PORTAL_CHALLENGE: &str = "pVFSLitW9eWGQur1MDYCxYQ9-aX3lA06U7I808TUQDY";

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    /// A browser: keeps cookies, does not follow redirects.
    pub browser: reqwest::Client,
    /// A back-channel client without cookies.
    pub api: reqwest::Client,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

/// A fresh PostgreSQL database for one test, when the suite runs against PostgreSQL.
async fn test_database(dir: &std::path::Path) -> String {
    fresh_database(dir, "connect.db").await
}

/// The portal's own database, never the IdP's: a SQLite file of its own, or a PostgreSQL
/// database of its own.
pub async fn portal_database(dir: &std::path::Path) -> String {
    fresh_database(dir, "portal.db").await
}

async fn fresh_database(dir: &std::path::Path, file: &str) -> String {
    let Ok(admin_url) = std::env::var("CONNECT_TEST_DATABASE_URL") else {
        return format!("sqlite://{}/{file}", dir.display());
    };
    use sqlx::Connection;
    let name = format!("connect_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("CONNECT_TEST_DATABASE_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = Url::parse(&admin_url).expect("CONNECT_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::load(Some(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect-test.toml"),
    ))
    .expect("test configuration");
    c.data_dir = dir.to_path_buf();
    // Loading derived it from the default data_dir; mail and SMS stay in the test's directory.
    c.outbox_dir = dir.join("outbox");
    c.realm_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
    c.master_key = MasterKeySource::Inline(base64_key().into());
    // Cheap hashing in tests, as ory/hydra does; production cost is tested in passwords.rs.
    c.password_hashing = PasswordHashing {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        concurrency: 4,
        queue: 64,
    };
    c.redis_url = std::env::var("CONNECT_TEST_REDIS_URL").ok();
    c.redis_prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    // The portal's own database, store and key (loading derived them from the default data_dir).
    c.portal.database_url = format!("sqlite://{}/portal.db", dir.display());
    c.portal.redis_url = c.redis_url.clone();
    c.portal.secret_key = MasterKeySource::File(dir.join("portal.key"));
    // The sample caisse systems, as in dev mode.
    c.portal.delivery_clients = Some(vec!["caisse-docs".into(), "bench-cc".into()]);
    c
}

fn base64_key() -> String {
    use base64::Engine;
    let _ = MasterKey::generate();
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Installs the signing keys of `tests/fixtures/keys` in the database of a server about to
/// start, which then generates none: RSA-2048 costs seconds of CPU in a debug build. A realm
/// without fixture keys gets fresh ones, and rotation still generates real keys.
async fn install_fixture_keys(config: &Config) {
    let db = Db::connect(&config.database_url).await.expect("database");
    db.migrate().await.expect("migrations");
    let master = MasterKey::load(&config.master_key).expect("master key");
    let ring = KeyRing::new(db, master, Clock::manual());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let realms = Realms::load_dir(&config.realm_dir).expect("realm files");
    for realm in realms.iter() {
        for alg in SigningAlg::ALL {
            let file = dir.join(format!("{}-{}.der", realm.id, alg.as_str()));
            if let Ok(der) = std::fs::read(file) {
                ring.install(&realm.id, alg, &der)
                    .await
                    .expect("fixture key");
            }
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(edit: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = test_config(dir.path());
    config.public_url = format!("http://{addr}").parse().expect("url");
    config.bind = addr;
    config.database_url = test_database(dir.path()).await;
    edit(&mut config);
    install_fixture_keys(&config).await;
    let app = App::with_listener(config, Clock::manual(), listener)
        .await
        .expect("app starts");
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        base: format!("http://{addr}"),
        state,
        browser: reqwest::Client::builder()
            .redirect(Policy::none())
            .cookie_store(true)
            .build()
            .expect("client"),
        api: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
        _dir: std::sync::Arc::new(dir),
    }
}

pub use crate::text::*;

pub fn realm(id: &str) -> RealmId {
    id.parse().expect("realm id")
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no Location header; status {}", res.status()))
}

impl TestApp {
    /// A second browser (its own cookies) on the same server.
    pub fn sharing(other: &TestApp) -> TestApp {
        TestApp {
            base: other.base.clone(),
            state: other.state.clone(),
            browser: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .expect("client"),
            api: other.api.clone(),
            _dir: other._dir.clone(),
        }
    }

    /// A second browser on the same server that names itself `user_agent`.
    pub fn sharing_as(other: &TestApp, user_agent: &str) -> TestApp {
        TestApp {
            browser: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .user_agent(user_agent)
                .build()
                .expect("client"),
            ..TestApp::sharing(other)
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/{realm}", self.base)
    }

    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    pub fn advance(&self, secs: u64) {
        self.state.clock.advance(Duration::from_secs(secs));
    }

    /// An account as `connect admin account create` makes it; returns its id (the `sub`).
    /// Anna holds the AHV number 756.1234.5678.97; others have none (numbers are unique).
    pub async fn create_account(&self, realm_id: &str, email: &str) -> String {
        let ahv = (email == "anna@example.ch").then(|| "756.1234.5678.97".parse().expect("ahv"));
        let hash = self
            .state
            .passwords
            .hash(PASSWORD.to_owned().into())
            .await
            .expect("hash");
        let realm = realm(realm_id);
        let email: Email = email.parse().expect("email");
        let new = accounts::NewAccount {
            realm: &realm,
            email: &email,
            password_hash: &hash,
            given_name: "Anna",
            family_name: "Muster",
            ahv: ahv.as_ref(),
            phone: Some("+41791234567"),
            language: Language::Fr,
        };
        accounts::create(&self.state.db, &new, self.clock().unix())
            .await
            .expect("account")
    }

    pub async fn get(&self, url: &str) -> Response {
        self.browser.get(url).send().await.expect("GET")
    }

    /// Follows the browser from a login page URL through the form, and through the resume
    /// endpoint when the login finished an interaction; returns the last answer.
    pub async fn submit_login(&self, login_url: &str, email: &str, password: &str) -> Response {
        let res = self.submit_login_step(login_url, email, password).await;
        self.resumed(res).await
    }

    /// As [`TestApp::submit_login`], but returns the answer of the login's last POST (where
    /// the session cookie is set), before the resume endpoint.
    pub async fn submit_login_step(
        &self,
        login_url: &str,
        email: &str,
        password: &str,
    ) -> Response {
        let url = if login_url.starts_with('/') {
            self.url(login_url)
        } else {
            login_url.to_owned()
        };
        let page = self.get(&url).await;
        assert_eq!(page.status(), 200, "login page");
        let html = page.text().await.expect("html");
        let csrf = form_value(&html, "csrf").expect("csrf field");
        let mut form = vec![
            ("csrf", csrf),
            ("email", email.to_owned()),
            ("password", password.to_owned()),
        ];
        if let Some(flow) = form_value(&html, "flow") {
            form.push(("flow", flow));
        }
        let realm = url
            .trim_start_matches(&self.base)
            .split('/')
            .nth(1)
            .expect("realm in path")
            .to_owned();
        let res = self
            .browser
            .post(self.url(&format!("/{realm}/login")))
            .form(&form)
            .send()
            .await
            .expect("POST login");
        // The account has a mobile number: the SMS step follows, as a person would do it.
        let sms_step = format!("/{realm}/login/sms");
        if res.status() == 303 && location(&res).starts_with(&sms_step) {
            let to = location(&res);
            return self.submit_sms_code_step(&to, &self.last_sms_code()).await;
        }
        res
    }

    /// A login that finished an interaction sends the browser to the protocol's resume
    /// endpoint: followed, as the browser would, so that the answer is the protocol's.
    pub async fn resumed(&self, res: Response) -> Response {
        if res.status() != 303 || !location(&res).contains("/authorize/resume/") {
            return res;
        }
        self.get(&self.url(&location(&res))).await
    }

    /// Opens the SMS step page and submits `code`; the answer, through the resume endpoint
    /// when the login finished an interaction.
    pub async fn submit_sms_code(&self, sms_url: &str, code: &str) -> Response {
        let res = self.submit_sms_code_step(sms_url, code).await;
        self.resumed(res).await
    }

    /// Opens the SMS step page and submits `code`; the answer to the POST.
    pub async fn submit_sms_code_step(&self, sms_url: &str, code: &str) -> Response {
        let page = self.get(&self.url(sms_url)).await;
        assert_eq!(page.status(), 200, "SMS step page");
        let html = page.text().await.expect("html");
        let csrf = form_value(&html, "csrf").expect("csrf field");
        let flow = form_value(&html, "flow").expect("flow field");
        let path = sms_url.split('?').next().expect("path");
        self.browser
            .post(self.url(path))
            .form(&[
                ("csrf", csrf.as_str()),
                ("flow", flow.as_str()),
                ("code", code),
            ])
            .send()
            .await
            .expect("POST SMS code")
    }

    /// Every SMS of the outbox, oldest first: (number, text).
    pub fn sms_outbox(&self) -> Vec<(String, String)> {
        let path = self.state.config.outbox_dir.join("sms.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("SMS line is JSON");
                (
                    v["to"].as_str().expect("to").to_owned(),
                    v["text"].as_str().expect("text").to_owned(),
                )
            })
            .collect()
    }

    /// The six-digit code of the latest SMS.
    pub fn last_sms_code(&self) -> String {
        let (_, text) = self.sms_outbox().pop().expect("an SMS was sent");
        six_digits(&text).expect("a six-digit code in the SMS")
    }

    /// Authorization request from the browser, login if asked, and the final redirect to the client.
    pub async fn authorize_and_login(
        &self,
        realm: &str,
        query: &[(&str, &str)],
        email: &str,
    ) -> String {
        let mut query = query.to_vec();
        if !query.iter().any(|(k, _)| *k == "code_challenge") {
            query.push(("code_challenge", PORTAL_CHALLENGE));
            query.push(("code_challenge_method", "S256"));
        }
        let res = self
            .browser
            .get(self.url(&format!("/{realm}/authorize")))
            .query(&query)
            .send()
            .await
            .expect("authorize");
        assert_eq!(res.status(), 303, "authorize redirects");
        let mut to = location(&res);
        if to.starts_with(&format!("/{realm}/login")) {
            let res = self.submit_login(&to, email, PASSWORD).await;
            assert_eq!(res.status(), 303, "login redirects");
            to = location(&res);
        }
        to
    }

    pub async fn token(
        &self,
        realm: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Response {
        let mut req = self
            .api
            .post(self.url(&format!("/{realm}/token")))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.expect("token request")
    }
}

impl TestApp {
    /// The portal's code exchange for the code in `callback`; the JSON token response.
    pub async fn portal_tokens(&self, realm: &str, callback: &str) -> serde_json::Value {
        let code = query_param(callback, "code").expect("code in callback");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", PORTAL_VERIFIER),
        ];
        let res = self
            .token(realm, &form, Some(("portal", PORTAL_SECRET)))
            .await;
        assert_eq!(res.status(), 200, "code exchange");
        res.json().await.expect("token JSON")
    }

    /// RFC 7662 introspection by the bench client.
    pub async fn introspect(&self, realm: &str, token: &str) -> serde_json::Value {
        let res = self
            .api
            .post(self.url(&format!("/{realm}/introspect")))
            .basic_auth("bench-cc", Some("bench-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspect");
        res.json().await.expect("introspection JSON")
    }
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The action of the first POST form of a page.
pub fn form_action(html: &str) -> Option<String> {
    let html = &unescape(html);
    let start =
        html.find("<form method=\"post\" action=\"")? + "<form method=\"post\" action=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A mail of the outbox, decoded.
pub struct OutboxMail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl TestApp {
    /// Opens `page`, fills its first form with `fields` (CSRF token and hidden flow fields
    /// taken from the page) and submits it, as a browser would.
    pub async fn fill(&self, page: &str, fields: &[(&str, &str)]) -> Response {
        let url = if page.starts_with('/') {
            self.url(page)
        } else {
            page.to_owned()
        };
        let res = self.get(&url).await;
        assert_eq!(res.status(), 200, "GET {page}");
        let html = res.text().await.expect("html");
        self.submit_on(&html, fields).await
    }

    /// Submits the first form of an already loaded page.
    pub async fn submit_on(&self, html: &str, fields: &[(&str, &str)]) -> Response {
        let action = form_action(html).expect("a POST form");
        let mut form: Vec<(String, String)> =
            vec![("csrf".into(), form_value(html, "csrf").expect("csrf"))];
        if let Some(flow) = form_value(html, "flow") {
            form.push(("flow".into(), flow));
        }
        form.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.browser
            .post(self.url(&action))
            .form(&form)
            .send()
            .await
            .expect("POST form")
    }

    /// The account page's step-up gate for `action` in realm AK00, as a person passes it:
    /// the current `password` when the gate asks for it and an SMS code (the number every
    /// test account has). Returns the answer to the code's POST.
    pub async fn step_up_with(&self, action: &str, password: &str) -> Response {
        let res = self
            .get(&self.url(&format!("/AK00/account/confirm?next={action}")))
            .await;
        assert_eq!(res.status(), 200, "the gate's page");
        let html = res.text().await.expect("html");
        let mut fields = vec![
            ("next", form_value(&html, "next").expect("next")),
            ("factor", "sms".to_owned()),
        ];
        if html.contains("name=\"password\"") {
            fields.push(("password", password.to_owned()));
        }
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = self.submit_on(&html, &fields).await;
        assert_eq!(res.status(), 303, "the password is right: the code page");
        let code_page = location(&res);
        assert!(
            code_page.starts_with("/AK00/account/confirm/code?flow="),
            "{code_page}"
        );
        self.fill(&code_page, &[("code", &self.last_sms_code())])
            .await
    }

    /// [`TestApp::step_up_with`] the test password; where the gate sends the browser.
    pub async fn step_up(&self, action: &str) -> String {
        let res = self.step_up_with(action, PASSWORD).await;
        assert_eq!(res.status(), 303, "the right code opens the action");
        location(&res)
    }

    /// Every mail of the outbox, oldest first.
    pub fn mail_outbox(&self) -> Vec<OutboxMail> {
        read_mail_outbox(&self.state.config.outbox_dir)
    }

    /// Puts a person in the register and issues an activation code; the code as printed.
    pub async fn person_with_code(&self, realm_id: &str, ahv: &str, language: Language) -> String {
        use connect::storage::persons;
        let realm = self
            .state
            .realms
            .get(&realm(realm_id))
            .expect("realm")
            .clone();
        let person = persons::Person {
            ahv: ahv.parse().expect("ahv"),
            given_name: "Anna".into(),
            family_name: "Muster".into(),
            birth_date: "1950-03-14".parse().expect("date"),
            language,
            address: persons::PostalAddress::default(),
        };
        if persons::by_ahv(&self.state.db, &realm.id, &person.ahv)
            .await
            .expect("db")
            .is_none()
        {
            persons::add(&self.state.db, &realm.id, &person, self.clock().unix())
                .await
                .expect("person");
        }
        let issued = self
            .state
            .activation
            .issue(&realm, &person.ahv)
            .await
            .expect("code issued");
        issued.code.to_string()
    }
}

/// A copy of the shipped realm files with AK00's text changed by `edit`, in a directory that
/// lives as long as the returned guard: for tests of per-realm settings.
pub fn realm_dir_with(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let mut edit = Some(edit);
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
    // The logos the realm files name, beside them.
    let logos = dir.path().join("logos");
    std::fs::create_dir_all(&logos).expect("logos dir");
    for entry in std::fs::read_dir(shipped.join("logos")).expect("realm-config/logos") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, logos.join(path.file_name().expect("name"))).expect("copy logo");
    }
    for entry in std::fs::read_dir(&shipped).expect("realm-config") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let mut text = std::fs::read_to_string(&path).expect("realm file");
            if path.file_stem().is_some_and(|s| s == "AK00") {
                if let Some(edit) = edit.take() {
                    text = edit(text);
                }
            }
            std::fs::write(dir.path().join(path.file_name().expect("name")), text).expect("write");
        }
    }
    dir
}

/// Replaces `key = <old>` by `key = <value>` in a realm file's text (first occurrence).
pub fn set_key(text: &str, key: &str, value: &str) -> String {
    let start = text
        .find(&format!("\n{key} = "))
        .unwrap_or_else(|| panic!("{key} in realm file"))
        + 1;
    let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
    format!("{}{key} = {value}{}", &text[..start], &text[end..])
}

/// The portal on a random port beside an IdP, registered in the IdP's realm files as the
/// `portal` client with its real address.
pub struct TestPortal {
    pub base: String,
    pub idp: TestApp,
    #[allow(dead_code)] // for tests that reach into the portal's storage
    pub state: connect::portal::PortalState,
    _realms: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

pub async fn spawn_portal() -> TestPortal {
    spawn_portal_with(|t| t, |_| {}).await
}

/// `realm_edit` changes AK00's realm file (after the portal's URIs are set); `edit` the
/// portal's configuration.
pub async fn spawn_portal_with(
    realm_edit: impl FnOnce(String) -> String,
    edit: impl FnOnce(&mut Config),
) -> TestPortal {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let portal_base = base.clone();
    let realms = realm_dir_with(move |t| {
        realm_edit(
            t.replace(
                "http://127.0.0.1:8090/callback",
                &format!("{portal_base}/callback"),
            )
            .replace("http://127.0.0.1:8090/", &format!("{portal_base}/")),
        )
    });
    let realm_path = realms.path().to_path_buf();
    let idp = spawn_with(|c| c.realm_dir = realm_path.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    config.realm_dir = realm_path;
    config.portal.database_url = portal_database(dir.path()).await;
    config.redis_prefix = format!("{}portal-test:", idp.state.config.redis_prefix);
    config.portal_url = base.parse().expect("url");
    config.portal.issuer = idp.issuer("AK00").parse().expect("issuer");
    config.portal.client_secret = Some(PORTAL_SECRET.to_owned().into());
    config.portal.store_url = dir.path().join("documents").display().to_string();
    edit(&mut config);
    let portal = connect::portal::Portal::with_listener(config, idp.state.clock.clone(), listener)
        .await
        .expect("portal starts");
    let state = portal.state.clone();
    tokio::spawn(portal.run_until(std::future::pending()));
    TestPortal {
        base,
        idp,
        state,
        _realms: realms,
        _dir: dir,
    }
}

impl TestPortal {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Follows redirects by hand across portal and IdP, as the browser would, until a page
    /// answers (not a redirect); returns the last URL and the response.
    pub async fn browse(&self, url: &str) -> (String, Response) {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let res = self.idp.get(&url).await;
            if !res.status().is_redirection() {
                return (url, res);
            }
            let to = location(&res);
            url = if to.starts_with('/') {
                let origin = Url::parse(&url).expect("url");
                format!(
                    "{}://{}{to}",
                    origin.scheme(),
                    origin
                        .host_str()
                        .zip(origin.port())
                        .map(|(h, p)| format!("{h}:{p}"))
                        .expect("host")
                )
            } else {
                to
            };
        }
        panic!("too many redirects from {url}");
    }
}

/// Every mail of an outbox directory, oldest first.
pub fn read_mail_outbox(outbox: &std::path::Path) -> Vec<OutboxMail> {
    let dir = outbox.join("mail");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let raw = std::fs::read(p).expect("eml");
            let msg = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("a mail");
            OutboxMail {
                to: msg
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_owned(),
                subject: msg.subject().unwrap_or_default().to_owned(),
                text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            }
        })
        .collect()
}

/// A server whose AK00 realm file has each `(key, value)` of `settings` set; the directory
/// of realm files lives as long as the returned guard.
pub async fn spawn_with_realm(settings: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let dir = realm_dir_with(|mut text| {
        for (k, v) in &settings {
            text = set_key(&text, k, v);
        }
        text
    });
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| c.realm_dir = path).await;
    (app, dir)
}

impl TestApp {
    /// Whether this browser's SSO session in AK00 answers the portal without a login.
    /// A GET of `path` with `query`, from the browser (its cookies, no redirects followed).
    pub async fn get_query(&self, path: &str, query: &[(&str, &str)]) -> Response {
        self.browser
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `n` wrong passwords for `email` at AK00's login form, each answered 401.
    pub async fn wrong_passwords(&self, email: &str, n: usize) {
        for _ in 0..n {
            let res = self
                .fill(
                    "/AK00/login",
                    &[("email", email), ("password", "wrong-wrong")],
                )
                .await;
            assert_eq!(res.status(), 401, "a wrong password");
        }
    }

    pub async fn has_session(&self) -> bool {
        let res = self
            .browser
            .get(self.url("/AK00/authorize"))
            .query(&[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", PORTAL_CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize");
        let to = location(&res);
        // A code, not an error, at the client: the SSO session answered.
        to.starts_with(PORTAL_REDIRECT) && query_param(&to, "code").is_some()
    }

    /// The portal's tokens of a token response no longer work: the refresh token is refused
    /// and the access token fails at userinfo.
    pub async fn assert_revoked(&self, tokens: &serde_json::Value) {
        let refresh = tokens["refresh_token"].as_str().expect("refresh token");
        let res = self
            .token(
                "AK00",
                &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
                Some(("portal", PORTAL_SECRET)),
            )
            .await;
        assert_eq!(res.status(), 400, "the refresh token is revoked");
        let res = self
            .api
            .get(self.url("/AK00/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().expect("access token"))
            .send()
            .await
            .expect("userinfo");
        assert_eq!(res.status(), 401, "the access token is revoked");
    }
}

/// A recorder of this test's own metrics: while the guard lives, every counter moved on this
/// test's thread (its servers run on it: `#[tokio::test]` is single-threaded) lands here, and
/// not in the process-wide recorder that every other test moves as well.
pub fn own_metrics() -> (
    metrics_exporter_prometheus::PrometheusHandle,
    metrics::LocalRecorderGuard<'static>,
) {
    let recorder: &'static _ = Box::leak(Box::new(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
    ));
    (
        recorder.handle(),
        metrics::set_default_local_recorder(recorder),
    )
}

/// The value of the series `name{labels}` in a Prometheus text rendering; 0 when absent.
pub fn metric(rendered: &str, name: &str, labels: &str) -> f64 {
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{{labels}}} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// AK00's SMS limits raised so that the account page's proofs fit in one test.
pub fn raised_sms_limits(text: String) -> String {
    [
        ("per_account_per_hour", "50"),
        ("per_account_per_day", "100"),
        ("per_number_per_hour", "50"),
        ("per_number_per_day", "100"),
    ]
    .into_iter()
    .fold(text, |text, (k, v)| set_key(&text, k, v))
}

/// A phone with a passkey app: the software authenticator, and the discoverable
/// credentials it holds (credential id and user handle), as the browser would list them.
pub struct Device {
    authenticator: WebauthnAuthenticator<SoftPasskey>,
    origin: Url,
    resident: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Device {
    /// A device for the server's origin (its public URL).
    pub fn new(app: &TestApp) -> Device {
        Device {
            authenticator: WebauthnAuthenticator::new(SoftPasskey::new(true)),
            origin: app.state.config.public_url.clone(),
            resident: Vec::new(),
        }
    }

    /// Creates a credential for the server's options; the browser's answer as JSON.
    pub fn create(&mut self, public_key: &serde_json::Value) -> String {
        let mut options: CreationChallengeResponse =
            serde_json::from_value(serde_json::json!({ "publicKey": public_key }))
                .expect("creation options");
        let selection = options
            .public_key
            .authenticator_selection
            .as_mut()
            .expect("authenticator selection");
        assert!(
            selection.require_resident_key,
            "the server asks for a discoverable credential"
        );
        // The soft authenticator stores its keys by credential id; this device keeps the
        // discoverable part (which user handle a credential belongs to) itself.
        selection.require_resident_key = false;
        selection.resident_key = None;
        let user = options.public_key.user.id.to_vec();
        let credential = self
            .authenticator
            .do_registration(self.origin.clone(), options)
            .expect("the authenticator creates a credential");
        self.resident.push((credential.raw_id.to_vec(), user));
        serde_json::to_string(&credential).expect("JSON")
    }

    /// Signs the server's challenge with the `n`th credential, as the browser returns it.
    pub fn sign(&mut self, public_key: &serde_json::Value, n: usize) -> PublicKeyCredential {
        let mut options: RequestChallengeResponse =
            serde_json::from_value(serde_json::json!({ "publicKey": public_key }))
                .expect("request options");
        assert!(
            options.public_key.allow_credentials.is_empty(),
            "a discoverable login names no credential"
        );
        let (id, user) = self.resident[n].clone();
        options.public_key.allow_credentials = vec![serde_json::from_value(serde_json::json!({
            "type": "public-key",
            "id": b64(&id),
        }))
        .expect("allow credential")];
        let mut credential = self
            .authenticator
            .do_authentication(self.origin.clone(), options)
            .expect("the authenticator signs");
        // A discoverable credential comes back with its user handle.
        credential.response.user_handle = Some(user.into());
        credential
    }

    /// The first credential's answer to the server's challenge, as JSON.
    pub fn assert(&mut self, public_key: &serde_json::Value) -> String {
        serde_json::to_string(&self.sign(public_key, 0)).expect("JSON")
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A server for the staff realm and the consoles: public URL `http://localhost:<port>` (so
/// that passkeys work), AK00's SMS limits raised, and STAFF.toml's `http://127.0.0.1:8080`
/// URIs of the `console` client registered twice, at the test's base
/// (`http://127.0.0.1:<port>`) and at the public URL, so that a console that builds its
/// callback from either is accepted. The realm files' directory lives as long as the guard.
pub async fn spawn_console_app() -> (TestApp, tempfile::TempDir) {
    let dir = realm_dir_with(raised_sms_limits);
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| {
        let port = c.bind.port();
        let staff = path.join("STAFF.toml");
        let text = std::fs::read_to_string(&staff).expect("STAFF.toml");
        std::fs::write(&staff, both_hosts(&text, port)).expect("STAFF.toml written");
        c.realm_dir = path;
        c.public_url = format!("http://localhost:{port}").parse().expect("url");
    })
    .await;
    (app, dir)
}

/// Every `"http://127.0.0.1:8080/…"` of a realm file, as two URIs on `port`: one at
/// 127.0.0.1, one at localhost.
fn both_hosts(text: &str, port: u16) -> String {
    const OLD: &str = "\"http://127.0.0.1:8080/";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(OLD) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OLD.len()..];
        let end = after.find('"').expect("a closing quote");
        let path = &after[..end];
        out.push_str(&format!(
            "\"http://127.0.0.1:{port}/{path}\", \"http://localhost:{port}/{path}\""
        ));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A staff member who finished the enrolment, and the device that holds their passkey.
pub struct StaffDevice {
    pub email: String,
    pub account_id: String,
    device: std::sync::Mutex<Device>,
}

/// The newest invitation link in the outbox for `email`, as a path (`/STAFF/staff/enrol/…`).
pub fn invitation_link(app: &TestApp, email: &str) -> String {
    let mail = app
        .mail_outbox()
        .into_iter()
        .rev()
        .find(|m| m.to == email)
        .unwrap_or_else(|| panic!("an invitation mail to {email}"));
    let at = mail
        .text
        .find("/STAFF/staff/enrol/")
        .unwrap_or_else(|| panic!("a link in:\n{}", mail.text));
    let link = &mail.text[at..];
    link[..link.find(char::is_whitespace).unwrap_or(link.len())].to_owned()
}

/// Walks a new staff member's enrolment pages from the link in `browser` (names, password,
/// terms, then a passkey on a new device); returns the device and the answer to the
/// passkey's POST.
pub async fn enrol_staff(browser: &TestApp, link: &str) -> (Device, Response) {
    let res = browser
        .fill(
            link,
            &[
                ("given_name", "Eva"),
                ("family_name", "Keller"),
                ("password", "Schalter-Bern-2026"),
                ("confirm", "Schalter-Bern-2026"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "names and password are taken");
    assert_eq!(location(&res), "/STAFF/staff/passkey");
    let page = browser.get(&browser.url("/STAFF/staff/passkey")).await;
    assert_eq!(page.status(), 200, "the passkey page");
    let html = page.text().await.expect("html");
    assert!(html.contains("/static/passkey.js"), "the ceremony's script");
    let csrf = form_value(&html, "csrf").expect("csrf");
    let name = "Laptop du support";
    let res = browser
        .browser
        .post(browser.url("/STAFF/staff/passkey/options"))
        .form(&[("csrf", csrf.as_str()), ("name", name)])
        .send()
        .await
        .expect("options");
    assert_eq!(res.status(), 200, "registration options");
    let started: serde_json::Value = res.json().await.expect("JSON options");
    let mut device = Device::new(browser);
    let credential = device.create(&started["publicKey"]);
    let res = browser
        .browser
        .post(browser.url("/STAFF/staff/passkey"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("ceremony", started["ceremony"].as_str().expect("ceremony")),
            ("credential", credential.as_str()),
        ])
        .send()
        .await
        .expect("passkey POST");
    (device, res)
}

/// `connect admin staff add` (through the same service the command uses, operator `test`)
/// and the whole enrolment through the real pages, in a browser of its own: a staff member
/// of STAFF with `role` for `caisses`, able to log in with the returned device.
pub async fn enrolled_staff(
    app: &TestApp,
    email: &str,
    role: &str,
    caisses: &[&str],
) -> StaffDevice {
    let staff = app
        .state
        .realms
        .get(&realm("STAFF"))
        .expect("STAFF")
        .clone();
    let caisses: Vec<RealmId> = caisses.iter().map(|c| realm(c)).collect();
    let address: Email = email.parse().expect("email");
    let by = connect::staff::By {
        operator: "test",
        reason: None,
    };
    let invited = app
        .state
        .staff
        .add(
            &staff,
            &address,
            role.parse().expect("role"),
            &caisses,
            None,
            by,
        )
        .await
        .expect("staff added");
    let browser = TestApp::sharing(app);
    let link = invitation_link(app, email);
    let (device, res) = enrol_staff(&browser, &link).await;
    assert_eq!(res.status(), 303, "the passkey is registered");
    assert_eq!(location(&res), "/STAFF/staff/done");
    StaffDevice {
        email: email.to_owned(),
        account_id: invited.account_id,
        device: std::sync::Mutex::new(device),
    }
}

/// The member enrols again from the newest link (after `staff invite` for a lost passkey), in
/// a browser of their own and on a new device.
pub async fn enrolled_again(app: &TestApp, email: &str, account_id: &str) -> StaffDevice {
    let browser = TestApp::sharing(app);
    let link = invitation_link(app, email);
    let (device, res) = enrol_staff(&browser, &link).await;
    assert_eq!(res.status(), 303, "the new passkey is registered");
    StaffDevice {
        email: email.to_owned(),
        account_id: account_id.to_owned(),
        device: std::sync::Mutex::new(device),
    }
}

impl StaffDevice {
    /// The passkey login in `browser` (a reqwest client with cookies that does not follow
    /// redirects) for an authorization request of the staff realm: `authorize_url` (absolute,
    /// or a path on `app`), then the login page, the ceremony with this device and the
    /// resume. Redirects within the staff realm's login are followed; the first redirect
    /// that leaves them (the console's callback with `code`, or an error) is returned.
    pub async fn log_in(
        &self,
        app: &TestApp,
        browser: &reqwest::Client,
        authorize_url: &str,
    ) -> Response {
        let absolute = |base: &str, to: &str| -> String {
            if to.starts_with('/') {
                let base = Url::parse(base).expect("url");
                format!(
                    "{}://{}:{}{to}",
                    base.scheme(),
                    base.host_str().expect("host"),
                    base.port_or_known_default().expect("port")
                )
            } else {
                to.to_owned()
            }
        };
        let mut url = absolute(&app.base, authorize_url);
        let res = browser.get(&url).send().await.expect("authorize");
        assert_eq!(res.status(), 303, "authorize redirects");
        let to = location(&res);
        if !to.starts_with("/STAFF/login") {
            // A session of this browser answered at once.
            return res;
        }
        url = absolute(&url, &to);
        let page = browser.get(&url).send().await.expect("login page");
        assert_eq!(page.status(), 200, "the login page");
        let html = page.text().await.expect("html");
        assert!(!html.contains("name=\"password\""), "no password field");
        let csrf = form_value(&html, "csrf").expect("csrf");
        let flow = form_value(&html, "flow").expect("flow");
        let options: serde_json::Value = browser
            .post(absolute(&url, "/STAFF/login/passkey/options"))
            .form(&[("csrf", csrf.as_str()), ("flow", flow.as_str())])
            .send()
            .await
            .expect("options")
            .json()
            .await
            .expect("JSON options");
        let credential = self
            .device
            .lock()
            .expect("device")
            .assert(&options["publicKey"]);
        let res = browser
            .post(absolute(&url, "/STAFF/login/passkey"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("flow", flow.as_str()),
                ("ceremony", options["ceremony"].as_str().expect("ceremony")),
                ("credential", credential.as_str()),
            ])
            .send()
            .await
            .expect("assertion");
        assert_eq!(res.status(), 303, "the passkey logs in");
        // The resume of the authorization request answers the relying party.
        let resume = absolute(&url, &location(&res));
        browser.get(&resume).send().await.expect("resume")
    }
}
