//! The name a person gives a passkey (« iPhone de Jeanne »), to tell their keys apart in the
//! list of the account page and in the mails about them.

use std::{fmt, str::FromStr};

/// The longest name kept, in characters: enough for « Clé de sécurité du bureau, 2e étage ».
pub const MAX_PASSKEY_NAME_CHARS: usize = 60;

/// A passkey's name: trimmed, inner runs of white space made one space, no control
/// characters, 1 to [`MAX_PASSKEY_NAME_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyName(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyNameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than {MAX_PASSKEY_NAME_CHARS} characters")]
    TooLong,
    #[error("the name holds a control or direction character")]
    Control,
}

impl FromStr for PasskeyName {
    type Err = PasskeyNameError;

    fn from_str(raw: &str) -> Result<Self, PasskeyNameError> {
        // White space is made one space first: a tab or line break typed or pasted into the
        // field is white space, not a forbidden character.
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(PasskeyNameError::Empty);
        }
        if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(PasskeyNameError::Control);
        }
        if name.chars().count() > MAX_PASSKEY_NAME_CHARS {
            return Err(PasskeyNameError::TooLong);
        }
        Ok(PasskeyName(name))
    }
}

/// Direction overrides and isolates could make a name in the list read as another one.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl PasskeyName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PasskeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_their_white_space_made_one_space() {
        let good = [
            ("iPhone de Jeanne", "iPhone de Jeanne"),
            ("  YubiKey   bleue \t", "YubiKey bleue"),
            ("Clé\nde bureau", "Clé de bureau"),
            ("Büro-Schlüssel (2. Stock)", "Büro-Schlüssel (2. Stock)"),
        ];
        for (raw, canonical) in good {
            let name: PasskeyName = raw.parse().expect(raw);
            assert_eq!(name.as_str(), canonical);
            assert_eq!(name.to_string().parse::<PasskeyName>(), Ok(name));
        }
    }

    #[test]
    fn empty_long_and_control_names_are_refused() {
        assert_eq!("".parse::<PasskeyName>(), Err(PasskeyNameError::Empty));
        assert_eq!("  \t ".parse::<PasskeyName>(), Err(PasskeyNameError::Empty));
        assert_eq!(
            "a\u{7}b".parse::<PasskeyName>(),
            Err(PasskeyNameError::Control)
        );
        assert_eq!(
            "Clé\u{202e}reissoP".parse::<PasskeyName>(),
            Err(PasskeyNameError::Control),
            "a direction override could make one name look like another"
        );
        let long = "é".repeat(MAX_PASSKEY_NAME_CHARS + 1);
        assert_eq!(long.parse::<PasskeyName>(), Err(PasskeyNameError::TooLong));
        let longest = "é".repeat(MAX_PASSKEY_NAME_CHARS);
        assert!(longest.parse::<PasskeyName>().is_ok());
    }
}
