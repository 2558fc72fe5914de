//! The realm named by the first path segment, or a 404 page.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts, RawPathParams},
    http::{request::Parts, StatusCode},
};

use super::HttpError;
use crate::{
    domain::{Language, RealmId},
    realm::{Realm, Realms},
};

pub struct CurrentRealm(pub Arc<Realm>);

/// The language of pages that belong to no realm: the first realm's.
pub fn default_language(realms: &Realms) -> Language {
    realms
        .iter()
        .next()
        .map_or(Language::Fr, |r| r.default_language)
}

impl<S> FromRequestParts<S> for CurrentRealm
where
    Realms: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        let realms = Realms::from_ref(state);
        let not_found = || {
            HttpError::page(
                StatusCode::NOT_FOUND,
                default_language(&realms),
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
        realms
            .get(&id)
            .cloned()
            .map(CurrentRealm)
            .ok_or_else(not_found)
    }
}
