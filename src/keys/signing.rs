//! One signing key: its private half for jsonwebtoken and its public half as a JWK.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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

/// A new key pair: the private half as DER (PKCS#8 for EC, PKCS#1 for RSA) and the public JWK.
pub(super) fn generate(alg: SigningAlg) -> Result<(Vec<u8>, Value), KeyError> {
    let mut rng = rand::rngs::OsRng;
    let (der, public) = match alg {
        SigningAlg::ES256 => {
            use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
            let secret = p256::SecretKey::random(&mut rng);
            let point = secret.public_key().to_encoded_point(false);
            let (x, y) = point
                .x()
                .zip(point.y())
                .ok_or_else(|| KeyError::Generate("EC point".into()))?;
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            (
                der.as_bytes().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y)}),
            )
        }
        SigningAlg::RS256 => {
            use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
            (
                der.as_bytes().to_vec(),
                json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)}),
            )
        }
    };
    let kid = thumbprint(&public);
    let mut jwk = public;
    jwk["kid"] = kid.into();
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    Ok((der, jwk))
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexical order.
fn thumbprint(public: &Value) -> String {
    let canonical = match public["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            public["crv"].as_str().unwrap_or_default(),
            public["x"].as_str().unwrap_or_default(),
            public["y"].as_str().unwrap_or_default()
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            public["e"].as_str().unwrap_or_default(),
            public["n"].as_str().unwrap_or_default()
        ),
    };
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    pub(super) fn from_parts(
        alg: SigningAlg,
        der: &[u8],
        jwk: Value,
    ) -> Result<SigningKey, KeyError> {
        let field = |name: &str| {
            jwk[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| KeyError::Malformed(format!("JWK without {name}")))
        };
        let kid = field("kid")?;
        let (encoding, decoding) = match alg {
            SigningAlg::ES256 => (
                EncodingKey::from_ec_der(der),
                DecodingKey::from_ec_components(&field("x")?, &field("y")?)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
            ),
            SigningAlg::RS256 => (
                EncodingKey::from_rsa_der(der),
                DecodingKey::from_rsa_components(&field("n")?, &field("e")?)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?,
            ),
        };
        Ok(SigningKey {
            kid,
            alg,
            encoding,
            decoding,
            jwk,
        })
    }

    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        match self.alg {
            SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_with_their_kid() {
        for alg in SigningAlg::ALL {
            let (der, jwk) = generate(alg).unwrap();
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

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1 example key.
        let jwk = json!({"kty": "RSA", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
