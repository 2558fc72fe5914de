//! Login and logout through the IdP, with the `openidconnect` library: authorization code with
//! PKCE, `state` and `nonce`; the ID token checked by the library against the IdP's keys;
//! userinfo for the person's data; RP-initiated and back-channel logout.

use std::time::Duration;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Json,
};
use axum_extra::extract::{
    cookie::{Cookie, SameSite},
    CookieJar,
};
use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKeySet},
    AdditionalClaims, AuthenticationContextClass, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, UserInfoClaims,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{
    idp::IdpError,
    pages::PortalVisit,
    session::{self, PortalSession},
    web, PortalState,
};
use crate::{
    domain::Language,
    http::{
        params::{Form, FormRejection, Query},
        PageError,
    },
    rp,
    storage::{documents, ephemeral::Record},
};

/// A query or form that could not be read strictly (invalid UTF-8, a repeated parameter).
fn bad_request() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-bad-request")
}

/// The login could not be completed; the cause is logged, never shown.
fn login_failed() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "portal-login-failed")
}

/// The IdP's claim with the AHV number (scope `ahv`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AhvClaim {
    ahv_number: Option<String>,
}
impl AdditionalClaims for AhvClaim {}

/// A login on its way to the IdP and back, kept under a hash of its `state`.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    verifier: String,
    nonce: String,
    return_to: String,
    /// The keyed hash of the browser's login cookie: the callback must come from the browser
    /// that began the login (login CSRF). Absent in a record of an older version: refused.
    #[serde(default)]
    browser: String,
}

const PENDING: Duration = Duration::from_secs(600);

/// The level of assurance the portal needs: password and SMS code, as the IdP names it in
/// discovery (`acr_values_supported`).
pub const REQUIRED_ACR: &str = "urn:connect:acr:password+sms";

/// Logins under way, by the keyed hash of their OIDC `state`.
fn pending_logins(state: &PortalState) -> Record<PendingLogin> {
    Record::hashed(&state.ephemeral, "plogin", &state.hasher, "portal-login:")
}

/// The cookie that binds a pending login to the browser that began it.
fn binding_cookie_name(state: &PortalState) -> &'static str {
    if session::secure(state) {
        "__Host-portal_login"
    } else {
        "portal_login"
    }
}

fn browser_hash(state: &PortalState, cookie: &str) -> String {
    state.hasher.hash(&format!("portal-login-browser:{cookie}"))
}

/// The browser's login cookie (a new random one when it has none, kept otherwise so that
/// two tabs may log in at once), and its keyed hash for the pending login.
fn bind_browser(state: &PortalState, jar: CookieJar) -> (CookieJar, String) {
    let name = binding_cookie_name(state);
    let value = jar
        .get(name)
        .map(|c| c.value().to_owned())
        .filter(|v| (32..=64).contains(&v.len()))
        .unwrap_or_else(crate::session::random_token);
    let hash = browser_hash(state, &value);
    // SameSite=Lax: the IdP's redirect back is a top-level GET, which carries it.
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(session::secure(state))
        .same_site(SameSite::Lax)
        .build();
    (jar.add(cookie), hash)
}

/// Whether the callback comes from the browser that began the login.
fn same_browser(state: &PortalState, jar: &CookieJar, pending: &PendingLogin) -> bool {
    use subtle::ConstantTimeEq;
    let Some(cookie) = jar.get(binding_cookie_name(state)) else {
        return false;
    };
    let hash = browser_hash(state, cookie.value());
    !pending.browser.is_empty() && bool::from(hash.as_bytes().ct_eq(pending.browser.as_bytes()))
}

/// Only paths of the portal's own pages are places to come back to; anything else is `/`.
fn safe_return(path: Option<&str>) -> String {
    path.and_then(web::return_path)
        .unwrap_or_else(|| "/".to_owned())
}

fn unavailable(e: IdpError) -> PageError {
    tracing::error!(error = %e, "the IdP is not available");
    PageError::new(StatusCode::BAD_GATEWAY, "portal-idp-unavailable")
}

/// The IdP's key for an ID token, found as every key of the IdP is ([`Idp::verifying_key`]),
/// as the one-key set the ID token verifier checks the signature with.
///
/// [`Idp::verifying_key`]: super::idp::Idp::verifying_key
async fn id_token_key(
    state: &PortalState,
    id_token: &rp::SidIdToken,
) -> Result<CoreJsonWebKeySet, IdpError> {
    let header =
        jsonwebtoken::decode_header(id_token.to_string()).map_err(|_| IdpError::UnknownKey)?;
    let kid = header.kid.ok_or(IdpError::UnknownKey)?;
    let key = state.idp.verifying_key(&kid, header.alg).await?;
    let jwk = serde_json::to_value(&key.jwk)
        .and_then(serde_json::from_value)
        .map_err(|_| IdpError::UnknownKey)?;
    Ok(CoreJsonWebKeySet::new(vec![jwk]))
}

/// The portal as the IdP's client; `keys`, when given, are the only ones its ID token
/// verifier trusts.
async fn idp_client(
    state: &PortalState,
    keys: Option<CoreJsonWebKeySet>,
) -> Result<rp::Client, PageError> {
    let mut provider = state.idp.provider().await.map_err(unavailable)?;
    if let Some(keys) = keys {
        provider = provider.set_jwks(keys);
    }
    let redirect = format!(
        "{}/callback",
        state.config.portal_url.as_str().trim_end_matches('/')
    );
    let redirect = RedirectUrl::new(redirect)?;
    Ok(CoreClient::from_provider_metadata(
        provider,
        ClientId::new(state.idp.client_id.clone()),
        Some(ClientSecret::new(
            state.idp.client_secret.expose_secret().to_owned(),
        )),
    )
    .set_redirect_uri(redirect))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// Sends the browser to the IdP; comes back to `return_to` after the login.
pub async fn login(
    State(state): State<PortalState>,
    PortalVisit { jar, .. }: PortalVisit,
    q: Result<Query<LoginQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let Query(q) = q.map_err(|_| bad_request())?;
    let client = idp_client(&state, None).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("phone".into()))
        .add_scope(Scope::new("ahv".into()))
        .add_auth_context_value(AuthenticationContextClass::new(REQUIRED_ACR.into()))
        .set_pkce_challenge(challenge)
        .url();
    let (jar, browser) = bind_browser(&state, jar);
    let pending = PendingLogin {
        verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
        return_to: safe_return(q.return_to.as_deref()),
        browser,
    };
    pending_logins(&state)
        .put("", csrf_state.secret(), &pending, PENDING)
        .await?;
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The IdP's answer: the code is exchanged, the ID token verified, the person's data read
/// from userinfo, and a fresh portal session started.
pub async fn callback(
    State(state): State<PortalState>,
    PortalVisit { lang, jar }: PortalVisit,
    q: Result<Query<CallbackQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let Query(q) = q.map_err(|_| bad_request())?;
    let refused = login_failed;
    let csrf_state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() < 200)
        .ok_or_else(refused)?;
    // Taken once: a replayed callback finds nothing.
    let pending = pending_logins(&state)
        .take("", csrf_state)
        .await?
        .ok_or_else(refused)?;
    // Login CSRF: an attacker's callback URL, opened in the victim's browser, finds no
    // matching cookie there and logs nobody in.
    if !same_browser(&state, &jar, &pending) {
        tracing::warn!("login callback from a browser that did not begin the login");
        return Err(refused());
    }
    if let Some(error) = &q.error {
        // The text comes from the URL: escaped (Debug) and cut, never written as it came.
        let error: String = error.chars().take(64).collect();
        tracing::info!(error = ?error, "the IdP refused the login");
        return Err(refused());
    }
    let code = q.code.ok_or_else(refused)?;
    let client = idp_client(&state, None).await?;
    let (tokens, id_token) = rp::exchange(&client, &state.idp.http, code, pending.verifier)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "login refused");
            refused()
        })?;
    let key_set = match id_token_key(&state, &id_token).await {
        Ok(keys) => keys,
        Err(e @ IdpError::Unavailable(_)) => return Err(unavailable(e)),
        Err(e) => {
            tracing::warn!(error = %e, "ID token refused");
            return Err(refused());
        }
    };
    let verifying = idp_client(&state, Some(key_set)).await?;
    let clock = state.clock.clone();
    let verifier = verifying
        .id_token_verifier()
        .set_time_fn(move || clock.now());
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| {
            tracing::warn!(error = %e, "ID token refused");
            refused()
        })?
        .clone();
    // The request asked for password and SMS, but the browser carried it and could drop the
    // ask: the ID token must say that both factors, or a stronger class (a passkey), were
    // proved.
    let acr = claims.auth_context_ref().map(|a| a.as_str());
    let required = [REQUIRED_ACR.to_owned()];
    if !acr.is_some_and(|a| crate::domain::acr::satisfies(a, &required)) {
        tracing::warn!(
            acr = acr.unwrap_or("(none)"),
            "login without the SMS factor refused"
        );
        return Err(PageError::new(StatusCode::FORBIDDEN, "portal-login-weak"));
    }
    let info: UserInfoClaims<AhvClaim, CoreGenderClaim> = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )?
        .request_async(&state.idp.http)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "userinfo failed");
            refused()
        })?;
    let text = |v: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserGivenName>>| {
        v.and_then(|c| c.get(None))
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default()
    };
    let language = info
        .locale()
        .and_then(|l| Language::from_tag(l.as_str()))
        .filter(|l| state.realm.offers(*l))
        .unwrap_or(lang);
    let session = PortalSession {
        sub: claims.subject().as_str().to_owned(),
        sid: claims.additional_claims().sid.clone(),
        ahv: info.additional_claims().ahv_number.clone(),
        given_name: text(info.given_name()),
        family_name: info
            .family_name()
            .and_then(|c| c.get(None))
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        email: info.email().map(|e| e.as_str().to_owned()),
        phone: info.phone_number().map(|p| p.as_str().to_owned()),
        language,
        id_token: id_token.to_string(),
        expires_at: state.clock.unix() + state.config.portal.session_seconds as i64,
    };
    // The portal tells the person by mail when a document arrives: it keeps the address and
    // language of their latest login.
    if let (Some(ahv), Some(email)) = (
        session.ahv.as_deref().and_then(|a| a.parse().ok()),
        session.email.as_deref().and_then(|e| e.parse().ok()),
    ) {
        let recipient = documents::Recipient {
            ahv,
            email,
            language: session.language,
            updated_at: state.clock.unix(),
        };
        documents::upsert_recipient(&state.db, &state.realm.id, &recipient).await?;
    }
    let jar = session::start(&state, jar, &session).await?;
    tracing::info!("portal login");
    // Checked at /login already; checked again, as everything read back from storage is.
    let back = safe_return(Some(&pending.return_to));
    Ok((jar, Redirect::to(&back)).into_response())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// Ends the portal session, then the IdP's (RP-initiated logout), which comes back here.
pub async fn logout(
    State(state): State<PortalState>,
    PortalVisit { jar, .. }: PortalVisit,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|r| PageError::new(r.status(), "error-bad-request"))?;
    let secure = state.config.portal_url.scheme() == "https";
    if !state.csrf.verify(&jar, secure, &form.csrf) {
        return Err(PageError::new(StatusCode::FORBIDDEN, "error-csrf"));
    }
    let (jar, ended) = session::end(&state, jar).await?;
    let Some(ended) = ended else {
        return Ok((jar, Redirect::to("/")).into_response());
    };
    let meta = state.idp.metadata().await.map_err(unavailable)?;
    let Some(end_session) = meta["end_session_endpoint"].as_str() else {
        return Ok((jar, Redirect::to("/")).into_response());
    };
    let mut url = url::Url::parse(end_session)?;
    url.query_pairs_mut()
        .append_pair("id_token_hint", &ended.id_token)
        .append_pair("client_id", &state.idp.client_id)
        .append_pair("post_logout_redirect_uri", state.config.portal_url.as_str());
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub struct BackchannelForm {
    logout_token: String,
}

/// OpenID Connect Back-Channel Logout 1.0 §2.5: the IdP says a session ended; every portal
/// session of that `sid` ends now.
pub async fn backchannel(
    State(state): State<PortalState>,
    form: Result<Form<BackchannelForm>, FormRejection>,
) -> Response {
    let bad = |why: &str| {
        tracing::warn!(reason = why, "back-channel logout refused");
        let body = serde_json::json!({ "error": "invalid_request", "error_description": why });
        (
            StatusCode::BAD_REQUEST,
            [("cache-control", "no-store")],
            Json(body),
        )
            .into_response()
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(FormRejection::TooLarge) => {
            let body = serde_json::json!({ "error": "invalid_request", "error_description": "the request body is too large" });
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [("cache-control", "no-store")],
                Json(body),
            )
                .into_response();
        }
        Err(FormRejection::Unreadable) => return bad("no logout_token"),
    };
    let claims = match verify_logout_token(&state, &form.logout_token).await {
        Ok(c) => c,
        Err(why) => return bad(&why),
    };
    // §2.6: a token that was received before is refused; its `jti` is remembered for as
    // long as the token itself would be accepted.
    let seen = seen_logout_tokens(&state);
    match seen
        .put_new("", &claims.jti, &true, claims.accepted_for)
        .await
    {
        Ok(true) => {}
        Ok(false) => return bad("this logout token was received before"),
        Err(e) => {
            crate::http::error::log_internal(&e);
            return (failed(&e), [("cache-control", "no-store")]).into_response();
        }
    }
    let ended = match &claims.sid {
        Some(sid) => session::end_sid(&state, sid).await,
        None => Ok(0),
    };
    if ended.is_err() {
        // Nothing was ended: the IdP's retry of this very token must be taken.
        let _ = seen.delete("", &claims.jti).await;
    }
    match ended {
        Ok(n) => {
            tracing::info!(sessions = n, "back-channel logout");
            (StatusCode::OK, [("cache-control", "no-store")]).into_response()
        }
        Err(e) => {
            crate::http::error::log_internal(&e);
            (failed(&e), [("cache-control", "no-store")]).into_response()
        }
    }
}

/// A back-channel logout that could not be recorded: 503 while a store cannot be reached,
/// else 500; the IdP tries once more after either.
fn failed(e: &(dyn std::error::Error + 'static)) -> StatusCode {
    if crate::storage::unavailable(e) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// What a valid logout token says.
#[derive(Debug, Deserialize)]
struct LogoutClaims {
    sid: Option<String>,
    sub: Option<String>,
    events: serde_json::Map<String, serde_json::Value>,
    nonce: Option<serde_json::Value>,
    jti: Option<String>,
}

/// A logout token that passed every check.
#[derive(Debug)]
pub struct ValidLogout {
    pub sid: Option<String>,
    pub jti: String,
    /// How much longer the token would be accepted: how long its `jti` is remembered.
    pub accepted_for: Duration,
}

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How far `iat` may be from the portal's clock.
const LOGOUT_IAT_WINDOW: i64 = 300;
/// Clock skew tolerated on `exp`.
const LOGOUT_LEEWAY: i64 = 30;

/// The `jti`s of logout tokens received, by their keyed hash.
fn seen_logout_tokens(state: &PortalState) -> Record<bool> {
    Record::hashed(
        &state.ephemeral,
        "pjti",
        &state.hasher,
        "portal-logout-jti:",
    )
}

/// §2.6: `typ` `logout+jwt` (§2.4: so that no other JWT of the IdP passes for one), signed by
/// the IdP, `iss` the IdP, `aud` this client, recent `iat`, `exp` not passed, the logout
/// event, no `nonce`, a `jti`, and a `sid` or `sub`.
async fn verify_logout_token(state: &PortalState, token: &str) -> Result<ValidLogout, String> {
    let kid = logout_token_kid(token)?;
    let alg = jsonwebtoken::decode_header(token)
        .map_err(|_| "not a JWT".to_owned())?
        .alg;
    let key = state
        .idp
        .verifying_key(&kid, alg)
        .await
        .map_err(|e| e.to_string())?;
    check_logout_token(
        token,
        &key.decoding,
        key.alg,
        state.idp.issuer.as_str().trim_end_matches('/'),
        &state.idp.client_id,
        state.clock.unix(),
    )
}

/// The key id a logout token names, once its header reads as a logout token's.
pub fn logout_token_kid(token: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT".to_owned())?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("logout+jwt") || t.eq_ignore_ascii_case("application/logout+jwt")
    });
    if !typ_ok {
        return Err("typ must be logout+jwt".into());
    }
    header.kid.ok_or_else(|| "no kid".to_owned())
}

/// The checks of [`verify_logout_token`] once the IdP's key for the token's `kid` is known:
/// no I/O, so that `fuzz/` runs them on any input against a fixed key.
pub fn check_logout_token(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<ValidLogout, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "not a JWT".to_owned())?;
    if header.alg != alg {
        return Err("algorithm does not match the key".into());
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    // Times are checked below against the injected clock (the manual clock of tests).
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
        .map_err(|e| format!("token refused: {e}"))?;
    let iat = data.claims["iat"].as_i64().ok_or("no iat")?;
    let exp = data.claims["exp"].as_i64().ok_or("no exp")?;
    // abs_diff: `now - iat` overflows for an `iat` near i64::MIN.
    if now.abs_diff(iat) > LOGOUT_IAT_WINDOW.unsigned_abs() {
        return Err("iat too far from now".into());
    }
    if exp.saturating_add(LOGOUT_LEEWAY) < now {
        return Err("the logout token has expired".into());
    }
    let claims: LogoutClaims =
        serde_json::from_value(data.claims).map_err(|_| "malformed claims".to_owned())?;
    if !claims.events.contains_key(LOGOUT_EVENT) {
        return Err("not a logout event".into());
    }
    if claims.nonce.is_some() {
        return Err("a logout token has no nonce".into());
    }
    let jti = match claims.jti {
        Some(j) if !j.is_empty() && j.len() <= 256 => j,
        _ => return Err("jti is required".into()),
    };
    if claims.sid.is_none() && claims.sub.is_none() {
        return Err("sid or sub is required".into());
    }
    let until = (iat + LOGOUT_IAT_WINDOW).min(exp.saturating_add(LOGOUT_LEEWAY));
    let accepted_for = Duration::from_secs(u64::try_from(until - now).unwrap_or(0) + 1);
    Ok(ValidLogout {
        sid: claims.sid,
        jti,
        accepted_for,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "http://127.0.0.1:8080/AK00";
    const NOW: i64 = 1_800_000_000;

    fn sign_and_check(claims: serde_json::Value) -> Result<ValidLogout, String> {
        crate::keys::install_jwt_crypto();
        let private = include_bytes!("../../tests/fixtures/keys/AK00-ES256.der");
        let rng = ring::rand::SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private, &rng).unwrap();
        let public = pair.public_key();
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("logout+jwt".into());
        header.kid = Some("k1".into());
        let key = EncodingKey::from_ec_der(private);
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert_eq!(logout_token_kid(&token).as_deref(), Ok("k1"));
        let key = DecodingKey::from_ec_der(public.as_ref());
        check_logout_token(&token, &key, Algorithm::ES256, ISSUER, "portal", NOW)
    }

    fn logout_claims(iat: serde_json::Value) -> serde_json::Value {
        json!({
            "iss": ISSUER, "aud": "portal", "iat": iat, "exp": NOW + 120, "jti": "j1", "sid": "s1",
            "events": { LOGOUT_EVENT: {} },
        })
    }

    #[test]
    fn a_logout_token_signed_by_the_key_is_accepted() {
        let claims = sign_and_check(logout_claims(json!(NOW - 10))).unwrap();
        assert_eq!(claims.sid.as_deref(), Some("s1"));
    }

    /// Seen while writing `fuzz/fuzz_targets/logout_token.rs`: `now - iat` overflowed (a
    /// panic in builds with overflow checks, such as the test suite's) for an `iat` near
    /// i64::MIN in a token signed by the IdP's key.
    #[test]
    fn an_iat_at_the_edge_of_i64_is_refused_without_overflow() {
        for iat in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert_eq!(
                sign_and_check(logout_claims(json!(iat))).unwrap_err(),
                "iat too far from now",
                "{iat}"
            );
        }
    }
}
