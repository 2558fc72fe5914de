//! The `claims` request parameter (OIDC Core §5.5), as `/authorize` reads it.
#![no_main]

use connect::protocol::claims::ClaimsRequest;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn members(names: &[String]) -> Value {
    Value::Object(
        names
            .iter()
            .map(|n| (n.clone(), Value::Null))
            .collect::<Map<_, _>>(),
    )
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let Ok(request) = ClaimsRequest::parse(&input) else {
        return;
    };
    // What was read, written back as a `claims` parameter, reads the same.
    let again = serde_json::json!({
        "userinfo": members(&request.userinfo),
        "id_token": members(&request.id_token),
    })
    .to_string();
    let reread = ClaimsRequest::parse(&again).expect("a written claims parameter reads back");
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(sorted(&reread.userinfo), sorted(&request.userinfo));
    assert_eq!(sorted(&reread.id_token), sorted(&request.id_token));
});
