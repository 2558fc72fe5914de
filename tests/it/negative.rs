//! One test per rule: each bad request gets its specified error, never a 500.

use crate::helpers::*;

/// A good code request, with the tests' PKCE challenge (every client sends one).
fn code_request<'a>(client: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s1"),
        ("code_challenge", PORTAL_CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn without_pkce<'a>(mut q: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    q.retain(|(k, _)| !k.starts_with("code_challenge"));
    q
}

async fn authorize(app: &TestApp, realm: &str, q: &[(&str, &str)]) -> reqwest::Response {
    app.browser
        .get(app.url(&format!("/{realm}/authorize")))
        .query(q)
        .send()
        .await
        .unwrap()
}

/// The error a client receives on its redirect URI.
async fn redirected_error(app: &TestApp, q: &[(&str, &str)]) -> String {
    let res = authorize(app, "AK00", q).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert_eq!(
        query_param(&to, "iss").as_deref(),
        Some(app.issuer("AK00").as_str())
    );
    query_param(&to, "error").unwrap_or_else(|| panic!("no error in {to}"))
}

async fn code_for(app: &TestApp, q: &[(&str, &str)]) -> String {
    app.create_account("AK00", "anna@example.ch").await;
    let to = app.authorize_and_login("AK00", q, "anna@example.ch").await;
    query_param(&to, "code").expect("code")
}

async fn oauth_error(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    for uri in [
        "http://evil.example/cb",
        "http://127.0.0.1:8090/callback/",
        "http://127.0.0.1:8090/callback?x=1",
        "http://127.0.0.1:8090/CALLBACK",
    ] {
        let res = authorize(&app, "AK00", &code_request("portal", uri)).await;
        assert_eq!(res.status(), 400, "{uri}");
        assert!(res.headers().get("location").is_none(), "{uri}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("adresse de retour non enregistrée"));
    }
    let res = authorize(
        &app,
        "AK00",
        &[
            ("client_id", "portal"),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(res.status(), 400, "redirect_uri is required");
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page() {
    let app = spawn_app().await;
    let res = authorize(&app, "AK00", &code_request("nobody", PORTAL_REDIRECT)).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn a_public_client_without_pkce_is_refused() {
    let app = spawn_app().await;
    assert_eq!(
        redirected_error(&app, &without_pkce(code_request("mobile", MOBILE_REDIRECT))).await,
        "invalid_request"
    );
    let (_, challenge) = pkce();
    let mut q = without_pkce(code_request("mobile", MOBILE_REDIRECT));
    q.push(("code_challenge", &challenge));
    q.push(("code_challenge_method", "plain"));
    assert_eq!(
        redirected_error(&app, &q).await,
        "invalid_request",
        "plain is refused"
    );
}

#[tokio::test]
async fn a_confidential_client_without_pkce_is_refused() {
    let app = spawn_app().await;
    let q = without_pkce(code_request("portal", PORTAL_REDIRECT));
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
    let mut q = without_pkce(code_request("portal", PORTAL_REDIRECT));
    q.push(("code_challenge", PORTAL_CHALLENGE));
    q.push(("code_challenge_method", "plain"));
    assert_eq!(
        redirected_error(&app, &q).await,
        "invalid_request",
        "plain is refused"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_verifier_is_refused() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let mut q = without_pkce(code_request("portal", PORTAL_REDIRECT));
    q.push(("code_challenge", &challenge));
    q.push(("code_challenge_method", "S256"));
    let code = code_for(&app, &q).await;
    let (wrong, _) = pkce();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", &wrong),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK00", &form, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );

    let to = app
        .authorize_and_login(
            "AK00",
            &code_request("portal", PORTAL_REDIRECT),
            "anna@example.ch",
        )
        .await;
    let code = query_param(&to, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", PORTAL_REDIRECT),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK00", &form, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_is_invalid_client() {
    let app = spawn_app().await;
    let form = [("grant_type", "client_credentials")];
    let res = app
        .token("AK00", &form, Some(("bench-cc", "bench-secreT")))
        .await;
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(oauth_error(res).await, (401, "invalid_client".into()));
    let res = app
        .token("AK00", &form, Some(("nobody", "bench-secret")))
        .await;
    assert_eq!(oauth_error(res).await, (401, "invalid_client".into()));
    let post = [
        ("grant_type", "client_credentials"),
        ("client_id", "bench-cc"),
        ("client_secret", "wrong"),
    ];
    assert_eq!(
        oauth_error(app.token("AK00", &post, None).await).await,
        (401, "invalid_client".into())
    );
    let both = [
        ("grant_type", "client_credentials"),
        ("client_secret", "bench-secret"),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK00", &both, Some(("bench-cc", "bench-secret")))
                .await
        )
        .await,
        (400, "invalid_request".into())
    );
    // client_secret_post works.
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", "bench-cc"),
        ("client_secret", "bench-secret"),
    ];
    assert_eq!(app.token("AK00", &ok, None).await.status(), 200);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    let code = code_for(&app, &code_request("portal", PORTAL_REDIRECT)).await;
    app.advance(61);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK00", &form, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let app = spawn_app().await;
    let code = code_for(&app, &code_request("portal", PORTAL_REDIRECT)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:8090/other"),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK00", &form, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
    let code = query_param(
        &app.authorize_and_login("AK00", &code_request("portal", PORTAL_REDIRECT), "x")
            .await,
        "code",
    )
    .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    let res = app
        .token("AK01", &form, Some(("portal", PORTAL_SECRET)))
        .await;
    assert_eq!(
        oauth_error(res).await,
        (400, "invalid_grant".into()),
        "a code of AK00 means nothing in AK01"
    );
}

#[tokio::test]
async fn a_token_of_one_realm_means_nothing_in_another() {
    let app = spawn_app().await;
    let res = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    let token: serde_json::Value = res.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let code = code_for(&app, &code_request("portal", PORTAL_REDIRECT)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    let body: serde_json::Value = app
        .token("AK00", &form, Some(("portal", PORTAL_SECRET)))
        .await
        .json()
        .await
        .unwrap();
    let user_token = body["access_token"].as_str().unwrap();
    assert_eq!(
        app.api
            .get(app.url("/AK00/userinfo"))
            .bearer_auth(user_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = app
        .api
        .get(app.url("/AK01/userinfo"))
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let intro = app.introspect("AK01", token).await;
    assert_eq!(intro["active"], false);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
    ];
    assert_eq!(
        oauth_error(
            app.token("AK01", &refresh, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let mut q = without_pkce(code_request("mobile", MOBILE_REDIRECT));
    q.push(("code_challenge", &challenge));
    q.push(("code_challenge_method", "S256"));
    let to = {
        app.create_account("AK00", "anna@example.ch").await;
        app.authorize_and_login("AK00", &q, "anna@example.ch").await
    };
    let code = query_param(&to, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", MOBILE_REDIRECT),
        ("client_id", "mobile"),
        ("code_verifier", &verifier),
    ];
    let body: serde_json::Value = app.token("AK00", &form, None).await.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let stolen = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_eq!(
        oauth_error(
            app.token("AK00", &stolen, Some(("portal", PORTAL_SECRET)))
                .await
        )
        .await,
        (400, "invalid_grant".into())
    );
    let own = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", "mobile"),
    ];
    assert_eq!(
        app.token("AK00", &own, None).await.status(),
        200,
        "still usable by its client"
    );
}

#[tokio::test]
async fn malformed_bodies_get_invalid_request() {
    let app = spawn_app().await;
    let url = app.url("/AK00/token");
    let json = app
        .api
        .post(&url)
        .basic_auth("bench-cc", Some("bench-secret"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(json).await, (400, "invalid_request".into()));
    let bad_utf8 = app
        .api
        .post(&url)
        .basic_auth("bench-cc", Some("bench-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=client_credentials&scope=%FF%FE".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(bad_utf8).await, (400, "invalid_request".into()));
    let raw_bytes = app
        .api
        .post(&url)
        .basic_auth("bench-cc", Some("bench-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'g', b'=', 0xC3, 0x28])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(raw_bytes).await,
        (400, "invalid_request".into())
    );
    let repeated = app
        .token(
            "AK00",
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    assert_eq!(oauth_error(repeated).await, (400, "invalid_request".into()));
    let unknown = app
        .token(
            "AK00",
            &[("grant_type", "password")],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    assert_eq!(
        oauth_error(unknown).await,
        (400, "unsupported_grant_type".into())
    );
    let not_allowed = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("portal", PORTAL_SECRET)),
        )
        .await;
    assert_eq!(
        oauth_error(not_allowed).await,
        (400, "unauthorized_client".into())
    );
    let malformed_basic = app
        .api
        .post(&url)
        .header("authorization", "Basic %%%")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        oauth_error(malformed_basic).await,
        (401, "invalid_client".into())
    );
    let page = app
        .browser
        .get(app.url("/AK00/authorize?client_id=portal&client_id=mobile"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let page = app
        .browser
        .get(app.url("/AK00/authorize?client_id=%FF"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let app = spawn_app().await;
    let big = "a".repeat(200 * 1024);
    let res = app
        .api
        .post(app.url("/AK00/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&pad={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = app
        .browser
        .post(app.url("/AK00/login"))
        .form(&[("email", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn request_objects_are_refused_as_unsupported() {
    let app = spawn_app().await;
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("request", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."));
    assert_eq!(redirected_error(&app, &q).await, "request_not_supported");
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("request_uri", "https://client.example/request.jwt"));
    assert_eq!(
        redirected_error(&app, &q).await,
        "request_uri_not_supported"
    );
}

#[tokio::test]
async fn only_the_code_response_type_and_query_mode_are_served() {
    let app = spawn_app().await;
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q[2] = ("response_type", "token");
    assert_eq!(
        redirected_error(&app, &q).await,
        "unsupported_response_type"
    );
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.remove(2);
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("response_mode", "fragment"));
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("max_age", "-1"));
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("claims", "{not json"));
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("prompt", "none login"));
    assert_eq!(redirected_error(&app, &q).await, "invalid_request");
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let app = spawn_app().await;
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("prompt", "none"));
    let res = authorize(&app, "AK00", &q).await;
    let to = location(&res);
    assert!(to.starts_with(PORTAL_REDIRECT));
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("s1"));
}

#[tokio::test]
async fn unknown_parameters_are_ignored_and_display_is_accepted() {
    let app = spawn_app().await;
    let mut q = code_request("portal", PORTAL_REDIRECT);
    q.push(("extra", "foobar"));
    q.push(("display", "touch"));
    let code = code_for(&app, &q).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn an_unknown_realm_is_a_404_page() {
    let app = spawn_app().await;
    let res = app
        .get(&app.url("/AK99/.well-known/openid-configuration"))
        .await;
    assert_eq!(res.status(), 404);
    let res = app.get(&app.url("/ak00/login")).await;
    assert_eq!(res.status(), 404);
}
