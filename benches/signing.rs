//! ES256 and RS256 signing and verifying as the IdP does them: `jsonwebtoken::encode` and
//! `decode` of an access token, the signatures by ring (`connect::keys::install_jwt_crypto`),
//! with the test suite's fixture keys. Prints microseconds per operation.
//!
//! `cargo bench --bench signing` (a plain binary, `harness = false`; no assertion on time).

use std::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

fn per_op(name: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("{name:<28} {us:>9.1} µs/op  ({n} ops)");
}

fn main() {
    connect::keys::install_jwt_crypto();
    let claims = json!({
        "iss": "http://127.0.0.1:8080/AK00", "sub": "c1", "aud": "http://127.0.0.1:8080/AK00",
        "exp": 4_000_000_000u64, "iat": 1_700_000_000u64,
        "jti": "0f6a0d4e-8a55-4a39-9b45-0bd8e1c3d3a1", "client_id": "c1", "scope": "documents:write",
    });
    let rng = ring::rand::SystemRandom::new();
    let ec = std::fs::read(format!("{KEYS}/AK00-ES256.der")).expect("fixture key");
    let ec_public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ec, &rng)
        .expect("P-256 key")
        .public_key()
        .as_ref()
        .to_vec();
    let rsa = std::fs::read(format!("{KEYS}/AK00-RS256.der")).expect("fixture key");
    let rsa_public = RsaKeyPair::from_der(&rsa)
        .expect("RSA key")
        .public_key()
        .as_ref()
        .to_vec();
    let cases = [
        (
            Algorithm::ES256,
            EncodingKey::from_ec_der(&ec),
            DecodingKey::from_ec_der(&ec_public),
            2000,
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&rsa),
            DecodingKey::from_rsa_der(&rsa_public),
            300,
        ),
    ];
    for (alg, encoding, decoding, n) in cases {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some("bench".into());
        let token = jsonwebtoken::encode(&header, &claims, &encoding).expect("sign");
        let mut validation = Validation::new(alg);
        validation.set_audience(&["http://127.0.0.1:8080/AK00"]);
        per_op(&format!("{alg:?} sign (encode)"), n, || {
            jsonwebtoken::encode(&header, &claims, &encoding).expect("sign");
        });
        per_op(&format!("{alg:?} verify (decode)"), 2000, || {
            jsonwebtoken::decode::<Value>(&token, &decoding, &validation).expect("verify");
        });
    }
}
