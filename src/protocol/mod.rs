//! The OpenID Connect endpoints of each realm. None of them renders a login form: the
//! pages that log a person in meet the protocol at one seam, [`interaction`].

pub mod authorize;
pub mod backchannel;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod interaction;
pub mod introspect;
pub mod logout;
pub mod token;
pub mod tokens;
pub mod userinfo;
pub mod verified;

use axum::{middleware::from_fn, routing::get, Router};

use crate::{
    app::AppState,
    http::page,
    realm::Realm,
    storage::{accounts, Db, StoreError},
};

/// The account behind a session, grant or token, if it still exists and may log in. Every
/// reuse of a past login (SSO session, refresh, userinfo, introspection, code exchange) asks
/// this first, so that locking or disabling an account ends its access at once.
pub async fn active_account(
    db: &Db,
    realm: &Realm,
    account_id: &str,
    now: i64,
) -> Result<Option<accounts::Account>, StoreError> {
    Ok(accounts::by_id(db, &realm.id, account_id)
        .await?
        .filter(|a| a.may_log_in(now)))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/{realm}/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/{realm}/jwks", get(discovery::jwks))
        .route(
            "/{realm}/authorize",
            get(authorize::authorize)
                .post(authorize::authorize)
                .layer(from_fn(page::render_failures)),
        )
        .route(
            "/{realm}/authorize/resume/{id}",
            get(authorize::resume).layer(from_fn(page::render_failures)),
        )
        .route("/{realm}/token", axum::routing::post(token::token))
        .route(
            "/{realm}/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route(
            "/{realm}/introspect",
            axum::routing::post(introspect::introspect),
        )
        .route("/{realm}/revoke", axum::routing::post(introspect::revoke))
        .route("/{realm}/logout", logout::route())
}
