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
use tokio::net::TcpListener;

use crate::{
    clock::Clock,
    config::Config,
    http::{csrf::CsrfKey, headers},
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
}

#[derive(Debug, thiserror::Error)]
pub enum PortalStartError {
    #[error(transparent)]
    Realm(#[from] crate::realm::RealmFileError),
    #[error("portal.realm: no realm {0} in the realm directory")]
    UnknownRealm(String),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
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
        Self::open_with_secret(config, clock, secret).await
    }

    /// For commands that never log anyone in (`connect admin documents purge`): the IdP
    /// client secret may be missing.
    pub async fn open_offline(
        config: Config,
        clock: Clock,
    ) -> Result<PortalState, PortalStartError> {
        let secret = config
            .portal
            .client_secret
            .clone()
            .unwrap_or_else(|| String::new().into());
        Self::open_with_secret(config, clock, secret).await
    }

    async fn open_with_secret(
        config: Config,
        clock: Clock,
        secret: secrecy::SecretString,
    ) -> Result<PortalState, PortalStartError> {
        let realms = Realms::load_dir(&config.realm_dir)?;
        let realm = realms
            .get(&config.portal.realm)
            .cloned()
            .ok_or_else(|| PortalStartError::UnknownRealm(config.portal.realm.to_string()))?;
        let master = MasterKey::load(&config.master_key)?;
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let ephemeral = match &config.redis_url {
            Some(url) => Ephemeral::redis(url, &format!("{}portal:", config.redis_prefix)).await?,
            None => Ephemeral::memory(),
        };
        Ok(PortalState {
            blobs: blobs::Blobs::open(&config.portal.store_url)?,
            notifier: Notifier::new(&config)?,
            idp: idp::Idp::new(&config.portal, secret, clock.clone()),
            csrf: CsrfKey::new(master.derive("portal-csrf")),
            hasher: SecretHasher::new(&master),
            config: Arc::new(config),
            realm,
            db,
            ephemeral,
            clock,
        })
    }
}

pub fn router(state: PortalState) -> Router {
    let mut router = Router::new()
        .merge(web::router())
        .merge(api::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/connect.css", get(crate::app::stylesheet));
    for layer in headers::layers() {
        router = router.layer(layer);
    }
    router.with_state(state)
}

/// A bound portal server, ready to run.
pub struct Portal {
    pub state: PortalState,
    listener: TcpListener,
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

    pub async fn with_listener(
        config: Config,
        clock: Clock,
        listener: TcpListener,
    ) -> Result<Portal, PortalStartError> {
        let state = PortalState::open(config, clock).await?;
        Ok(Portal {
            state,
            listener,
            daily_purge: false,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.portal_bind)
    }

    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router(self.state.clone());
        let purge = self
            .daily_purge
            .then(|| retention::spawn_daily_purge(self.state.clone()));
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(purge) = purge {
            purge.abort();
        }
        served
    }
}
