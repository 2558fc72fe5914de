//! Domain types and rules: parsed once from untrusted input, canonical afterwards.

mod ahv;
mod email;
mod language;
mod realm_id;

pub use ahv::{AhvError, AhvNumber};
pub use email::{Email, EmailError};
pub use language::{Language, LanguageError};
pub use realm_id::{RealmId, RealmIdError};
