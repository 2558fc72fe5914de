//! CSRF protection for every form: a random cookie and, in the form, its HMAC under a
//! server key. A cross-site page can neither read the cookie nor forge the field.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-connect_csrf"
    } else {
        "connect_csrf"
    }
}

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn sign(&self, cookie: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(cookie.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// The token for a form; sets the cookie when the browser has none yet.
    pub fn token(&self, jar: CookieJar, secure: bool) -> (CookieJar, String) {
        if let Some(c) = jar.get(cookie_name(secure)) {
            let token = self.sign(c.value());
            return (jar, token);
        }
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let value = B64.encode(raw);
        let token = self.sign(&value);
        let cookie = Cookie::build((cookie_name(secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .build();
        (jar.add(cookie), token)
    }

    pub fn verify(&self, jar: &CookieJar, secure: bool, presented: &str) -> bool {
        match jar.get(cookie_name(secure)) {
            Some(c) => bool::from(self.sign(c.value()).as_bytes().ct_eq(presented.as_bytes())),
            None => false,
        }
    }
}
