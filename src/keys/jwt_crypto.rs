//! jsonwebtoken's cryptography done by `ring`: the signatures of every JWT the IdP signs or
//! checks, and of those the portal checks.
//!
//! jsonwebtoken 10 leaves the cryptography to a process-wide `CryptoProvider`. Its built-in
//! ones are RustCrypto (`p256`, `rsa`: about 0.6 ms per ES256 signature, 2.7 ms per RS256 one
//! on our machine) and aws-lc-rs (a C build of three minutes here); `ring` is already in the
//! tree through rustls and is as fast as aws-lc-rs for what we use (figures in
//! docs/decisions.md, "Signatures by ring"). Only the algorithms we sign with (ES256, RS256)
//! and HMAC, which the test suite uses to forge tokens, are provided; anything else is
//! refused as an unsupported algorithm.

use jsonwebtoken::{
    crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier},
    errors::{Error, ErrorKind},
    jwk::{EllipticCurve, ThumbprintHash},
    signature, Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey,
};
use ring::{
    digest, hmac,
    rand::SystemRandom,
    rsa::PublicKeyComponents,
    signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey},
};

static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: rsa_public_components,
        extract_ec_public_key_coordinates: ec_public_coordinates,
        compute_digest: digest_of,
    },
};

/// Makes `ring` jsonwebtoken's provider for this process. Called wherever a JWT key is made
/// (the key ring, the portal's view of the IdP keys, the CLI), so that no signature can run
/// without it: with no provider installed, jsonwebtoken would panic. Cheap after the first
/// call (one atomic load).
pub fn install() {
    // Err only means it was installed already; there is no other provider in this process.
    let _ = RING.install_default();
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    let signer = match (alg, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) => Signer::Es256(
            EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.inner(),
                &SystemRandom::new(),
            )
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?,
        ),
        (Algorithm::RS256, AlgorithmFamily::Rsa) => Signer::Rs256(
            RsaKeyPair::from_der(key.inner())
                .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?,
        ),
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, AlgorithmFamily::Hmac) => {
            Signer::Hmac(*alg, hmac::Key::new(hmac_alg(alg), key.inner()))
        }
        (
            Algorithm::ES256
            | Algorithm::RS256
            | Algorithm::HS256
            | Algorithm::HS384
            | Algorithm::HS512,
            _,
        ) => return Err(ErrorKind::InvalidKeyFormat.into()),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(signer))
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let family_ok = match alg {
        Algorithm::ES256 => key.family() == AlgorithmFamily::Ec,
        Algorithm::RS256 => key.family() == AlgorithmFamily::Rsa,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            key.family() == AlgorithmFamily::Hmac
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    if !family_ok {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    // The factory must return an owned verifier, so the key is copied: a few hundred bytes.
    Ok(Box::new(Verifier(*alg, key.clone())))
}

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    Hmac(Algorithm, hmac::Key),
}

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match self {
            Signer::Es256(key) => key
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(signature::Error::from_source),
            Signer::Rs256(key) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(signature::Error::from_source)?;
                Ok(out)
            }
            Signer::Hmac(_, key) => Ok(hmac::sign(key, msg).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        match self {
            Signer::Es256(_) => Algorithm::ES256,
            Signer::Rs256(_) => Algorithm::RS256,
            Signer::Hmac(alg, _) => *alg,
        }
    }
}

struct Verifier(Algorithm, DecodingKey);

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match (self.0, self.1.kind()) {
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).verify(msg, signature)
            }
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der).verify(msg, signature)
            }
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                PublicKeyComponents { n, e }.verify(
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    msg,
                    signature,
                )
            }
            (alg, DecodingKeyKind::SecretOrDer(secret)) if hmac_family(alg) => {
                // Constant time, by ring.
                hmac::verify(&hmac::Key::new(hmac_alg(&alg), secret), msg, signature)
            }
            _ => Err(ring::error::Unspecified),
        };
        ok.map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.0
    }
}

fn hmac_family(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn hmac_alg(alg: &Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// `n` and `e` of a PKCS#1 RSA private key, big-endian without leading zeros, as the JWK
/// wants them.
fn rsa_public_components(pkcs1: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let key = RsaKeyPair::from_der(pkcs1).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    let public = PublicKeyComponents::<Vec<u8>>::from(key.public());
    Ok((public.n, public.e))
}

/// `x` and `y` of a PKCS#8 P-256 private key.
fn ec_public_coordinates(
    pkcs8: &[u8],
    alg: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    if alg != Algorithm::ES256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let key = EcdsaKeyPair::from_pkcs8(
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    // SEC 1 uncompressed point: 0x04, then x and y of 32 bytes each.
    match key.public_key().as_ref() {
        [4, xy @ ..] if xy.len() == 64 => {
            let (x, y) = xy.split_at(32);
            Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn digest_of(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
    };
    digest::digest(alg, data).as_ref().to_vec()
}
