//! Signing keys per realm, the master key that encrypts them at rest, and keyed hashes.

mod master;
mod ring;
mod signing;

pub use master::{KeyError, MasterKey, SecretHasher};
pub use ring::{KeyRing, RingError};
pub use signing::SigningKey;
