//! Security headers on every response.

use axum::http::{header, HeaderName, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

/// Scripts, styles and `fetch` from our origin only, never inline: the one script is
/// `static/passkey.js` (the WebAuthn ceremonies need the browser's API). No framing
/// (clickjacking), no sniffing.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// One year: browsers then refuse plain http for the host, even on a first typed `http://`.
/// Not `includeSubDomains`: other hosts of the caisse's domain are not ours to decide for.
const HSTS: &str = "max-age=31536000";

/// The layers for a server whose public URL is `https` or not. `Cache-Control: no-store` is
/// the default of every response, not only of HTML pages: pages, userinfo, token responses
/// and PDFs all carry personal data, and a response that may be kept (the stylesheet, the
/// logo) says so itself.
pub fn layers(https: bool) -> Vec<SetResponseHeaderLayer<HeaderValue>> {
    let mut pairs: Vec<(HeaderName, &'static str)> = vec![
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    // RFC 6797 §7.2: sent over secure transport only; over http a browser ignores it.
    if https {
        pairs.push((header::STRICT_TRANSPORT_SECURITY, HSTS));
    }
    pairs
        .into_iter()
        .map(|(name, value)| {
            SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
        })
        .collect()
}
