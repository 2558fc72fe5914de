//! Wrong passwords slow the next attempts for the typed address down: after the realm's free
//! failures, each attempt waits twice as long as the one before (1 s, 2 s, 4 s … up to the
//! realm's maximum). The counter is keyed by the address as typed, so known and unknown
//! addresses behave the same. Only `lock_after_failures` consecutive failures lock an account.

use std::time::Duration;

use crate::{
    app::AppState,
    realm::Realm,
    storage::{accounts, accounts::Account, StoreError},
};

/// Failures are remembered for a day; a success forgets them.
const FAILURE_MEMORY: Duration = Duration::from_secs(86400);

/// The throttle of one typed address.
pub struct Throttle {
    failures: String,
    last_failure: String,
}

/// How long the next attempt must wait after `failures` consecutive failures.
fn password_delay(realm: &Realm, failures: u64) -> Duration {
    let free = realm.login.free_password_failures;
    if failures < free {
        return Duration::ZERO;
    }
    let exp = (failures - free).min(30) as u32;
    Duration::from_secs(1u64 << exp).min(realm.login.max_password_delay)
}

impl Throttle {
    pub fn for_address(state: &AppState, realm: &Realm, typed: &str) -> Throttle {
        let subject = state
            .secret_hasher
            .hash(&format!("login:{}", typed.trim().to_lowercase()));
        Throttle {
            failures: format!("login-fail:{}:{subject}", realm.id),
            last_failure: format!("login-fail-at:{}:{subject}", realm.id),
        }
    }

    /// The seconds the next attempt must still wait, if any.
    pub async fn wait(
        &self,
        state: &AppState,
        realm: &Realm,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let failures = state.ephemeral.count(&self.failures).await?;
        let delay = password_delay(realm, failures);
        if delay.is_zero() {
            return Ok(None);
        }
        let last: Option<i64> = state.ephemeral.get_json(&self.last_failure).await?;
        let until = last.unwrap_or(0) + delay.as_secs() as i64;
        Ok((now < until).then(|| (until - now) as u64))
    }

    /// A wrong password, for this address and, when it names one, for the account, which is
    /// locked at the realm's limit.
    pub async fn failed(
        &self,
        state: &AppState,
        realm: &Realm,
        account: Option<&Account>,
        now: i64,
    ) -> Result<(), StoreError> {
        state.ephemeral.hit(&self.failures, FAILURE_MEMORY).await?;
        state
            .ephemeral
            .put_json(&self.last_failure, &now, FAILURE_MEMORY)
            .await?;
        // The same statement runs for an unknown address (it matches no row), so both take
        // the same time.
        let id = account.map_or("", |a| a.id.as_str());
        let n = accounts::record_failed_login(&state.db, id, now).await?;
        if let Some(a) = account {
            if n >= realm.login.lock_after_failures as i64 && a.active {
                accounts::lock(&state.db, &a.id, now).await?;
                tracing::warn!(realm = %realm.id, account = %a.id, "account locked after consecutive password failures");
            }
        }
        Ok(())
    }

    /// The right password: the counts start again.
    pub async fn succeeded(&self, state: &AppState, account: &Account) -> Result<(), StoreError> {
        state.ephemeral.delete(&self.failures).await?;
        accounts::clear_failed_logins(&state.db, &account.id).await
    }
}
