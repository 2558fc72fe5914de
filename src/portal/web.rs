//! The person's side of the portal: login and logout through the IdP, the overview and
//! « Mes documents ».

use axum::{
    routing::{get, post},
    Router,
};

use super::{auth, pages, PortalState};

pub fn router() -> Router<PortalState> {
    Router::new()
        .route("/", get(pages::overview))
        .route(
            "/logo",
            get(
                |axum::extract::State(state): axum::extract::State<PortalState>| async move {
                    crate::flows::page::logo_response(&state.realm)
                },
            ),
        )
        .route("/documents", get(pages::documents))
        .route("/documents/{id}", get(pages::download))
        .route("/login", get(auth::login))
        .route("/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .route("/backchannel-logout", post(auth::backchannel))
}
