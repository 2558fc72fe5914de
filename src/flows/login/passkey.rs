//! Login with a passkey alone: a discoverable credential, so the person types nothing (the
//! browser offers the passkeys it holds for our site, in the e-mail field's suggestions or
//! after the button « Se connecter avec une clé d'accès »).
//!
//! `POST …/login/passkey/options` (from `static/passkey.js`) starts a ceremony: its state
//! is kept by `passkeys::Passkeys`, bound to this browser by a cookie of its own, and the
//! options go back as JSON. `POST …/login/passkey` is an ordinary form with the ceremony id
//! and the browser's credential: the ceremony is taken once, the assertion checked against
//! the passkey its credential id names, and the login ends as any other (`finish`), at the
//! class `urn:connect:acr:phishing-resistant`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::{expired, finish, load_interaction, render, LoginPage, Proved};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    domain::{acr, RealmId},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    limits::Limit,
    passkeys::LoginRefusal,
    protocol::interaction::valid_id,
    session::random_token,
    storage::accounts::{self, AccountStatus},
};

csrf_forms! {
    pub struct OptionsForm {
        flow: Option<String>,
    }
}

csrf_forms! {
    pub struct PasskeyForm {
        flow: Option<String>,
        #[serde(default)]
        ceremony: String,
        /// The browser's `PublicKeyCredential` as JSON (`static/passkey.js`); empty when the
        /// browser could not give one.
        #[serde(default)]
        credential: String,
    }
}

/// The cookie that binds a login ceremony to the browser that started it: an assertion
/// is only taken from there. `__Host-` under https, one per realm.
fn binding_cookie(realm: &RealmId, secure: bool) -> String {
    if secure {
        format!("__Host-connect_passkey_{realm}")
    } else {
        format!("connect_passkey_{realm}")
    }
}

/// The browser's binding value, a new one when it has none.
fn binding(jar: CookieJar, realm: &RealmId, secure: bool) -> (CookieJar, String) {
    let name = binding_cookie(realm, secure);
    if let Some(value) = jar.get(&name).map(|c| c.value().to_owned()) {
        if !value.is_empty() && value.len() <= 64 {
            return (jar, value);
        }
    }
    let value = random_token();
    let cookie = Cookie::build((name, value.clone()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), value)
}

/// Starts a login ceremony: the options for `navigator.credentials.get`, as JSON.
pub async fn passkey_options(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<OptionsForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    if !state.passkeys.available() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found"));
    }
    let flow = valid_id(form.flow.as_deref());
    load_interaction(&state.interactions, &realm, flow).await?;
    // Each ceremony is stored until it expires, for anybody who asks: counted per address
    // like the login flows that `authorize` starts.
    let subject = addr.subject();
    let limit = Limit::per_hour(
        "passkey_ceremonies_per_address",
        realm.authorize.flows_per_address_per_hour,
    );
    if let Err(e) = state
        .limits
        .charge(realm.id.as_str(), &[(limit, subject.as_str())])
        .await?
    {
        return Err(PageError::Limited(e.retry_after));
    }
    let jar = std::mem::take(&mut page.jar);
    let (jar, browser) = binding(jar, &realm.id, page.secure());
    let started = state.passkeys.start_login(&realm, &browser, flow).await?;
    Ok((jar, Json(started)).into_response())
}

/// Ends a login ceremony with the browser's assertion.
pub async fn submit_passkey(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let flow = valid_id(form.flow.as_deref());
    let pending = load_interaction(&state.interactions, &realm, flow).await?;
    let passkey_only = super::passkey_only(&realm, pending.as_ref());
    let fail = |page: Page, error: &'static str, status| {
        let form = LoginPage {
            flow,
            email: "",
            error: Some(error),
            n: None,
            enrolled: false,
            passkeys: state.passkeys.available(),
            passkey_only,
        };
        render(page, form, status)
    };
    if !state.passkeys.available() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "error-not-found"));
    }
    if form.credential.is_empty() {
        return fail(page, "passkey-login-missing", StatusCode::BAD_REQUEST);
    }
    let browser = page
        .jar
        .get(&binding_cookie(&realm.id, page.secure()))
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let headers = page.headers().clone();
    let proof = state
        .passkeys
        .finish_login(&realm, &browser, &form.ceremony, &form.credential)
        .await?;
    let proof = match proof {
        Ok(proof) => proof,
        Err(refused) => {
            tracing::info!(realm = %realm.id, refused = refused.as_str(), "passkey login refused");
            let mut event = Event::new(Kind::LoginFailed, &realm.id)
                .origin(addr, &headers)
                .detail(serde_json::json!({ "factor": "passkey", "refused": refused.as_str() }));
            if let Some(account) = refused.account() {
                event = event.account(account);
            }
            state.audit.record(event).await;
            metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => "failure").increment(1);
            return match refused {
                // The ceremony is over (used, expired, or another browser's): start again.
                LoginRefusal::NoCeremony => Err(expired()),
                LoginRefusal::UnknownCredential => {
                    fail(page, "passkey-login-unknown", StatusCode::UNAUTHORIZED)
                }
                _ => fail(page, "passkey-login-failed", StatusCode::UNAUTHORIZED),
            };
        }
    };
    let now = state.clock.unix();
    let mut account = accounts::by_id(&state.db, &realm.id, &proof.account_id)
        .await?
        .ok_or_else(expired)?;
    if !account.may_log_in(now) {
        let message = match account.status {
            AccountStatus::Disabled | AccountStatus::Invited => "error-account-disabled",
            _ => "error-account-locked",
        };
        let detail = serde_json::json!({ "factor": "passkey", "refused": message });
        let refused = Event::new(Kind::LoginFailed, &realm.id)
            .account(&account.id)
            .origin(addr, &headers)
            .detail(detail);
        state.audit.record(refused).await;
        return fail(page, message, StatusCode::FORBIDDEN);
    }
    if !account.active {
        // Its lock has ended by itself, as the password login would find.
        accounts::lift_ended_lock(&state.db, &account.id, now).await?;
        account = accounts::by_id(&state.db, &realm.id, &account.id)
            .await?
            .ok_or_else(expired)?;
    }
    // The ceremony knows which relying party's request it was started for.
    let proved = Proved {
        account: &account,
        interaction: proof.interaction.as_deref(),
        acr: acr::PHISHING_RESISTANT,
        amr: proof.amr,
        addr,
    };
    finish(&(&state).into(), page, proved).await
}
