//! The console as a relying party of the staff realm, with the `openidconnect` library: the
//! authorization code with PKCE, `state` and `nonce`, asking for the phishing-resistant class;
//! the code exchanged at the staff realm's token endpoint over HTTP, as any client does; the
//! ID token checked against the realm's published keys. The console's own session then
//! lives as long as the staff member's session in the staff realm, and no longer.

use std::time::Duration;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, SameSite};
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata},
    AuthenticationContextClass, ClientId, CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{console_realms, ConsoleSession, LogoutForm};
use crate::{
    app::AppState,
    domain::acr,
    http::{
        params::{Form, FormRejection, Query},
        Page, PageError,
    },
    realm::Realm,
    rp,
    storage::staff,
};

/// A login on its way to the staff realm and back, under the keyed hash of its `state`.
#[derive(Serialize, Deserialize)]
pub(super) struct PendingLogin {
    verifier: String,
    nonce: String,
    /// The keyed hash of the browser's binding cookie (login CSRF).
    browser: String,
}

pub(super) const PENDING: Duration = Duration::from_secs(600);

fn refused() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "console-login-failed")
}

fn binding_cookie(page: &Page) -> String {
    let name = format!("console_login_{}", page.realm.id);
    if page.secure() {
        format!("__Host-{name}")
    } else {
        name
    }
}

/// The console of `caisse` as the staff realm's client. The provider's metadata and keys
/// are this server's own (the documents its discovery and JWKS endpoints serve); the token
/// request still goes over HTTP to the staff realm's token endpoint.
async fn client(
    state: &AppState,
    staff_realm: &Realm,
    caisse: &Realm,
    with_keys: bool,
) -> Result<rp::Client, PageError> {
    let rules = staff_realm.staff.as_ref().ok_or_else(refused)?;
    let doc = state
        .discovery
        .document(&staff_realm.id)
        .ok_or_else(refused)?;
    let mut provider: CoreProviderMetadata = serde_json::from_slice(&doc)?;
    if with_keys {
        let jwks: CoreJsonWebKeySet =
            serde_json::from_slice(&state.keys.jwks_document(&staff_realm.id).await?)?;
        provider = provider.set_jwks(jwks);
    }
    let redirect = RedirectUrl::new(format!(
        "{}/console/callback",
        state.config.issuer(&caisse.id)
    ))?;
    Ok(CoreClient::from_provider_metadata(
        provider,
        ClientId::new(rules.console_client.clone()),
        None,
    )
    .set_redirect_uri(redirect))
}

/// Sends the browser to the staff realm's login, asking for a passkey.
pub async fn login(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    let staff_realm = console_realms(&state, &page)?;
    let client = client(&state, &staff_realm, &page.realm, false).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_auth_context_value(AuthenticationContextClass::new(
            acr::PHISHING_RESISTANT.into(),
        ))
        .add_ui_locale(openidconnect::LanguageTag::new(page.lang.code().into()))
        .set_pkce_challenge(challenge)
        .url();
    let name = binding_cookie(&page);
    let value = page
        .jar
        .get(&name)
        .map(|c| c.value().to_owned())
        .filter(|v| (32..=64).contains(&v.len()))
        .unwrap_or_else(crate::session::random_token);
    let browser = state
        .secret_hasher
        .hash(&format!("console-login-browser:{value}"));
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(page.secure())
        .same_site(SameSite::Lax)
        .build();
    page.jar = std::mem::take(&mut page.jar).add(cookie);
    state
        .console
        .pending
        .put(
            page.realm.id.as_str(),
            csrf_state.secret(),
            &PendingLogin {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                browser,
            },
            PENDING,
        )
        .await?;
    Ok(page.redirect(url.as_str()))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The staff realm's answer: the code exchanged, the ID token checked (signature, issuer,
/// audience, nonce, expiry, and the phishing-resistant class), the staff member looked up,
/// and the console's session started.
pub async fn callback(
    State(state): State<AppState>,
    page: Page,
    q: Result<Query<CallbackQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let staff_realm = console_realms(&state, &page)?;
    let Query(q) = q.map_err(|_| refused())?;
    let csrf_state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() < 200)
        .ok_or_else(refused)?;
    let pending = state
        .console
        .pending
        .take(page.realm.id.as_str(), csrf_state)
        .await?
        .ok_or_else(refused)?;
    let same_browser = page.jar.get(&binding_cookie(&page)).is_some_and(|c| {
        let hash = state
            .secret_hasher
            .hash(&format!("console-login-browser:{}", c.value()));
        bool::from(hash.as_bytes().ct_eq(pending.browser.as_bytes()))
    });
    if !same_browser {
        tracing::warn!("console login callback from a browser that did not begin it");
        return Err(refused());
    }
    if q.error.is_some() {
        tracing::info!("the staff realm refused the console login");
        return Err(refused());
    }
    let code = q.code.ok_or_else(refused)?;
    let client = client(&state, &staff_realm, &page.realm, true).await?;
    let (_, id_token) = rp::exchange(&client, &state.console.http, code, pending.verifier)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "console login refused");
            refused()
        })?;
    let clock = state.clock.clone();
    let verifier = client.id_token_verifier().set_time_fn(move || clock.now());
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| {
            tracing::warn!(error = %e, "console ID token refused");
            refused()
        })?;
    let proven = claims.auth_context_ref().map(|a| a.as_str());
    if !proven.is_some_and(|a| acr::satisfies(a, &[acr::PHISHING_RESISTANT.to_owned()])) {
        tracing::warn!("console login without a phishing-resistant factor refused");
        return Err(PageError::new(StatusCode::FORBIDDEN, "console-login-weak"));
    }
    let account_id = claims.subject().as_str().to_owned();
    let sid = claims.additional_claims().sid.clone().ok_or_else(refused)?;
    let member = staff::by_account(&state.db, &staff_realm.id, &account_id).await?;
    if !member.is_some_and(|m| m.serves(&page.realm.id)) {
        tracing::warn!(caisse = %page.realm.id, "console login by an account not serving this caisse");
        return Err(super::forbidden());
    }
    let session = ConsoleSession {
        account_id,
        sid,
        seen_at: state.clock.unix(),
    };
    let jar = state
        .console
        .start(&page.realm.id, page.secure(), page.jar.clone(), &session)
        .await?;
    tracing::info!(caisse = %page.realm.id, "console login");
    let home = format!("/{}/console", page.realm.id);
    Ok((jar, Redirect::to(&home)).into_response())
}

/// Ends the console's session, then the staff realm's (RP-initiated logout).
pub async fn logout(
    State(state): State<AppState>,
    page: Page,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let staff_realm = console_realms(&state, &page)?;
    page.read(form)?;
    let jar = state.console.end(&page).await?;
    let client_id = staff_realm
        .staff
        .as_ref()
        .map(|s| s.console_client.as_str())
        .unwrap_or_default();
    let back = format!("{}/console", state.config.issuer(&page.realm.id));
    let to = url::Url::parse_with_params(
        &format!("{}/logout", state.config.issuer(&staff_realm.id)),
        [
            ("client_id", client_id),
            ("post_logout_redirect_uri", &back),
        ],
    )?;
    Ok((jar, Redirect::to(to.as_str())).into_response())
}
