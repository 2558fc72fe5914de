//! What a member of the support desk may do in a caisse's console.

use std::{fmt, str::FromStr};

/// `support` finds people and helps them; `supervisor` may also close accounts, unlock an
/// account support locked (a suspected fraud) and read every staff member's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StaffRole {
    Support,
    Supervisor,
}

#[derive(Debug, thiserror::Error)]
#[error("a staff role is `support` or `supervisor`")]
pub struct StaffRoleError;

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Support => "support",
            StaffRole::Supervisor => "supervisor",
        }
    }
}

impl FromStr for StaffRole {
    type Err = StaffRoleError;
    fn from_str(s: &str) -> Result<Self, StaffRoleError> {
        match s {
            "support" => Ok(StaffRole::Support),
            "supervisor" => Ok(StaffRole::Supervisor),
            _ => Err(StaffRoleError),
        }
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_as_written_and_nothing_else_parses() {
        for role in [StaffRole::Support, StaffRole::Supervisor] {
            assert_eq!(role.as_str().parse::<StaffRole>().unwrap(), role);
        }
        for bad in ["", "Support", "admin", "supervisor "] {
            assert!(bad.parse::<StaffRole>().is_err(), "{bad:?}");
        }
    }
}
