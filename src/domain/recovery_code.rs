//! A recovery code: one of the ten single-use codes a person keeps on paper for the day the
//! usual second factor is out of reach.

use std::{fmt, str::FromStr};

use rand::{rngs::OsRng, seq::SliceRandom};

use super::activation_code::ALPHABET;

const LEN: usize = 10;

/// Ten characters of the activation codes' alphabet (no look-alikes), ≈ 49.5 bits: far more
/// than the 20 bits NIST SP 800-63B-4 asks of a rate-limited look-up secret, short enough to
/// copy by hand. Kept upper case without separators; input is case-insensitive and may hold
/// spaces and dashes; `Display` prints `XXXXX-XXXXX`. `Debug` hides it and there is no
/// `Serialize`: it is stored only as a keyed hash of [`RecoveryCode::as_str`].
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecoveryCodeError {
    #[error("a recovery code has 10 characters")]
    Length,
    #[error("this recovery code contains a character that is not used in codes")]
    Character,
}

impl RecoveryCode {
    /// A new code from the operating system's random source, each character chosen uniformly.
    pub fn generate() -> Self {
        let mut rng = OsRng;
        let code = (0..LEN)
            .map(|_| {
                char::from(
                    *ALPHABET
                        .choose(&mut rng)
                        .expect("the alphabet is not empty"),
                )
            })
            .collect();
        Self(code)
    }

    /// The ten characters without separators: what gets hashed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RecoveryCode {
    type Err = RecoveryCodeError;
    fn from_str(s: &str) -> Result<Self, RecoveryCodeError> {
        let mut code = String::with_capacity(LEN);
        for c in s.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = c.to_ascii_uppercase();
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(RecoveryCodeError::Character);
            }
            if code.len() == LEN {
                return Err(RecoveryCodeError::Length);
            }
            code.push(c);
        }
        if code.len() != LEN {
            return Err(RecoveryCodeError::Length);
        }
        Ok(Self(code))
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", &self.0[..5], &self.0[5..])
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tolerates_case_spaces_and_dashes() {
        for input in [
            "ABCDEFGHJK",
            "abcde-fghjk",
            " AbCdE FgHjK ",
            "A-B-C-D-E-F-G-H-J-K",
        ] {
            let code: RecoveryCode = input.parse().unwrap();
            assert_eq!(code.as_str(), "ABCDEFGHJK", "{input:?}");
            assert_eq!(code.to_string(), "ABCDE-FGHJK");
        }
    }

    #[test]
    fn refuses_look_alikes_foreign_characters_and_wrong_lengths() {
        for bad in [
            "ABCDEFGHJ0",
            "ABCDEFGHJO",
            "ABCDEFGHJ1",
            "abcdefghjl",
            "ABCDE_FGHJK",
            "ÄBCDEFGHJK",
        ] {
            assert_eq!(
                bad.parse::<RecoveryCode>(),
                Err(RecoveryCodeError::Character),
                "{bad:?}"
            );
        }
        for bad in ["", " - ", "ABCDEFGHJ", "ABCDE-FGHJKM", "234567"] {
            assert_eq!(
                bad.parse::<RecoveryCode>(),
                Err(RecoveryCodeError::Length),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_codes_parse_back_differ_and_hide_in_debug() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let code = RecoveryCode::generate();
            assert_eq!(code.as_str().len(), LEN);
            assert_eq!(
                code.to_string()
                    .to_lowercase()
                    .parse::<RecoveryCode>()
                    .as_ref(),
                Ok(&code)
            );
            assert!(seen.insert(code.as_str().to_owned()));
            assert_eq!(format!("{code:?}"), "RecoveryCode(***)");
        }
    }
}
