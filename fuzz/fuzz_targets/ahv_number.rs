//! AHV numbers as a person, an import file or the delivery API writes them.
#![no_main]

use connect::domain::AhvNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(ahv) = input.parse::<AhvNumber>() else {
        return;
    };
    let s = ahv.as_str();
    // 756.XXXX.XXXX.XC, and it reads back as itself (storage re-parses its rows).
    assert_eq!(s.len(), 16, "{s}");
    assert!(s.starts_with("756."), "{s}");
    for (i, b) in s.bytes().enumerate() {
        assert!(matches!(i, 3 | 8 | 13) == (b == b'.'), "{s}");
    }
    assert_eq!(s.parse::<AhvNumber>().as_ref(), Ok(&ahv));
    assert_eq!(ahv.to_string(), s);
    let json = serde_json::to_string(&ahv).unwrap();
    assert_eq!(serde_json::from_str::<AhvNumber>(&json).unwrap(), ahv);
});
