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

/// A page's form body, read as strictly as protocol parameters: invalid UTF-8 and repeated
/// fields are refused instead of being decoded lossily or left to the last one. Empty fields
/// stay, for the form's own checks.
pub struct Form<T>(pub T);

/// Why a form could not be read; `status` is 413 for a body over the limit, else 400.
#[derive(Debug)]
pub enum FormRejection {
    TooLarge,
    Unreadable,
}

impl FormRejection {
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            FormRejection::TooLarge => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            FormRejection::Unreadable => axum::http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Handlers take `Result<Form<T>, FormRejection>` and answer with a page (`flows::page::
/// read_form`); this bare status only answers where a handler takes `Form<T>` alone.
impl axum::response::IntoResponse for FormRejection {
    fn into_response(self) -> axum::response::Response {
        self.status().into_response()
    }
}

impl<T, S> axum::extract::FromRequest<S> for Form<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = FormRejection;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, FormRejection> {
        let is_form = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(FormRejection::Unreadable);
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => FormRejection::TooLarge,
                _ => FormRejection::Unreadable,
            })?;
        Params::parse(&body).map_err(|_| FormRejection::Unreadable)?;
        serde_urlencoded::from_bytes(&body)
            .map(Form)
            .map_err(|_| FormRejection::Unreadable)
    }
}

/// A page's query string, read as strictly as [`Form`]: invalid UTF-8 and repeated
/// parameters are refused; its rejection is the same [`FormRejection`].
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = FormRejection;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, FormRejection> {
        let raw = parts.uri.query().unwrap_or_default();
        Params::parse(raw.as_bytes()).map_err(|_| FormRejection::Unreadable)?;
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|_| FormRejection::Unreadable)
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
