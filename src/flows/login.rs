//! Login with e-mail and password. Ends by completing the authorization request that
//! sent the person here, or on the account page when none did.

use axum::{
    extract::{rejection::FormRejection, Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::CookieJar;
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::page;
use crate::{
    app::AppState,
    domain::{Email, Language},
    http::{templates, CurrentRealm, HttpError},
    protocol::authorize::{self, flow_key, AuthRequest, Authentication},
    realm::Realm,
    session,
    storage::accounts,
};

/// The assurance of a login with password only.
pub const ACR_PASSWORD: &str = "urn:connect:acr:password";

/// Where a login stands. Each step consumes the flow and yields the next.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LoginFlow {
    /// Waiting for e-mail and password, on behalf of a relying party's request if any.
    Password { request: Option<AuthRequest> },
}

impl LoginFlow {
    pub fn new(request: AuthRequest) -> Self {
        LoginFlow::Password {
            request: Some(request),
        }
    }

    fn request(&self) -> Option<&AuthRequest> {
        match self {
            LoginFlow::Password { request } => request.as_ref(),
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    flow: Option<String>,
    lang: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    flow: Option<String>,
    email: String,
    password: SecretString,
}

async fn load_flow(
    state: &AppState,
    realm: &Realm,
    id: Option<&str>,
    lang: Language,
) -> Result<Option<LoginFlow>, HttpError> {
    let Some(id) = id.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let flow: Option<LoginFlow> = state
        .ephemeral
        .get_json(&flow_key(realm, id))
        .await
        .map_err(HttpError::internal(lang))?;
    flow.map(Some)
        .ok_or_else(|| HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired"))
}

/// What the login form shows besides the layout.
struct LoginPage<'a> {
    csrf: &'a str,
    flow: Option<&'a str>,
    email: &'a str,
    error: Option<&'a str>,
}

fn render(
    realm: &Realm,
    lang: Language,
    jar: CookieJar,
    page: LoginPage<'_>,
    status: StatusCode,
) -> Result<Response, HttpError> {
    let LoginPage {
        csrf,
        flow,
        email,
        error,
    } = page;
    let path = match flow {
        Some(f) => format!("/{}/login?flow={f}", realm.id),
        None => format!("/{}/login", realm.id),
    };
    let ctx = context! {
        ..page::layout(realm, lang, &path),
        ..context! { csrf => csrf, flow => flow, email => email, error => error, action => format!("/{}/login", realm.id) }
    };
    let html = templates::render("login/login.html", ctx).map_err(HttpError::internal(lang))?;
    Ok((status, jar, Html(html)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let fallback_lang = realm.default_language;
    let flow = load_flow(&state, &realm, q.flow.as_deref(), fallback_lang).await?;
    let ui_locales = flow
        .as_ref()
        .and_then(|f| f.request())
        .and_then(|r| r.ui_locales.clone());
    let (jar, lang) = page::choose_language(
        &realm,
        q.lang.as_deref(),
        ui_locales.as_deref(),
        jar,
        &headers,
        secure,
    );
    let (jar, csrf) = state.csrf.token(jar, secure);
    let hint = flow
        .as_ref()
        .and_then(|f| f.request())
        .and_then(|r| r.login_hint.clone())
        .unwrap_or_default();
    let page = LoginPage {
        csrf: &csrf,
        flow: q.flow.as_deref(),
        email: &hint,
        error: None,
    };
    render(&realm, lang, jar, page, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    CurrentRealm(realm): CurrentRealm,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, HttpError> {
    let secure = state.config.is_https();
    let lang = crate::http::language::negotiate(&realm, None, &jar, &headers);
    let Form(form) = form.map_err(|rejection| {
        // Too large stays 413; any other unreadable form is a bad request.
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        HttpError::page(status, lang, "error-bad-request")
    })?;
    if !state.csrf.verify(&jar, secure, &form.csrf) {
        return Err(HttpError::page(StatusCode::FORBIDDEN, lang, "error-csrf"));
    }
    let flow_id = form.flow.as_deref().filter(|s| !s.is_empty());
    // An expired flow is told before the password is checked.
    load_flow(&state, &realm, flow_id, lang).await?;

    // Unknown e-mail, malformed e-mail and wrong password look and take the same.
    let account = match form.email.parse::<Email>() {
        Ok(email) => accounts::by_email(&state.db, &realm.id, &email)
            .await
            .map_err(HttpError::internal(lang))?,
        Err(_) => None,
    };
    let ok = state
        .passwords
        .verify(
            form.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await
        .map_err(HttpError::internal(lang))?;
    let account = account.filter(|a| ok && a.active);
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => if account.is_some() { "success" } else { "failure" }).increment(1);
    let Some(account) = account else {
        tracing::info!(realm = %realm.id, "login failed");
        let (jar, csrf) = state.csrf.token(jar, secure);
        let page = LoginPage {
            csrf: &csrf,
            flow: flow_id,
            email: &form.email,
            error: Some("login-failed"),
        };
        return render(&realm, lang, jar, page, StatusCode::UNAUTHORIZED);
    };

    // Taking the flow is the single step that may complete it: of two racing
    // submissions, only one reaches the relying party.
    let request = match flow_id {
        Some(id) => {
            let taken: Option<LoginFlow> = state
                .ephemeral
                .take_json(&flow_key(&realm, id))
                .await
                .map_err(HttpError::internal(lang))?;
            let taken = taken.ok_or_else(|| {
                HttpError::page(StatusCode::BAD_REQUEST, lang, "error-flow-expired")
            })?;
            match taken {
                LoginFlow::Password { request } => request,
            }
        }
        None => None,
    };
    let (jar, session) = session::start(
        &state,
        &realm,
        jar,
        &account.id,
        ACR_PASSWORD,
        vec!["pwd".into()],
    )
    .await
    .map_err(HttpError::internal(lang))?;
    tracing::info!(realm = %realm.id, account = %account.id, "login succeeded");
    match request {
        Some(request) => {
            if request
                .expected_sub
                .as_deref()
                .is_some_and(|sub| sub != account.id)
            {
                let e = crate::protocol::error::OAuthError::login_required(
                    "another person is logged in than the client expected",
                );
                return Ok((jar, authorize::deny(&state, &realm, &request, &e)).into_response());
            }
            let res = authorize::complete(
                &state,
                &realm,
                request,
                Authentication { session: &session },
            )
            .await?;
            Ok((jar, res).into_response())
        }
        None => Ok((jar, Redirect::to(&format!("/{}/account", realm.id))).into_response()),
    }
}
