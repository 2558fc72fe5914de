//! The HTML journeys of a person: enrolment by activation letter, login, recovery, the
//! account page and its factors.

pub mod account;
pub mod enrol;
pub mod factors;
pub mod login;
pub mod passkeys;
pub mod recovery;
pub mod sms;
pub mod staff;

use axum::{
    middleware,
    routing::{get, post},
    Router,
};

use crate::{app::AppState, http::page as pages};

/// The pages; `state` is what the layers that tell a staff realm from a caisse read.
pub fn router(state: &AppState) -> Router<AppState> {
    // What only the insured persons of a caisse have: enrolment by letter, recovery, and the
    // steps after a password. A staff realm logs in with a passkey alone.
    let persons_only = Router::new()
        .route(
            "/{realm}/login/sms",
            get(login::show_sms).post(login::submit_sms),
        )
        .route("/{realm}/login/sms/resend", post(login::resend_sms))
        .route(
            "/{realm}/login/app",
            get(login::show_app).post(login::submit_app),
        )
        .route(
            "/{realm}/login/recovery-code",
            get(login::show_recovery_code).post(login::submit_recovery_code),
        )
        .merge(enrol::router())
        .merge(recovery::router())
        // The account page's changes need a second factor besides the passkey, which staff
        // have not: their accounts are kept with `connect admin staff`.
        .merge(account::router())
        .merge(factors::router())
        .merge(passkeys::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            staff::not_in_staff_realm,
        ));
    let staff_only = staff::router().route_layer(middleware::from_fn_with_state(
        state.clone(),
        staff::staff_realm_only,
    ));
    Router::new()
        .route("/{realm}/login", get(login::show).post(login::submit))
        .route("/{realm}/login/passkey", post(login::submit_passkey))
        .route(
            "/{realm}/login/passkey/options",
            post(login::passkey_options),
        )
        .route("/{realm}/logo", get(pages::logo))
        .merge(persons_only)
        .merge(staff_only)
        .layer(middleware::from_fn(pages::render_failures))
}
