//! Authentication context classes (OIDC Core §2 `acr`): what a login proved, and whether
//! that is enough for what a client asked with `acr_values`.

/// A login with the password only (accounts without a mobile number, created by support).
pub const PASSWORD: &str = "urn:connect:acr:password";
/// A login with the password and an SMS code.
pub const MFA: &str = "urn:connect:acr:password+sms";
/// A login with a passkey (WebAuthn): the signature is bound to our origin by the browser, so
/// a look-alike site cannot relay it (NIST SP 800-63B-4 §3.2.5, phishing resistance), and the
/// authenticator verified the person (PIN or biometrics) before signing.
pub const PHISHING_RESISTANT: &str = "urn:connect:acr:phishing-resistant";

/// Every class we issue, strongest first (as discovery lists them).
pub const SUPPORTED: [&str; 3] = [PHISHING_RESISTANT, MFA, PASSWORD];

/// The strength of a class; unknown ones have none.
fn rank(acr: &str) -> Option<u8> {
    match acr {
        PASSWORD => Some(1),
        MFA => Some(2),
        PHISHING_RESISTANT => Some(3),
        _ => None,
    }
}

/// Whether a request for `asked` can only be met by a passkey: password and SMS are not
/// enough for it.
pub fn needs_passkey(asked: &[String]) -> bool {
    !satisfies(MFA, asked)
}

/// The classes of an `acr_values` parameter that we know, in the order asked; the others
/// are dropped (the parameter is a request, OIDC Core §3.1.2.1).
pub fn parse_values(raw: &str) -> Vec<String> {
    raw.split(' ')
        .filter(|v| rank(v).is_some())
        .map(str::to_owned)
        .collect()
}

/// Whether a login that proved `proven` meets a request for `asked`: it must reach at least
/// the weakest class asked, since any class asked is acceptable to the client and a stronger
/// proof includes a weaker one. Nothing asked is always met.
pub fn satisfies(proven: &str, asked: &[String]) -> bool {
    let Some(needed) = asked.iter().filter_map(|a| rank(a)).min() else {
        return true;
    };
    rank(proven).is_some_and(|p| p >= needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_login_does_not_meet_a_request_for_password_and_sms() {
        let mfa = vec![MFA.to_owned()];
        let pwd = vec![PASSWORD.to_owned()];
        assert!(!satisfies(PASSWORD, &mfa));
        assert!(satisfies(MFA, &mfa));
        assert!(satisfies(MFA, &pwd));
        assert!(satisfies(PASSWORD, &pwd));
        assert!(satisfies(PASSWORD, &[]));
        assert!(!satisfies("urn:other", &mfa));
        // Either is acceptable to the client: the weaker one sets the bar.
        assert!(satisfies(PASSWORD, &[MFA.to_owned(), PASSWORD.to_owned()]));
    }

    #[test]
    fn only_a_passkey_meets_a_request_for_phishing_resistance() {
        let strong = vec![PHISHING_RESISTANT.to_owned()];
        assert!(satisfies(PHISHING_RESISTANT, &strong));
        assert!(!satisfies(MFA, &strong));
        assert!(!satisfies(PASSWORD, &strong));
        assert!(needs_passkey(&strong));
        // A passkey login is stronger than password and SMS, so it meets their requests too.
        assert!(satisfies(PHISHING_RESISTANT, &[MFA.to_owned()]));
        assert!(!needs_passkey(&[MFA.to_owned()]));
        assert!(!needs_passkey(&[]));
        // Either is acceptable: password and SMS are enough.
        assert!(!needs_passkey(&[
            PHISHING_RESISTANT.to_owned(),
            MFA.to_owned()
        ]));
        assert_eq!(SUPPORTED[0], PHISHING_RESISTANT, "strongest first");
    }

    #[test]
    fn unknown_classes_are_dropped_from_acr_values() {
        assert_eq!(
            parse_values(&format!("urn:other {MFA}  x")),
            vec![MFA.to_owned()]
        );
        assert!(parse_values("urn:other").is_empty());
    }
}
