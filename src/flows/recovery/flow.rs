//! A recovery under way: its state in the ephemeral store under the keyed hash of a random id
//! (so any replica continues it), bound to the browser that proved its latest step by a
//! cookie whose keyed hash it keeps. A mail's link may open a step in another browser; the
//! code it proves then moves the recovery to that browser, and the first one loses it, so
//! nobody who merely knows the id can finish what someone else proved.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequestParts, Path},
    http::{request::Parts, StatusCode},
};
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    app::AppState,
    http::{ClientAddr, HttpError, Page, PageError},
    keys::SecretHasher,
    realm::Realm,
    session::random_token,
    storage::{
        ephemeral::{Counter, Record},
        Ephemeral, StoreError,
    },
};

/// A recovery's state and the browser it is bound to.
#[derive(Serialize, Deserialize)]
pub struct Bound<T> {
    /// Keyed hash of the cookie of the browser that may continue.
    browser: String,
    pub state: T,
}

/// The recoveries of one kind: their records, their wrong codes, their cookie.
pub struct Flows<T> {
    records: Record<Bound<T>>,
    attempts: Counter,
    hasher: SecretHasher,
    /// The cookie's name before the realm (`connect_reset_AK00`).
    cookie: &'static str,
    state: PhantomData<fn() -> T>,
}

impl<T> Clone for Flows<T> {
    fn clone(&self) -> Self {
        Flows {
            records: self.records.clone(),
            attempts: self.attempts.clone(),
            hasher: self.hasher.clone(),
            cookie: self.cookie,
            state: PhantomData,
        }
    }
}

/// A new recovery's id: 256 random bits, in the path of its steps.
pub fn new_id() -> String {
    random_token()
}

/// Why a recovery cannot go on in this request.
fn expired() -> PageError {
    PageError::new(StatusCode::GONE, "error-recovery-expired")
}

impl<T: Serialize + DeserializeOwned> Flows<T> {
    pub fn new(
        store: &Ephemeral,
        hasher: &SecretHasher,
        names: (&'static str, &'static str, &'static str),
    ) -> Self {
        let (name, attempts, cookie) = names;
        Flows {
            records: Record::hashed(store, name, hasher, "recovery:"),
            attempts: Counter::hashed(store, attempts, hasher, "recovery-attempts:"),
            hasher: hasher.clone(),
            cookie,
            state: PhantomData,
        }
    }

    fn cookie_name(&self, realm: &Realm, secure: bool) -> String {
        let prefix = if secure { "__Host-" } else { "" };
        format!("{prefix}{}_{}", self.cookie, realm.id)
    }

    fn browser_hash(&self, value: &str) -> String {
        self.hasher
            .hash(&format!("{}-browser:{value}", self.cookie))
    }

    fn cookie(&self, realm: &Realm, secure: bool, value: String) -> Cookie<'static> {
        Cookie::build((self.cookie_name(realm, secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .build()
    }

    /// Binds `flow` to this browser with a fresh cookie; an earlier browser loses it.
    pub fn bind(&self, page: &mut Page, flow: &mut Bound<T>) {
        let value = random_token();
        flow.browser = self.browser_hash(&value);
        let jar = std::mem::take(&mut page.jar);
        page.jar = jar.add(self.cookie(&page.realm, page.secure(), value));
    }

    /// A new recovery `tx` (from [`new_id`]) in `state`, bound to this browser.
    pub async fn start(&self, page: &mut Page, tx: &str, state: T) -> Result<(), StoreError> {
        let mut flow = Bound {
            browser: String::new(),
            state,
        };
        self.bind(page, &mut flow);
        self.save(&page.realm, tx, &flow).await
    }

    pub async fn save(&self, realm: &Realm, tx: &str, flow: &Bound<T>) -> Result<(), StoreError> {
        let life = realm.recovery.transaction;
        self.records.put(realm.id.as_str(), tx, flow, life).await
    }

    /// The recovery `tx` in whatever browser (a mail's link), or the page that says it is over.
    pub async fn open_anywhere(&self, realm: &Realm, tx: &str) -> Result<Bound<T>, PageError> {
        let flow = self.records.get(realm.id.as_str(), tx).await?;
        flow.ok_or_else(expired)
    }

    /// The recovery `tx` if this browser may continue it.
    pub async fn open(&self, page: &Page, tx: &str) -> Result<Bound<T>, PageError> {
        let flow = self.open_anywhere(&page.realm, tx).await?;
        let cookie = page.jar.get(&self.cookie_name(&page.realm, page.secure()));
        let ours = cookie.is_some_and(|c| {
            bool::from(
                self.browser_hash(c.value())
                    .as_bytes()
                    .ct_eq(flow.browser.as_bytes()),
            )
        });
        if !ours {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "error-recovery-other-browser",
            ));
        }
        Ok(flow)
    }

    /// Takes the recovery away in one step: of two racing completions, one gets it.
    pub async fn take(&self, realm: &Realm, tx: &str) -> Result<Bound<T>, PageError> {
        let flow = self.records.take(realm.id.as_str(), tx).await?;
        flow.ok_or_else(expired)
    }

    /// Ends the recovery: its state, and its cookie in `page`.
    pub async fn end(&self, page: &mut Page, tx: &str) -> Result<(), StoreError> {
        self.records.delete(page.realm.id.as_str(), tx).await?;
        let cookie = self.cookie(&page.realm, page.secure(), String::new());
        let jar = std::mem::take(&mut page.jar);
        page.jar = jar.remove(cookie);
        Ok(())
    }

    /// Counts one code entry of `kind` in the recovery; true while within `max`. A new code
    /// never resets this count.
    pub async fn attempt(
        &self,
        realm: &Realm,
        tx: &str,
        kind: &str,
        max: u64,
    ) -> Result<bool, StoreError> {
        let id = format!("{kind}:{tx}");
        let life = realm.recovery.transaction;
        let n = self.attempts.hit(realm.id.as_str(), &id, life).await?;
        Ok(n <= max)
    }
}

/// What every request of a recovery's later steps starts with: the [`Page`], the recovery's
/// id from the path, and where the request came from.
pub struct TxPage {
    pub page: Page,
    pub tx: String,
    pub addr: ClientAddr,
}

impl FromRequestParts<AppState> for TxPage {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        #[derive(Deserialize)]
        struct TxPath {
            tx: String,
        }
        let page = Page::from_request_parts(parts, state).await?;
        let Ok(Path(TxPath { tx })) = Path::<TxPath>::from_request_parts(parts, state).await else {
            return Err(
                HttpError::page(StatusCode::NOT_FOUND, page.lang, "error-not-found")
                    .in_realm(&page.realm),
            );
        };
        let Ok(addr) = ClientAddr::from_request_parts(parts, state).await;
        Ok(TxPage { page, tx, addr })
    }
}
