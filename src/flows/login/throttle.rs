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
    keys::SecretHasher,
    realm::Realm,
    storage::{accounts, accounts::Account, ephemeral::Record, Db, Ephemeral, StoreError},
};

/// Failures are remembered for a day; a success forgets them.
const FAILURE_MEMORY: Duration = Duration::from_secs(86400);

/// Compare-and-set rounds before an attempt gives up its turn under contention.
const ROUNDS: usize = 16;

/// The throttles of every typed address: their turns, by the keyed hash of the address.
#[derive(Clone)]
pub struct Throttles {
    turns: Record<Turns>,
    db: Db,
}

impl Throttles {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, db: &Db) -> Self {
        Throttles {
            turns: Record::hashed(store, "login-turns", hasher, "login:"),
            db: db.clone(),
        }
    }

    pub fn for_address<'a>(&'a self, realm: &'a Realm, typed: &str) -> Throttle<'a> {
        Throttle {
            throttles: self,
            realm,
            address: typed.trim().to_lowercase(),
        }
    }
}

/// The throttle of one typed address.
pub struct Throttle<'a> {
    throttles: &'a Throttles,
    realm: &'a Realm,
    address: String,
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

impl Throttle<'_> {
    /// Takes this attempt's turn, counting it as a failure until [`Throttle::succeeded`] says
    /// otherwise. `Some(seconds)` when the turn is not yet due: then nothing was counted and
    /// the password must not be checked.
    pub async fn take_turn(&self, now: i64) -> Result<Option<u64>, StoreError> {
        let rules = &self.realm.login;
        let (scope, id) = (self.realm.id.as_str(), self.address.as_str());
        for _ in 0..ROUNDS {
            let stored = self.throttles.turns.read(scope, id).await?;
            let turns = stored.value.unwrap_or_default();
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
            if self
                .throttles
                .turns
                .swap(scope, id, &stored, &next, FAILURE_MEMORY)
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
    pub async fn failed(&self, account: Option<&Account>, now: i64) -> Result<bool, StoreError> {
        let (realm, db) = (self.realm, &self.throttles.db);
        // The same statement runs for an unknown address (it matches no row), so both take
        // the same time.
        let id = account.map_or("", |a| a.id.as_str());
        let n = accounts::record_failed_login(db, id, now).await?;
        let Some(a) = account else {
            return Ok(false);
        };
        if n < realm.login.lock_after_failures as i64 {
            return Ok(false);
        }
        let until = now + realm.login.lock_duration.as_secs() as i64;
        let locked = accounts::lock(db, &a.id, Some(until), now).await?;
        if locked {
            tracing::warn!(realm = %realm.id, account = %a.id, "account locked after consecutive password failures");
        }
        Ok(locked)
    }

    /// The right password: the counts start again.
    pub async fn succeeded(&self, account: &Account) -> Result<(), StoreError> {
        let scope = self.realm.id.as_str();
        self.throttles.turns.delete(scope, &self.address).await?;
        accounts::clear_failed_logins(&self.throttles.db, &account.id).await
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
