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

/// How long the next attempt must wait after `failures` consecutive failures, when `free`
/// of them cost nothing and no wait is longer than `max`.
fn password_delay(free: u64, max: Duration, failures: u64) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let exp = (failures - free).min(30) as u32;
    Duration::from_secs(1u64 << exp).min(max)
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
        let rules = &realm.login;
        let delay = password_delay(
            rules.free_password_failures,
            rules.max_password_delay,
            failures,
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_the_maximum() {
        let max = Duration::from_secs(900);
        let waits: Vec<u64> = (0..16)
            .map(|n| password_delay(5, max, n).as_secs())
            .collect();
        assert_eq!(
            waits,
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]
        );
        assert_eq!(
            password_delay(5, max, u64::MAX),
            max,
            "no overflow however many"
        );
    }
}
