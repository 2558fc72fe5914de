//! Domain types and rules: parsed once from untrusted input, canonical afterwards.

pub mod acr;
mod activation_code;
mod ahv;
mod document;
mod email;
mod language;
mod passkey_name;
mod password;
mod phone;
mod realm_id;
mod recovery_code;
mod staff_role;

pub use activation_code::{ActivationCode, ActivationCodeError};
#[cfg(test)]
pub(crate) use ahv::for_test as ahv_for_test;
pub use ahv::{AhvError, AhvNumber};
pub use document::{
    DocumentCategory, DocumentCategoryError, DocumentTitles, DocumentTitlesError, MAX_TITLE_CHARS,
};
pub use email::{Email, EmailError};
pub use language::{Language, LanguageError};
pub use passkey_name::{PasskeyName, PasskeyNameError, MAX_PASSKEY_NAME_CHARS};
pub use password::{Password, PasswordContext, PasswordError, PasswordPolicy};
pub use phone::{PhoneError, PhoneNumber};
pub use realm_id::{RealmId, RealmIdError};
pub use recovery_code::{RecoveryCode, RecoveryCodeError};
pub use staff_role::{StaffRole, StaffRoleError};
