//! One-time codes sent by mail and SMS: drawn from the operating system's random source,
//! stored only as keyed hashes, compared in constant time.

use rand::{rngs::OsRng, Rng};
use subtle::ConstantTimeEq;

use crate::keys::SecretHasher;

/// Six decimal digits, uniformly drawn (NIST SP 800-63B-4 §3.1.3.1: at least 20 bits when
/// attempts are limited, as they are here).
pub fn sms_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// The stored form of a code, bound to what it is for (`purpose` names the transaction),
/// so a code of one enrolment or login means nothing in another.
pub fn hash(hasher: &SecretHasher, purpose: &str, code: &str) -> String {
    hasher.hash(&format!("otp:{purpose}:{code}"))
}

/// Whether `presented` is the code whose hash was stored. Digits only: spaces a person typed
/// between them are ignored.
pub fn matches(hasher: &SecretHasher, purpose: &str, stored_hash: &str, presented: &str) -> bool {
    let cleaned: String = presented.chars().filter(|c| !c.is_whitespace()).collect();
    let candidate = hash(hasher, purpose, &cleaned);
    bool::from(candidate.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterKey;

    #[test]
    fn sms_codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| sms_code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.chars().all(|ch| ch.is_ascii_digit())));
        assert!(
            codes.len() > 40,
            "50 draws gave only {} distinct codes",
            codes.len()
        );
    }

    #[test]
    fn a_code_matches_only_its_own_purpose() {
        let h = SecretHasher::new(&MasterKey::generate());
        let stored = hash(&h, "enrol:abc", "123456");
        assert!(matches(&h, "enrol:abc", &stored, "123 456"));
        assert!(!matches(&h, "enrol:abd", &stored, "123456"));
        assert!(!matches(&h, "enrol:abc", &stored, "123457"));
    }
}
