//! The person's pages: login through the IdP, overview, « Mes documents », logout.

use axum::Router;

use super::PortalState;

pub fn router() -> Router<PortalState> {
    Router::new()
}
