//! `spawn_app()` and what tests do with a running server.

use std::time::Duration;

use connect::{
    app::{App, AppState},
    clock::Clock,
    config::{Config, MasterKeySource, PasswordHashing},
    domain::{Email, Language, RealmId},
    keys::MasterKey,
    storage::accounts,
};
use reqwest::{redirect::Policy, Response};
use url::Url;

pub const PORTAL_SECRET: &str = "portal-dev-secret";
pub const PORTAL_REDIRECT: &str = "http://127.0.0.1:8090/callback";
pub const MOBILE_REDIRECT: &str = "http://127.0.0.1:8091/callback";
pub const PASSWORD: &str = "Velo-Bern-1950";

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    /// A browser: keeps cookies, does not follow redirects.
    pub browser: reqwest::Client,
    /// A back-channel client without cookies.
    pub api: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A fresh PostgreSQL database for one test, when the suite runs against PostgreSQL.
async fn test_database(dir: &std::path::Path) -> String {
    let Ok(admin_url) = std::env::var("CONNECT_TEST_DATABASE_URL") else {
        return format!("sqlite://{}/connect.db", dir.display());
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
    };
    c.redis_url = std::env::var("CONNECT_TEST_REDIS_URL").ok();
    c.redis_prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    c
}

fn base64_key() -> String {
    use base64::Engine;
    let _ = MasterKey::generate();
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
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
        _dir: dir,
    }
}

pub fn realm(id: &str) -> RealmId {
    id.parse().expect("realm id")
}

/// Pulls `name="field" value="..."` out of a page.
pub fn form_value(html: &str, field: &str) -> Option<String> {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no Location header; status {}", res.status()))
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl TestApp {
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

    /// Follows the browser from a login page URL through the form; returns the answer to the POST.
    pub async fn submit_login(&self, login_url: &str, email: &str, password: &str) -> Response {
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
        self.browser
            .post(self.url(&format!("/{realm}/login")))
            .form(&form)
            .send()
            .await
            .expect("POST login")
    }

    /// Authorization request from the browser, login if asked, and the final redirect to the client.
    pub async fn authorize_and_login(
        &self,
        realm: &str,
        query: &[(&str, &str)],
        email: &str,
    ) -> String {
        let res = self
            .browser
            .get(self.url(&format!("/{realm}/authorize")))
            .query(query)
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
