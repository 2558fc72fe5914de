//! Application state, router assembly, and the server's life: build, then run.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{FromRef, State},
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::{
    activation::Activation,
    audit::Audit,
    clock::Clock,
    config::Config,
    domain::Language,
    factors::{recovery::RecoveryCodes, totp::Totp},
    flows::{
        account::AccountStore,
        enrol::Enrolments,
        login::{Credentials, LoginStore},
        recovery::Recoveries,
        sms::SmsCodes,
    },
    guard::Guard,
    http::{
        self, client_addr::ClientAddrSettings, csrf::CsrfKey, health::Readiness,
        page::PageSettings, server, templates, BodyLimit, HttpError, StackSettings,
    },
    keys::{KeyRing, MasterKey, SecretHasher},
    limits::Limits,
    notify::Notifier,
    passkeys::Passkeys,
    passwords::Passwords,
    protocol::{
        authorize::Codes, backchannel::Backchannel, discovery, interaction::Interactions,
        logout::Logouts, token::TokenGrants, tokens::Tokens,
    },
    realm::Realms,
    session::Sessions,
    storage::{Db, Ephemeral},
};

/// Everything a handler may need. Axum clones the state for every extractor of every
/// request, so it is one `Arc`: a clone is one atomic increment, where a copy of the services
/// was some forty (a quarter of the CPU of a discovery request, measured with `perf`).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services and settings behind [`AppState`], built once by [`AppState::open`].
pub struct Services {
    pub config: Arc<Config>,
    pub realms: Realms,
    pub db: Db,
    pub ephemeral: Ephemeral,
    pub keys: KeyRing,
    pub tokens: Tokens,
    pub secret_hasher: SecretHasher,
    pub passwords: Passwords,
    pub csrf: CsrfKey,
    pub clock: Clock,
    pub metrics: PrometheusHandle,
    pub notifier: Notifier,
    pub backchannel: Backchannel,
    pub audit: Audit,
    pub sessions: Sessions,
    pub limits: Limits,
    pub interactions: Interactions,
    pub codes: Codes,
    pub login: LoginStore,
    pub credentials: Credentials,
    pub recoveries: Recoveries,
    pub enrolments: Enrolments,
    pub activation: Activation,
    pub sms: SmsCodes,
    pub logouts: Logouts,
    pub guard: Guard,
    pub grants: TokenGrants,
    pub discovery: discovery::Documents,
    pub account: AccountStore,
    pub totp: Totp,
    pub recovery_codes: RecoveryCodes,
    pub passkeys: Passkeys,
    pub support: crate::support::Support,
    pub console: crate::console::Console,
    pub staff: crate::staff::StaffAccounts,
    pub staff_enrolments: crate::flows::staff::StaffEnrolments,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Realm(#[from] crate::realm::RealmFileError),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Ring(#[from] crate::keys::RingError),
    #[error(transparent)]
    Discovery(#[from] discovery::DocumentError),
    #[error(transparent)]
    Password(#[from] crate::passwords::PasswordError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("HTTP client for back-channel logout: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

impl AppState {
    /// Opens storage, applies migrations, loads realms and keys: what every command needs.
    pub async fn open(config: Config, clock: Clock) -> Result<AppState, StartError> {
        let realms = Realms::load_dir(&config.realm_dir)?;
        let master = MasterKey::load(&config.master_key)?;
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let ephemeral = match &config.redis_url {
            Some(url) => Ephemeral::redis(url, &config.redis_prefix).await?,
            None => Ephemeral::memory(clock.clone()),
        };
        let keys = KeyRing::new(db.clone(), master.clone(), clock.clone())
            .reloading_after(config.keys_reload);
        for realm in realms.iter() {
            keys.ensure(realm).await?;
        }
        let config = Arc::new(config);
        let hasher = SecretHasher::new(&master);
        let audit = Audit::new(db.clone(), clock.clone());
        let tokens = Tokens::new(keys.clone(), clock.clone(), config.clone());
        let notifier = Notifier::new(&config)?;
        let backchannel = Backchannel::new(tokens.clone())?;
        let sessions = Sessions::new(&ephemeral, &hasher, &db, &clock, config.is_https());
        let limits = Limits::new(&ephemeral, &hasher, &audit);
        let logouts = Logouts::new(&db, &clock, &audit, &sessions, &backchannel);
        let codes = Codes::new(&ephemeral, &hasher, &clock, &config);
        let guard = Guard::new(&logouts, &audit, &notifier);
        let passwords = Passwords::new(&config.password_hashing)?;
        let activation = Activation::new(&db, &hasher, &clock, &audit);
        let totp = Totp::new(&db, &master, &clock, &ephemeral);
        let recovery_codes = RecoveryCodes::new(&db, &hasher, &clock);
        let support = crate::support::Support::new(crate::support::Parts {
            db: &db,
            clock: &clock,
            audit: &audit,
            guard: &guard,
            logouts: &logouts,
            sessions: &sessions,
            activation: &activation,
            totp: &totp,
            recovery: &recovery_codes,
        });
        let staff = crate::staff::StaffAccounts::new(crate::staff::Parts {
            db: &db,
            hasher: &hasher,
            clock: &clock,
            audit: &audit,
            notifier: &notifier,
            passwords: &passwords,
            realms: &realms,
            public_url: &config.public_url,
        });
        Ok(AppState(Arc::new(Services {
            support,
            console: crate::console::Console::new(&ephemeral, &hasher, &clock)?,
            staff,
            discovery: discovery::Documents::new(&config, &realms)?,
            credentials: Credentials::new(
                &db, &ephemeral, &hasher, &passwords, &limits, &audit, &guard, &clock,
            ),
            recoveries: Recoveries::new(&ephemeral, &hasher),
            grants: TokenGrants::new(&db, &hasher, &clock, &codes, &tokens, &audit),
            codes,
            sms: SmsCodes::new(&limits, &notifier, &hasher, &clock),
            guard,
            logouts,
            tokens,
            notifier,
            backchannel,
            passwords,
            csrf: CsrfKey::new(master.derive("csrf")),
            sessions,
            limits,
            interactions: Interactions::new(&ephemeral, &clock),
            login: LoginStore::new(&ephemeral),
            enrolments: Enrolments::new(&ephemeral, &hasher),
            staff_enrolments: crate::flows::staff::StaffEnrolments::new(&ephemeral, &hasher),
            account: AccountStore::new(&ephemeral, &hasher, &clock),
            passkeys: Passkeys::new(&config.public_url, &ephemeral, &hasher, &db, &clock),
            activation,
            totp,
            recovery_codes,
            secret_hasher: hasher,
            audit,
            config,
            realms,
            db,
            ephemeral,
            keys,
            clock,
            metrics: http::metrics::handle(),
        })))
    }
}

impl Services {
    /// What pages need of the server besides the realm (`http::page`).
    pub fn page_settings(&self) -> PageSettings {
        PageSettings {
            csrf: self.csrf.clone(),
            secure: self.config.is_https(),
        }
    }

    /// The language of pages that belong to no realm.
    pub fn default_language(&self) -> Language {
        http::realm::default_language(&self.realms)
    }
}

impl FromRef<AppState> for Realms {
    fn from_ref(state: &AppState) -> Realms {
        state.realms.clone()
    }
}

impl FromRef<AppState> for ClientAddrSettings {
    fn from_ref(state: &AppState) -> ClientAddrSettings {
        ClientAddrSettings {
            header: state.config.client_ip_header.clone(),
            trusted_proxies: state.config.trusted_proxies.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for PageSettings {
    fn from_ref(state: &AppState) -> PageSettings {
        state.page_settings()
    }
}

/// What is read and thrown away of a refused body at most (`http::drain`).
const DRAIN_BYTES: u64 = 1024 * 1024;

/// The public router. `/metrics` is not on it but on its own listener (`http::metrics`).
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let mut router = Router::new()
        .merge(crate::protocol::router())
        .merge(crate::flows::router(&state))
        .merge(crate::console::router())
        .route("/", get(index))
        .route("/static/connect.css", get(stylesheet))
        .route("/static/passkey.js", get(passkey_script))
        .fallback(not_found);
    // `config.dev` is set by the `dev` command only, never by a setting.
    if state.config.dev {
        router = router.merge(crate::notify::dev_router());
    }
    let settings = StackSettings {
        server: "idp",
        https: state.config.is_https(),
        body_limit: BodyLimit::Everywhere(max_body),
        drain_bytes: DRAIN_BYTES.max(max_body as u64),
        read_timeout: state.config.read_timeout,
        readiness: Readiness {
            db: state.db.clone(),
            ephemeral: state.ephemeral.clone(),
        },
    };
    http::stack(router, settings).with_state(state)
}

/// A bound server, ready to run.
pub struct App {
    pub state: AppState,
    listener: TcpListener,
    metrics_listener: TcpListener,
    /// The audit retention purge at start and every day; servers built by [`App::build`]
    /// run it, tests (which bind their own listener) purge when they choose.
    audit_purge: bool,
}

impl App {
    pub async fn build(config: Config, clock: Clock) -> Result<App, StartError> {
        let bind = config.bind;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| StartError::Bind(bind, e))?;
        let mut app = Self::with_listener(config, clock, listener).await?;
        app.audit_purge = true;
        Ok(app)
    }

    /// Serves on a listener bound by the caller: tests bind port 0 first so that the
    /// issuer URL can name the real port. The metrics listener is bound here, and
    /// `config.metrics_bind` becomes the address it got.
    pub async fn with_listener(
        mut config: Config,
        clock: Clock,
        listener: TcpListener,
    ) -> Result<App, StartError> {
        let metrics_bind = config.metrics_bind;
        let (metrics_listener, bound) = server::bind(metrics_bind)
            .await
            .map_err(|e| StartError::Bind(metrics_bind, e))?;
        config.metrics_bind = bound;
        let state = AppState::open(config, clock).await?;
        Ok(App {
            state,
            listener,
            metrics_listener,
            audit_purge: false,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.bind)
    }

    /// Serves the public and the metrics listener until the future resolves (Ctrl-C for the
    /// binary), then lets open requests finish.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let purge = self.audit_purge.then(|| {
            self.state
                .audit
                .clone()
                .spawn_daily_purge(self.state.realms.clone())
        });
        let served = server::serve_with_metrics(
            (self.listener, router(self.state.clone())),
            (
                self.metrics_listener,
                http::metrics::router(self.state.metrics.clone()),
            ),
            self.state.config.read_timeout,
            self.state.config.shutdown_timeout,
            shutdown,
        )
        .await;
        if let Some(purge) = purge {
            purge.abort();
        }
        served?;
        self.state.db.close().await;
        Ok(())
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/connect.css"),
    )
        .into_response()
}

/// The one script of the pages (`static/passkey.js`): the WebAuthn ceremonies.
pub async fn passkey_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/passkey.js"),
    )
        .into_response()
}

async fn index(State(state): State<AppState>) -> Result<Response, HttpError> {
    let lang = state.default_language();
    let realms: Vec<_> = state
        .realms
        .iter()
        .map(|r| minijinja::context! { id => r.id.as_str(), name => r.display_name, issuer => state.config.issuer(&r.id) })
        .collect();
    let html = templates::render(
        "index.html",
        minijinja::context! { lang => lang.code(), realms => realms },
    )
    .map_err(HttpError::internal(lang))?;
    Ok(Html(html).into_response())
}

async fn not_found(State(state): State<AppState>) -> HttpError {
    HttpError::page(
        StatusCode::NOT_FOUND,
        state.default_language(),
        "error-not-found",
    )
}
