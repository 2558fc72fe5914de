//! The HTML journeys of a person: enrolment by activation letter, login, recovery, the
//! account page and its factors.

pub mod account;
pub mod enrol;
pub mod factors;
pub mod login;
pub mod passkeys;
pub mod recovery;
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
        .route("/{realm}/login/passkey", post(login::submit_passkey))
        .route(
            "/{realm}/login/passkey/options",
            post(login::passkey_options),
        )
        .route(
            "/{realm}/login/app",
            get(login::show_app).post(login::submit_app),
        )
        .route(
            "/{realm}/login/recovery-code",
            get(login::show_recovery_code).post(login::submit_recovery_code),
        )
        .route("/{realm}/logo", get(pages::logo))
        .merge(enrol::router())
        .merge(account::router())
        .merge(factors::router())
        .merge(passkeys::router())
        .merge(recovery::router())
        .layer(middleware::from_fn(pages::render_failures))
}
