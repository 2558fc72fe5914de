//! The realm named by the first path segment, or a 404 page.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, RawPathParams},
    http::{request::Parts, StatusCode},
};

use super::HttpError;
use crate::{app::AppState, domain::RealmId, realm::Realm};

pub struct CurrentRealm(pub Arc<Realm>);

impl FromRequestParts<AppState> for CurrentRealm {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        let not_found = || {
            HttpError::page(
                StatusCode::NOT_FOUND,
                state.default_language(),
                "error-unknown-realm",
            )
        };
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "realm")
            .map(|(_, v)| v)
            .ok_or_else(not_found)?;
        let id: RealmId = raw.parse().map_err(|_| not_found())?;
        state
            .realms
            .get(&id)
            .cloned()
            .map(CurrentRealm)
            .ok_or_else(not_found)
    }
}
