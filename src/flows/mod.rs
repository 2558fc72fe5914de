//! The HTML journeys of a person: enrolment by activation letter, login, the account page.

pub mod account;
pub mod enrol;
pub mod login;
pub mod sms;

use axum::{
    middleware,
    routing::{get, post},
    Router,
};

use crate::{app::AppState, http::page as pages};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/login", get(login::show).post(login::submit))
        .route(
            "/{realm}/login/sms",
            get(login::show_sms).post(login::submit_sms),
        )
        .route("/{realm}/login/sms/resend", post(login::resend_sms))
        .route("/{realm}/account", get(account::show))
        .route("/{realm}/logo", get(pages::logo))
        .merge(enrol::router())
        .layer(middleware::from_fn(pages::render_failures))
}
