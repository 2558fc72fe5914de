//! The activation code a person types from the letter (enrolment step 1).
#![no_main]

use connect::domain::ActivationCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(code) = input.parse::<ActivationCode>() else {
        return;
    };
    let canonical = code.as_str();
    assert_eq!(canonical.len(), 12);
    assert!(canonical
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    // The printed form and the canonical form both read back as the same code.
    assert_eq!(
        code.to_string().parse::<ActivationCode>().as_ref(),
        Ok(&code)
    );
    assert_eq!(canonical.parse::<ActivationCode>().as_ref(), Ok(&code));
    assert!(!format!("{code:?}").contains(canonical));
});
