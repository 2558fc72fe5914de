//! Form bodies of the pages, read by the strict `http::params::Form` extractor as every page
//! handler does (here the login form: text, an optional field and a password).
#![no_main]

use axum::{
    body::Body,
    extract::FromRequest,
    http::{header, Method, Request},
};
use connect::{flows::login::LoginForm, http::params::Form};
use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/AK00/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(data.to_vec()))
        .unwrap();
    // A body held in memory is read at once: the extractor never waits.
    let read = Form::<LoginForm>::from_request(request, &())
        .now_or_never()
        .expect("an in-memory body is ready");
    if let Err(rejection) = read {
        assert!(
            rejection.status().is_client_error(),
            "{}",
            rejection.status()
        );
    }
});
