//! The words of every mail and SMS, in the person's language, from `locales/*/notify.ftl`.

use super::Mail;
use crate::{
    domain::{Email, Language},
    http::templates::translate_with,
    realm::Realm,
};

/// Step 2 of enrolment: the link back to step 3 and the code that proves the address.
pub fn enrolment_code(
    lang: Language,
    realm: &Realm,
    to: &Email,
    link: &str,
    code: &str,
    minutes: u64,
) -> Mail {
    let args = [
        ("realm", realm.display_name.clone()),
        ("link", link.to_owned()),
        ("code", code.to_owned()),
        ("minutes", minutes.to_string()),
        ("phone", realm.support_phone.clone()),
    ];
    Mail {
        to: to.clone(),
        subject: translate_with(lang, "mail-enrol-code-subject", &args),
        text: translate_with(lang, "mail-enrol-code-text", &args),
        html: None,
    }
}

/// Step 2 with an address that already has an account: its owner is told, nobody else learns.
pub fn address_in_use(lang: Language, realm: &Realm, to: &Email, login_link: &str) -> Mail {
    let args = [
        ("realm", realm.display_name.clone()),
        ("link", login_link.to_owned()),
        ("phone", realm.support_phone.clone()),
    ];
    Mail {
        to: to.clone(),
        subject: translate_with(lang, "mail-address-in-use-subject", &args),
        text: translate_with(lang, "mail-address-in-use-text", &args),
        html: None,
    }
}

/// The SMS with a one-time code, at enrolment and at login.
pub fn sms_code(lang: Language, realm: &Realm, code: &str, minutes: u64) -> String {
    translate_with(
        lang,
        "sms-code",
        &[
            ("realm", realm.display_name.clone()),
            ("code", code.to_owned()),
            ("minutes", minutes.to_string()),
        ],
    )
}
