//! E-mail addresses (enrolment step 2, login, admin commands).
#![no_main]

use connect::domain::Email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(email) = input.parse::<Email>() else {
        return;
    };
    let s = email.as_str();
    assert!(s.len() <= 254, "{s}");
    assert_eq!(s.matches('@').count(), 1, "{s}");
    assert!(
        !s.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{s:?}"
    );
    assert!(!email.local_part().is_empty());
    // Accounts are stored in this form and parsed again when read: it must read back as itself.
    assert_eq!(s.parse::<Email>().as_ref(), Ok(&email), "{s:?}");
    let json = serde_json::to_string(&email).unwrap();
    assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);
});
