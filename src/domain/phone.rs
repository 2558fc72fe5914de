use std::fmt;

use phonenumber::{country, metadata::DATABASE, Mode, Type};

/// Longer input is refused before it reaches the parser: no real number is written this long.
const MAX_INPUT: usize = 40;

/// A phone number that can receive calls or SMS: parsed with the `phonenumber` crate, national
/// numbers read as Swiss, valid by its metadata, without extension, kept as E.164
/// (`+41791234567`). Whether a realm accepts it (countries, mobile only) is
/// [`PhoneNumber::check_allowed`]. `Debug` prints the masked form only.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    e164: String,
    /// International format, e.g. `+41 79 123 45 67`, for [`PhoneNumber::masked`].
    international: String,
    country_code: u16,
    region: Option<country::Id>,
    mobile: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("this is not a valid phone number")]
    Invalid,
    #[error("phone numbers from this country are not accepted")]
    Country,
    #[error("this is not a mobile phone number")]
    NotMobile,
}

impl PhoneNumber {
    /// Reads a number as people write it: `079 123 45 67`, `+41 79 123 45 67`,
    /// `0041 79 123 45 67`; numbers without a country code are Swiss.
    pub fn parse(raw: &str) -> Result<PhoneNumber, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_INPUT {
            return Err(PhoneError::Invalid);
        }
        let number =
            phonenumber::parse(Some(country::Id::CH), raw).map_err(|_| PhoneError::Invalid)?;
        if !number.is_valid() || number.extension().is_some() {
            return Err(PhoneError::Invalid);
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        // Storage keeps the E.164 form and parses it again at every login: a number whose
        // E.164 form reads as another number (or none, as `+8 000000000067` did: found by
        // the fuzzer) would lock its owner out later, so it is refused now.
        let again =
            phonenumber::parse(Some(country::Id::CH), &e164).map_err(|_| PhoneError::Invalid)?;
        if !again.is_valid() || again.format().mode(Mode::E164).to_string() != e164 {
            return Err(PhoneError::Invalid);
        }
        Ok(PhoneNumber {
            e164,
            international: number.format().mode(Mode::International).to_string(),
            country_code: number.country().code(),
            region: number.country().id(),
            mobile: matches!(
                number.number_type(&DATABASE),
                Type::Mobile | Type::FixedLineOrMobile
            ),
        })
    }

    /// `+41791234567`.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// As people write it: `+41 79 123 45 67`.
    pub fn international(&self) -> &str {
        &self.international
    }

    /// A stored number (E.164) as people write it; what does not parse is shown as given.
    pub fn for_display(stored: &str) -> String {
        PhoneNumber::parse(stored).map_or_else(|_| stored.to_owned(), |n| n.international)
    }

    /// The country calling code, e.g. 41; Switzerland and Liechtenstein differ (41, 423).
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The ISO 3166 region of the number ("CH", "LI", "DE"), where the metadata tells it.
    pub fn region(&self) -> Option<&str> {
        self.region.as_ref().map(|id| id.as_ref())
    }

    /// A mobile number, or one whose region does not tell mobile and fixed-line numbers apart
    /// (as in the USA).
    pub fn is_mobile(&self) -> bool {
        self.mobile
    }

    /// The country code, the first two and the last two digits of the national number:
    /// `+41 79 *** ** 67`. Shorter national numbers show only their last two digits.
    pub fn masked(&self) -> String {
        let (cc, national) = self
            .international
            .split_once(' ')
            .unwrap_or(("", &self.international));
        let digits = national.chars().filter(char::is_ascii_digit).count();
        let head = if digits >= 6 { 2 } else { 0 };
        let tail = digits.saturating_sub(2);
        let mut seen = 0;
        let national: String = national
            .chars()
            .map(|c| {
                if !c.is_ascii_digit() {
                    return c;
                }
                seen += 1;
                if seen <= head || seen > tail {
                    c
                } else {
                    '*'
                }
            })
            .collect();
        format!("{cc} {national}")
    }

    /// The realm's rules: the number's region must be in `allowed_regions` (ISO codes, case
    /// does not matter; an empty list accepts no number), and with `mobile_only` it must be a
    /// mobile number.
    pub fn check_allowed(
        &self,
        allowed_regions: &[&str],
        mobile_only: bool,
    ) -> Result<(), PhoneError> {
        let region_ok = self.region().is_some_and(|region| {
            allowed_regions
                .iter()
                .any(|allowed| allowed.trim().eq_ignore_ascii_case(region))
        });
        if !region_ok {
            return Err(PhoneError::Country);
        }
        if mobile_only && !self.mobile {
            return Err(PhoneError::NotMobile);
        }
        Ok(())
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, PhoneError> {
        PhoneNumber::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.e164
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_whose_e164_form_does_not_read_back_is_refused() {
        // Found by the fuzzer: it parsed, but its E.164 form `+80000000067` did not.
        assert_eq!(
            PhoneNumber::parse("+8 000000000067"),
            Err(PhoneError::Invalid)
        );
        let swiss = PhoneNumber::parse("079 123 45 67").unwrap();
        assert_eq!(PhoneNumber::parse(swiss.as_e164()), Ok(swiss));
    }

    #[test]
    fn swiss_ways_of_writing_give_one_e164_number() {
        for input in [
            "079 123 45 67",
            "0791234567",
            "+41 79 123 45 67",
            "+41791234567",
            "0041791234567",
            "0041 79 123 45 67",
            "079/123.45.67",
            "(079) 123-45-67",
            " +41 (0)79 123 45 67 ",
        ] {
            let p = PhoneNumber::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(p.as_e164(), "+41791234567", "{input:?}");
            assert_eq!(p.country_code(), 41);
            assert_eq!(p.region(), Some("CH"));
            assert!(p.is_mobile(), "{input:?}");
        }
    }

    #[test]
    fn a_swiss_landline_parses_but_is_not_mobile() {
        let p = PhoneNumber::parse("031 390 23 25").unwrap();
        assert_eq!(p.as_e164(), "+41313902325");
        assert!(!p.is_mobile());
        assert_eq!(p.check_allowed(&["CH"], false), Ok(()));
        assert_eq!(p.check_allowed(&["CH"], true), Err(PhoneError::NotMobile));
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        let de = PhoneNumber::parse("+49 151 23456789").unwrap();
        assert_eq!(de.as_e164(), "+4915123456789");
        assert_eq!(de.country_code(), 49);
        assert_eq!(de.region(), Some("DE"));
        assert!(de.is_mobile());
        assert_eq!(
            de.check_allowed(&["CH", "LI"], true),
            Err(PhoneError::Country)
        );
        assert_eq!(de.check_allowed(&["CH", "LI", "de"], true), Ok(()));

        let li = PhoneNumber::parse("+423 660 234 567").unwrap();
        assert_eq!(li.as_e164(), "+423660234567");
        assert_eq!(li.country_code(), 423);
        assert_eq!(li.region(), Some("LI"));
        assert!(li.is_mobile());
        assert_eq!(li.check_allowed(&["CH", "LI"], true), Ok(()));

        let ch = PhoneNumber::parse("079 123 45 67").unwrap();
        assert_eq!(ch.check_allowed(&["CH", "LI"], true), Ok(()));
        assert_eq!(ch.check_allowed(&["LI"], false), Err(PhoneError::Country));
        assert_eq!(ch.check_allowed(&[], false), Err(PhoneError::Country));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            "",
            "   ",
            "hello",
            "079",
            "079 123",
            "079 123 45",
            "079 123 45 678 9",
            "+41 00 000 00 00",
            "+999 123 456 789",
            "079 123 45 67 ext. 12",
            "0000000000000000000000000000000000000000000000000079",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn masks_all_but_the_ends() {
        let p = PhoneNumber::parse("079 123 45 67").unwrap();
        assert_eq!(p.masked(), "+41 79 *** ** 67");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+41 79 *** ** 67)");
        let de = PhoneNumber::parse("+49 151 23456789").unwrap();
        assert_eq!(de.masked(), "+49 15** *****89");
        let li = PhoneNumber::parse("+423 660 234 567").unwrap();
        assert_eq!(li.masked(), "+423 66* *** *67");
    }

    #[test]
    fn serde_keeps_e164_and_parses_again() {
        let p = PhoneNumber::parse("079 123 45 67").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+41791234567\"");
        let back: PhoneNumber = serde_json::from_str("\"+41791234567\"").unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<PhoneNumber>("\"079\"").is_err());
    }
}
