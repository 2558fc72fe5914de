//! The words of every mail and SMS, in the person's language: subjects and SMS from
//! `locales/*/notify.ftl`, mail bodies from `templates/mail/<name>.txt` and `.html`.

use minijinja::{context, Value};

use super::Mail;
use crate::{
    domain::{Email, Language},
    http::templates::{render, translate_with},
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
    let words = Words::new(lang, realm, "mail-enrol-code-subject");
    let ctx = context! { link => link, code => code, minutes => minutes };
    words.mail("enrolment_code", to, ctx, &[link, code])
}

/// Step 2 with an address that already has an account: its owner is told, nobody else learns.
pub fn address_in_use(lang: Language, realm: &Realm, to: &Email, login_link: &str) -> Mail {
    let words = Words::new(lang, realm, "mail-address-in-use-subject");
    words.mail(
        "address_in_use",
        to,
        context! { link => login_link },
        &[login_link],
    )
}

/// « Mot de passe oublié ? »: the code that proves the address, and the link back to the
/// recovery that asked for it.
pub fn password_reset_code(
    lang: Language,
    realm: &Realm,
    to: &Email,
    link: &str,
    code: &str,
    minutes: u64,
) -> Mail {
    let words = Words::new(lang, realm, "mail-reset-code-subject");
    let ctx = context! { link => link, code => code, minutes => minutes };
    words.mail("password_reset_code", to, ctx, &[link, code])
}

/// The login of an account whose factors support removed: the code that proves the address
/// before a new mobile number is registered.
pub fn new_phone_code(lang: Language, realm: &Realm, to: &Email, code: &str, minutes: u64) -> Mail {
    let words = Words::new(lang, realm, "mail-new-phone-code-subject");
    let ctx = context! { code => code, minutes => minutes };
    words.mail("new_phone_code", to, ctx, &[code])
}

/// A new document in « Mes documents »: where to read it, never what it is. Neither title,
/// category nor content goes into a mail, which may be read by others or kept for years.
pub fn document_arrived(lang: Language, realm: &Realm, to: &Email, portal_url: &str) -> Mail {
    let words = Words::new(lang, realm, "mail-document-subject");
    words.mail(
        "document_arrived",
        to,
        context! { link => portal_url },
        &[portal_url],
    )
}

/// A change of address on the account page: the code that proves the new address.
pub fn email_change_code(
    lang: Language,
    realm: &Realm,
    to: &Email,
    code: &str,
    minutes: u64,
) -> Mail {
    let words = Words::new(lang, realm, "mail-email-change-subject");
    let ctx = context! { code => code, minutes => minutes };
    words.mail("email_change_code", to, ctx, &[code])
}

/// A new staff member's invitation: the single-use link to the enrolment and how many hours
/// it works.
pub fn staff_invitation(lang: Language, realm: &Realm, to: &Email, link: &str, hours: u64) -> Mail {
    let words = Words::new(lang, realm, "mail-staff-invitation-subject");
    let ctx = context! { link => link, hours => hours };
    words.mail("staff_invitation", to, ctx, &[link])
}

/// The SMS with a one-time code, at enrolment and at login.
pub fn sms_code(lang: Language, realm: &Realm, code: &str, minutes: u64) -> String {
    translate_with(
        lang,
        "sms-code",
        &[
            ("realm", realm.display_name.get(lang).to_owned()),
            ("code", code.to_owned()),
            ("minutes", minutes.to_string()),
        ],
    )
}

/// What happened to a person's account, told by mail in their language with the support
/// contact. Never a password, code or full number: a new number is shown masked.
#[derive(Clone, Copy, Debug)]
pub enum AccountNotice<'a> {
    /// Locked after too many wrong passwords; opens again by itself after `hours`.
    LockedAfterFailures {
        hours: u64,
    },
    LockedBySupport,
    Unlocked,
    Disabled,
    Enabled,
    /// Support registered a new mobile number, shown masked.
    PhoneChanged {
        masked: &'a str,
    },
    /// The person chose a new password on their account page.
    PasswordChanged,
    /// The person registered a new mobile number on their account page, shown masked.
    PhoneChangedByPerson {
        masked: &'a str,
    },
    /// The person moved their account to a new address, shown masked; told to the old one.
    EmailChanged {
        masked: &'a str,
    },
    /// The person closed their account.
    Closed,
    /// The person added an authenticator app.
    AppAdded,
    /// The person removed their authenticator app.
    AppRemoved,
    /// The person made new recovery codes; the old ones no longer work.
    RecoveryCodesRenewed,
    /// A recovery code was used to log in; `left` remain.
    RecoveryCodeUsed {
        left: usize,
    },
    /// The person added a passkey; their other sessions ended.
    PasskeyAdded,
    /// The person gave a passkey a new name.
    PasskeyRenamed,
    /// The person removed a passkey; their other sessions ended.
    PasskeyRemoved,
    /// The person replaced a forgotten password (after the mail's code and a second factor).
    PasswordReset,
    /// The person asked for a new activation letter; it takes about `days` to arrive.
    LetterRequested {
        days: u64,
    },
    /// With a requested letter's code, a new mobile number (shown masked) replaced every
    /// second factor of the account.
    PhoneReplacedByLetter {
        masked: &'a str,
    },
    /// Support took the mobile number and every second factor away (a lost phone); the next
    /// login asks for a code by e-mail and a new number.
    PhoneResetBySupport,
    /// Support removed the authenticator app (a lost device).
    AppRemovedBySupport,
    /// Support removed a passkey (a lost device).
    PasskeyRemovedBySupport,
    /// Support removed the recovery codes.
    RecoveryCodesRemovedBySupport,
    /// Support ended every session of the account.
    SessionsEndedBySupport,
    /// Support closed the account.
    ClosedBySupport,
    /// Support asked for a new activation letter; it takes about `days` to arrive.
    LetterBySupport {
        days: u64,
    },
}

impl AccountNotice<'_> {
    /// What happened, in a word, for the audit trail.
    pub fn why(&self) -> &'static str {
        match self {
            AccountNotice::LockedAfterFailures { .. } => "locked_after_failures",
            AccountNotice::LockedBySupport => "locked_by_support",
            AccountNotice::Unlocked => "unlocked",
            AccountNotice::Disabled => "disabled",
            AccountNotice::Enabled => "enabled",
            AccountNotice::PhoneChanged { .. } => "phone_changed",
            AccountNotice::PasswordChanged => "password_changed",
            AccountNotice::PhoneChangedByPerson { .. } => "phone_changed_by_person",
            AccountNotice::EmailChanged { .. } => "email_changed",
            AccountNotice::Closed => "account_closed",
            AccountNotice::AppAdded => "app_added",
            AccountNotice::AppRemoved => "app_removed",
            AccountNotice::RecoveryCodesRenewed => "recovery_codes_renewed",
            AccountNotice::RecoveryCodeUsed { .. } => "recovery_code_used",
            AccountNotice::PasskeyAdded => "passkey_added",
            AccountNotice::PasskeyRenamed => "passkey_renamed",
            AccountNotice::PasskeyRemoved => "passkey_removed",
            AccountNotice::PasswordReset => "password_reset",
            AccountNotice::LetterRequested { .. } => "letter_requested",
            AccountNotice::PhoneReplacedByLetter { .. } => "phone_replaced_by_letter",
            AccountNotice::PhoneResetBySupport => "phone_reset_by_support",
            AccountNotice::AppRemovedBySupport => "app_removed_by_support",
            AccountNotice::PasskeyRemovedBySupport => "passkey_removed_by_support",
            AccountNotice::RecoveryCodesRemovedBySupport => "recovery_codes_removed_by_support",
            AccountNotice::SessionsEndedBySupport => "sessions_ended_by_support",
            AccountNotice::ClosedBySupport => "closed_by_support",
            AccountNotice::LetterBySupport { .. } => "letter_by_support",
        }
    }

    /// The subject's key and the body's key.
    fn keys(&self) -> (&'static str, &'static str) {
        match self {
            AccountNotice::LockedAfterFailures { .. } => (
                "mail-account-locked-subject",
                "mail-account-locked-failures",
            ),
            AccountNotice::LockedBySupport => {
                ("mail-account-locked-subject", "mail-account-locked-support")
            }
            AccountNotice::Unlocked => ("mail-account-unlocked-subject", "mail-account-unlocked"),
            AccountNotice::Disabled => ("mail-account-disabled-subject", "mail-account-disabled"),
            AccountNotice::Enabled => ("mail-account-enabled-subject", "mail-account-enabled"),
            AccountNotice::PhoneChanged { .. } => {
                ("mail-account-phone-subject", "mail-account-phone")
            }
            AccountNotice::PasswordChanged => (
                "mail-account-password-subject",
                "mail-account-password-by-person",
            ),
            AccountNotice::PhoneChangedByPerson { .. } => {
                ("mail-account-phone-subject", "mail-account-phone-by-person")
            }
            AccountNotice::EmailChanged { .. } => {
                ("mail-account-email-subject", "mail-account-email-by-person")
            }
            AccountNotice::Closed => ("mail-account-closed-subject", "mail-account-closed"),
            AccountNotice::AppAdded => ("mail-factors-app-added-subject", "mail-factors-app-added"),
            AccountNotice::AppRemoved => (
                "mail-factors-app-removed-subject",
                "mail-factors-app-removed",
            ),
            AccountNotice::RecoveryCodesRenewed => (
                "mail-factors-codes-renewed-subject",
                "mail-factors-codes-renewed",
            ),
            AccountNotice::RecoveryCodeUsed { .. } => {
                ("mail-factors-code-used-subject", "mail-factors-code-used")
            }
            AccountNotice::PasskeyAdded => (
                "mail-account-passkey-added-subject",
                "mail-account-passkey-added",
            ),
            AccountNotice::PasskeyRenamed => (
                "mail-account-passkey-renamed-subject",
                "mail-account-passkey-renamed",
            ),
            AccountNotice::PasskeyRemoved => (
                "mail-account-passkey-removed-subject",
                "mail-account-passkey-removed",
            ),
            AccountNotice::PasswordReset => ("mail-reset-done-subject", "mail-reset-done"),
            AccountNotice::LetterRequested { .. } => {
                ("mail-letter-requested-subject", "mail-letter-requested")
            }
            AccountNotice::PhoneReplacedByLetter { .. } => {
                ("mail-phone-replaced-subject", "mail-phone-replaced")
            }
            AccountNotice::PhoneResetBySupport => (
                "mail-support-phone-reset-subject",
                "mail-support-phone-reset",
            ),
            AccountNotice::AppRemovedBySupport => (
                "mail-support-factor-removed-subject",
                "mail-support-app-removed",
            ),
            AccountNotice::PasskeyRemovedBySupport => (
                "mail-support-factor-removed-subject",
                "mail-support-passkey-removed",
            ),
            AccountNotice::RecoveryCodesRemovedBySupport => (
                "mail-support-factor-removed-subject",
                "mail-support-codes-removed",
            ),
            AccountNotice::SessionsEndedBySupport => {
                ("mail-support-sessions-subject", "mail-support-sessions")
            }
            AccountNotice::ClosedBySupport => {
                ("mail-account-closed-subject", "mail-support-closed")
            }
            AccountNotice::LetterBySupport { .. } => {
                ("mail-support-letter-subject", "mail-support-letter")
            }
        }
    }
}

/// The mail that tells a person what happened to their account.
pub fn account_notice(
    lang: Language,
    realm: &Realm,
    to: &Email,
    notice: AccountNotice<'_>,
) -> Mail {
    let (subject, body) = notice.keys();
    let words = Words::new(lang, realm, subject);
    let (hours, number, address, days) = match notice {
        AccountNotice::LockedAfterFailures { hours } => (
            hours.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ),
        AccountNotice::PhoneChanged { masked }
        | AccountNotice::PhoneChangedByPerson { masked }
        | AccountNotice::PhoneReplacedByLetter { masked } => (
            String::new(),
            masked.to_owned(),
            String::new(),
            String::new(),
        ),
        AccountNotice::EmailChanged { masked } => (
            String::new(),
            String::new(),
            masked.to_owned(),
            String::new(),
        ),
        AccountNotice::RecoveryCodeUsed { left } => (
            String::new(),
            left.to_string(),
            String::new(),
            String::new(),
        ),
        AccountNotice::LetterRequested { days } | AccountNotice::LetterBySupport { days } => (
            String::new(),
            String::new(),
            String::new(),
            days.to_string(),
        ),
        _ => (String::new(), String::new(), String::new(), String::new()),
    };
    let ctx = context! {
        notice => body, hours => hours, number => number, address => address, days => days,
        support_hours => realm.support_hours.get(lang),
    };
    words.mail("account_notice", to, ctx, &[])
}

/// What every mail has: its language, its subject (from `subject_key`, which may name the
/// realm) and the caisse's name and support phone for the body.
struct Words {
    subject: String,
    common: Value,
}

impl Words {
    fn new(lang: Language, realm: &Realm, subject_key: &str) -> Words {
        let name = realm.display_name.get(lang);
        let subject = translate_with(lang, subject_key, &[("realm", name.to_owned())]);
        let common = context! {
            lang => lang.code(),
            subject => &subject,
            realm => name,
            phone => &realm.support_phone,
        };
        Words { subject, common }
    }

    /// Both bodies of `templates/mail/<name>` with `ctx` besides the common words. The
    /// templates are embedded and tested in every language, so a failure is a bug: it is
    /// logged, the HTML left out, and the text falls back to the subject and the `essentials`
    /// (link, code) so that the person can go on.
    fn mail(self, name: &str, to: &Email, ctx: Value, essentials: &[&str]) -> Mail {
        let ctx = context! { ..ctx, ..self.common };
        let body = |ext: &str| {
            render(&format!("mail/{name}.{ext}"), ctx.clone())
                .inspect_err(
                    |e| tracing::error!(template = name, ext, error = %e, "mail template failed"),
                )
                .ok()
        };
        let subject = self.subject;
        let text =
            body("txt").unwrap_or_else(|| format!("{subject}\n\n{}", essentials.join("\n\n")));
        Mail {
            to: to.clone(),
            subject,
            text,
            html: body("html"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The sample realm AK00, under another display name when given.
    fn realm_named(display_name: Option<&str>) -> Arc<Realm> {
        let sample =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config/AK00.toml");
        // Alone in a directory: without the logo file it names.
        let mut toml = std::fs::read_to_string(&sample)
            .expect("AK00.toml")
            .replace("logo = \"logos/AK00.svg\"\n", "");
        if let Some(name) = display_name {
            toml = toml.replace(
                "display_name = \"Caisse de compensation AK00\"",
                &format!("display_name = {}", toml::Value::from(name)),
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("AK00.toml"), toml).expect("realm file");
        // The staff realm its console names.
        std::fs::copy(
            sample.with_file_name("STAFF.toml"),
            dir.path().join("STAFF.toml"),
        )
        .expect("STAFF.toml");
        let realms = crate::realm::Realms::load_dir(dir.path()).expect("realm loads");
        let realm = realms.get(&"AK00".parse().unwrap()).expect("AK00").clone();
        assert_eq!(
            &*realm.display_name,
            display_name.unwrap_or("Caisse de compensation AK00")
        );
        realm
    }

    fn realm() -> Arc<Realm> {
        realm_named(None)
    }

    #[test]
    fn every_mail_renders_text_and_escaped_html_in_every_language() {
        let realm = realm();
        let to: Email = "anna@example.ch".parse().unwrap();
        let link = "https://login.example.ch/AK00/register/t1/confirm?a=1&b=2";
        for lang in Language::ALL {
            let m = enrolment_code(lang, &realm, &to, link, "ABCD-EFGH", 15);
            assert!(
                m.subject.contains(&*realm.display_name),
                "{lang}: {}",
                m.subject
            );
            assert!(
                !m.subject.contains("mail-"),
                "{lang}: a key, not a text: {}",
                m.subject
            );
            for needle in [link, "ABCD-EFGH", "15", realm.support_phone.as_str()] {
                assert!(
                    m.text.contains(needle),
                    "{lang}: text lacks {needle}:\n{}",
                    m.text
                );
            }
            assert!(
                !m.text.contains("mail-") && !m.text.contains("{{"),
                "{lang}:\n{}",
                m.text
            );
            let html = m.html.expect("HTML body");
            assert!(
                html.contains(&format!("<html lang=\"{}\">", lang.code())),
                "{html}"
            );
            // minijinja escapes `/` too; a browser or mail reader reads it back.
            let href = "href=\"https:&#x2f;&#x2f;login.example.ch&#x2f;AK00&#x2f;register&#x2f;t1&#x2f;confirm?a=1&amp;b=2\"";
            assert!(html.contains(href), "{html}");
            assert!(html.contains("ABCD-EFGH"));
            assert!(
                !html.contains("mail-") && !html.contains("<img") && !html.contains("<link"),
                "{html}"
            );

            let m = password_reset_code(lang, &realm, &to, link, "ABCD-EFGH", 30);
            for needle in [link, "ABCD-EFGH", "30", realm.support_phone.as_str()] {
                assert!(m.text.contains(needle), "{lang}: reset mail lacks {needle}");
            }
            assert!(!m.text.contains("mail-"), "{lang}:\n{}", m.text);
            assert!(!m.html.expect("HTML body").contains("mail-"));

            let m = address_in_use(lang, &realm, &to, "https://login.example.ch/AK00/login");
            assert!(
                m.text.contains("https://login.example.ch/AK00/login"),
                "{lang}:\n{}",
                m.text
            );
            assert!(!m.text.contains("mail-"), "{lang}:\n{}", m.text);
            let html = m.html.expect("HTML body");
            assert!(
                html.contains("href=\"https:&#x2f;&#x2f;login.example.ch&#x2f;AK00&#x2f;login\""),
                "{html}"
            );
        }
    }

    #[test]
    fn the_staff_invitation_carries_its_link_and_validity_in_every_language() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
        let realms = crate::realm::Realms::load_dir(&dir).expect("realm files");
        let staff = realms
            .get(&"STAFF".parse().unwrap())
            .expect("STAFF")
            .clone();
        let to: Email = "eva@caisse.ch".parse().unwrap();
        let link = "https://login.example.ch/STAFF/staff/enrol/abc";
        for lang in Language::ALL {
            let m = staff_invitation(lang, &staff, &to, link, 72);
            assert!(!m.subject.contains("mail-"), "{lang}: {}", m.subject);
            for needle in [link, "72", staff.support_phone.as_str()] {
                assert!(
                    m.text.contains(needle),
                    "{lang}: lacks {needle}:\n{}",
                    m.text
                );
            }
            let html = m.html.expect("HTML body");
            assert!(
                !m.text.contains("mail-") && !html.contains("mail-"),
                "{html}"
            );
        }
    }

    #[test]
    fn the_document_mail_names_the_portal_and_nothing_of_the_document() {
        let realm = realm();
        let to: Email = "anna@example.ch".parse().unwrap();
        let portal = "https://portal.example.ch/";
        for lang in Language::ALL {
            let m = document_arrived(lang, &realm, &to, portal);
            assert!(m.subject.contains(&*realm.display_name), "{lang}");
            assert!(!m.subject.contains("mail-"), "{lang}: {}", m.subject);
            assert!(m.text.contains(portal), "{lang}:\n{}", m.text);
            assert!(m.text.contains(&realm.support_phone), "{lang}:\n{}", m.text);
            assert!(
                !m.text.contains("mail-") && !m.text.contains("{{"),
                "{lang}:\n{}",
                m.text
            );
            let html = m.html.expect("HTML body");
            assert!(
                html.contains("href=\"https:&#x2f;&#x2f;portal.example.ch&#x2f;\""),
                "{html}"
            );
            assert!(!html.contains("mail-"), "{html}");
        }
        let fr = document_arrived(Language::Fr, &realm, &to, portal);
        assert!(fr.text.contains("« Mes documents »"), "{}", fr.text);
    }

    #[test]
    fn every_account_notice_speaks_every_language_with_the_support_contact() {
        let realm = realm();
        let to: Email = "anna@example.ch".parse().unwrap();
        let notices = [
            AccountNotice::LockedAfterFailures { hours: 24 },
            AccountNotice::LockedBySupport,
            AccountNotice::Unlocked,
            AccountNotice::Disabled,
            AccountNotice::Enabled,
            AccountNotice::PhoneChanged {
                masked: "+41 79 *** ** 67",
            },
            AccountNotice::PasswordChanged,
            AccountNotice::PhoneChangedByPerson {
                masked: "+41 79 *** ** 67",
            },
            AccountNotice::EmailChanged {
                masked: "a***@example.org",
            },
            AccountNotice::Closed,
            AccountNotice::AppAdded,
            AccountNotice::AppRemoved,
            AccountNotice::RecoveryCodesRenewed,
            AccountNotice::RecoveryCodeUsed { left: 7 },
            AccountNotice::PasswordReset,
            AccountNotice::LetterRequested { days: 7 },
            AccountNotice::PhoneReplacedByLetter {
                masked: "+41 79 *** ** 67",
            },
            AccountNotice::PasskeyAdded,
            AccountNotice::PasskeyRenamed,
            AccountNotice::PasskeyRemoved,
            AccountNotice::PhoneResetBySupport,
            AccountNotice::AppRemovedBySupport,
            AccountNotice::PasskeyRemovedBySupport,
            AccountNotice::RecoveryCodesRemovedBySupport,
            AccountNotice::SessionsEndedBySupport,
            AccountNotice::ClosedBySupport,
            AccountNotice::LetterBySupport { days: 7 },
        ];
        for lang in Language::ALL {
            for notice in notices {
                let m = account_notice(lang, &realm, &to, notice);
                assert!(
                    m.subject.contains(&*realm.display_name),
                    "{lang}: {}",
                    m.subject
                );
                for text in [&m.text, m.html.as_ref().expect("HTML body")] {
                    assert!(
                        !text.contains("mail-") && !text.contains("{{"),
                        "{lang} {notice:?}:\n{text}"
                    );
                    assert!(text.contains(&realm.support_phone), "{lang}:\n{text}");
                }
                assert!(
                    m.text.contains(&*realm.support_hours),
                    "{lang}:\n{}",
                    m.text
                );
                match notice {
                    AccountNotice::LockedAfterFailures { .. } => {
                        assert!(m.text.contains("24"), "{lang}:\n{}", m.text)
                    }
                    AccountNotice::PhoneChanged { masked }
                    | AccountNotice::PhoneChangedByPerson { masked }
                    | AccountNotice::EmailChanged { masked }
                    | AccountNotice::PhoneReplacedByLetter { masked } => {
                        assert!(m.text.contains(masked), "{lang}:\n{}", m.text)
                    }
                    AccountNotice::RecoveryCodeUsed { left } => {
                        assert!(m.text.contains(&left.to_string()), "{lang}:\n{}", m.text)
                    }
                    AccountNotice::LetterRequested { days } => {
                        assert!(m.text.contains(&days.to_string()), "{lang}:\n{}", m.text)
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn the_french_text_keeps_its_wording_and_layout() {
        let realm = realm();
        let to: Email = "anna@example.ch".parse().unwrap();
        let m = enrolment_code(Language::Fr, &realm, &to, "https://x.test/l", "ABCD", 15);
        let expected = format!(
            "Bonjour,\n\nPour poursuivre l'ouverture de votre accès à connect@Assurés, ouvrez ce lien :\n\
             https://x.test/l\n\net saisissez ce code d'accès :\n\nABCD\n\n\
             Le code est valable 15 minutes. Si vous n'avez pas demandé ce code, ignorez ce message.\n\n\
             Pour toute question : {}\n{}",
            realm.support_phone, realm.display_name
        );
        assert_eq!(m.text, expected);
    }

    #[test]
    fn markup_in_values_is_escaped_in_html_and_kept_in_text() {
        let realm = realm_named(Some("Caisse <b>&</b>"));
        let to: Email = "anna@example.ch".parse().unwrap();
        let m = enrolment_code(
            Language::De,
            &realm,
            &to,
            "https://x.test/?a=\"><script>",
            "ABCD",
            15,
        );
        let html = m.html.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("Caisse &lt;b&gt;&amp;&lt;&#x2f;b&gt;"),
            "{html}"
        );
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        assert!(m.text.contains("Caisse <b>&</b>"));
    }
}
