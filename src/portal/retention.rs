//! Retention: documents are kept `documents.retention_years` (realm file) after their issue
//! date, then their body and row are removed. Run daily by the portal server and on demand by
//! `connect admin documents purge`.

use std::time::Duration;

use super::{deliver::retention_cutoff, PortalState};
use crate::{
    letter::swiss_date,
    storage::{documents, StoreError},
};

/// What one purge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Documents whose body and row are gone.
    pub purged: u64,
    /// Documents past retention that could not be removed this time (logged; the next purge
    /// tries again).
    pub failed: u64,
}

/// Removes the realm's documents issued before the retention cutoff, relative to the
/// injected clock. The body goes first, then the row: a failure in between leaves a row
/// whose body is already gone, which the next purge removes (a missing body counts as
/// removed); the other order could leave bodies that nothing points to.
pub async fn purge(state: &PortalState) -> Result<PurgeCounts, StoreError> {
    let realm = &state.realm;
    let cutoff = retention_cutoff(realm, swiss_date(state.clock.now()));
    let mut counts = PurgeCounts::default();
    for doc in documents::expired(&state.db, &realm.id, cutoff).await? {
        if let Err(e) = state.blobs.delete(&doc.object_key).await {
            tracing::warn!(document = %doc.id, error = %e, "document body not purged");
            counts.failed += 1;
            continue;
        }
        match documents::delete(&state.db, &realm.id, doc.id).await {
            Ok(_) => counts.purged += 1,
            Err(e) => {
                tracing::warn!(document = %doc.id, error = %e, "document row not purged");
                counts.failed += 1;
            }
        }
    }
    tracing::info!(
        realm = %realm.id,
        %cutoff,
        purged = counts.purged,
        failed = counts.failed,
        "documents past retention purged"
    );
    Ok(counts)
}

/// Purges once at start and then every 24 hours until the process ends. The purge is
/// idempotent, so several portal replicas may each run it.
pub fn spawn_daily_purge(state: PortalState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every_day = tokio::time::interval(Duration::from_secs(24 * 3600));
        every_day.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every_day.tick().await;
            if let Err(e) = purge(&state).await {
                tracing::error!(error = %e, "document purge failed");
            }
        }
    })
}
