//! The time, injected, so that tests can move it instead of sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// A clock that stands still until moved: `Clock::manual()` and `advance`.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual() -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(Utc::now().timestamp_millis())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(ms) => {
                DateTime::from_timestamp_millis(ms.load(Ordering::SeqCst)).unwrap_or_default()
            }
        }
    }

    /// Unix seconds, as stored in SQL and written in tokens.
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: std::time::Duration) {
        if let Clock::Manual(ms) = self {
            ms.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }
}
