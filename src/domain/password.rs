//! Passwords chosen by persons, checked against the realm's policy.
//!
//! `common-passwords.txt` holds the first 10,000 entries of the `passwords` frequency list of
//! the npm package `zxcvbn` 4.4.2 (MIT, `src/frequency_lists.coffee`), lower-cased,
//! deduplicated, entries shorter than 4 characters left out.

use std::{collections::HashSet, fmt, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Names and e-mail parts shorter than this are not looked for in a password.
const MIN_PERSONAL_LEN: usize = 3;

/// Length limits, counted in Unicode code points after NFKC normalisation. There are no
/// composition rules (NIST SP 800-63B-4 forbids them).
///
/// NIST SP 800-63B-4 asks for at least 8 characters where the password is used with a second
/// factor (as here, with the SMS code) and at least 15 where it is the only factor, and for a
/// permitted maximum of at least 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
        }
    }
}

/// What is known about the person choosing the password, so that it does not contain it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordContext {
    pub email_local_part: Option<String>,
    /// Given and family names.
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must have at least {min} characters")]
    TooShort { min: usize },
    #[error("the password must have at most {max} characters")]
    TooLong { max: usize },
    #[error("this password is too common")]
    Common,
    #[error("the password must not contain your name or e-mail address")]
    ContainsPersonalData,
}

/// A password that passed the policy, NFKC-normalised. `Debug` prints `Password(***)`; there is
/// no `Display` and no `Serialize`: the only way out is [`Password::expose`], for hashing.
pub struct Password(SecretString);

impl Password {
    pub fn new(
        raw: &str,
        policy: &PasswordPolicy,
        context: &PasswordContext,
    ) -> Result<Password, PasswordError> {
        let too_long = PasswordError::TooLong {
            max: policy.max_length,
        };
        // NFKC composes at most 4 code points into one (the longest canonical decomposition), so
        // longer input cannot fit: refuse it before spending time on normalising it.
        if raw.chars().count() > policy.max_length.saturating_mul(4) {
            return Err(too_long);
        }
        let normalised: String = raw.nfkc().collect();
        let length = normalised.chars().count();
        if length < policy.min_length {
            return Err(PasswordError::TooShort {
                min: policy.min_length,
            });
        }
        if length > policy.max_length {
            return Err(too_long);
        }
        let lower = normalised.to_lowercase();
        if COMMON_PASSWORDS.contains(lower.as_str()) {
            return Err(PasswordError::Common);
        }
        if personal_words(context).any(|word| lower.contains(&word)) {
            return Err(PasswordError::ContainsPersonalData);
        }
        Ok(Password(SecretString::from(normalised)))
    }

    /// The normalised password, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// A password typed at login, NFKC-normalised as [`Password::new`] normalised it before
    /// hashing, so that the composed and decomposed forms of one text both match. No policy:
    /// a login only compares.
    pub fn presented(raw: &SecretString) -> SecretString {
        SecretString::from(raw.expose_secret().nfkc().collect::<String>())
    }
}

/// The e-mail's local part and the names, whole and split into their parts (`anna.muster`,
/// `Müller-Lüdenscheidt`), lower-cased, NFKC-normalised, of at least [`MIN_PERSONAL_LEN`]
/// characters.
fn personal_words(context: &PasswordContext) -> impl Iterator<Item = String> + '_ {
    let email = context
        .email_local_part
        .iter()
        .flat_map(|local| split_with_whole(local, &['.', '_', '-', '+']));
    let names = context
        .names
        .iter()
        .flat_map(|name| split_with_whole(name, &[' ', '-', '\'', '’']));
    email
        .chain(names)
        .map(|word| word.trim().nfkc().collect::<String>().to_lowercase())
        .filter(|word| word.chars().count() >= MIN_PERSONAL_LEN)
}

fn split_with_whole<'a>(s: &'a str, separators: &'a [char]) -> impl Iterator<Item = &'a str> {
    std::iter::once(s).chain(s.split(separators))
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presented_password_is_normalised_like_an_enrolled_one() {
        let policy = PasswordPolicy::default();
        let enrolled = Password::new(
            "Cafe\u{301}-Bern-1950",
            &policy,
            &PasswordContext::default(),
        )
        .expect("policy");
        for typed in [
            "Caf\u{e9}-Bern-1950",
            "Cafe\u{301}-Bern-1950",
            "Ｃａｆé-Bern-1950",
        ] {
            let presented = Password::presented(&SecretString::from(typed));
            assert_eq!(presented.expose_secret(), enrolled.expose(), "{typed:?}");
        }
    }

    fn person() -> PasswordContext {
        PasswordContext {
            email_local_part: Some("anna.muster".into()),
            names: vec!["Anna".into(), "Müller-Lüdenscheidt".into()],
        }
    }

    fn check(raw: &str) -> Result<Password, PasswordError> {
        Password::new(raw, &PasswordPolicy::default(), &person())
    }

    #[test]
    fn the_list_is_loaded_lower_case() {
        assert!(
            COMMON_PASSWORDS.len() >= 9_000,
            "{}",
            COMMON_PASSWORDS.len()
        );
        for word in ["password1", "123456789", "qwertzui", "iloveyou", "passwort"] {
            assert!(COMMON_PASSWORDS.contains(word), "{word}");
        }
        assert!(COMMON_PASSWORDS
            .iter()
            .all(|w| w.chars().count() >= 4 && *w == w.to_lowercase()));
    }

    #[test]
    fn accepts_a_passphrase_and_keeps_it_normalised() {
        for good in [
            "Regen über dem Thunersee",
            "correct horse battery staple",
            "tz9#Lp2!",
        ] {
            let p = check(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
            assert_eq!(p.expose(), good);
        }
        // Full-width letters and a ligature become plain ones.
        let p = check("Ｒｅｇｅｎschirm ﬁx").unwrap();
        assert_eq!(p.expose(), "Regenschirm fix");
    }

    #[test]
    fn counts_code_points_after_nfkc() {
        // "é" as e + combining acute: 2 code points before NFKC, 1 after.
        let decomposed = "e\u{301}";
        assert_eq!(
            check(&decomposed.repeat(7)).unwrap_err(),
            PasswordError::TooShort { min: 8 }
        );
        assert_eq!(
            check(&decomposed.repeat(8)).unwrap().expose(),
            "é".repeat(8)
        );
        let max = PasswordPolicy::default().max_length;
        assert!(check(&decomposed.repeat(max)).is_ok());
        assert_eq!(
            check(&decomposed.repeat(max + 1)).unwrap_err(),
            PasswordError::TooLong { max }
        );
        // "ﬃ" is 1 code point before NFKC and 3 ("ffi") after.
        assert!(check(&"ﬃ".repeat(3)).is_ok());
        assert_eq!(
            check(&"ﬃ".repeat(43)).unwrap_err(),
            PasswordError::TooLong { max }
        );
    }

    #[test]
    fn applies_the_policy_lengths() {
        let policy = PasswordPolicy {
            min_length: 15,
            max_length: 64,
        };
        let ctx = PasswordContext::default();
        assert_eq!(
            Password::new("short but fine", &policy, &ctx).unwrap_err(),
            PasswordError::TooShort { min: 15 }
        );
        assert!(Password::new("long enough, and fine", &policy, &ctx).is_ok());
        assert_eq!(
            Password::new(&"x".repeat(65), &policy, &ctx).unwrap_err(),
            PasswordError::TooLong { max: 64 }
        );
        assert_eq!(
            Password::new(&"x".repeat(10_000), &policy, &ctx).unwrap_err(),
            PasswordError::TooLong { max: 64 }
        );
        assert_eq!(
            Password::new("", &policy, &ctx).unwrap_err(),
            PasswordError::TooShort { min: 15 }
        );
    }

    #[test]
    fn refuses_common_passwords_in_any_case() {
        for bad in [
            "password1",
            "PASSWORD1",
            "123456789",
            "qwertzui",
            "QwertZui",
            "iloveyou",
            "passwort",
        ] {
            assert_eq!(check(bad).unwrap_err(), PasswordError::Common, "{bad}");
        }
    }

    #[test]
    fn refuses_the_persons_own_data() {
        for bad in [
            "anna.muster2024",
            "xxANNA.MUSTERxx",
            "Muster-Passwort!",
            "ich-bin-anna-hier",
            "müller-lüdenscheidt",
            "LÜDENSCHEIDT rules",
            "der Müller aus Bern",
        ] {
            assert_eq!(
                check(bad).unwrap_err(),
                PasswordError::ContainsPersonalData,
                "{bad}"
            );
        }
    }

    #[test]
    fn ignores_short_names() {
        let ctx = PasswordContext {
            email_local_part: Some("al".into()),
            names: vec!["Li".into(), "Bo".into()],
        };
        let p = Password::new("ali libo algebra", &PasswordPolicy::default(), &ctx);
        assert!(p.is_ok());
    }

    #[test]
    fn debug_does_not_leak() {
        let p = check("Regen über dem Thunersee").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(format!("{:?}", Some(&p)), "Some(Password(***))");
    }
}
