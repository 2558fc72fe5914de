//! The figures: what one iteration of each is, the logins that give the workers their SSO
//! sessions, and the closed loop that runs a fixed number of workers for a fixed time.

use std::{
    cell::Cell,
    net::SocketAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures_util::future::join_all;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use sha2::{Digest, Sha256};

use crate::{
    http::{form_action, form_value, query_param, Client, Response},
    outbox::Outbox,
    servers::{cpu_time, Server},
};

/// What is measured, in the order the bench runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Discovery,
    Jwks,
    ClientCredentials,
    /// `/authorize` with the SSO session cookie (303 with a code), then the code at `/token`:
    /// the pair is the figure; the token request alone is reported beside it.
    CodeExchange,
    /// Each worker chains its own refresh token.
    Refresh,
    Userinfo,
    Introspection,
    /// Complete logins through the HTML forms (authorize, password, SMS code from the
    /// outbox, resume, redirect with a code); connect only.
    Logins,
}

impl Figure {
    pub fn label(self) -> &'static str {
        match self {
            Figure::Discovery => "discovery",
            Figure::Jwks => "JWKS",
            Figure::ClientCredentials => "client_credentials (ES256 JWT)",
            Figure::CodeExchange => "code exchange (authorize + token)",
            Figure::Refresh => "refresh-token rotation",
            Figure::Userinfo => "userinfo",
            Figure::Introspection => "introspection",
            Figure::Logins => "complete logins (password + SMS)",
        }
    }
}

/// connect, or the node peer: where they differ in paths and in the login.
pub enum Kind {
    Connect { realm: String, outbox: Outbox },
    Peer,
}

/// One server under test, its endpoints read from its discovery document.
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub discovery: String,
    pub jwks: String,
    pub authorize: String,
    pub token: String,
    pub userinfo: String,
    pub introspect: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// `Basic base64(id:secret)`.
    pub basic: String,
}

impl Target {
    pub async fn discover(
        kind: Kind,
        addr: SocketAddr,
        discovery: &str,
        client_id: &str,
        secret: &str,
        redirect_uri: &str,
    ) -> anyhow::Result<Target> {
        let mut c = Client::new(addr);
        let doc = c
            .get(discovery, None)
            .await?
            .expect(StatusCode::OK, "discovery")?
            .json()?;
        let path = |key: &str| -> anyhow::Result<String> {
            let url = doc[key]
                .as_str()
                .ok_or_else(|| anyhow!("discovery has no {key}"))?;
            c.path_of(url)
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{key} {url} is not on the server under test"))
        };
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        Ok(Target {
            jwks: path("jwks_uri")?,
            authorize: path("authorization_endpoint")?,
            token: path("token_endpoint")?,
            userinfo: path("userinfo_endpoint")?,
            introspect: path("introspection_endpoint")?,
            discovery: discovery.to_owned(),
            kind,
            addr,
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            basic: format!("Basic {basic}"),
        })
    }

    fn authorize_url(&self, w: &Worker, first: bool) -> String {
        // The first login asks offline_access with prompt=consent, which the peer needs
        // before it issues a refresh token (connect accepts the prompt and needs none).
        let (scope, prompt) = if first {
            ("openid email offline_access", "consent")
        } else {
            ("openid email", "")
        };
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", scope),
            ("state", "bench-state"),
            ("code_challenge", w.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if !prompt.is_empty() {
            form.push(("prompt", prompt));
        }
        format!("{}?{}", self.authorize, crate::http::encode_form(&form))
    }
}

/// A person of the bench realm (connect) or a login name (the peer).
#[derive(Clone)]
pub struct Account {
    pub email: String,
    pub phone: String,
    pub password: String,
}

/// One simulated client: its connection and cookies, its account, its tokens.
pub struct Worker {
    pub http: Client,
    account: Option<Account>,
    verifier: String,
    challenge: String,
    access: String,
    refresh: String,
    /// The token request alone, in the code-exchange figure.
    side: Histogram<u64>,
}

impl Worker {
    pub fn new(addr: SocketAddr, n: usize, account: Option<Account>) -> Worker {
        let verifier = format!("bench-verifier-{n:04}-{}", "x".repeat(40));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Worker {
            http: Client::new(addr),
            account,
            verifier,
            challenge,
            access: String::new(),
            refresh: String::new(),
            side: histogram(),
        }
    }

    /// A login through the forms and the first code exchange: the SSO session cookie, an
    /// access token and a refresh token of its own.
    pub async fn open_session(&mut self, t: &Target) -> anyhow::Result<()> {
        self.http.clear_cookies();
        let code = self.login(t, true).await?;
        let tokens = self
            .exchange(t, &code)
            .await?
            .expect(StatusCode::OK, "first code exchange")?
            .json()?;
        self.access = tokens["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned();
        self.refresh = tokens["refresh_token"]
            .as_str()
            .context("refresh_token (offline_access)")?
            .to_owned();
        Ok(())
    }

    async fn login(&mut self, t: &Target, first: bool) -> anyhow::Result<String> {
        match &t.kind {
            Kind::Connect { realm, outbox } => {
                let (realm, outbox) = (realm.clone(), outbox.clone());
                self.connect_login(t, &realm, &outbox, first).await
            }
            Kind::Peer => self.peer_login(t).await,
        }
    }

    /// connect's login as a person does it: the login page, e-mail and password, the SMS
    /// page with the code from the outbox, the resume endpoint, the redirect with a code.
    async fn connect_login(
        &mut self,
        t: &Target,
        realm: &str,
        outbox: &Outbox,
        first: bool,
    ) -> anyhow::Result<String> {
        let account = self
            .account
            .clone()
            .context("a worker without an account")?;
        let res = self
            .http
            .get(&t.authorize_url(self, first), None)
            .await?
            .expect(StatusCode::SEE_OTHER, "authorize")?;
        let page = self.follow(&res)?;
        let html = self.page(&page, "login page").await?;
        let action = form_action(&html).unwrap_or_else(|| format!("/{realm}/login"));
        let csrf = form_value(&html, "csrf").context("csrf on the login page")?;
        let flow = form_value(&html, "flow").context("flow on the login page")?;
        let before = outbox.count(&account.phone);
        let res = self
            .http
            .post_form(
                &action,
                None,
                &[
                    ("csrf", &csrf),
                    ("flow", &flow),
                    ("email", &account.email),
                    ("password", &account.password),
                ],
            )
            .await?
            .expect(StatusCode::SEE_OTHER, "password")?;
        let sms_page = self.follow(&res)?;
        let code = outbox.code_after(&account.phone, before).await?;
        let html = self.page(&sms_page, "SMS page").await?;
        let action = form_action(&html).context("the SMS form")?;
        let csrf = form_value(&html, "csrf").context("csrf on the SMS page")?;
        let flow = form_value(&html, "flow").context("flow on the SMS page")?;
        let res = self
            .http
            .post_form(
                &action,
                None,
                &[("csrf", &csrf), ("flow", &flow), ("code", &code)],
            )
            .await?
            .expect(StatusCode::SEE_OTHER, "SMS code")?;
        let resume = self.follow(&res)?;
        let res = self
            .http
            .get(&resume, None)
            .await?
            .expect(StatusCode::SEE_OTHER, "resume")?;
        self.code_of(&res, t)
    }

    /// The peer's devInteractions: a login form (any name, any password) and, for the first
    /// login, a consent form; followed until the redirect to the client.
    async fn peer_login(&mut self, t: &Target) -> anyhow::Result<String> {
        let name = format!("bench-{}", &self.verifier[15..19]);
        let mut res = self.http.get(&t.authorize_url(self, true), None).await?;
        for _ in 0..12 {
            if res.status.is_redirection() {
                let to = res
                    .location
                    .clone()
                    .context("a redirect without Location")?;
                if to.starts_with(&t.redirect_uri) {
                    return self.code_of(&res, t);
                }
                let path = self.follow(&res)?;
                res = self.http.get(&path, None).await?;
            } else if res.status == StatusCode::OK {
                let html = res.text().to_owned();
                let action = form_action(&html).context("a form on the peer's page")?;
                let prompt = form_value(&html, "prompt").context("the peer's prompt")?;
                let mut form = vec![("prompt", prompt.as_str())];
                if prompt == "login" {
                    form.push(("login", name.as_str()));
                    form.push(("password", "bench"));
                }
                res = self.http.post_form(&action, None, &form).await?;
            } else {
                bail!("peer login: status {}: {}", res.status, res.text());
            }
        }
        bail!("peer login: no redirect to the client after 12 steps")
    }

    fn follow(&self, res: &Response) -> anyhow::Result<String> {
        let to = res
            .location
            .as_deref()
            .context("a redirect without Location")?;
        self.http
            .path_of(to)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("redirected away to {to}"))
    }

    async fn page(&mut self, path: &str, what: &str) -> anyhow::Result<String> {
        let res = self
            .http
            .get(path, None)
            .await?
            .expect(StatusCode::OK, what)?;
        Ok(res.text().to_owned())
    }

    fn code_of(&self, res: &Response, t: &Target) -> anyhow::Result<String> {
        let to = res.location.as_deref().unwrap_or_default();
        if !to.starts_with(&t.redirect_uri) {
            bail!("expected the redirect to the client, got {to}");
        }
        query_param(to, "code").ok_or_else(|| anyhow!("no code in {to}"))
    }

    async fn exchange(&mut self, t: &Target, code: &str) -> anyhow::Result<Response> {
        self.http
            .post_form(
                &t.token,
                Some(&t.basic),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &t.redirect_uri),
                    ("code_verifier", &self.verifier),
                ],
            )
            .await
    }

    /// One iteration of a figure; an error for anything but the expected answer.
    async fn step(&mut self, t: &Target, figure: Figure, measured: bool) -> anyhow::Result<()> {
        let ok = StatusCode::OK;
        match figure {
            Figure::Discovery => {
                self.http
                    .get(&t.discovery, None)
                    .await?
                    .expect(ok, "discovery")?;
            }
            Figure::Jwks => {
                self.http.get(&t.jwks, None).await?.expect(ok, "JWKS")?;
            }
            Figure::ClientCredentials => {
                self.http
                    .post_form(
                        &t.token,
                        Some(&t.basic),
                        &[
                            ("grant_type", "client_credentials"),
                            ("scope", "documents:read"),
                        ],
                    )
                    .await?
                    .expect(ok, "client_credentials")?;
            }
            Figure::CodeExchange => {
                let res = self
                    .http
                    .get(&t.authorize_url(self, false), None)
                    .await?
                    .expect(StatusCode::SEE_OTHER, "authorize with a session")?;
                let code = self.code_of(&res, t)?;
                let started = Instant::now();
                self.exchange(t, &code).await?.expect(ok, "code exchange")?;
                if measured {
                    record(&mut self.side, started.elapsed());
                }
            }
            Figure::Refresh => {
                let refresh = std::mem::take(&mut self.refresh);
                let res = self
                    .http
                    .post_form(
                        &t.token,
                        Some(&t.basic),
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await?
                    .expect(ok, "refresh")?;
                self.refresh = res.json()?["refresh_token"]
                    .as_str()
                    .context("a rotated refresh token")?
                    .to_owned();
            }
            Figure::Userinfo => {
                self.http
                    .get(&t.userinfo, Some(&self.access))
                    .await?
                    .expect(ok, "userinfo")?;
            }
            Figure::Introspection => {
                let res = self
                    .http
                    .post_form(&t.introspect, Some(&t.basic), &[("token", &self.access)])
                    .await?
                    .expect(ok, "introspection")?;
                if res.json()?["active"] != serde_json::Value::Bool(true) {
                    bail!("introspection: the token is not active: {}", res.text());
                }
            }
            Figure::Logins => {
                self.http.clear_cookies();
                self.login(t, false).await?;
            }
        }
        Ok(())
    }
}

/// What one figure gave.
pub struct Measured {
    pub figure: Figure,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub latency: Histogram<u64>,
    /// The token request alone (code exchange).
    pub side: Option<Histogram<u64>>,
    pub rss_before: u64,
    pub rss_peak: u64,
    pub rss_after: u64,
    /// Share of one core the server used in the measured window.
    pub server_cpu: f64,
    /// The same for the load generator: near 1.0 it would be the bottleneck.
    pub load_cpu: f64,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

pub fn histogram() -> Histogram<u64> {
    // Microseconds, up to a minute, three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).clamp(1, 60_000_000));
}

/// Runs `figure` on the workers for `warmup` (not counted) and then `duration`; iterations
/// that start in the measured window count, with their whole latency. A worker stops after
/// 100 errors (a chain that broke cannot go on).
pub async fn measure(
    t: &Target,
    server: &Server,
    workers: &mut [Worker],
    figure: Figure,
    warmup: Duration,
    duration: Duration,
    settle: Duration,
) -> Measured {
    let rss_before = server.rss();
    let reset = server.reset_peak();
    let sampled = Rc::new(Cell::new(rss_before));
    let sampling = Rc::new(Cell::new(true));
    let sampler = {
        let (sampled, sampling, pid) = (sampled.clone(), sampling.clone(), server.pid);
        tokio::task::spawn_local(async move {
            while sampling.get() {
                let rss = crate::servers::rss_of(pid);
                sampled.set(sampled.get().max(rss));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let start = Instant::now();
    let from = start + warmup;
    let until = from + duration;
    for w in workers.iter_mut() {
        w.side = histogram();
    }
    // The CPU both used in the measured window, read when it opens and when it closes.
    let window = {
        let pid = server.pid;
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(from.into()).await;
            let (s0, l0) = (cpu_time(Some(pid)), cpu_time(None));
            tokio::time::sleep_until(until.into()).await;
            let (s1, l1) = (cpu_time(Some(pid)), cpu_time(None));
            let share = |a: Duration, b: Duration| (b - a).as_secs_f64() / duration.as_secs_f64();
            (share(s0, s1), share(l0, l1))
        })
    };
    let runs = workers.iter_mut().map(|w| async move {
        let mut h = histogram();
        let (mut errors, mut first_error) = (0u64, None::<String>);
        loop {
            let began = Instant::now();
            if began >= until {
                break;
            }
            let measured = began >= from;
            match w.step(t, figure, measured).await {
                Ok(()) if measured => record(&mut h, began.elapsed()),
                Ok(()) => {}
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{e:#}"));
                    if errors >= 100 {
                        break;
                    }
                }
            }
        }
        (h, errors, first_error)
    });
    let results = join_all(runs).await;
    let (server_cpu, load_cpu) = window.await.unwrap_or((0.0, 0.0));
    let seconds = duration.as_secs_f64();
    tokio::time::sleep(settle).await;
    sampling.set(false);
    let _ = sampler.await;
    let mut latency = histogram();
    let (mut errors, mut first_error) = (0, None);
    for (h, e, f) in results {
        let _ = latency.add(&h);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let side = (figure == Figure::CodeExchange).then(|| {
        let mut s = histogram();
        for w in workers.iter() {
            let _ = s.add(&w.side);
        }
        s
    });
    let peak = if reset {
        server.peak().max(sampled.get())
    } else {
        sampled.get()
    };
    Measured {
        figure,
        concurrency: workers.len(),
        requests: latency.len(),
        errors,
        first_error,
        seconds,
        latency,
        side,
        rss_before,
        rss_peak: peak,
        rss_after: server.rss(),
        server_cpu,
        load_cpu,
    }
}
