//! Authorization request parameters (`/authorize`, also the form bodies of `/token`,
//! `/introspect` and `/logout`): the strict parameter parser, then the checks of
//! `protocol::authorize` that need no storage, in the endpoint's order, against the sample
//! realm AK00.
#![no_main]

use std::sync::OnceLock;

use connect::{
    http::params::Params,
    protocol::{authorize, claims::ClaimsRequest},
    realm::{Realm, Realms},
};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 16] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "claims",
    "login_hint",
    "ui_locales",
    "id_token_hint",
    "request",
];

fn realm() -> &'static Realm {
    static REALMS: OnceLock<Realms> = OnceLock::new();
    let realms = REALMS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../realm-config");
        Realms::load_dir(std::path::Path::new(dir)).expect("the sample realms load")
    });
    realms
        .get(&"AK00".parse().unwrap())
        .expect("AK00 is a sample realm")
}

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    for name in NAMES {
        // Empty values count as absent.
        assert!(params.get(name).is_none_or(|v| !v.is_empty()), "{name}");
        assert_eq!(params.has(name), params.get(name).is_some());
    }
    let realm = realm();
    let Some(client) = params.get("client_id").and_then(|id| realm.clients.get(id)) else {
        return;
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return;
    };
    if !realm.clients.redirect_allowed(client, redirect_uri) {
        return;
    }
    // RFC 6749 §4.1.2.1 and RFC 9700 §4.1.3: only a registered URI, compared exactly.
    assert!(
        client.redirect_uris.iter().any(|u| u == redirect_uri),
        "{redirect_uri:?} is not registered for {}",
        client.id
    );
    let _ = authorize::check_sizes(&params);
    let _ = authorize::check_request_objects(&params);
    let _ = authorize::check_response_type(&params);
    if let Ok(scopes) = authorize::check_scope(realm, client, &params) {
        for s in &scopes {
            assert!(client.scopes.contains(s), "{s} granted to {}", client.id);
        }
    }
    if let Ok(pkce) = authorize::check_pkce(&params) {
        assert!(pkce.is_some(), "a request without PKCE passed");
    }
    if let Ok(true) = authorize::check_prompt(&params) {
        assert!(params.get("prompt").is_some_and(|p| p.contains("login")));
    }
    if let Ok(Some(max_age)) = authorize::check_max_age(&params) {
        assert!(max_age >= 0);
    }
    if let Some(raw) = params.get("claims") {
        let _ = ClaimsRequest::parse(raw);
    }
});
