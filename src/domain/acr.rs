//! Authentication context classes (OIDC Core §2 `acr`): what a login proved, and whether
//! that is enough for what a client asked with `acr_values`.

/// A login with the password only (accounts without a mobile number, created by support).
pub const PASSWORD: &str = "urn:connect:acr:password";
/// A login with the password and an SMS code.
pub const MFA: &str = "urn:connect:acr:password+sms";

/// Every class we issue, strongest first (as discovery lists them).
pub const SUPPORTED: [&str; 2] = [MFA, PASSWORD];

/// The strength of a class; unknown ones have none.
fn rank(acr: &str) -> Option<u8> {
    match acr {
        PASSWORD => Some(1),
        MFA => Some(2),
        _ => None,
    }
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
    fn unknown_classes_are_dropped_from_acr_values() {
        assert_eq!(
            parse_values(&format!("urn:other {MFA}  x")),
            vec![MFA.to_owned()]
        );
        assert!(parse_values("urn:other").is_empty());
    }
}
