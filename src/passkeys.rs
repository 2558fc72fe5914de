//! Passkeys (WebAuthn, with `webauthn-rs`): the ceremonies that register one for an account
//! and log in with one, and the rules around them.
//!
//! The relying party id is the host of the public URL and the only origin is the public URL
//! itself, so one passkey serves every realm's pages, and a realm finds only its own passkeys
//! (by realm and credential id). WebAuthn needs a domain name: at an IP address (the dev
//! default `http://127.0.0.1:8080`) browsers refuse every ceremony, so passkeys are then not
//! [`Passkeys::available`] and no page offers them.
//!
//! A ceremony's state (its challenge) lives in the ephemeral store under a random id for
//! [`CEREMONY_LIFETIME`], bound to what started it: the SSO session for a registration, a
//! cookie of the browser for a login. Finishing takes it out in one step, so a challenge
//! answers once: a replayed assertion finds nothing. Registrations ask for a discoverable
//! credential, so that a login needs no e-mail address (and so cannot tell whether an address
//! has passkeys). The signature counter is checked and kept after each login; a counter that
//! does not grow (a cloned authenticator) is refused.

use std::{sync::Arc, time::Duration};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::{
    clock::Clock,
    domain::PasskeyName,
    keys::SecretHasher,
    realm::Realm,
    session::{random_token, Session},
    storage::{
        accounts::Account,
        ephemeral::Record,
        passkeys::{self, NewPasskey, StoredPasskey},
        Conflict, Db, Ephemeral, StoreError,
    },
};

/// How long a started ceremony waits for the authenticator's answer (the browser's own
/// timeout is five minutes).
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(300);

/// Passkeys an account may hold: enough for every device of a person, few enough to list.
pub const MAX_PASSKEYS: usize = 10;

/// A ceremony under way, by its id.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    /// Adding a passkey, for the holder whose binding this is (see [`Holder`]).
    Register {
        account_id: String,
        sid: String,
        state: PasskeyRegistration,
    },
    /// Logging in, in the browser whose binding cookie hashes to `browser`.
    Login {
        browser: String,
        interaction: Option<String>,
        state: DiscoverableAuthentication,
    },
}

/// Who adds a passkey, and so the only one who may finish the ceremony: the SSO session of
/// the account page, or a staff member's enrolment under way (its account cannot log in yet,
/// so there is no session; the enrolment's transaction authorises it).
#[derive(Clone, Copy)]
pub enum Holder<'a> {
    Session(&'a Session),
    Enrolment {
        /// The enrolment's transaction id: kept only as a keyed hash with the ceremony.
        transaction: &'a str,
        account_id: &'a str,
    },
}

impl Holder<'_> {
    fn account_id(&self) -> &str {
        match self {
            Holder::Session(s) => &s.account_id,
            Holder::Enrolment { account_id, .. } => account_id,
        }
    }
}

/// What a browser needs to run a ceremony: its id, and the options for
/// `navigator.credentials.create` or `.get` (`publicKey`, base64url encoded as
/// webauthn-rs writes them).
#[derive(Serialize)]
pub struct Started {
    pub ceremony: String,
    #[serde(rename = "publicKey")]
    pub public_key: serde_json::Value,
}

/// What a login with a passkey proved.
pub struct LoginProof {
    pub account_id: String,
    /// The protocol's interaction the ceremony was started for, if any.
    pub interaction: Option<String>,
    /// RFC 8176: `swk` for a passkey that may be synced to other devices (backup eligible:
    /// the key lives in a cloud keychain, in software), `hwk` for one bound to its device
    /// (a security key, a platform authenticator); with `user` since the authenticator
    /// verified the person (webauthn-rs requires it of passkeys).
    pub amr: &'static [&'static str],
    /// The passkey's name (for the audit trail).
    pub passkey: String,
}

/// Why a login with a passkey was refused.
#[derive(Debug)]
pub enum LoginRefusal {
    /// No such ceremony: never started, expired, already used, or another browser's.
    NoCeremony,
    /// The browser's answer is not a credential.
    Malformed,
    /// No passkey of this realm has this credential id.
    UnknownCredential,
    /// The credential is registered to another account than its user handle names.
    OtherAccount { account_id: String },
    /// The assertion does not verify (signature, challenge, origin, flags).
    Invalid { account_id: String },
    /// The signature counter did not grow: the authenticator may have been cloned.
    Counter { account_id: String },
}

impl LoginRefusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginRefusal::NoCeremony => "no_ceremony",
            LoginRefusal::Malformed => "malformed",
            LoginRefusal::UnknownCredential => "unknown_credential",
            LoginRefusal::OtherAccount { .. } => "other_account",
            LoginRefusal::Invalid { .. } => "invalid",
            LoginRefusal::Counter { .. } => "counter",
        }
    }

    /// The account the refused credential belongs to, when one was found.
    pub fn account(&self) -> Option<&str> {
        match self {
            LoginRefusal::OtherAccount { account_id }
            | LoginRefusal::Invalid { account_id }
            | LoginRefusal::Counter { account_id } => Some(account_id),
            _ => None,
        }
    }
}

/// Why a passkey was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterRefusal {
    /// No such ceremony for this session: expired, already used, or another session's.
    NoCeremony,
    /// The browser's answer is not a credential, or does not verify.
    Invalid,
    /// The credential is registered already (to this account or another).
    Taken,
    /// The account holds [`MAX_PASSKEYS`] already.
    TooMany,
}

impl RegisterRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterRefusal::NoCeremony => "no_ceremony",
            RegisterRefusal::Invalid => "invalid",
            RegisterRefusal::Taken => "taken",
            RegisterRefusal::TooMany => "too_many",
        }
    }
}

/// Registers passkeys and checks them at login; built once, in `AppState`.
#[derive(Clone)]
pub struct Passkeys {
    /// `None` where the public URL's host is no domain name.
    webauthn: Option<Arc<Webauthn>>,
    ceremonies: Record<Ceremony>,
    hasher: SecretHasher,
    db: Db,
    clock: Clock,
}

/// The relying party for a public URL: its host is the relying party id, and the URL's
/// origin the only origin accepted. `None` for an IP address, which WebAuthn refuses.
fn relying_party(public_url: &Url) -> Option<Webauthn> {
    let host = public_url.domain()?;
    let origin = Url::parse(&public_url.origin().ascii_serialization()).ok()?;
    let built = WebauthnBuilder::new(host, &origin).and_then(|b| b.rp_name("connect").build());
    match built {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys are not available at this public URL");
            None
        }
    }
}

impl Passkeys {
    pub fn new(
        public_url: &Url,
        store: &Ephemeral,
        hasher: &SecretHasher,
        db: &Db,
        clock: &Clock,
    ) -> Self {
        Passkeys {
            webauthn: relying_party(public_url).map(Arc::new),
            ceremonies: Record::plain(store, "passkey-ceremony"),
            hasher: hasher.clone(),
            db: db.clone(),
            clock: clock.clone(),
        }
    }

    /// Whether browsers can use passkeys at this server's public URL.
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, StoreError> {
        self.webauthn
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt("passkeys are not available".into()))
    }

    /// The passkeys of an account, oldest first.
    pub async fn of_account(
        &self,
        realm: &Realm,
        account_id: &str,
    ) -> Result<Vec<StoredPasskey>, StoreError> {
        passkeys::of_account(&self.db, &realm.id, account_id).await
    }

    /// Starts adding a passkey to the account of `holder`; `None` when the account holds
    /// [`MAX_PASSKEYS`] already.
    pub async fn start_registration(
        &self,
        realm: &Realm,
        account: &Account,
        holder: Holder<'_>,
    ) -> Result<Result<Started, RegisterRefusal>, StoreError> {
        if holder.account_id() != account.id {
            return Ok(Err(RegisterRefusal::NoCeremony));
        }
        let webauthn = self.webauthn()?;
        let held = self.of_account(realm, &account.id).await?;
        if held.len() >= MAX_PASSKEYS {
            return Ok(Err(RegisterRefusal::TooMany));
        }
        let user = user_handle(&account.id)?;
        // The authenticator refuses to make a second passkey of one it holds already.
        let exclude = held
            .iter()
            .filter_map(|k| decode_credential(&k.credential).ok())
            .map(|k| k.cred_id().clone())
            .collect();
        let display = format!(
            "{} {} ({})",
            account.given_name, account.family_name, realm.display_name
        );
        let (options, state) = webauthn
            .start_passkey_registration(user, account.email.as_str(), &display, Some(exclude))
            .map_err(|e| StoreError::Corrupt(format!("passkey registration options: {e}")))?;
        let mut public_key = public_key_of(&options)?;
        require_discoverable(&mut public_key);
        let id = random_token();
        let ceremony = Ceremony::Register {
            account_id: account.id.clone(),
            sid: self.binding(holder),
            state,
        };
        self.ceremonies
            .put(realm.id.as_str(), &id, &ceremony, CEREMONY_LIFETIME)
            .await?;
        Ok(Ok(Started {
            ceremony: id,
            public_key,
        }))
    }

    /// Ends adding a passkey: the ceremony must be this holder's, the credential must
    /// verify and be new in the realm. Returns the stored passkey.
    pub async fn finish_registration(
        &self,
        realm: &Realm,
        holder: Holder<'_>,
        ceremony: &str,
        credential: &str,
        name: &PasskeyName,
    ) -> Result<Result<StoredPasskey, RegisterRefusal>, StoreError> {
        let webauthn = self.webauthn()?;
        let Some(Ceremony::Register {
            account_id,
            sid,
            state,
        }) = self.take(realm, ceremony).await?
        else {
            return Ok(Err(RegisterRefusal::NoCeremony));
        };
        let ours: bool = self.binding(holder).as_bytes().ct_eq(sid.as_bytes()).into();
        if !ours || account_id != holder.account_id() {
            return Ok(Err(RegisterRefusal::NoCeremony));
        }
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
            return Ok(Err(RegisterRefusal::Invalid));
        };
        let passkey = match webauthn.finish_passkey_registration(&answer, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(realm = %realm.id, error = %e, "passkey registration refused");
                return Ok(Err(RegisterRefusal::Invalid));
            }
        };
        // Counted again: two ceremonies started side by side must not pass the maximum.
        if self.of_account(realm, &account_id).await?.len() >= MAX_PASSKEYS {
            return Ok(Err(RegisterRefusal::TooMany));
        }
        let credential_id = B64.encode(passkey.cred_id().as_ref());
        let json = encode_credential(&passkey)?;
        let new = NewPasskey {
            realm: &realm.id,
            account_id: &account_id,
            credential_id: &credential_id,
            credential: &json,
            name,
        };
        let now = self.clock.unix();
        match passkeys::insert(&self.db, &new, now).await {
            Ok(id) => Ok(Ok(StoredPasskey {
                id,
                account_id,
                credential_id,
                credential: json,
                name: name.clone(),
                created_at: now,
                last_used_at: None,
            })),
            Err(StoreError::Conflict(Conflict::PasskeyTaken)) => Ok(Err(RegisterRefusal::Taken)),
            Err(e) => Err(e),
        }
    }

    /// Starts a login in the browser whose binding cookie is `browser`, for the protocol's
    /// interaction `interaction` if any.
    pub async fn start_login(
        &self,
        realm: &Realm,
        browser: &str,
        interaction: Option<&str>,
    ) -> Result<Started, StoreError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| StoreError::Corrupt(format!("passkey login options: {e}")))?;
        let id = random_token();
        let ceremony = Ceremony::Login {
            browser: self.browser_hash(browser),
            interaction: interaction.map(str::to_owned),
            state,
        };
        self.ceremonies
            .put(realm.id.as_str(), &id, &ceremony, CEREMONY_LIFETIME)
            .await?;
        Ok(Started {
            ceremony: id,
            public_key: public_key_of(&options)?,
        })
    }

    /// Ends a login: the ceremony must be this browser's, the credential one of the realm's
    /// passkeys and of the account its user handle names, the assertion must verify and its
    /// counter grow. The passkey's new counter and its last use are stored.
    pub async fn finish_login(
        &self,
        realm: &Realm,
        browser: &str,
        ceremony: &str,
        credential: &str,
    ) -> Result<Result<LoginProof, LoginRefusal>, StoreError> {
        let webauthn = self.webauthn()?;
        let Some(Ceremony::Login {
            browser: bound,
            interaction,
            state,
        }) = self.take(realm, ceremony).await?
        else {
            return Ok(Err(LoginRefusal::NoCeremony));
        };
        let ours: bool = self
            .browser_hash(browser)
            .as_bytes()
            .ct_eq(bound.as_bytes())
            .into();
        if browser.is_empty() || !ours {
            return Ok(Err(LoginRefusal::NoCeremony));
        }
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
            return Ok(Err(LoginRefusal::Malformed));
        };
        let Ok((user, credential_id)) = webauthn.identify_discoverable_authentication(&answer)
        else {
            return Ok(Err(LoginRefusal::Malformed));
        };
        let credential_id = B64.encode(credential_id);
        let Some(stored) = passkeys::by_credential_id(&self.db, &realm.id, &credential_id).await?
        else {
            return Ok(Err(LoginRefusal::UnknownCredential));
        };
        let account_id = stored.account_id.clone();
        // The user handle is not signed; the credential id decides whose passkey this is,
        // and the two must agree.
        if user.to_string() != account_id {
            return Ok(Err(LoginRefusal::OtherAccount { account_id }));
        }
        let mut passkey = decode_credential(&stored.credential)?;
        // webauthn-rs checks the challenge, origin, relying party, flags (user verification
        // required), signature and counter (WebAuthn §7.2 step 21: a counter above zero must
        // grow, else the authenticator may have been cloned).
        let result = match webauthn.finish_discoverable_authentication(
            &answer,
            state,
            &[DiscoverableKey::from(&passkey)],
        ) {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(realm = %realm.id, account = %account_id, "passkey counter did not grow: refused");
                return Ok(Err(LoginRefusal::Counter { account_id }));
            }
            Err(e) => {
                tracing::info!(realm = %realm.id, error = %e, "passkey assertion refused");
                return Ok(Err(LoginRefusal::Invalid { account_id }));
            }
        };
        if !result.user_verified() {
            return Ok(Err(LoginRefusal::Invalid { account_id }));
        }
        passkey.update_credential(&result);
        let updated = encode_credential(&passkey)?;
        let now = self.clock.unix();
        // Of two logins racing with the same counter, one stores it; the other is refused.
        if !passkeys::used(
            &self.db,
            &realm.id,
            &stored.id,
            &stored.credential,
            &updated,
            now,
        )
        .await?
        {
            return Ok(Err(LoginRefusal::Counter { account_id }));
        }
        let amr: &'static [&'static str] = if result.backup_eligible() {
            &["swk", "user"]
        } else {
            &["hwk", "user"]
        };
        Ok(Ok(LoginProof {
            account_id,
            interaction,
            amr,
            passkey: stored.name.to_string(),
        }))
    }

    async fn take(&self, realm: &Realm, id: &str) -> Result<Option<Ceremony>, StoreError> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        self.ceremonies.take(realm.id.as_str(), id).await
    }

    /// What a registration is bound to: the session's `sid`, or the keyed hash of an
    /// enrolment's transaction id (a bearer secret, never stored in clear).
    fn binding(&self, holder: Holder<'_>) -> String {
        match holder {
            Holder::Session(s) => s.sid.clone(),
            Holder::Enrolment { transaction, .. } => self
                .hasher
                .hash(&format!("passkey-enrolment:{transaction}")),
        }
    }

    fn browser_hash(&self, browser: &str) -> String {
        self.hasher.hash(&format!("passkey-browser:{browser}"))
    }
}

/// The WebAuthn user handle of an account: its id, a random UUID that names no person.
fn user_handle(account_id: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(account_id)
        .map_err(|_| StoreError::Corrupt(format!("account {account_id}: id is no UUID")))
}

fn encode_credential(passkey: &Passkey) -> Result<String, StoreError> {
    serde_json::to_string(passkey).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode_credential(json: &str) -> Result<Passkey, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("passkey: {e}")))
}

/// Passkeys are discoverable credentials: the login then needs no e-mail address.
/// webauthn-rs asks for none (`residentKey: discouraged`), so the options are changed on
/// their way to the browser; the server's state does not depend on it.
fn require_discoverable(public_key: &mut serde_json::Value) {
    let selection = &mut public_key["authenticatorSelection"];
    selection["residentKey"] = "required".into();
    selection["requireResidentKey"] = true.into();
}

/// The `publicKey` member of a challenge as webauthn-rs serialises it.
fn public_key_of<T: Serialize>(options: &T) -> Result<serde_json::Value, StoreError> {
    let mut value =
        serde_json::to_value(options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(value["publicKey"].take())
}
