//! Wrong passwords slow the next attempts for the typed address down: after the realm's free
//! failures, each attempt waits twice as long as the one before (1 s, 2 s, 4 s … up to the
//! realm's maximum). The counter is keyed by the address as typed, so known and unknown
//! addresses behave the same. Only `lock_after_failures` consecutive failures lock an account,
//! for the realm's `lock_minutes` or until support unlocks it.
//!
//! An attempt takes its turn before its password is checked, in one compare-and-set on the
//! shared store (so across replicas with Redis): it is counted as a failure in advance and
//! moves the next turn out by the delay that failure earns; a right password forgets it all.
//! A hundred parallel guesses therefore get the free turns and then one turn per delay,
//! exactly as a hundred sequential ones would, and the lock comes no sooner.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    realm::Realm,
    storage::{accounts, accounts::Account, StoreError},
};

/// Failures are remembered for a day; a success forgets them.
const FAILURE_MEMORY: Duration = Duration::from_secs(86400);

/// Compare-and-set rounds before an attempt gives up its turn under contention.
const ROUNDS: usize = 16;

/// The throttle of one typed address.
pub struct Throttle {
    key: String,
}

/// What the store holds for one address: failures counted (in-flight attempts included) and
/// the unix second before which no password is checked.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Turns {
    failures: u64,
    not_before: i64,
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

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl Throttle {
    pub fn for_address(state: &AppState, realm: &Realm, typed: &str) -> Throttle {
        let subject = state
            .secret_hasher
            .hash(&format!("login:{}", typed.trim().to_lowercase()));
        Throttle {
            key: format!("login-turns:{}:{subject}", realm.id),
        }
    }

    /// Takes this attempt's turn, counting it as a failure until [`Throttle::succeeded`] says
    /// otherwise. `Some(seconds)` when the turn is not yet due: then nothing was counted and
    /// the password must not be checked.
    pub async fn take_turn(
        &self,
        state: &AppState,
        realm: &Realm,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let rules = &realm.login;
        for _ in 0..ROUNDS {
            let stored = state.ephemeral.get(&self.key).await?;
            let turns: Turns = match &stored {
                Some(raw) => serde_json::from_slice(raw).map_err(corrupt)?,
                None => Turns::default(),
            };
            if now < turns.not_before {
                return Ok(Some((turns.not_before - now) as u64));
            }
            let failures = turns.failures.saturating_add(1);
            let delay = password_delay(
                rules.free_password_failures,
                rules.max_password_delay,
                failures,
            );
            let next = Turns {
                failures,
                not_before: now + delay.as_secs() as i64,
            };
            let value = serde_json::to_vec(&next).map_err(corrupt)?;
            if state
                .ephemeral
                .swap(&self.key, stored.as_deref(), &value, FAILURE_MEMORY)
                .await?
            {
                return Ok(None);
            }
        }
        // Others keep taking the turns first: this one waits like a refused attempt.
        Ok(Some(1))
    }

    /// A wrong password (already counted for the address by its turn): for the account it
    /// names, one more consecutive failure, which at the realm's limit locks it. True when
    /// this failure locked the account.
    pub async fn failed(
        &self,
        state: &AppState,
        realm: &Realm,
        account: Option<&Account>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The same statement runs for an unknown address (it matches no row), so both take
        // the same time.
        let id = account.map_or("", |a| a.id.as_str());
        let n = accounts::record_failed_login(&state.db, id, now).await?;
        let Some(a) = account else {
            return Ok(false);
        };
        if n < realm.login.lock_after_failures as i64 {
            return Ok(false);
        }
        let until = now + realm.login.lock_duration.as_secs() as i64;
        let locked = accounts::lock(&state.db, &a.id, Some(until), now).await?;
        if locked {
            tracing::warn!(realm = %realm.id, account = %a.id, "account locked after consecutive password failures");
        }
        Ok(locked)
    }

    /// The right password: the counts start again.
    pub async fn succeeded(&self, state: &AppState, account: &Account) -> Result<(), StoreError> {
        state.ephemeral.delete(&self.key).await?;
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
