//! The HTML journeys of a person: login and the account page (enrolment comes next).

pub mod account;
pub mod login;
mod page;

use axum::{routing::get, Router};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/login", get(login::show).post(login::submit))
        .route("/{realm}/account", get(account::show))
}
