use std::{fmt, str::FromStr};

/// The number of a caisse, as in its registration link (`/AK00/register`): two to eight
/// ASCII letters or digits, upper case.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct RealmId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a realm name is 2 to 8 upper-case letters or digits")]
pub struct RealmIdError;

impl RealmId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RealmId {
    type Err = RealmIdError;
    fn from_str(s: &str) -> Result<Self, RealmIdError> {
        let ok = (2..=8).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(RealmIdError)
        }
    }
}

impl TryFrom<String> for RealmId {
    type Error = RealmIdError;
    fn try_from(s: String) -> Result<Self, RealmIdError> {
        s.parse()
    }
}

impl From<RealmId> for String {
    fn from(r: RealmId) -> String {
        r.0
    }
}

impl fmt::Display for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_caisse_numbers_and_refuses_the_rest() {
        for good in ["AK00", "AK01", "CC12", "ZZ"] {
            assert_eq!(good.parse::<RealmId>().unwrap().as_str(), good);
        }
        for bad in ["", "A", "ak00", "AK-0", "AK00AK00A", "../x", "AK 0"] {
            assert_eq!(bad.parse::<RealmId>(), Err(RealmIdError), "{bad}");
        }
    }
}
