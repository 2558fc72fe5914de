//! `/healthz` (the process answers) and `/readyz` (and so do its database and short-lived
//! store), the same on both servers: each names its own stores.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::storage::{Db, Ephemeral};

/// What a server needs to serve requests besides itself.
#[derive(Clone)]
pub struct Readiness {
    pub db: Db,
    pub ephemeral: Ephemeral,
}

pub fn router<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

/// 503 while a store does not answer; which one goes to the log, not to the caller.
async fn ready(State(readiness): State<Readiness>) -> Response {
    let (db, eph) = tokio::join!(readiness.db.ping(), readiness.ephemeral.ping());
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
