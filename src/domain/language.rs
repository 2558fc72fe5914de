use std::{fmt, str::FromStr};

/// The four languages of the pages, the mails and the letters.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Language {
    De,
    Fr,
    It,
    En,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the language must be one of de, fr, it, en")]
pub struct LanguageError;

impl Language {
    pub const ALL: [Language; 4] = [Language::De, Language::Fr, Language::It, Language::En];

    pub fn code(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::Fr => "fr",
            Language::It => "it",
            Language::En => "en",
        }
    }

    /// The language's name in itself, as a language switcher shows it.
    pub fn endonym(self) -> &'static str {
        match self {
            Language::De => "Deutsch",
            Language::Fr => "Français",
            Language::It => "Italiano",
            Language::En => "English",
        }
    }

    /// Reads a language tag such as `fr-CH` or `de`; only the primary subtag counts.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag.trim().split(['-', '_']).next()?;
        primary.to_ascii_lowercase().parse().ok()
    }
}

impl FromStr for Language {
    type Err = LanguageError;
    fn from_str(s: &str) -> Result<Self, LanguageError> {
        match s {
            "de" => Ok(Language::De),
            "fr" => Ok(Language::Fr),
            "it" => Ok(Language::It),
            "en" => Ok(Language::En),
            _ => Err(LanguageError),
        }
    }
}

impl TryFrom<String> for Language {
    type Error = LanguageError;
    fn try_from(s: String) -> Result<Self, LanguageError> {
        s.parse()
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.code().to_owned()
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_by_their_primary_subtag() {
        assert_eq!(Language::from_tag("fr-CH"), Some(Language::Fr));
        assert_eq!(Language::from_tag("DE"), Some(Language::De));
        assert_eq!(Language::from_tag("it_CH"), Some(Language::It));
        assert_eq!(Language::from_tag("rm"), None);
        assert_eq!(Language::from_tag(""), None);
        assert_eq!("en".parse::<Language>(), Ok(Language::En));
        assert_eq!("EN".parse::<Language>(), Err(LanguageError));
    }
}
