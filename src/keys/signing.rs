//! One signing key: its private half for jsonwebtoken and its public half as a JWK. The
//! signatures themselves are ring's (`super::jwt_crypto`).

use jsonwebtoken::{
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
    DecodingKey, EncodingKey,
};
use serde_json::Value;

use super::KeyError;
use crate::realm::SigningAlg;

pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK as published, with `kid`, `alg` and `use`.
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {})", self.alg.as_str(), self.kid)
    }
}

/// A new private key as DER: PKCS#8 for EC, PKCS#1 for RSA.
pub(super) fn generate(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    let der = match alg {
        SigningAlg::ES256 => ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .as_ref()
        .to_vec(),
        // ring cannot make RSA keys; the `rsa` crate makes them, once per rotation, and ring
        // signs with them. RUSTSEC-2023-0071 (a timing leak when `rsa` decrypts or signs) does
        // not concern generation.
        SigningAlg::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .to_pkcs1_der()
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .as_bytes()
                .to_vec()
        }
    };
    Ok(der)
}

/// The public JWK of a private key in the DER form of [`generate`], with `alg`, `use` and its
/// RFC 7638 thumbprint as `kid`.
pub(super) fn public_jwk(alg: SigningAlg, der: &[u8]) -> Result<Value, KeyError> {
    super::install_jwt_crypto();
    let encoding = encoding_key(alg, der);
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm(alg))
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    jwk.common.key_id = Some(kid(&jwk));
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(&jwk).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// RFC 7638 JWK thumbprint with SHA-256: the key id, the same for the same public key.
fn kid(public: &Jwk) -> String {
    public.thumbprint(ThumbprintHash::SHA256)
}

fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
    }
}

fn algorithm(alg: SigningAlg) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
    }
}

impl SigningKey {
    pub(super) fn from_parts(
        alg: SigningAlg,
        der: &[u8],
        jwk: Value,
    ) -> Result<SigningKey, KeyError> {
        super::install_jwt_crypto();
        let public: Jwk =
            serde_json::from_value(jwk.clone()).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let kid = public
            .common
            .key_id
            .clone()
            .ok_or_else(|| KeyError::Malformed("JWK without kid".into()))?;
        let decoding =
            DecodingKey::from_jwk(&public).map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(SigningKey {
            kid,
            alg,
            encoding: encoding_key(alg, der),
            decoding,
            jwk,
        })
    }

    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        algorithm(self.alg)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_with_their_kid() {
        for alg in SigningAlg::ALL {
            let der = generate(alg).unwrap();
            let jwk = public_jwk(alg, &der).unwrap();
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            let key = SigningKey::from_parts(alg, &der, jwk).unwrap();
            let mut header = jsonwebtoken::Header::new(key.algorithm());
            header.kid = Some(key.kid.clone());
            let token = jsonwebtoken::encode(
                &header,
                &json!({"sub": "x", "exp": 4_000_000_000u64}),
                &key.encoding,
            )
            .unwrap();
            let mut v = jsonwebtoken::Validation::new(key.algorithm());
            v.required_spec_claims.clear();
            let data = jsonwebtoken::decode::<Value>(&token, &key.decoding, &v).unwrap();
            assert_eq!(data.claims["sub"], "x");
            assert_eq!(
                jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
                Some(key.kid.as_str())
            );
        }
    }

    /// The public JWKs (and so the kids and the JWKS) of the fixture keys are the ones
    /// jsonwebtoken made with RustCrypto before ring did the work (`public-jwks.tsv`, written
    /// then), and each key still signs what its JWK verifies.
    #[test]
    fn stored_keys_keep_their_jwk_and_kid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
        let expected = std::fs::read_to_string(format!("{dir}/public-jwks.tsv")).unwrap();
        let mut seen = 0;
        for line in expected.lines() {
            let (name, json) = line.split_once('\t').unwrap();
            let alg = if name.ends_with("ES256") {
                SigningAlg::ES256
            } else {
                SigningAlg::RS256
            };
            let der = std::fs::read(format!("{dir}/{name}.der")).unwrap();
            let jwk = public_jwk(alg, &der).unwrap();
            assert_eq!(jwk, serde_json::from_str::<Value>(json).unwrap(), "{name}");
            let key = SigningKey::from_parts(alg, &der, jwk).unwrap();
            let token = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(key.algorithm()),
                &json!({"sub": name}),
                &key.encoding,
            )
            .unwrap();
            let mut v = jsonwebtoken::Validation::new(key.algorithm());
            v.required_spec_claims.clear();
            assert!(jsonwebtoken::decode::<Value>(&token, &key.decoding, &v).is_ok());
            seen += 1;
        }
        assert_eq!(seen, 4);
    }

    #[test]
    fn a_token_signed_by_another_key_or_altered_is_refused() {
        let der = generate(SigningAlg::ES256).unwrap();
        let key = SigningKey::from_parts(
            SigningAlg::ES256,
            &der,
            public_jwk(SigningAlg::ES256, &der).unwrap(),
        )
        .unwrap();
        let other = generate(SigningAlg::ES256).unwrap();
        let header = jsonwebtoken::Header::new(key.algorithm());
        let claims = json!({"sub": "x"});
        let mut v = jsonwebtoken::Validation::new(key.algorithm());
        v.required_spec_claims.clear();
        let foreign =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&other)).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&foreign, &key.decoding, &v).is_err());
        let good = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&good, &key.decoding, &v).is_ok());
        let mut parts: Vec<&str> = good.split('.').collect();
        // {"sub":"y"} in place of the signed claims.
        parts[1] = "eyJzdWIiOiJ5In0";
        assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key.decoding, &v).is_err());
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1 example key.
        let jwk: Jwk = serde_json::from_value(json!({"kty": "RSA", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}))
        .unwrap();
        assert_eq!(kid(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
