//! Protocol parameters from a query string or a form body, read strictly: invalid UTF-8
//! and repeated parameters are refused (RFC 6749 §3.1), empty values count as absent.

use percent_encoding::percent_decode;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the request is not valid UTF-8")]
    NotUtf8,
    #[error("the parameter {0} is repeated")]
    Repeated(String),
}

fn decode(part: &str) -> Result<String, ParamError> {
    let spaced = part.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    String::from_utf8(bytes).map_err(|_| ParamError::NotUtf8)
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Params, ParamError> {
        let text = std::str::from_utf8(raw).map_err(|_| ParamError::NotUtf8)?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in text.split('&').filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ParamError::Repeated(name));
            }
            pairs.push((name, value));
        }
        Ok(Params(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_and_drops_empty_values() {
        let p = Params::parse(b"scope=openid+email&state=a%2Fb&nonce=&x").unwrap();
        assert_eq!(p.get("scope"), Some("openid email"));
        assert_eq!(p.get("state"), Some("a/b"));
        assert_eq!(p.get("nonce"), None);
        assert_eq!(p.get("x"), None);
    }

    #[test]
    fn refuses_repeats_and_bad_utf8() {
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err(),
            ParamError::Repeated("a".into())
        );
        assert_eq!(Params::parse(b"a=%FF%FE").unwrap_err(), ParamError::NotUtf8);
        assert_eq!(
            Params::parse(&[b'a', b'=', 0xC3]).unwrap_err(),
            ParamError::NotUtf8
        );
    }
}
