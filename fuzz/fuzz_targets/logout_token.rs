//! Logout Tokens at the portal's back-channel logout endpoint, checked against a fixed ES256
//! key. The first byte chooses the shape: even, the rest is the token as posted (so the
//! fuzzer works on headers, encodings and signatures); odd, the rest is a header and a
//! claims JSON separated by a 0xFF byte, signed with the key (so it reaches the claim checks).
#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use connect::portal::auth::{check_logout_token, logout_token_kid};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use libfuzzer_sys::fuzz_target;
use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};

const ISSUER: &str = "http://127.0.0.1:8080/AK00";
const CLIENT_ID: &str = "portal";
const NOW: i64 = 1_800_000_000;
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

struct Keys {
    sign: EncodingKey,
    verify: DecodingKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let secret = p256::SecretKey::from_slice(&[7; 32]).unwrap();
        let private = secret.to_pkcs8_der().unwrap();
        let public = secret.public_key().to_encoded_point(false);
        Keys {
            sign: EncodingKey::from_ec_der(private.as_bytes()),
            verify: DecodingKey::from_ec_der(public.as_bytes()),
        }
    })
}

fn signed(header: &[u8], claims: &[u8]) -> Option<String> {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &keys().sign, Algorithm::ES256).ok()?;
    Some(format!("{input}.{signature}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((shape, rest)) = data.split_first() else {
        return;
    };
    let token = if shape % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let (header, claims) = match rest.iter().position(|b| *b == 0xFF) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b"{}"[..]),
        };
        match signed(header, claims) {
            Some(t) => t,
            None => return,
        }
    };
    if logout_token_kid(&token).is_err() {
        return;
    }
    let Ok(valid) = check_logout_token(
        &token,
        &keys().verify,
        Algorithm::ES256,
        ISSUER,
        CLIENT_ID,
        NOW,
    ) else {
        return;
    };
    // Back-Channel Logout 1.0 §2.6: an accepted token is an ES256 logout token with a `jti`
    // that is remembered for no longer than the token could be replayed: an `iat` up to the
    // 300 s window ahead of now keeps it acceptable until 300 s after that `iat`.
    assert!(!valid.jti.is_empty() && valid.jti.len() <= 256);
    assert!(valid.accepted_for.as_secs() >= 1 && valid.accepted_for.as_secs() <= 601);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(claims["events"].get(LOGOUT_EVENT).is_some());
    assert!(claims.get("nonce").is_none());
    assert!(claims["sid"].is_string() || claims["sub"].is_string());
});
