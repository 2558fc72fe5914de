//! Our own POSTs to other servers (the SMS gateway, back-channel logout): what one attempt
//! came to, and whether another is worth it.

use reqwest::StatusCode;

/// What one POST came to.
pub enum Attempt {
    Delivered,
    /// An answer that the same request would get again (3xx, 4xx, or a 2xx the caller does
    /// not count as delivered).
    Refused(StatusCode),
    /// 5xx, timeout, connection refused or cut: worth another try.
    Transient(String),
}

impl Attempt {
    /// Classifies a sent request; `delivered` says which answers count as delivery. Messages
    /// leave the URL out: it may carry a key.
    pub fn of(
        sent: Result<reqwest::Response, reqwest::Error>,
        delivered: impl Fn(StatusCode) -> bool,
    ) -> Attempt {
        match sent {
            Ok(res) if delivered(res.status()) => Attempt::Delivered,
            Ok(res) if res.status().is_server_error() => {
                Attempt::Transient(format!("answer {}", res.status()))
            }
            Ok(res) => Attempt::Refused(res.status()),
            Err(e) if e.is_timeout() => Attempt::Transient("timed out".into()),
            Err(e) => Attempt::Transient(super::error::error_chain(&e.without_url())),
        }
    }
}
