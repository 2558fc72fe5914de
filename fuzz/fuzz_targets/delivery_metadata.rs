//! The `metadata` part of a delivery to the portal's API (`POST /api/v1/documents`).
#![no_main]

use axum::response::IntoResponse;
use connect::{
    domain::{AhvNumber, Language, RealmId, MAX_TITLE_CHARS},
    portal::api::parse_metadata,
};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let realm: RealmId = "AK00".parse().unwrap();
    match parse_metadata(&realm, Language::Fr, data) {
        Ok(m) => {
            assert_eq!(m.ahv.as_str().parse::<AhvNumber>().as_ref(), Ok(&m.ahv));
            assert_eq!(m.category.as_str().parse().as_ref(), Ok(&m.category));
            let mut titles = 0;
            for (_, title) in m.titles.iter() {
                titles += 1;
                assert!(!title.is_empty() && title.chars().count() <= MAX_TITLE_CHARS);
                assert!(!title.chars().any(char::is_control), "{title:?}");
                assert_eq!(title.trim(), title);
            }
            assert!(titles >= 1);
            assert_eq!(m.issue_date.format("%Y-%m-%d").to_string().len(), 10);
        }
        // Refusals are problem+json with a 4xx status, never a server error, and they do not
        // repeat an AHV number (an error body may end up in the caller's logs).
        Err(e) => {
            let response = e.into_response();
            let status = response.status();
            assert!(status.is_client_error(), "{status}");
            let body = response
                .into_body()
                .collect()
                .now_or_never()
                .expect("an error body is in memory")
                .unwrap()
                .to_bytes();
            assert!(
                !holds_ahv_number(&body),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }
});

/// Whether any 13 digits or 16 characters of `text` read as an AHV number.
fn holds_ahv_number(text: &[u8]) -> bool {
    [13, 16].iter().any(|&len| {
        text.windows(len).any(|w| {
            std::str::from_utf8(w)
                .is_ok_and(|s| s.starts_with("756") && s.parse::<AhvNumber>().is_ok())
        })
    })
}
