//! The support desk's console, `/{caisse}/console`: staff of the caisse's staff realm log in
//! through that realm as its relying party ([`login`]), find a person ([`pages`]) and act on
//! their account ([`act`]) through `support::Support`, which audits each action with the
//! staff member as operator and the reason they gave.
//!
//! Every page and action checks, on the server and on every request: the console's session,
//! the staff member's live session in the staff realm (the same `sid`), that the account is
//! still staff and serves this caisse, and the role the page or action needs
//! ([`Desk::require`]). The pages work without JavaScript.

mod act;
mod login;
mod pages;

use std::time::Duration;

pub use pages::parse_lookup;

use axum::{
    http::StatusCode,
    response::Redirect,
    routing::{get, post},
    Router,
};
use axum_extra::extract::{
    cookie::{Cookie, SameSite},
    CookieJar,
};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    clock::Clock,
    domain::{RealmId, StaffRole},
    http::{page::csrf_forms, Page, PageError},
    keys::SecretHasher,
    realm::Realm,
    storage::{
        ephemeral::Record,
        staff::{self, StaffMember},
        Ephemeral, StoreError,
    },
};

/// A console left alone this long asks for a new login (OWASP ASVS 3.3.2's idle timeout for
/// a privileged application); the staff realm's session bounds it in any case.
pub const IDLE: Duration = Duration::from_secs(15 * 60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{realm}/console", get(pages::home))
        .route("/{realm}/console/search", post(pages::search))
        .route("/{realm}/console/login", get(login::login))
        .route("/{realm}/console/callback", get(login::callback))
        .route("/{realm}/console/logout", post(login::logout))
        .route("/{realm}/console/audit", get(pages::audit))
        .route("/{realm}/console/people/{handle}", get(pages::person))
        .route(
            "/{realm}/console/people/{handle}/{action}",
            get(act::show).post(act::submit),
        )
}

csrf_forms! {
    pub struct LogoutForm {}
}

/// The console's own session: whose it is, and the staff realm's session it came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsoleSession {
    pub account_id: String,
    /// The staff realm's session (`sid` of the ID token): the console lives only as long.
    pub sid: String,
    pub seen_at: i64,
}

/// The console's short-lived state, built once in `AppState`.
#[derive(Clone)]
pub struct Console {
    sessions: Record<ConsoleSession>,
    pending: Record<login::PendingLogin>,
    /// For the code exchange at the staff realm's token endpoint; follows no redirect.
    http: reqwest::Client,
    clock: Clock,
}

impl Console {
    pub fn new(
        store: &Ephemeral,
        hasher: &SecretHasher,
        clock: &Clock,
    ) -> Result<Console, reqwest::Error> {
        Ok(Console {
            sessions: Record::hashed(store, "console", hasher, "console-session:"),
            pending: Record::hashed(store, "clogin", hasher, "console-login:"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()?,
            clock: clock.clone(),
        })
    }

    fn cookie_name(realm: &RealmId, secure: bool) -> String {
        let name = format!("console_{realm}");
        if secure {
            format!("__Host-{name}")
        } else {
            name
        }
    }

    /// Starts a console session of the caisse for this browser and returns the jar with its
    /// cookie (`secure`: the server's public URL is https).
    pub async fn start(
        &self,
        caisse: &RealmId,
        secure: bool,
        jar: CookieJar,
        session: &ConsoleSession,
    ) -> Result<CookieJar, StoreError> {
        let value = crate::session::random_token();
        self.sessions
            .put(caisse.as_str(), &value, session, IDLE)
            .await?;
        let cookie = Cookie::build((Self::cookie_name(caisse, secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            // Strict: no other site's link or form arrives with the console's session.
            .same_site(SameSite::Strict)
            .build();
        Ok(jar.add(cookie))
    }

    /// This browser's console session, kept alive for another [`IDLE`] period.
    async fn current(&self, page: &Page) -> Result<Option<(String, ConsoleSession)>, StoreError> {
        let Some(cookie) = page
            .jar
            .get(&Self::cookie_name(&page.realm.id, page.secure()))
        else {
            return Ok(None);
        };
        let scope = page.realm.id.as_str();
        let Some(mut session) = self.sessions.get(scope, cookie.value()).await? else {
            return Ok(None);
        };
        // The store's expiry runs on its own clock (Redis); the idle limit is checked here
        // too, by the server's.
        let now = self.clock.unix();
        if now - session.seen_at > IDLE.as_secs() as i64 {
            self.sessions.delete(scope, cookie.value()).await?;
            return Ok(None);
        }
        session.seen_at = now;
        self.sessions
            .put(scope, cookie.value(), &session, IDLE)
            .await?;
        Ok(Some((cookie.value().to_owned(), session)))
    }

    /// Ends this browser's console session and clears its cookie.
    async fn end(&self, page: &Page) -> Result<CookieJar, StoreError> {
        let name = Self::cookie_name(&page.realm.id, page.secure());
        if let Some(cookie) = page.jar.get(&name) {
            self.sessions
                .delete(page.realm.id.as_str(), cookie.value())
                .await?;
        }
        let removal = Cookie::build((name, ""))
            .path("/")
            .http_only(true)
            .secure(page.secure())
            .same_site(SameSite::Strict)
            .build();
        Ok(page.jar.clone().remove(removal))
    }
}

/// The staff realm of the caisse's console; 404 for a realm without a console.
fn console_realms(state: &AppState, page: &Page) -> Result<std::sync::Arc<Realm>, PageError> {
    page.realm
        .console
        .as_ref()
        .and_then(|c| state.realms.get(&c.staff_realm))
        .filter(|r| r.staff.is_some())
        .cloned()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))
}

/// 403: a staff member without the caisse or the role.
fn forbidden() -> PageError {
    PageError::new(StatusCode::FORBIDDEN, "console-forbidden")
}

/// A staff member at the console of a caisse they serve.
pub struct Desk {
    pub member: StaffMember,
    pub staff_realm: std::sync::Arc<Realm>,
}

impl Desk {
    /// The staff member of this browser at this caisse's console; otherwise the answer: the
    /// console's login for no session (or one whose staff realm session ended), 403 for an
    /// account that is not staff of this caisse.
    pub async fn of(state: &AppState, page: &Page) -> Result<Desk, PageError> {
        let staff_realm = console_realms(state, page)?;
        let to = format!("/{}/console/login", page.realm.id);
        let login = || PageError::answered(Redirect::to(&to));
        let Some((_, session)) = state.console.current(page).await? else {
            return Err(login());
        };
        // The staff realm's own session of this browser must be the one the console began
        // with: its logout, its end by support, or a lock of the account ends the console.
        let live = state.sessions.current(&staff_realm, &page.jar).await?;
        if !live.is_some_and(|s| s.sid == session.sid && s.account_id == session.account_id) {
            let jar = state.console.end(page).await?;
            return Err(PageError::answered((jar, Redirect::to(&to))));
        }
        let member = staff::by_account(&state.db, &staff_realm.id, &session.account_id)
            .await?
            .filter(|m| m.serves(&page.realm.id))
            .ok_or_else(forbidden)?;
        Ok(Desk {
            member,
            staff_realm,
        })
    }

    /// 403 unless the staff member's role is at least `role`.
    pub fn require(&self, role: StaffRole) -> Result<(), PageError> {
        if self.member.role >= role {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// The name the audit trail gives the staff member.
    pub fn operator(&self) -> &str {
        &self.member.email
    }
}
