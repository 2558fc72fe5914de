//! Abuse limits: counters in the ephemeral store (so they hold across replicas with Redis),
//! in fixed windows, keyed by a keyed hash of what they count (an address, a number).

use std::time::Duration;

use crate::{
    audit::{Audit, Event, Kind},
    keys::SecretHasher,
    storage::{ephemeral::Counter, Ephemeral, StoreError},
};

/// The abuse limits of every realm: their counters and the audit trail of limits reached.
#[derive(Clone)]
pub struct Limits {
    counters: Counter,
    audit: Audit,
}

/// At most `max` events per `window` for one subject.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub name: &'static str,
    pub max: u64,
    pub window: Duration,
}

pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86400);

impl Limit {
    pub fn per_hour(name: &'static str, max: u64) -> Limit {
        Limit {
            name,
            max,
            window: HOUR,
        }
    }

    pub fn per_day(name: &'static str, max: u64) -> Limit {
        Limit {
            name,
            max,
            window: DAY,
        }
    }
}

/// A limit was reached; the window ends at the latest after `retry_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl Limits {
    pub fn new(store: &Ephemeral, hasher: &SecretHasher, audit: &Audit) -> Self {
        Limits {
            // Keyed by the limit and the subject (an address, a number), hashed.
            counters: Counter::hashed(store, "limit", hasher, "limit:"),
            audit: audit.clone(),
        }
    }

    /// Counts one event against each limit; refuses when any of them is over. Every counter
    /// counts, refused events included, so hammering does not open a window early.
    pub async fn charge(
        &self,
        realm: &str,
        checks: &[(Limit, &str)],
    ) -> Result<Result<(), Exceeded>, StoreError> {
        let mut worst: Option<Exceeded> = None;
        for (limit, subject) in checks {
            let id = format!("{}:{subject}", limit.name);
            let n = self.counters.hit(realm, &id, limit.window).await?;
            if n > limit.max {
                tracing::warn!(realm, limit = limit.name, "abuse limit reached");
                // Once per window and subject, not at every refused event after it.
                if n == limit.max + 1 {
                    if let Ok(realm_id) = realm.parse() {
                        self.audit
                            .record(
                                Event::new(Kind::AbuseLimitHit, &realm_id)
                                    .detail(serde_json::json!({ "limit": limit.name })),
                            )
                            .await;
                    }
                }
                metrics::counter!("connect_limits_reached_total", "limit" => limit.name)
                    .increment(1);
                let e = Exceeded {
                    limit: limit.name,
                    retry_after: limit.window,
                };
                if worst.is_none_or(|w| w.retry_after < e.retry_after) {
                    worst = Some(e);
                }
            }
        }
        Ok(worst.map_or(Ok(()), Err))
    }
}
