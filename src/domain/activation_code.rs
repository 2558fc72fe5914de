use std::{fmt, str::FromStr};

use rand::{rngs::OsRng, seq::SliceRandom};

/// The characters of an activation code: upper-case letters and digits without the look-alikes
/// `0`/`O`, `1`/`I`/`L`. 31 characters, so a code of 12 carries 12 × log2(31) ≈ 59.45 bits.
pub(super) const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

const LEN: usize = 12;

/// The one-time code printed on the activation letter: 12 characters from [`ALPHABET`], kept
/// upper case and without separators. Input is case-insensitive and may contain spaces and
/// dashes; `Display` prints groups of 4 (`XXXX XXXX XXXX`). `Debug` hides the code, and there is
/// no `Serialize`: a code is stored only as a hash of [`ActivationCode::as_str`].
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ActivationCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationCodeError {
    #[error("an activation code has 12 characters")]
    Length,
    #[error("this activation code contains a character that is not used in codes")]
    Character,
}

impl ActivationCode {
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

    /// The 12 characters without separators: what gets hashed and compared.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ActivationCode {
    type Err = ActivationCodeError;
    fn from_str(s: &str) -> Result<Self, ActivationCodeError> {
        let mut code = String::with_capacity(LEN);
        for c in s.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = c.to_ascii_uppercase();
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(ActivationCodeError::Character);
            }
            if code.len() == LEN {
                return Err(ActivationCodeError::Length);
            }
            code.push(c);
        }
        if code.len() != LEN {
            return Err(ActivationCodeError::Length);
        }
        Ok(Self(code))
    }
}

impl TryFrom<String> for ActivationCode {
    type Error = ActivationCodeError;
    fn try_from(s: String) -> Result<Self, ActivationCodeError> {
        s.parse()
    }
}

impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", &self.0[..4], &self.0[4..8], &self.0[8..])
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        assert_eq!(ALPHABET.len(), 31);
        for c in b"O0I1L" {
            assert!(!ALPHABET.contains(c), "{}", char::from(*c));
        }
        let distinct: HashSet<_> = ALPHABET.iter().collect();
        assert_eq!(distinct.len(), ALPHABET.len());
    }

    #[test]
    fn tolerates_case_spaces_and_dashes() {
        for input in [
            "ABCDEFGHJKMN",
            "abcdefghjkmn",
            "abcd-efgh jkmn",
            "ABCD EFGH JKMN",
            "  AbCd-EfGh-JkMn ",
            "A-B-C-D E F G H-J-K-M-N",
        ] {
            let code: ActivationCode = input.parse().unwrap();
            assert_eq!(code.as_str(), "ABCDEFGHJKMN", "{input:?}");
            assert_eq!(code.to_string(), "ABCD EFGH JKMN");
        }
    }

    #[test]
    fn refuses_look_alikes_and_foreign_characters() {
        for bad in [
            "ABCDEFGHJKM0",
            "ABCDEFGHJKMO",
            "ABCDEFGHJKM1",
            "ABCDEFGHJKMI",
            "ABCDEFGHJKML",
            "abcdefghjkml",
            "ABCD_EFGH_JKMN",
            "ABCD.EFGH.JKMN",
            "ÄBCDEFGHJKMN",
            "ABCDEFGHJKM\u{0}",
        ] {
            assert_eq!(
                bad.parse::<ActivationCode>(),
                Err(ActivationCodeError::Character),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_the_wrong_length() {
        for bad in [
            "",
            "   ",
            "----",
            "ABCDEFGHJKM",
            "ABCD EFGH JKM",
            "ABCDEFGHJKMNP",
            "ABCD EFGH JKMN P",
        ] {
            assert_eq!(
                bad.parse::<ActivationCode>(),
                Err(ActivationCodeError::Length),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn round_trips_through_display_as_str_and_serde() {
        let code = ActivationCode::generate();
        assert_eq!(code.to_string().parse::<ActivationCode>(), Ok(code.clone()));
        assert_eq!(code.as_str().parse::<ActivationCode>(), Ok(code.clone()));
        let json = format!("\"{}\"", code.to_string().to_lowercase());
        assert_eq!(serde_json::from_str::<ActivationCode>(&json).unwrap(), code);
        assert!(serde_json::from_str::<ActivationCode>("\"OOOO IIII LLLL\"").is_err());
    }

    #[test]
    fn debug_does_not_show_the_code() {
        let code: ActivationCode = "ABCD EFGH JKMN".parse().unwrap();
        assert_eq!(format!("{code:?}"), "ActivationCode(***)");
        assert_eq!(format!("{:?}", Some(code)), "Some(ActivationCode(***))");
    }

    #[test]
    fn generated_codes_are_well_formed_parse_back_and_differ() {
        let mut seen = HashSet::new();
        let mut used = HashSet::new();
        for _ in 0..2000 {
            let code = ActivationCode::generate();
            let s = code.as_str();
            assert_eq!(s.len(), LEN);
            assert!(s.bytes().all(|b| ALPHABET.contains(&b)), "{s}");
            used.extend(s.bytes());

            let shown = code.to_string();
            assert_eq!(shown.len(), LEN + 2);
            assert_eq!(shown.replace(' ', ""), s);
            assert_eq!(shown.parse::<ActivationCode>().as_ref(), Ok(&code));
            let typed = shown.to_lowercase().replace(' ', "-");
            assert_eq!(typed.parse::<ActivationCode>().as_ref(), Ok(&code));

            assert!(seen.insert(s.to_owned()), "{s} generated twice");
        }
        // 24,000 uniform draws from 31 characters: every one shows up.
        assert_eq!(used.len(), ALPHABET.len());
    }
}
