//! Application state, router assembly, and the server's life: build, then run.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{header, StatusCode},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    audit::Audit,
    clock::Clock,
    config::Config,
    domain::Language,
    http::{
        csrf::CsrfKey, drain::DrainLayer, headers, page::PageSettings, server, templates, HttpError,
    },
    keys::{KeyRing, MasterKey, SecretHasher},
    notify::Notifier,
    passwords::Passwords,
    protocol::backchannel::Backchannel,
    realm::Realms,
    storage::{Db, Ephemeral},
};

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub realms: Realms,
    pub db: Db,
    pub ephemeral: Ephemeral,
    pub keys: KeyRing,
    pub secret_hasher: SecretHasher,
    pub passwords: Passwords,
    pub csrf: CsrfKey,
    pub clock: Clock,
    pub metrics: PrometheusHandle,
    pub notifier: Notifier,
    pub backchannel: Backchannel,
    pub audit: Audit,
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
    Password(#[from] crate::passwords::PasswordError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("HTTP client for back-channel logout: {0}")]
    Http(#[from] reqwest::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Several apps in one test process share the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
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
            None => Ephemeral::memory(),
        };
        let keys = KeyRing::new(db.clone(), master.clone(), clock.clone());
        for realm in realms.iter() {
            keys.ensure(realm).await?;
        }
        Ok(AppState {
            notifier: Notifier::new(&config)?,
            backchannel: Backchannel::new()?,
            passwords: Passwords::new(&config.password_hashing)?,
            secret_hasher: SecretHasher::new(&master),
            csrf: CsrfKey::new(master.derive("csrf")),
            audit: Audit::new(db.clone(), clock.clone()),
            config: Arc::new(config),
            realms,
            db,
            ephemeral,
            keys,
            clock,
            metrics: metrics_handle(),
        })
    }

    /// What pages need of the server besides the realm (`http::page`).
    pub fn page_settings(&self) -> PageSettings {
        PageSettings {
            csrf: self.csrf.clone(),
            secure: self.config.is_https(),
        }
    }

    /// The language of pages that belong to no realm.
    pub fn default_language(&self) -> Language {
        self.realms
            .iter()
            .next()
            .map_or(Language::Fr, |r| r.default_language)
    }
}

impl axum::extract::FromRef<AppState> for PageSettings {
    fn from_ref(state: &AppState) -> PageSettings {
        state.page_settings()
    }
}

/// What is read and thrown away of a refused body at most (`http::drain`).
const DRAIN_BYTES: u64 = 1024 * 1024;

/// The public router. `/metrics` is not on it but on its own listener ([`metrics_router`]).
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let mut router = Router::new()
        .merge(crate::protocol::router())
        .merge(crate::flows::router())
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/static/connect.css", get(stylesheet))
        .fallback(not_found);
    // `config.dev` is set by the `dev` command only, never by a setting.
    if state.config.dev {
        router = router.merge(crate::notify::dev_router());
    }
    for layer in headers::layers(state.config.is_https()) {
        router = router.layer(layer);
    }
    let drain = DrainLayer::new(DRAIN_BYTES.max(max_body as u64), state.config.read_timeout);
    router
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(middleware::from_fn(count_requests))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // The route, not the path: paths carry enrolment transaction ids.
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", |p| p.as_str());
            tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(drain)
        .with_state(state)
}

/// `/metrics` alone, for the listener at `metrics_bind` (loopback by default): request counts
/// per route and client are the operator's, not the internet's.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
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
        let metrics_listener = TcpListener::bind(metrics_bind)
            .await
            .map_err(|e| StartError::Bind(metrics_bind, e))?;
        config.metrics_bind = metrics_listener
            .local_addr()
            .map_err(|e| StartError::Bind(metrics_bind, e))?;
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
        let stop = tokio_util::sync::CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.cancel();
        });
        let purge = self.audit_purge.then(|| {
            self.state
                .audit
                .clone()
                .spawn_daily_purge(self.state.realms.clone())
        });
        let read_timeout = self.state.config.read_timeout;
        let public = server::serve(
            self.listener,
            router(self.state.clone()),
            read_timeout,
            stop.clone().cancelled_owned(),
        );
        let metrics = server::serve(
            self.metrics_listener,
            metrics_router(self.state.clone()),
            read_timeout,
            stop.cancelled_owned(),
        );
        let (public, metrics) = tokio::join!(public, metrics);
        if let Some(purge) = purge {
            purge.abort();
        }
        public.and(metrics)?;
        self.state.db.close().await;
        Ok(())
    }
}

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("connect_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("connect_http_request_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

async fn ready(State(state): State<AppState>) -> Response {
    let db = state.db.ping().await;
    let eph = state.ephemeral.ping().await;
    match (db, eph) {
        (Ok(()), Ok(())) => "ready".into_response(),
        (db, eph) => {
            if let Err(e) = &db {
                tracing::warn!(error = %e, "database not reachable");
            }
            if let Err(e) = &eph {
                tracing::warn!(error = %e, "ephemeral store not reachable");
            }
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
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
