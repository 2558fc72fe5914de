//! The document portal « Mes documents »: a relying party of the IdP that knows it only
//! through discovery and standard OIDC, as any caisse application would; and the delivery
//! API through which caisse systems hand it documents.

pub mod api;
pub mod auth;
pub mod bearer;
pub mod blobs;
pub mod deliver;
pub mod demo;
pub mod idp;
mod pages;
pub mod retention;
mod session;
mod web;

use std::{net::SocketAddr, sync::Arc};

use axum::{routing::get, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::{
    clock::Clock,
    config::Config,
    http::{self, csrf::CsrfKey, health::Readiness, server, BodyLimit, StackSettings},
    keys::{MasterKey, SecretHasher},
    notify::Notifier,
    realm::{Realm, Realms},
    storage::{Db, Ephemeral},
};

/// Everything a portal handler may need, cheap to clone.
#[derive(Clone)]
pub struct PortalState {
    pub config: Arc<Config>,
    /// The caisse the portal serves: its name, support contact and retention (presentation
    /// only; who a person is comes from the IdP).
    pub realm: Arc<Realm>,
    pub db: Db,
    pub ephemeral: Ephemeral,
    pub blobs: blobs::Blobs,
    pub notifier: Notifier,
    pub clock: Clock,
    pub idp: idp::Idp,
    pub csrf: CsrfKey,
    pub hasher: SecretHasher,
    /// The caisse systems whose access tokens may use the delivery API.
    pub delivery_clients: Arc<[String]>,
    pub metrics: PrometheusHandle,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalStartError {
    #[error(transparent)]
    Realm(#[from] crate::realm::RealmFileError),
    #[error("portal.realm: no realm {0} in the realm directory")]
    UnknownRealm(String),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error("portal.secret_key: {0}")]
    SecretKey(crate::keys::KeyError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Blobs(#[from] blobs::BlobError),
    #[error("portal.client_secret is not set (CONNECT_PORTAL__CLIENT_SECRET)")]
    NoClientSecret,
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// The client secret the sample realm file registers for the portal; dev mode only.
pub const DEV_CLIENT_SECRET: &str = "portal-dev-secret";

impl PortalState {
    pub async fn open(config: Config, clock: Clock) -> Result<PortalState, PortalStartError> {
        let secret = match (&config.portal.client_secret, config.dev) {
            (Some(s), _) => s.clone(),
            (None, true) => DEV_CLIENT_SECRET.to_owned().into(),
            (None, false) => return Err(PortalStartError::NoClientSecret),
        };
        let key =
            MasterKey::load(&config.portal.secret_key).map_err(PortalStartError::SecretKey)?;
        let state = Self::open_with(config, clock, secret, key).await?;
        if state.config.redis_url.is_some() && state.config.portal.redis_url.is_none() {
            tracing::warn!(
                "portal.redis_url is not set: the portal keeps its sessions in this process, \
                 so replicas do not share them (the IdP's Redis is never used by the portal)"
            );
        }
        if state.delivery_clients.is_empty() {
            tracing::warn!(
                "portal.delivery_clients is not set: every delivery is refused until the caisse \
                 systems' client ids are listed there"
            );
        }
        Ok(state)
    }

    /// For commands that never log anyone in (`connect admin documents purge`): the IdP
    /// client secret may be missing, and the portal's secret key is neither read nor
    /// created (nothing it protects is touched).
    pub async fn open_offline(
        config: Config,
        clock: Clock,
    ) -> Result<PortalState, PortalStartError> {
        let secret = config
            .portal
            .client_secret
            .clone()
            .unwrap_or_else(|| String::new().into());
        Self::open_with(config, clock, secret, MasterKey::generate()).await
    }

    /// Opens the portal's own database, store and objects; nothing of the IdP's (its
    /// database, Redis or master key) is touched: the portal knows the IdP over HTTP only.
    async fn open_with(
        config: Config,
        clock: Clock,
        secret: secrecy::SecretString,
        key: MasterKey,
    ) -> Result<PortalState, PortalStartError> {
        let realms = Realms::load_dir(&config.realm_dir)?;
        let realm = realms
            .get(&config.portal.realm)
            .cloned()
            .ok_or_else(|| PortalStartError::UnknownRealm(config.portal.realm.to_string()))?;
        let db = Db::connect(&config.portal.database_url).await?;
        db.migrate_portal().await?;
        let ephemeral = match &config.portal.redis_url {
            Some(url) => Ephemeral::redis(url, &format!("{}portal:", config.redis_prefix)).await?,
            None => Ephemeral::memory(clock.clone()),
        };
        Ok(PortalState {
            blobs: blobs::Blobs::open(&config.portal.store_url)?,
            notifier: Notifier::new(&config)?,
            idp: idp::Idp::new(&config.portal, secret, clock.clone()),
            csrf: CsrfKey::new(key.derive("portal-csrf")),
            hasher: SecretHasher::new(&key),
            delivery_clients: config.portal.delivery_clients(config.dev).into(),
            metrics: http::metrics::handle(),
            config: Arc::new(config),
            realm,
            db,
            ephemeral,
            clock,
        })
    }
}

pub fn router(state: PortalState) -> Router {
    let router = Router::new()
        .merge(web::router())
        .merge(api::router())
        .route("/static/connect.css", get(crate::app::stylesheet));
    let settings = StackSettings {
        server: "portal",
        https: state.config.portal_url.scheme() == "https",
        // Person-facing forms are small; the delivery API lifts the limit on its route and
        // checks `portal.max_document_bytes` itself, once it knows the caller.
        body_limit: BodyLimit::Default(state.config.max_body_bytes),
        // A refused delivery's rest may be a whole document.
        drain_bytes: state.config.portal.max_document_bytes as u64 + 1024 * 1024,
        read_timeout: state.config.read_timeout,
        readiness: Readiness {
            db: state.db.clone(),
            ephemeral: state.ephemeral.clone(),
        },
    };
    http::stack(router, settings).with_state(state)
}

/// A bound portal server, ready to run.
pub struct Portal {
    pub state: PortalState,
    listener: TcpListener,
    metrics_listener: TcpListener,
    /// The retention purge at start and every day; servers built by [`Portal::build`] run it,
    /// tests (which bind their own listener) run the purge themselves, when they choose.
    daily_purge: bool,
}

impl Portal {
    pub async fn build(config: Config, clock: Clock) -> Result<Portal, PortalStartError> {
        let bind = config.portal_bind;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| PortalStartError::Bind(bind, e))?;
        let mut portal = Self::with_listener(config, clock, listener).await?;
        portal.daily_purge = true;
        Ok(portal)
    }

    /// Serves on a listener bound by the caller (tests bind port 0). The metrics listener is
    /// bound here, and `config.portal.metrics_bind` becomes the address it got.
    pub async fn with_listener(
        mut config: Config,
        clock: Clock,
        listener: TcpListener,
    ) -> Result<Portal, PortalStartError> {
        let metrics_bind = config.portal.metrics_bind;
        let (metrics_listener, bound) = server::bind(metrics_bind)
            .await
            .map_err(|e| PortalStartError::Bind(metrics_bind, e))?;
        config.portal.metrics_bind = bound;
        let state = PortalState::open(config, clock).await?;
        Ok(Portal {
            state,
            listener,
            metrics_listener,
            daily_purge: false,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.portal_bind)
    }

    /// Serves the public and the metrics listener until the future resolves, then lets open
    /// requests finish.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let purge = self
            .daily_purge
            .then(|| retention::spawn_daily_purge(self.state.clone()));
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
        served
    }
}
