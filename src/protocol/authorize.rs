//! The authorization endpoint. It validates the request as an ordered list of small
//! checks, then either answers at once from the SSO session or keeps the request as an
//! interaction (`interaction`) and sends the browser to the login page, whose flow comes
//! back to [`resume`]. It never renders a form.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{claims::ClaimsRequest, error::OAuthError, interaction::Proof, tokens::Tokens};
use crate::{
    app::AppState,
    clock::Clock,
    config::Config,
    domain::acr,
    http::{params::Params, ClientAddr, Page, PageError},
    keys::SecretHasher,
    limits::Limit,
    realm::{Client, ClientRegistry, Realm},
    session::{self, Session},
    storage::{ephemeral::Record, Ephemeral},
};

/// The longest value of each parameter that is stored with a pending request, in bytes:
/// an anonymous request must not park more than a few KiB for the flow's lifetime.
const MAX_STORED: [(&str, usize); 6] = [
    ("state", 1024),
    ("nonce", 512),
    ("login_hint", 320),
    ("ui_locales", 128),
    ("acr_values", 512),
    ("claims", 4096),
];

/// A validated authorization request, kept while the person logs in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The PKCE challenge as oxide-auth encodes it (method and challenge), if any.
    pub pkce: Option<String>,
    pub prompt_login: bool,
    pub max_age: Option<i64>,
    pub ui_locales: Option<String>,
    pub login_hint: Option<String>,
    pub claims: ClaimsRequest,
    /// The subject the client expects, from `id_token_hint`.
    pub expected_sub: Option<String>,
    /// The classes of `acr_values` that we know; the login must reach one of them.
    #[serde(default)]
    pub acr_values: Vec<String>,
}

/// A code waiting for the token endpoint.
#[derive(Serialize, Deserialize)]
pub struct IssuedCode {
    pub request: AuthRequest,
    pub account_id: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
    pub issued_at: i64,
}

/// Issues authorization codes and sends the browser back to the client: how every
/// authorization request ends.
#[derive(Clone)]
pub struct Codes {
    /// Codes waiting for the token endpoint, by the keyed hash of the code.
    pub issued: Record<IssuedCode>,
    /// The grant each used code gave, by the keyed hash of the code, to revoke it on replay.
    pub used: Record<String>,
    clock: Clock,
    config: Arc<Config>,
}

/// Where errors go once client and redirect URI are verified.
struct Verified<'a> {
    client: &'a Client,
    redirect_uri: String,
    state: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn authorize(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageError> {
    let raw: &[u8] = if method == Method::POST {
        &body
    } else {
        query.as_deref().unwrap_or_default().as_bytes()
    };
    let refused = |message| PageError::new(StatusCode::BAD_REQUEST, message);
    let realm = page.realm.clone();

    // RFC 6749 §4.1.2.1: until client and redirect URI are known good, never redirect.
    let params = Params::parse(raw).map_err(|_| refused("error-bad-request"))?;
    page.prefer(params.get("ui_locales"));
    let client_id = params
        .get("client_id")
        .ok_or_else(|| refused("error-unknown-client"))?;
    let client = realm
        .clients
        .get(client_id)
        .ok_or_else(|| refused("error-unknown-client"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| refused("error-bad-redirect-uri"))?;
    if !realm.clients.redirect_allowed(client, redirect_uri) {
        return Err(refused("error-bad-redirect-uri"));
    }
    let to = Verified {
        client,
        redirect_uri: redirect_uri.to_owned(),
        // An oversized state is refused below and not echoed back.
        state: params
            .get("state")
            .filter(|s| s.len() <= MAX_STORED[0].1)
            .map(str::to_owned),
    };

    let request = match validate(&realm, client, &params, &state.tokens).await {
        Ok(r) => r,
        Err(e) => return Ok(state.codes.redirect_error(&realm, &to, &e)),
    };
    let session = state.sessions.current(&realm, &page.jar).await?;
    let prompt_none = params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|v| v == "none"));
    let session = match session {
        Some(s) if may_reuse(state.clock.unix(), &s, &request) => {
            // A locked, disabled or deleted account keeps no access through its old session.
            super::active_account(&state.db, &realm, &s.account_id, state.clock.unix())
                .await?
                .map(|_| s)
        }
        _ => None,
    };
    match session {
        Some(session) => Ok(state
            .codes
            .complete(&realm, request, &Proof::from(&session))
            .await?),
        None if prompt_none => Ok(state.codes.redirect_error(
            &realm,
            &to,
            &OAuthError::login_required("the person must log in"),
        )),
        None => {
            let limit = Limit::per_hour(
                "login_flows_per_address",
                realm.authorize.flows_per_address_per_hour,
            );
            let subject = addr.subject();
            let checks = [(limit, subject.as_str())];
            if let Err(over) = state.limits.charge(realm.id.as_str(), &checks).await? {
                return Err(PageError::Limited(over.retry_after));
            }
            let id = state.interactions.start(&realm, request).await?;
            Ok(page.redirect(&format!("/{}/login?flow={id}", realm.id)))
        }
    }
}

/// The checks after the redirect URI is trusted, in order; the first failure is answered.
async fn validate(
    realm: &Realm,
    client: &Client,
    p: &Params,
    tokens: &Tokens,
) -> Result<AuthRequest, OAuthError> {
    check_sizes(p)?;
    check_request_objects(p)?;
    check_response_type(p)?;
    let scope = check_scope(realm, client, p)?;
    let pkce = check_pkce(p)?;
    let prompt_login = check_prompt(p)?;
    let max_age = check_max_age(p)?;
    let claims = match p.get("claims") {
        Some(raw) => ClaimsRequest::parse(raw).map_err(OAuthError::invalid_request)?,
        None => ClaimsRequest::default(),
    };
    let expected_sub = match p.get("id_token_hint") {
        Some(hint) => Some(
            tokens
                .read_id_token_hint(realm, hint)
                .await
                .ok_or_else(|| {
                    OAuthError::invalid_request("id_token_hint is not an ID token of this realm")
                })?
                .sub,
        ),
        None => None,
    };
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: p.get("redirect_uri").unwrap_or_default().to_owned(),
        scope,
        state: p.get("state").map(str::to_owned),
        nonce: p.get("nonce").map(str::to_owned),
        pkce,
        prompt_login,
        max_age,
        ui_locales: p.get("ui_locales").map(str::to_owned),
        login_hint: p.get("login_hint").map(str::to_owned),
        claims,
        expected_sub,
        acr_values: p
            .get("acr_values")
            .map(acr::parse_values)
            .unwrap_or_default(),
    })
}

pub fn check_sizes(p: &Params) -> Result<(), OAuthError> {
    for (name, max) in MAX_STORED {
        if p.get(name).is_some_and(|v| v.len() > max) {
            return Err(OAuthError::invalid_request(format!(
                "{name} is longer than {max} bytes"
            )));
        }
    }
    Ok(())
}

/// OIDC Core §6: request objects are not supported, and say so.
pub fn check_request_objects(p: &Params) -> Result<(), OAuthError> {
    if p.has("request") {
        return Err(OAuthError::request_not_supported(
            "request objects are not supported",
        ));
    }
    if p.has("request_uri") {
        return Err(OAuthError::request_uri_not_supported(
            "request_uri is not supported",
        ));
    }
    Ok(())
}

pub fn check_response_type(p: &Params) -> Result<(), OAuthError> {
    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::unsupported_response_type(
                "only response_type=code is supported",
            ))
        }
        None => return Err(OAuthError::invalid_request("response_type is missing")),
    }
    match p.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )),
    }
}

/// The scope granted: what was asked within what the client may have; scopes the client may
/// not have are dropped, not refused.
pub fn check_scope(realm: &Realm, client: &Client, p: &Params) -> Result<Vec<String>, OAuthError> {
    realm
        .clients
        .grant_scope(client, p.get("scope").unwrap_or_default())
        .ok_or_else(|| OAuthError::invalid_scope("the scope has invalid characters"))
}

/// RFC 7636 and RFC 9700 §2.1.1: S256 only, required for every client, confidential ones
/// too (a stolen code is useless without the verifier, and PKCE stops code injection).
pub fn check_pkce(p: &Params) -> Result<Option<String>, OAuthError> {
    let challenge = p.get("code_challenge");
    let method = p.get("code_challenge_method");
    if let Some(c) = challenge {
        let ok = (43..=128).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !ok {
            return Err(OAuthError::invalid_request(
                "code_challenge must be 43 to 128 unreserved characters",
            ));
        }
        if method != Some("S256") {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
    } else if method.is_some() {
        return Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        ));
    }
    ClientRegistry::pkce_challenge(method, challenge)
        .map(Some)
        .ok_or_else(|| OAuthError::invalid_request("this client must use PKCE with S256"))
}

/// `prompt=none` stands alone; `login` forces a new login; `consent` and
/// `select_account` are accepted (no consent screen for the caisse's own applications).
pub fn check_prompt(p: &Params) -> Result<bool, OAuthError> {
    let values: Vec<&str> = p
        .get("prompt")
        .map(|v| v.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if values.contains(&"none") && values.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined",
        ));
    }
    Ok(values.contains(&"login"))
}

pub fn check_max_age(p: &Params) -> Result<Option<i64>, OAuthError> {
    p.get("max_age")
        .map(|v| {
            v.parse::<u32>()
                .map(i64::from)
                .map_err(|_| OAuthError::invalid_request("max_age must be a non-negative integer"))
        })
        .transpose()
}

/// Whether the session can answer this request without a new login.
fn may_reuse(now: i64, s: &Session, r: &AuthRequest) -> bool {
    let fresh_enough = r.max_age.is_none_or(|max| now - s.auth_time <= max);
    let same_person = r
        .expected_sub
        .as_deref()
        .is_none_or(|sub| sub == s.account_id);
    // A session at a weaker class than asked is no answer: the person proves the missing
    // factor in a new login.
    let strong_enough = acr::satisfies(&s.acr, &r.acr_values);
    !r.prompt_login && fresh_enough && same_person && strong_enough
}

/// Where a login sent the browser back to (`interaction`): answers the client for the
/// finished interaction, once, and only in the browser whose SSO session finished it.
pub async fn resume(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    page: Page,
) -> Result<Response, PageError> {
    let realm = page.realm.clone();
    let expired = || PageError::new(StatusCode::BAD_REQUEST, "error-flow-expired");
    let session = state
        .sessions
        .current(&realm, &page.jar)
        .await?
        .ok_or_else(expired)?;
    let request = state
        .interactions
        .resume(&realm, &id, &session)
        .await?
        .ok_or_else(expired)?;
    if request
        .expected_sub
        .as_deref()
        .is_some_and(|sub| sub != session.account_id)
    {
        let e = OAuthError::login_required("another person is logged in than the client expected");
        return Ok(state.codes.deny(&realm, &request, &e));
    }
    Ok(state
        .codes
        .complete(&realm, request, &Proof::from(&session))
        .await?)
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            Redirect::to(url.as_str()).into_response()
        }
        // Registered URIs are checked as absolute URLs when the realm loads.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl Codes {
    pub fn new(
        store: &Ephemeral,
        hasher: &SecretHasher,
        clock: &Clock,
        config: &Arc<Config>,
    ) -> Self {
        Codes {
            issued: Record::hashed(store, "code", hasher, ""),
            used: Record::hashed(store, "code-used", hasher, ""),
            clock: clock.clone(),
            config: config.clone(),
        }
    }

    /// Ends an authorization request with a code for the client (RFC 6749 §4.1.2, RFC 9207).
    async fn complete(
        &self,
        realm: &Realm,
        request: AuthRequest,
        proof: &Proof,
    ) -> Result<Response, OAuthError> {
        // After a new login: the account could not reach the class asked (no mobile number).
        if !acr::satisfies(&proof.acr, &request.acr_values) {
            let e = OAuthError::unmet_authentication_requirements(
                "the login could not reach the authentication class asked for",
            );
            return Ok(self.deny(realm, &request, &e));
        }
        let code = session::random_token();
        let issued = IssuedCode {
            account_id: proof.account_id.clone(),
            auth_time: proof.auth_time,
            acr: proof.acr.clone(),
            amr: proof.amr.clone(),
            sid: proof.sid.clone(),
            issued_at: self.clock.unix(),
            request,
        };
        // The entry outlives the code a little so that a late use still finds it and is
        // refused as expired rather than unknown.
        let keep = realm.lifetimes.authorization_code + std::time::Duration::from_secs(60);
        self.issued
            .put(realm.id.as_str(), &code, &issued, keep)
            .await?;
        let r = &issued.request;
        let issuer = self.config.issuer(&realm.id);
        let mut pairs = vec![("code", code.as_str()), ("iss", issuer.as_str())];
        if let Some(st) = &r.state {
            pairs.push(("state", st));
        }
        Ok(redirect_with(&r.redirect_uri, &pairs))
    }

    fn redirect_error(&self, realm: &Realm, to: &Verified<'_>, e: &OAuthError) -> Response {
        tracing::info!(realm = %realm.id, client_id = %to.client.id, error = e.code, "authorization request refused");
        let issuer = self.config.issuer(&realm.id);
        let mut pairs = vec![
            ("error", e.code),
            ("error_description", e.description.as_ref()),
            ("iss", issuer.as_str()),
        ];
        if let Some(st) = &to.state {
            pairs.push(("state", st));
        }
        redirect_with(&to.redirect_uri, &pairs)
    }

    /// Sends the browser back to the client with an error, for a request that ends without
    /// a code.
    fn deny(&self, realm: &Realm, request: &AuthRequest, e: &OAuthError) -> Response {
        match realm.clients.get(&request.client_id) {
            Some(client) => self.redirect_error(
                realm,
                &Verified {
                    client,
                    redirect_uri: request.redirect_uri.clone(),
                    state: request.state.clone(),
                },
                e,
            ),
            None => StatusCode::BAD_REQUEST.into_response(),
        }
    }
}
