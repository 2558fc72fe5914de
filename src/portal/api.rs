//! The delivery API of caisse systems: `/api/v1/documents`.

use axum::Router;

use super::PortalState;

pub fn router() -> Router<PortalState> {
    Router::new()
}
