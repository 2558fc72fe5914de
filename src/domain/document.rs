use std::{collections::BTreeMap, fmt, str::FromStr};

use super::Language;

/// What kind of document the caisse delivers; the portal groups documents by it.
/// The wire names (`decompte`, …) are those of the delivery API and of the database.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum DocumentCategory {
    /// « Décompte »: a statement of benefits paid or contributions due.
    Statement,
    /// « Décision »: a ruling on a benefit or contribution.
    Decision,
    /// « Attestation fiscale »: the yearly statement for the tax return.
    TaxCertificate,
    /// « Décision relative aux allocations »: a ruling on family allowances.
    AllowanceDecision,
    /// « Autre »: anything else.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the category must be one of decompte, decision, attestation_fiscale, decision_allocations, autre"
)]
pub struct DocumentCategoryError;

impl DocumentCategory {
    /// In the order the portal lists them.
    pub const ALL: [DocumentCategory; 5] = [
        DocumentCategory::Statement,
        DocumentCategory::Decision,
        DocumentCategory::TaxCertificate,
        DocumentCategory::AllowanceDecision,
        DocumentCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentCategory::Statement => "decompte",
            DocumentCategory::Decision => "decision",
            DocumentCategory::TaxCertificate => "attestation_fiscale",
            DocumentCategory::AllowanceDecision => "decision_allocations",
            DocumentCategory::Other => "autre",
        }
    }
}

impl FromStr for DocumentCategory {
    type Err = DocumentCategoryError;
    fn from_str(s: &str) -> Result<Self, DocumentCategoryError> {
        DocumentCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(DocumentCategoryError)
    }
}

impl TryFrom<String> for DocumentCategory {
    type Error = DocumentCategoryError;
    fn try_from(s: String) -> Result<Self, DocumentCategoryError> {
        s.parse()
    }
}

impl From<DocumentCategory> for String {
    fn from(c: DocumentCategory) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for DocumentCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document's title in one or more languages: at least one, each trimmed, 1 to
/// `MAX_TITLE_CHARS` characters, without control characters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct DocumentTitles(BTreeMap<Language, String>);

pub const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentTitlesError {
    #[error("a document needs a title")]
    Missing,
    #[error("title languages must be de, fr, it or en")]
    Language,
    #[error("a title has 1 to 200 characters and no control characters")]
    Text,
}

fn clean_title(raw: &str) -> Result<String, DocumentTitlesError> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(DocumentTitlesError::Text);
    }
    Ok(t.to_owned())
}

impl DocumentTitles {
    /// One title, filed under `lang` (the realm's default language) and shown in every language.
    pub fn single(lang: Language, title: &str) -> Result<Self, DocumentTitlesError> {
        Ok(Self(BTreeMap::from([(lang, clean_title(title)?)])))
    }

    /// Titles by language code (`{"fr": …, "de": …}`).
    pub fn by_language<'a>(
        titles: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DocumentTitlesError> {
        let mut map = BTreeMap::new();
        for (code, title) in titles {
            let lang: Language = code.parse().map_err(|_| DocumentTitlesError::Language)?;
            map.insert(lang, clean_title(title)?);
        }
        if map.is_empty() {
            return Err(DocumentTitlesError::Missing);
        }
        Ok(Self(map))
    }

    /// The title in `lang`, else in `fallback`, else the first one there is.
    pub fn get(&self, lang: Language, fallback: Language) -> &str {
        self.0
            .get(&lang)
            .or_else(|| self.0.get(&fallback))
            .or_else(|| self.0.values().next())
            .map_or("", String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Language, &str)> {
        self.0.iter().map(|(l, t)| (*l, t.as_str()))
    }
}

impl TryFrom<BTreeMap<String, String>> for DocumentTitles {
    type Error = DocumentTitlesError;
    fn try_from(m: BTreeMap<String, String>) -> Result<Self, DocumentTitlesError> {
        Self::by_language(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl From<DocumentTitles> for BTreeMap<String, String> {
    fn from(t: DocumentTitles) -> Self {
        t.0.into_iter()
            .map(|(l, s)| (l.code().to_owned(), s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_read_and_write_their_wire_names() {
        for (wire, c) in [
            ("decompte", DocumentCategory::Statement),
            ("decision", DocumentCategory::Decision),
            ("attestation_fiscale", DocumentCategory::TaxCertificate),
            ("decision_allocations", DocumentCategory::AllowanceDecision),
            ("autre", DocumentCategory::Other),
        ] {
            assert_eq!(wire.parse::<DocumentCategory>(), Ok(c));
            assert_eq!(c.to_string(), wire);
            assert_eq!(serde_json::to_value(c).unwrap(), wire);
        }
        for bad in ["", "Decompte", "décompte", " decision", "other", "autre "] {
            assert_eq!(bad.parse::<DocumentCategory>(), Err(DocumentCategoryError));
        }
        assert!(serde_json::from_str::<DocumentCategory>("\"statement\"").is_err());
    }

    #[test]
    fn every_category_round_trips() {
        for c in DocumentCategory::ALL {
            assert_eq!(c.as_str().parse::<DocumentCategory>(), Ok(c));
        }
    }

    #[test]
    fn titles_are_trimmed_checked_and_found_by_language() {
        let t = DocumentTitles::by_language([("fr", " Décision AVS "), ("de", "AHV-Verfügung")])
            .unwrap();
        assert_eq!(t.get(Language::Fr, Language::Fr), "Décision AVS");
        assert_eq!(t.get(Language::De, Language::Fr), "AHV-Verfügung");
        assert_eq!(t.get(Language::It, Language::Fr), "Décision AVS");
        assert_eq!(t.get(Language::En, Language::It), "AHV-Verfügung");
        let one = DocumentTitles::single(Language::Fr, "Décompte").unwrap();
        assert_eq!(one.get(Language::De, Language::De), "Décompte");

        assert_eq!(
            DocumentTitles::by_language([]),
            Err(DocumentTitlesError::Missing)
        );
        assert_eq!(
            DocumentTitles::by_language([("rm", "Decisiun")]),
            Err(DocumentTitlesError::Language)
        );
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(201)] {
            assert_eq!(
                DocumentTitles::single(Language::Fr, bad),
                Err(DocumentTitlesError::Text),
                "{bad:?}"
            );
        }
        assert!(DocumentTitles::single(Language::Fr, &"é".repeat(200)).is_ok());
    }

    #[test]
    fn titles_round_trip_through_json() {
        let t = DocumentTitles::by_language([("it", "Decisione"), ("fr", "Décision")]).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"fr":"Décision","it":"Decisione"}"#);
        assert_eq!(serde_json::from_str::<DocumentTitles>(&json).unwrap(), t);
        assert!(serde_json::from_str::<DocumentTitles>("{}").is_err());
    }
}
