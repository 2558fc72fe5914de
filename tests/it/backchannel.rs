//! Back-Channel Logout 1.0: when a session ends, the clients that took part in it receive a
//! signed Logout Token at their `backchannel_logout_uri`, in the background.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};

use crate::helpers::*;

/// What the receiver answers, in order; then 200.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Answers only after 30 s: longer than the provider's timeout.
    Hang,
}

/// One POST as the receiver saw it.
#[derive(Clone, Debug)]
struct Delivery {
    /// The last path segment: which client the URI belongs to.
    client: String,
    content_type: Option<String>,
    logout_token: Option<String>,
    /// The fields of the form, names only.
    fields: Vec<String>,
}

/// A small server standing for the relying parties' back-channel endpoints:
/// `POST /bcl/<client>`.
#[derive(Clone, Default)]
struct Receiver {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    fn to(&self, client: &str) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.client == client)
            .cloned()
            .collect()
    }

    /// Polls for up to five seconds until `client` has had `n` deliveries.
    async fn wait_for(&self, client: &str, n: usize) -> Vec<Delivery> {
        for _ in 0..100 {
            let got = self.to(client);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{client} got {} logout token(s), expected {n}",
            self.to(client).len()
        );
    }
}

/// Waits until every delivery the server started has ended (delivered, refused, or given up
/// after its retry): no token can arrive after it.
async fn deliveries_ended(app: &TestApp) {
    app.state.backchannel.settle(Duration::from_secs(15)).await;
}

async fn receive(
    State(rx): State<Receiver>,
    Path(client): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    rx.deliveries.lock().unwrap().push(Delivery {
        client,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        logout_token: form
            .iter()
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.clone()),
        fields: form.iter().map(|(k, _)| k.clone()).collect(),
    });
    let reply = rx.script.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

/// The receiver on 127.0.0.1:0; returns its base URL (`http://…/bcl`).
async fn start_receiver(script: &[Reply]) -> (String, Receiver) {
    let rx = Receiver::default();
    rx.script.lock().unwrap().extend(script.iter().copied());
    let app = Router::new()
        .route("/bcl/{client}", post(receive))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/bcl"), rx)
}

/// The server with AK00's `portal` and `mobile` clients posting to `<portal>` and `<mobile>`.
async fn app_with(portal: &str, mobile: Option<&str>) -> (TestApp, tempfile::TempDir) {
    let (portal, mobile) = (portal.to_owned(), mobile.map(str::to_owned));
    let dir = realm_dir_with(move |text| {
        let text = set_key(&text, "backchannel_logout_uri", &format!("\"{portal}\""));
        match mobile {
            Some(uri) => text.replacen(
                "id_token_signed_response_alg = \"ES256\"",
                &format!(
                    "id_token_signed_response_alg = \"ES256\"\nbackchannel_logout_uri = \"{uri}\""
                ),
                1,
            ),
            None => text,
        }
    });
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| c.realm_dir = path).await;
    (app, dir)
}

fn claims(jwt: &str) -> serde_json::Value {
    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(jwt)
        .unwrap()
        .claims
}

/// Login through the portal; its ID token.
async fn portal_login(app: &TestApp) -> String {
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("nonce", "n-portal"),
            ],
            "anna@example.ch",
        )
        .await;
    app.portal_tokens("AK00", &cb).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Login through the mobile app (public, PKCE); its ID token.
async fn mobile_login(app: &TestApp) -> String {
    let (verifier, challenge) = pkce();
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "mobile"),
                ("redirect_uri", MOBILE_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "anna@example.ch",
        )
        .await;
    let code = query_param(&cb, "code").unwrap();
    let res = app
        .token(
            "AK00",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", MOBILE_REDIRECT),
                ("client_id", "mobile"),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["id_token"].as_str().unwrap().to_owned()
}

/// RP-initiated logout with the hint, back to the portal's registered page.
async fn logout(app: &TestApp, id_token: &str) -> reqwest::Response {
    app.browser
        .get(app.url("/AK00/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap()
}

/// Verifies a Logout Token with the key of the realm's JWKS named by its `kid`, as a relying
/// party would, and returns its claims.
async fn verify(app: &TestApp, token: &str, aud: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .api
        .get(app.url("/AK00/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[app.issuer("AK00")]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("signature, issuer, audience and expiry hold")
        .claims
}

#[tokio::test]
async fn rp_initiated_logout_sends_the_portal_one_signed_logout_token() {
    let (base, rx) = start_receiver(&[]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), None).await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let id_token = portal_login(&app).await;
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_owned();

    let res = logout(&app, &id_token).await;
    assert_eq!(res.status(), 303, "the front channel is unchanged");
    assert_eq!(location(&res), "http://127.0.0.1:8090/?state=bye");

    let got = rx.wait_for("portal", 1).await;
    let d = &got[0];
    assert_eq!(
        d.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(d.fields, ["logout_token"]);
    let token = d.logout_token.as_deref().unwrap();
    let id_header = jsonwebtoken::decode_header(&id_token).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        id_header.alg,
        "signed like the portal's ID tokens"
    );
    let c = verify(&app, token, "portal").await;
    assert_eq!(c["iss"], app.issuer("AK00").as_str());
    assert_eq!(c["aud"], "portal");
    assert_eq!(c["sub"], sub.as_str());
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(
        c["events"],
        serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} })
    );
    assert!(c.get("nonce").is_none(), "a Logout Token has no nonce: {c}");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!((iat - app.clock().unix()).abs() <= 1);
    assert_eq!(exp - iat, 120);

    // Nothing more arrives: one token per client and session.
    deliveries_ended(&app).await;
    assert_eq!(rx.to("portal").len(), 1);
    // A Logout Token is no ID token: it cannot stand in as a hint.
    let res = logout(&app, token).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_client_that_was_not_in_the_session_hears_nothing() {
    let (base, rx) = start_receiver(&[]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), Some(&format!("{base}/mobile"))).await;
    app.create_account("AK00", "anna@example.ch").await;
    let portal_token = portal_login(&app).await;
    let first_sid = claims(&portal_token)["sid"].clone();
    assert_eq!(logout(&app, &portal_token).await.status(), 303);
    let to_portal = rx.wait_for("portal", 1).await;
    assert_eq!(
        claims(to_portal[0].logout_token.as_deref().unwrap())["sid"],
        first_sid
    );

    // A second session, through the mobile app only: only the app hears of its end, and
    // it hears nothing of the first.
    let mobile_token = mobile_login(&app).await;
    let second_sid = claims(&mobile_token)["sid"].clone();
    assert_ne!(first_sid, second_sid);
    let res = app
        .browser
        .get(app.url("/AK00/logout"))
        .query(&[("id_token_hint", mobile_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let to_mobile = rx.wait_for("mobile", 1).await;
    assert_eq!(to_mobile.len(), 1);
    let token = to_mobile[0].logout_token.as_deref().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256,
        "the app's ID-token algorithm"
    );
    let c = verify(&app, token, "mobile").await;
    assert_eq!(c["sid"], second_sid);
    assert_eq!(
        rx.to("portal").len(),
        1,
        "the portal was not in the second session"
    );
}

#[tokio::test]
async fn a_server_error_is_retried_once() {
    let (base, rx) = start_receiver(&[Reply::Status(500), Reply::Status(200)]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), None).await;
    app.create_account("AK00", "anna@example.ch").await;
    let id_token = portal_login(&app).await;
    assert_eq!(logout(&app, &id_token).await.status(), 303);
    let got = rx.wait_for("portal", 2).await;
    assert_eq!(
        got[0].logout_token, got[1].logout_token,
        "the same token again"
    );
    verify(&app, got[1].logout_token.as_deref().unwrap(), "portal").await;
    deliveries_ended(&app).await;
    assert_eq!(rx.to("portal").len(), 2, "delivered: no third attempt");
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (base, rx) = start_receiver(&[Reply::Status(400)]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), None).await;
    app.create_account("AK00", "anna@example.ch").await;
    let id_token = portal_login(&app).await;
    assert_eq!(logout(&app, &id_token).await.status(), 303);
    rx.wait_for("portal", 1).await;
    deliveries_ended(&app).await;
    assert_eq!(rx.to("portal").len(), 1);
}

/// The logout page answers at once and as usual, whatever the client's endpoint does.
async fn logout_is_not_held_up_by(uri: &str) {
    let (app, _dir) = app_with(uri, None).await;
    app.create_account("AK00", "anna@example.ch").await;
    let id_token = portal_login(&app).await;
    let started = Instant::now();
    let res = logout(&app, &id_token).await;
    let took = started.elapsed();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:8090/?state=bye");
    assert!(
        took < Duration::from_secs(2),
        "the logout page took {took:?}"
    );
    let again = app
        .browser
        .get(app.url("/AK00/authorize"))
        .query(&[
            ("client_id", "portal"),
            ("redirect_uri", PORTAL_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", PORTAL_CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        location(&again).starts_with("/AK00/login"),
        "the session ended"
    );
}

#[tokio::test]
async fn a_client_that_is_down_does_not_hold_up_the_logout_page() {
    // A port nobody listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    logout_is_not_held_up_by(&format!("http://127.0.0.1:{port}/bcl/portal")).await;
}

#[tokio::test]
async fn a_client_that_hangs_does_not_hold_up_the_logout_page() {
    let (base, rx) = start_receiver(&[Reply::Hang]).await;
    logout_is_not_held_up_by(&format!("{base}/portal")).await;
    rx.wait_for("portal", 1).await;
}

#[tokio::test]
async fn discovery_announces_back_channel_logout() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .get(&app.url("/AK00/.well-known/openid-configuration"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
}

#[test]
fn a_bad_backchannel_logout_uri_is_refused_with_its_key() {
    for bad in ["\"/backchannel-logout\"", "\"http://127.0.0.1:8090/bcl#x\""] {
        let dir = realm_dir_with(|t| set_key(&t, "backchannel_logout_uri", bad));
        let err = connect::realm::Realms::load_dir(dir.path()).unwrap_err();
        assert_eq!(err.key, "clients[0].backchannel_logout_uri", "{bad}: {err}");
        assert!(err.file.ends_with("AK00.toml"), "{err}");
    }
}

#[tokio::test]
async fn ending_everything_of_an_account_tells_each_client_and_ends_its_tokens() {
    let (base, rx) = start_receiver(&[]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), None).await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "anna@example.ch",
        )
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let ended = app.state.logouts.end_all(&realm, &sub).await.unwrap();
    assert_eq!(ended, 1);
    let got = rx.wait_for("portal", 1).await;
    let c = verify(&app, got[0].logout_token.as_deref().unwrap(), "portal").await;
    assert_eq!(
        (c["sub"].as_str(), c["sid"].as_str()),
        (Some(sub.as_str()), Some(sid.as_str()))
    );
    app.assert_revoked(&tokens).await;
    assert!(!app.has_session().await, "the SSO session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_lock_from_the_command_line_tells_the_clients_over_the_back_channel() {
    // The first attempt is refused for now: only the retry, half a second later, arrives.
    let (base, rx) = start_receiver(&[Reply::Status(503)]).await;
    let (app, _dir) = app_with(&format!("{base}/portal"), None).await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let id_token = portal_login(&app).await;
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_owned();

    // The command runs in its own process, without the server's session store: the grants
    // name the session, and the process waits for the delivery before it exits.
    // The receiver keeps answering on the other worker while this one waits for the process.
    let out = tokio::task::block_in_place(|| crate::admin::Admin::new(&app).support("lock", &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rx.to("portal");
    assert_eq!(
        got.len(),
        2,
        "retried and delivered before the command returned"
    );
    let c = verify(&app, got[1].logout_token.as_deref().unwrap(), "portal").await;
    assert_eq!(
        (c["sub"].as_str(), c["sid"].as_str()),
        (Some(sub.as_str()), Some(sid.as_str()))
    );
    assert!(!app.has_session().await, "the SSO session ended");
}
