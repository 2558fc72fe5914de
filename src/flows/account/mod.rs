//! The person's own account page, `/{realm}/account`: what the IdP holds about them, their
//! factors, sessions and recent security events, and the changes they may make themselves.
//!
//! Every page needs a session of this browser at the realm's full level (password and a
//! second factor, or stronger); a weaker or missing session goes to the login, which ends
//! back here. Sensitive changes need a fresh proof on top, from the step-up gate
//! ([`stepup`]). Each change of a factor or of the e-mail address ends every other session
//! and grant of the account and mails the person (`guard::Guard::restrict_others`).

mod close;
mod data;
mod email;
pub(crate) mod events;
mod password;
mod phone;
mod sessions;
pub mod stepup;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{Redirect, Response},
    routing::{get, post},
    Router,
};
use minijinja::context;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{
    app::AppState,
    clock::Clock,
    domain::{acr, Language, PhoneNumber},
    factors::recovery::CODES_PER_SET,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        Page, PageError,
    },
    keys::SecretHasher,
    protocol::interaction::valid_id,
    realm::Realm,
    session::Session,
    storage::{
        accounts::{self, Account},
        ephemeral::Record,
        grants, passkeys, recovery_codes, totp, Db, Ephemeral, StoreError,
    },
};

/// The account pages' own short-lived state: step-up proofs, and changes of the number and
/// of the address waiting for their code. Built once, in `AppState`.
#[derive(Clone)]
pub struct AccountStore {
    pub stepups: stepup::StepUps,
    phones: phone::PhoneChanges,
    emails: email::EmailChanges,
}

impl AccountStore {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, clock: &Clock) -> Self {
        AccountStore {
            stepups: stepup::StepUps::new(store, hasher, clock),
            phones: phone::PhoneChanges::new(store, hasher),
            emails: email::EmailChanges::new(store, hasher),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/account", get(show))
        .route("/{realm}/account/language", post(change_language))
        .route(
            "/{realm}/account/confirm",
            get(stepup::show).post(stepup::submit),
        )
        .route(
            "/{realm}/account/confirm/code",
            get(stepup::show_code).post(stepup::submit_code),
        )
        .route("/{realm}/account/confirm/resend", post(stepup::resend))
        .route(
            "/{realm}/account/password",
            get(password::show).post(password::submit),
        )
        .route(
            "/{realm}/account/phone",
            get(phone::show).post(phone::submit),
        )
        .route(
            "/{realm}/account/phone/code",
            get(phone::show_code).post(phone::submit_code),
        )
        .route("/{realm}/account/phone/resend", post(phone::resend))
        .route(
            "/{realm}/account/email",
            get(email::show).post(email::submit),
        )
        .route(
            "/{realm}/account/email/code",
            get(email::show_code).post(email::submit_code),
        )
        .route("/{realm}/account/sessions", get(sessions::show))
        .route(
            "/{realm}/account/sessions/others",
            post(sessions::end_others),
        )
        .route("/{realm}/account/events", get(events::show))
        .route("/{realm}/account/data", get(data::show))
        .route("/{realm}/account/data.json", get(data::download))
        .route(
            "/{realm}/account/close",
            get(close::show).post(close::submit),
        )
}

/// The person on their account page: this browser's session and its account.
pub struct Me {
    pub session: Session,
    pub account: Account,
}

/// The person of this browser's session at the realm's full level; otherwise the answer
/// instead of the page: the login (which ends on the account page), or, for an account that
/// has no second factor to log in with, the page that sends the person to support. The
/// page then speaks the account's language unless `?lang=` chose another.
pub async fn me(state: &AppState, page: &mut Page) -> Result<Me, PageError> {
    let to = format!("/{}/login", page.realm.id);
    let login = || PageError::answered(Redirect::to(&to));
    let Some(session) = state.sessions.current(&page.realm, &page.jar).await? else {
        return Err(login());
    };
    let Some(account) = accounts::by_id(&state.db, &page.realm.id, &session.account_id).await?
    else {
        return Err(login());
    };
    page.prefer(Some(account.language.code()));
    if !acr::satisfies(&session.acr, &[acr::MFA.to_owned()]) {
        let factors = stepup::Factors::from(state);
        if stepup::SecondFactor::of(&factors, &account)
            .await?
            .is_empty()
        {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "account-no-second-factor",
            ));
        }
        return Err(login());
    }
    Ok(Me { session, account })
}

/// The record `flow` of `store` (a change or a proof under way), if this session started it
/// for this account; `owner` names its session id and account. `None` when it is over, is
/// another browser's, or the id is malformed.
async fn started_here<T: Serialize + DeserializeOwned>(
    store: &Record<T>,
    realm: &Realm,
    me: &Me,
    flow: &str,
    owner: fn(&T) -> (&str, &str),
) -> Result<Option<T>, StoreError> {
    let Some(flow) = valid_id(Some(flow)) else {
        return Ok(None);
    };
    let record = store.get(realm.id.as_str(), flow).await?;
    Ok(record.filter(|r| owner(r) == (me.session.sid.as_str(), me.account.id.as_str())))
}

/// One factor of an account as the overview lists it.
#[derive(Clone, Debug, Serialize)]
pub struct FactorLine {
    /// What it is (a locale key).
    pub label: &'static str,
    /// What tells it apart, already safe to show (a masked number, a name the person gave).
    pub detail: Option<String>,
}

/// The factors registered for an account, as the overview and the data download list them.
/// A new kind of factor adds its lines here.
pub async fn factors_of(db: &Db, account: &Account) -> Result<Vec<FactorLine>, StoreError> {
    let (realm, id) = (&account.realm, account.id.as_str());
    let mut lines = vec![FactorLine {
        label: "factor-password",
        detail: None,
    }];
    if let Some(stored) = account.phone.as_deref() {
        lines.push(FactorLine {
            label: "factor-sms",
            detail: Some(masked_phone(stored)),
        });
    }
    if totp::by_account(db, realm, id).await?.is_some() {
        lines.push(FactorLine {
            label: "factor-app",
            detail: None,
        });
    }
    for key in passkeys::of_account(db, realm, id).await? {
        lines.push(FactorLine {
            label: "factor-passkey",
            detail: Some(key.name.to_string()),
        });
    }
    if let Some(set) = recovery_codes::set_of(db, realm, id).await? {
        lines.push(FactorLine {
            label: "factor-recovery-codes",
            detail: Some(format!("{} / {CODES_PER_SET}", set.left)),
        });
    }
    Ok(lines)
}

/// A stored number (E.164) as the pages show it: `+41 79 *** ** 67`.
fn masked_phone(stored: &str) -> String {
    PhoneNumber::parse(stored).map_or_else(|_| "***".to_owned(), |p| p.masked())
}

/// A date and time as a person in Switzerland reads it: `14.03.2026 09:05`.
pub(crate) fn swiss_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| {
            crate::letter::swiss_time(t)
                .format("%d.%m.%Y %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A relying party the person has used, as the overview lists it.
#[derive(Serialize)]
struct AppLine {
    name: String,
    first: String,
    last: String,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

/// What a `?done=` after a change may say (a locale key); anything else says nothing.
fn done_message(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "password" => Some("account-done-password"),
        "phone" => Some("account-done-phone"),
        "email" => Some("account-done-email"),
        "language" => Some("account-done-language"),
        "app-removed" => Some("factors-app-removed"),
        _ => None,
    }
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let account = &me.account;
    let factors = factors_of(&state.db, account).await?;
    let apps: Vec<AppLine> = grants::clients_of_account(&state.db, &realm.id, &account.id)
        .await?
        .into_iter()
        .map(|c| AppLine {
            name: realm
                .clients
                .get(&c.client_id)
                .map_or(c.client_id.clone(), |client| client.name.clone()),
            first: swiss_time(c.first_at),
            last: swiss_time(c.last_at),
        })
        .collect();
    let languages: Vec<_> = realm
        .languages
        .iter()
        .map(|l| context! { code => l.code(), name => l.endonym(), current => *l == account.language })
        .collect();
    page.at(format!("/{}/account", realm.id));
    let base = format!("/{}/account", realm.id);
    let ctx = context! {
        csrf => page.csrf(),
        base => base,
        done => done_message(q.done.as_deref()),
        given_name => account.given_name,
        family_name => account.family_name,
        ahv => account.ahv.as_ref().map(|a| a.masked()),
        email => account.email.as_str(),
        phone => account.phone.as_deref().map(masked_phone),
        language => account.language.endonym(),
        languages => languages,
        factors => factors,
        passkeys => state.passkeys.available(),
        apps => apps,
        terms_version => account.terms_version,
        terms_accepted => account.terms_accepted_at.map(swiss_time),
    };
    page.render(StatusCode::OK, "account/overview.html", ctx)
}

csrf_forms! {
    pub struct LanguageForm { language: String }
}

/// « Langue »: the account's language, which its pages, mails and letters follow. The page's
/// own language cookie follows too.
pub async fn change_language(
    State(state): State<AppState>,
    mut page: Page,
    form: Result<Form<LanguageForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let me = me(&state, &mut page).await?;
    let Some(lang) = Language::from_tag(&form.language).filter(|l| page.realm.offers(*l)) else {
        return Err(PageError::new(StatusCode::BAD_REQUEST, "error-language"));
    };
    if lang != me.account.language {
        accounts::set_language(&state.db, &me.account.id, lang, state.clock.unix()).await?;
    }
    let jar = std::mem::take(&mut page.jar);
    page.jar = crate::http::language::remember(jar, lang, page.secure());
    let to = format!("/{}/account?done=language", page.realm.id);
    Ok(page.redirect(&to))
}
