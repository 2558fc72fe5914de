//! The authenticator app: TOTP as RFC 6238 describes it and every common app reads it
//! (HMAC-SHA-1, six digits, 30-second steps), computed by the `totp-rs` crate.
//!
//! A code is accepted for the step before, the current one and the one after (RFC 6238 §5.2:
//! one step of delay either way), and only once: the step of the last accepted code is kept
//! with the app, and a code of that step or an earlier one is refused (§5.2: "the verifier
//! MUST NOT accept the second attempt of the OTP after the successful validation"). The
//! shared secret is sealed with the master key, in SQL as in the ephemeral store while the
//! person is still scanning it, and leaves the server only on the enrolment page.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    clock::Clock,
    domain::RealmId,
    keys::MasterKey,
    storage::{ephemeral::Record, totp as store, Db, Ephemeral, StoreError},
};

/// 160 bits, as RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// RFC 6238 §5.2 recommends 30 seconds; the apps assume it.
pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
/// How long a person may take between opening the enrolment page and typing the first code.
const PENDING_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The shared secret of an app. No `Debug` or `Display`: it is shown once, as [`AppSecret::text`].
pub struct AppSecret(Vec<u8>);

impl AppSecret {
    fn generate() -> AppSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        AppSecret(bytes)
    }

    /// Base32 (RFC 4648, no padding), what apps accept when the secret is typed.
    pub fn base32(&self) -> String {
        totp_rs::Secret::Raw(self.0.clone())
            .to_encoded()
            .to_string()
    }

    /// The base32 text in groups of four, easier to type by hand.
    pub fn text(&self) -> String {
        let b32 = self.base32();
        let groups: Vec<&str> = b32
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        groups.join(" ")
    }

    /// The code of RFC 6238 time step `step`.
    fn code_at_step(&self, step: u64) -> Option<String> {
        let totp = totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECONDS,
            self.0.clone(),
        )
        .ok()?;
        Some(totp.generate(step.checked_mul(STEP_SECONDS)?))
    }

    /// The latest step among the one before `now`'s, its own and the one after whose code is
    /// `presented` (digits, spaces ignored); every candidate is computed and compared in
    /// constant time, so the answer takes as long whichever matched.
    fn matching_step(&self, presented: &str, now: i64) -> Option<u64> {
        let typed: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
        let current = u64::try_from(now).ok()? / STEP_SECONDS;
        let mut found = None;
        for step in [current.saturating_sub(1), current, current + 1] {
            let Some(code) = self.code_at_step(step) else {
                continue;
            };
            if bool::from(code.as_bytes().ct_eq(typed.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    fn seal(&self, master: &MasterKey, aad: &str) -> String {
        B64.encode(master.encrypt(&self.0, aad.as_bytes()))
    }

    fn open(master: &MasterKey, sealed: &str, aad: &str) -> Result<AppSecret, StoreError> {
        let corrupt =
            || StoreError::Corrupt("an authenticator app's secret cannot be opened".into());
        let blob = B64.decode(sealed).map_err(|_| corrupt())?;
        let bytes = master
            .decrypt(&blob, aad.as_bytes())
            .map_err(|_| corrupt())?;
        Ok(AppSecret(bytes))
    }
}

/// The `otpauth://` URI of Google Authenticator's Key Uri Format, which every app reads from
/// the QR code: the caisse's name as issuer, the person's address as account.
pub fn otpauth_uri(secret: &AppSecret, issuer: &str, account: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    // A colon separates issuer and account in the label; the parameter repeats the issuer.
    let issuer = issuer.replace(':', " ");
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(&issuer),
        enc(account),
        secret.base32(),
        enc(&issuer),
    )
}

/// A secret shown on the enrolment page and not yet confirmed with a code. Bound to the SSO
/// session that asked for it (its `sid`) and to the account.
#[derive(Serialize, Deserialize)]
struct PendingApp {
    account_id: String,
    sealed: String,
}

/// An app registered to an account, as the account page lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo {
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What a code from the app proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Accepted,
    /// Not a code of the app now.
    Wrong,
    /// A code of the app now, but it (or a later one) was used already.
    Reused,
    /// The account has no app.
    NoApp,
}

/// What confirming the enrolment with a first code did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    Added,
    Wrong,
    /// No secret is waiting for this session any more (too late, or confirmed already).
    Expired,
    /// The account has an app already.
    HasOne,
}

/// The authenticator apps of every realm; built once, in `AppState`.
#[derive(Clone)]
pub struct Totp {
    db: Db,
    master: MasterKey,
    clock: Clock,
    pending: Record<PendingApp>,
}

/// What binds a sealed secret to where it is kept, so it cannot be moved to another account.
fn stored_aad(realm: &RealmId, account_id: &str) -> String {
    format!("totp:{realm}:{account_id}")
}

fn pending_aad(realm: &RealmId, sid: &str, account_id: &str) -> String {
    format!("totp-pending:{realm}:{sid}:{account_id}")
}

impl Totp {
    pub fn new(db: &Db, master: &MasterKey, clock: &Clock, store: &Ephemeral) -> Self {
        Totp {
            db: db.clone(),
            master: master.clone(),
            clock: clock.clone(),
            pending: Record::plain(store, "totp-pending"),
        }
    }

    /// The secret the enrolment page shows to the session `sid`: the one waiting since the
    /// page was first opened (so that a reload does not undo a scan), or a new one.
    pub async fn begin(
        &self,
        realm: &RealmId,
        sid: &str,
        account_id: &str,
    ) -> Result<AppSecret, StoreError> {
        let aad = pending_aad(realm, sid, account_id);
        if let Some(p) = self.pending.get(realm.as_str(), sid).await? {
            if p.account_id == account_id {
                if let Ok(secret) = AppSecret::open(&self.master, &p.sealed, &aad) {
                    return Ok(secret);
                }
            }
        }
        let secret = AppSecret::generate();
        let pending = PendingApp {
            account_id: account_id.to_owned(),
            sealed: secret.seal(&self.master, &aad),
        };
        self.pending
            .put(realm.as_str(), sid, &pending, PENDING_LIFETIME)
            .await?;
        Ok(secret)
    }

    /// Registers the secret waiting for session `sid` once `code` shows that the app holds
    /// it; that code is spent at once.
    pub async fn confirm(
        &self,
        realm: &RealmId,
        sid: &str,
        account_id: &str,
        code: &str,
    ) -> Result<Confirmed, StoreError> {
        let Some(p) = self.pending.get(realm.as_str(), sid).await? else {
            return Ok(Confirmed::Expired);
        };
        if p.account_id != account_id {
            return Ok(Confirmed::Expired);
        }
        let aad = pending_aad(realm, sid, account_id);
        let secret = AppSecret::open(&self.master, &p.sealed, &aad)?;
        let now = self.clock.unix();
        let Some(step) = secret.matching_step(code, now) else {
            return Ok(Confirmed::Wrong);
        };
        let sealed = secret.seal(&self.master, &stored_aad(realm, account_id));
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let added = store::insert(&self.db, realm, account_id, &sealed, step, now).await?;
        self.pending.delete(realm.as_str(), sid).await?;
        Ok(if added {
            Confirmed::Added
        } else {
            Confirmed::HasOne
        })
    }

    /// Checks a code of the account's app and spends it when right.
    pub async fn verify(
        &self,
        realm: &RealmId,
        account_id: &str,
        code: &str,
    ) -> Result<Checked, StoreError> {
        let Some(app) = store::by_account(&self.db, realm, account_id).await? else {
            return Ok(Checked::NoApp);
        };
        let secret = AppSecret::open(
            &self.master,
            &app.sealed_secret,
            &stored_aad(realm, account_id),
        )?;
        let now = self.clock.unix();
        let Some(step) = secret.matching_step(code, now) else {
            return Ok(Checked::Wrong);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        Ok(
            if store::spend_step(&self.db, realm, account_id, step, now).await? {
                Checked::Accepted
            } else {
                Checked::Reused
            },
        )
    }

    /// The account's app, if it has one.
    pub async fn registered(
        &self,
        realm: &RealmId,
        account_id: &str,
    ) -> Result<Option<AppInfo>, StoreError> {
        Ok(store::by_account(&self.db, realm, account_id)
            .await?
            .map(|a| AppInfo {
                created_at: a.created_at,
                last_used_at: a.last_used_at,
            }))
    }

    /// Removes the account's app; false when it had none.
    pub async fn remove(&self, realm: &RealmId, account_id: &str) -> Result<bool, StoreError> {
        store::remove(&self.db, realm, account_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 seed, cut to six digits (RFC 4226 §5.3 takes the last ones).
    #[test]
    fn the_codes_are_those_of_rfc_6238() {
        let secret = AppSecret(b"12345678901234567890".to_vec());
        for (time, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                secret.code_at_step(time / STEP_SECONDS).as_deref(),
                Some(code)
            );
        }
    }

    #[test]
    fn a_code_matches_one_step_either_way_and_no_further() {
        let secret = AppSecret::generate();
        let now = 1_700_000_015;
        let current = now as u64 / STEP_SECONDS;
        for step in [current - 1, current, current + 1] {
            let code = secret.code_at_step(step).unwrap();
            assert_eq!(secret.matching_step(&code, now), Some(step));
            let spaced = format!("{} {}", &code[..3], &code[3..]);
            assert_eq!(secret.matching_step(&spaced, now), Some(step));
        }
        for far in [current - 2, current + 2] {
            let code = secret.code_at_step(far).unwrap();
            if ![current - 1, current, current + 1]
                .iter()
                .any(|s| secret.code_at_step(*s).as_deref() == Some(code.as_str()))
            {
                assert_eq!(secret.matching_step(&code, now), None);
            }
        }
        assert_eq!(secret.matching_step("", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
    }

    #[test]
    fn sealed_secrets_open_only_where_they_were_sealed() {
        let master = MasterKey::generate();
        let secret = AppSecret::generate();
        let sealed = secret.seal(&master, "totp:AK00:a1");
        assert!(!sealed.contains(&secret.base32()));
        let opened = AppSecret::open(&master, &sealed, "totp:AK00:a1").unwrap();
        assert_eq!(opened.0, secret.0);
        assert!(AppSecret::open(&master, &sealed, "totp:AK00:a2").is_err());
        assert!(AppSecret::open(&MasterKey::generate(), &sealed, "totp:AK00:a1").is_err());
    }

    #[test]
    fn the_uri_names_issuer_account_and_the_rfc_parameters() {
        let secret = AppSecret(b"12345678901234567890".to_vec());
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(secret.text(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        let uri = otpauth_uri(&secret, "Caisse AK00: Bern", "anna+x@example.ch");
        assert_eq!(
            uri,
            "otpauth://totp/Caisse%20AK00%20%20Bern:anna%2Bx%40example%2Ech?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Caisse%20AK00%20%20Bern&algorithm=SHA1&digits=6&period=30"
        );
    }
}
