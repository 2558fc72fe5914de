//! The person's own account page.

use axum::{extract::State, http::StatusCode, response::Response};
use minijinja::context;

use crate::{
    app::AppState,
    http::{Page, PageError},
    storage::accounts,
};

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let login = format!("/{}/login", page.realm.id);
    let Some(s) = state.sessions.current(&page.realm, &page.jar).await? else {
        return Ok(page.redirect(&login));
    };
    let Some(account) = accounts::by_id(&state.db, &page.realm.id, &s.account_id).await? else {
        return Ok(page.redirect(&login));
    };
    page.at(format!("/{}/account", page.realm.id));
    let ctx = context! {
        csrf => page.csrf(),
        given_name => account.given_name,
        family_name => account.family_name,
        email => account.email.as_str(),
        phone => account.phone.as_deref().map(crate::domain::PhoneNumber::for_display),
    };
    page.render(StatusCode::OK, "account/account.html", ctx)
}
