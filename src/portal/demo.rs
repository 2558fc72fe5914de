//! Demo documents for the demo person, written by `connect dev`.

use super::PortalState;

/// Writes the demo documents for `ahv` unless they are there already.
pub async fn documents(_state: &PortalState, _ahv: &str) -> anyhow::Result<()> {
    Ok(())
}
