//! Signing keys per realm, the master key that encrypts them at rest, and keyed hashes.

mod jwt_crypto;
mod master;
mod ring;
mod signing;

pub use jwt_crypto::install as install_jwt_crypto;
pub use master::{KeyError, MasterKey, SecretHasher};
pub use ring::{KeyRing, RingError};
pub use signing::SigningKey;
