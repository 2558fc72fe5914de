use std::{fmt, str::FromStr};

/// 756.XXXX.XXXX.XC; the last digit is the EAN-13 check digit. Kept canonical, with dots.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AhvNumber(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AhvError {
    #[error("an AHV number has 13 digits and starts with 756")]
    Shape,
    #[error("the check digit of this AHV number is wrong")]
    CheckDigit,
}

impl AhvNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `756.****.****.97`: enough for a person or support to recognise their number, too
    /// little to use it; the form logs and the audit trail carry.
    pub fn masked(&self) -> String {
        format!("756.****.****.{}", &self.0[self.0.len() - 2..])
    }
}

/// A valid number for unit tests elsewhere in the crate: 756, nine digits from `n`, and the
/// check digit.
#[cfg(test)]
pub(crate) fn for_test(n: u64) -> AhvNumber {
    let body = format!("756{n:09}");
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", ean13_check_digit(&digits))
        .parse()
        .expect("a valid AHV number")
}

fn ean13_check_digit(first12: &[u8]) -> u8 {
    let sum: u32 = first12
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl FromStr for AhvNumber {
    type Err = AhvError;
    fn from_str(s: &str) -> Result<Self, AhvError> {
        let mut digits = Vec::with_capacity(13);
        for c in s.trim().chars() {
            match c {
                '0'..='9' => digits.push(c as u8 - b'0'),
                '.' | ' ' => {}
                _ => return Err(AhvError::Shape),
            }
        }
        if digits.len() != 13 || digits[..3] != [7, 5, 6] {
            return Err(AhvError::Shape);
        }
        if ean13_check_digit(&digits[..12]) != digits[12] {
            return Err(AhvError::CheckDigit);
        }
        let d: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        Ok(Self(format!(
            "{}.{}.{}.{}",
            &d[..3],
            &d[3..7],
            &d[7..11],
            &d[11..]
        )))
    }
}

impl TryFrom<String> for AhvNumber {
    type Error = AhvError;
    fn try_from(s: String) -> Result<Self, AhvError> {
        s.parse()
    }
}

impl From<AhvNumber> for String {
    fn from(a: AhvNumber) -> String {
        a.0
    }
}

impl fmt::Display for AhvNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_form_shows_only_the_last_two_digits() {
        let ahv: AhvNumber = "756.1234.5678.97".parse().unwrap();
        assert_eq!(ahv.masked(), "756.****.****.97");
    }

    #[test]
    fn parses_with_or_without_dots_into_the_canonical_form() {
        for input in ["756.1234.5678.97", "7561234567897", " 756 1234 5678 97 "] {
            assert_eq!(
                input.parse::<AhvNumber>().unwrap().as_str(),
                "756.1234.5678.97"
            );
        }
    }

    #[test]
    fn refuses_wrong_shape_and_wrong_check_digit() {
        assert_eq!(
            "756.1234.5678.98".parse::<AhvNumber>(),
            Err(AhvError::CheckDigit)
        );
        assert_eq!(
            "755.1234.5678.97".parse::<AhvNumber>(),
            Err(AhvError::Shape)
        );
        assert_eq!("756.1234.5678".parse::<AhvNumber>(), Err(AhvError::Shape));
        assert_eq!(
            "756.1234.5678.9x".parse::<AhvNumber>(),
            Err(AhvError::Shape)
        );
        assert_eq!("".parse::<AhvNumber>(), Err(AhvError::Shape));
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = "7561234567897";
        for pos in 3..13 {
            for d in b'0'..=b'9' {
                let mut s = good.as_bytes().to_vec();
                if s[pos] == d {
                    continue;
                }
                s[pos] = d;
                let s = String::from_utf8(s).unwrap();
                assert!(s.parse::<AhvNumber>().is_err(), "{s} accepted");
            }
        }
    }
}
