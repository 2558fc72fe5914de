//! Login: e-mail and password, then a second factor: the SMS code sent to the account's
//! mobile number, a code of the authenticator app (the default for a person who has one, who
//! may still ask for an SMS), or a recovery code (`second`); or a passkey alone (`passkey`),
//! which a relying party may demand with `acr_values`. Ends by starting the SSO session and
//! finishing the protocol's interaction that sent the person here (`protocol::interaction`),
//! or on the account page.
//!
//! Wrong passwords slow the next attempts for that address down (a growing delay, the same
//! for known and unknown addresses) instead of locking the account; only after the realm's
//! `lock_after_failures` consecutive failures (at most 100) is an account locked, for the
//! realm's `lock_minutes`, and the person told by mail. An account with a mobile number never
//! logs in without its SMS code: when the stored number no longer parses, the person is sent
//! to support.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

mod credentials;
mod passkey;
mod second;
mod sms;
mod throttle;

pub use credentials::{Checked, Credentials, Presented};
pub use passkey::{passkey_options, submit_passkey};
pub use second::{show_app, show_recovery_code, submit_app, submit_recovery_code};
pub use sms::{resend_sms, show_sms, submit_sms};

use super::sms::CodeFor;
use crate::{
    app::AppState,
    audit::{Audit, Event, Kind},
    domain::{acr, PhoneNumber},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
    protocol::interaction::{self, Interactions, View},
    realm::Realm,
    session::{random_token, Origin, Sessions},
    storage::{
        accounts::Account,
        ephemeral::{Counter, Record},
        Ephemeral,
    },
};

/// The page that sends a person whose stored number no longer works to support.
fn phone_unusable(mut page: Page) -> Result<Response, PageError> {
    page.at(format!("/{}/login", page.realm.id));
    page.render(StatusCode::FORBIDDEN, "login/support.html", context! {})
}

pub use crate::domain::acr::{MFA as ACR_MFA, PASSWORD as ACR_PASSWORD};

/// The password was right; the login waits for the second factor. Kept under the
/// interaction's id when a relying party sent the person, under its own otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SecondStep {
    /// The protocol's interaction this login finishes, if any.
    interaction: Option<String>,
    account_id: String,
    /// The account's mobile number (E.164), when codes can be sent to it.
    #[serde(default)]
    phone: Option<String>,
    /// The SMS code sent for this login, if any: a person with an app gets none unless asked.
    #[serde(default)]
    sms: Option<SentSms>,
}

/// The SMS code of a login: its hash bound to the login, its expiry, when it went out.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SentSms {
    code_hash: String,
    expires_at: i64,
    sent_at: i64,
}

impl From<super::sms::Sent> for SentSms {
    fn from(sent: super::sms::Sent) -> Self {
        SentSms {
            code_hash: sent.code_hash,
            expires_at: sent.expires_at,
            sent_at: sent.sent_at,
        }
    }
}

/// The login's own short-lived state: second-factor steps and their wrong codes. (The
/// password throttles belong to [`Credentials`].)
#[derive(Clone)]
pub struct LoginStore {
    steps: Record<SecondStep>,
    wrong_codes: Counter,
}

impl LoginStore {
    pub fn new(store: &Ephemeral) -> Self {
        LoginStore {
            steps: Record::plain(store, "login-sms"),
            wrong_codes: Counter::plain(store, "login-sms-attempts"),
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    flow: Option<String>,
    enrolled: Option<String>,
}

csrf_forms! {
    pub struct LoginForm {
        flow: Option<String>,
        email: String,
        password: SecretString,
    }
}

use interaction::valid_id;

/// The pending interaction named by `id`, if any; the page that says it is over when it is.
async fn load_interaction(
    interactions: &Interactions,
    realm: &Realm,
    id: Option<&str>,
) -> Result<Option<View>, PageError> {
    let Some(id) = valid_id(id) else {
        return Ok(None);
    };
    let view = interactions.view(realm, id).await?;
    view.map(Some).ok_or_else(expired)
}

/// Whether only a passkey may end this login: always in a staff realm (its staff log in
/// phishing-resistant, whatever the relying party asked), and where the relying party asked
/// for more than a password and an SMS code prove.
fn passkey_only(realm: &Realm, pending: Option<&View>) -> bool {
    realm.staff.is_some() || pending.is_some_and(|p| acr::needs_passkey(&p.acr_values))
}

/// The page that says the login is over.
fn expired() -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "error-flow-expired")
}

/// What the login form shows besides the layout.
pub(super) struct LoginPage<'a> {
    pub flow: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub n: Option<u64>,
    pub enrolled: bool,
    /// Whether passkeys work at this server's address (see `passkeys`): then the page offers
    /// them, with the script that runs the ceremony.
    pub passkeys: bool,
    /// The relying party asked for a class that only a passkey reaches: the page offers
    /// nothing else, and says why.
    pub passkey_only: bool,
}

pub(super) fn render(
    mut page: Page,
    form: LoginPage<'_>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let realm = page.realm.id.clone();
    let query = form.flow.map(|f| format!("?flow={f}")).unwrap_or_default();
    let path = format!("/{realm}/login{query}");
    let register = format!("/{realm}/register{query}");
    page.at(path);
    let passkey = form.passkeys.then(|| {
        context! {
            action => format!("/{realm}/login/passkey"),
            options => format!("/{realm}/login/passkey/options"),
        }
    });
    let ctx = context! {
        csrf => page.csrf(), flow => form.flow, email => form.email, error => form.error,
        n => form.n, enrolled => form.enrolled, register => register,
        forgot => format!("/{realm}/password/forgot{query}"),
        lost => format!("/{realm}/phone/lost{query}"),
        action => format!("/{realm}/login"),
        passkey => passkey, passkey_only => form.passkey_only,
        staff => page.realm.staff.is_some(),
        to_account => format!("/{realm}/login"),
    };
    page.render(status, "login/login.html", ctx)
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let pending = load_interaction(&state.interactions, &page.realm, q.flow.as_deref()).await?;
    page.prefer(pending.as_ref().and_then(|p| p.ui_locales.as_deref()));
    let passkey_only = passkey_only(&page.realm, pending.as_ref());
    let hint = pending.and_then(|p| p.login_hint).unwrap_or_default();
    let form = LoginPage {
        flow: valid_id(q.flow.as_deref()),
        email: &hint,
        error: None,
        n: None,
        enrolled: q.enrolled.is_some(),
        passkeys: state.passkeys.available(),
        passkey_only,
    };
    render(page, form, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    page: Page,
    addr: ClientAddr,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let realm = page.realm.clone();
    let headers = page.headers().clone();
    let flow_id = valid_id(form.flow.as_deref());
    // An expired interaction is told before the password is checked.
    let pending = load_interaction(&state.interactions, &realm, flow_id).await?;
    let passkeys = state.passkeys.available();
    if passkey_only(&realm, pending.as_ref()) {
        // The relying party asked for more than a password and an SMS code can prove, or
        // this is a staff realm: the password is not even checked, and the person is shown
        // the passkey path.
        let form = LoginPage {
            flow: flow_id,
            email: "",
            error: None,
            n: None,
            enrolled: false,
            passkeys,
            passkey_only: true,
        };
        return render(page, form, StatusCode::FORBIDDEN);
    }
    let fail_page = |page: Page, error: &'static str, n: Option<u64>, status| {
        let form = LoginPage {
            flow: flow_id,
            email: &form.email,
            error: Some(error),
            n,
            enrolled: false,
            passkeys,
            passkey_only: false,
        };
        render(page, form, status)
    };

    let presented = Presented {
        email: &form.email,
        password: &form.password,
        addr,
        headers: &headers,
    };
    let account = match state.credentials.check(&realm, presented).await? {
        Checked::Proved(account) => *account,
        Checked::Refused { message, n, status } => return fail_page(page, message, n, status),
    };
    // An event of this attempt for the audit trail, from this client.
    let event = |kind, account: &str, detail: serde_json::Value| {
        Event::new(kind, &realm.id)
            .origin(addr, &headers)
            .detail(detail)
            .account(account)
    };

    let has_app = state
        .totp
        .registered(&realm.id, &account.id)
        .await?
        .is_some();
    let phone = match account.phone.as_deref().map(PhoneNumber::parse) {
        None if !has_app && account.phone_reset_at.is_some() => {
            // Support took every factor away (a lost phone): the password alone must not
            // open the account. A code by e-mail, then a new number and its SMS code.
            let page = page;
            return crate::flows::recovery::new_phone::start_after_reset(
                &state, page, addr, &account, flow_id,
            )
            .await;
        }
        None if !has_app => {
            // Accounts that support created without a mobile number log in with the password
            // only.
            let proof = Proved {
                account: &account,
                interaction: flow_id,
                acr: ACR_PASSWORD,
                amr: &["pwd"],
                addr,
            };
            return finish(&(&state).into(), page, proof).await;
        }
        None => None,
        Some(Ok(phone)) => Some(phone),
        Some(Err(_)) => {
            // A number that no longer parses must not turn the login into a password-only
            // one; with an app, the app is the second factor.
            tracing::warn!(realm = %realm.id, account = %account.id, "the stored mobile number does not parse");
            if !has_app {
                let detail = serde_json::json!({ "factor": "sms", "refused": "phone_unusable" });
                let refused = event(Kind::LoginFailed, &account.id, detail);
                state.audit.record(refused).await;
                return phone_unusable(page);
            }
            None
        }
    };
    let id = flow_id.map_or_else(random_token, str::to_owned);
    let mut next = SecondStep {
        interaction: flow_id.map(str::to_owned),
        account_id: account.id.clone(),
        phone: phone.as_ref().map(|p| p.as_e164().to_owned()),
        sms: None,
    };
    // A person with an app uses it by default: no SMS goes out unless they ask for one.
    let to_step = match (&phone, has_app) {
        (Some(phone), false) => {
            let to = CodeFor {
                phone,
                account: &format!("account:{}", account.id),
                purpose: &sms::purpose(&id),
                last_sent_at: None,
            };
            match state.sms.send(&realm, page.lang, &addr, to).await? {
                Ok(sent) => next.sms = Some(sent.into()),
                Err(r) => {
                    let (key, n, status) = r.message();
                    return fail_page(page, key, n, status);
                }
            }
            "sms"
        }
        _ => "app",
    };
    state
        .login
        .steps
        .put(realm.id.as_str(), &id, &next, realm.lifetimes.login_flow)
        .await?;
    Ok(page.redirect(&format!("/{}/login/{to_step}?flow={id}", realm.id)))
}

/// What a login proved, for [`finish`].
struct Proved<'a> {
    account: &'a Account,
    /// The protocol's interaction this login finishes, if any.
    interaction: Option<&'a str>,
    acr: &'a str,
    amr: &'a [&'a str],
    addr: ClientAddr,
}

/// What a login ends with: the SSO session, the audit trail, the protocol's interaction.
struct LoginEnds<'a> {
    sessions: &'a Sessions,
    audit: &'a Audit,
    interactions: &'a Interactions,
}

impl<'a> From<&'a AppState> for LoginEnds<'a> {
    fn from(state: &'a AppState) -> Self {
        LoginEnds {
            sessions: &state.sessions,
            audit: &state.audit,
            interactions: &state.interactions,
        }
    }
}

/// Starts the session, then finishes the interaction that sent the person here (the
/// protocol answers the relying party at its resume endpoint), or opens the account page.
async fn finish(
    ends: &LoginEnds<'_>,
    mut page: Page,
    proved: Proved<'_>,
) -> Result<Response, PageError> {
    let Proved {
        account,
        interaction,
        acr,
        amr,
        addr,
    } = proved;
    let realm = page.realm.clone();
    let amr_owned = amr.iter().map(|s| (*s).to_owned()).collect();
    let jar = std::mem::take(&mut page.jar);
    let origin = Origin::of(addr, page.headers());
    let (jar, session) = ends
        .sessions
        .start_from(&realm, jar, &account.id, acr, amr_owned, origin)
        .await?;
    page.jar = jar;
    tracing::info!(realm = %realm.id, account = %account.id, acr, "login succeeded");
    ends.audit
        .record(
            Event::new(Kind::LoginSucceeded, &realm.id)
                .account(&account.id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({ "acr": acr, "amr": amr })),
        )
        .await;
    metrics::counter!("connect_logins_total", "realm" => realm.id.to_string(), "outcome" => "success").increment(1);
    let Some(id) = interaction else {
        return Ok(page.redirect(&format!("/{}/account", realm.id)));
    };
    match ends
        .interactions
        .finish(&realm, id, (&session).into())
        .await?
    {
        Some(to) => Ok(page.redirect(&to)),
        // The session stands (its cookie goes out); only the relying party's request is over.
        None => Err(PageError::answered((page.jar, expired()))),
    }
}
