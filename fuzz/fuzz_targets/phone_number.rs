//! Phone numbers as people type them (enrolment step 6, support), with a realm's rules:
//! the first byte picks the allowed regions and `mobile_only`.
#![no_main]

use connect::domain::{PhoneError, PhoneNumber};
use libfuzzer_sys::fuzz_target;

const REGIONS: [&str; 7] = ["CH", "LI", "DE", "FR", "IT", "AT", "US"];

fuzz_target!(|data: &[u8]| {
    let Some((rules, rest)) = data.split_first() else {
        return;
    };
    let allowed: Vec<&str> = REGIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| rules & (1 << i) != 0)
        .map(|(_, r)| *r)
        .collect();
    let mobile_only = rules & 0x80 != 0;
    let input = String::from_utf8_lossy(rest);
    let Ok(phone) = PhoneNumber::parse(&input) else {
        return;
    };
    let e164 = phone.as_e164();
    assert!(e164.starts_with('+'), "{e164}");
    assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()), "{e164}");
    // Storage keeps E.164 and parses it again at every login: it must give the same number.
    assert_eq!(PhoneNumber::parse(e164).as_ref(), Ok(&phone), "{e164}");
    assert_eq!(
        PhoneNumber::parse(phone.international()).as_ref(),
        Ok(&phone),
        "{}",
        phone.international()
    );
    assert_eq!(PhoneNumber::for_display(e164), phone.international());
    // The masked form shows at most two leading and two trailing digits of the national number.
    let masked = phone.masked();
    let national = masked.split_once(' ').map_or(masked.as_str(), |(_, n)| n);
    let shown = national.bytes().filter(u8::is_ascii_digit).count();
    assert!(shown <= 4, "{masked}");
    assert_eq!(format!("{phone:?}"), format!("PhoneNumber({masked})"));
    match phone.check_allowed(&allowed, mobile_only) {
        Ok(()) => {
            let region = phone.region().expect("an allowed number has a region");
            assert!(allowed.contains(&region), "{region}");
            assert!(!mobile_only || phone.is_mobile());
        }
        Err(PhoneError::Country) => {
            assert!(phone.region().is_none_or(|r| !allowed.contains(&r)));
        }
        Err(PhoneError::NotMobile) => assert!(mobile_only && !phone.is_mobile()),
        Err(PhoneError::Invalid) => panic!("check_allowed never says Invalid"),
    }
});
