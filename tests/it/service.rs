//! Health, readiness, metrics and discovery as operators and relying parties see them.

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get(&app.url("/healthz")).await.status(), 200);
    assert_eq!(
        app.get(&app.url("/readyz")).await.text().await.unwrap(),
        "ready"
    );
    let _ = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    let metrics = app.get(&app.url("/metrics")).await.text().await.unwrap();
    assert!(metrics.contains("connect_http_requests_total"), "{metrics}");
    assert!(metrics.contains("connect_tokens_issued_total"));
}

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_realm_issuer() {
    let app = spawn_app().await;
    for realm in ["AK00", "AK01"] {
        let doc: serde_json::Value = app
            .get(&app.url(&format!("/{realm}/.well-known/openid-configuration")))
            .await
            .json()
            .await
            .unwrap();
        let issuer = app.issuer(realm);
        assert_eq!(doc["issuer"], issuer.as_str());
        for (field, path) in [
            ("authorization_endpoint", "authorize"),
            ("token_endpoint", "token"),
            ("userinfo_endpoint", "userinfo"),
            ("jwks_uri", "jwks"),
            ("end_session_endpoint", "logout"),
            ("revocation_endpoint", "revoke"),
            ("introspection_endpoint", "introspect"),
        ] {
            assert_eq!(doc[field], format!("{issuer}/{path}"), "{field}");
        }
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["request_parameter_supported"], false);
        assert_eq!(doc["request_uri_parameter_supported"], false);
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let algs = doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap();
        assert!(algs.contains(&"RS256".into()) && algs.contains(&"ES256".into()));
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"ahv".into()));
    }
}

#[tokio::test]
async fn revocation_ends_a_refresh_token() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let q = [
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let cb = app.authorize_and_login("AK00", &q, "anna@example.ch").await;
    let code = query_param(&cb, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    let body: serde_json::Value = app
        .token("AK00", &form, Some(("portal", PORTAL_SECRET)))
        .await
        .json()
        .await
        .unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let res = app
        .api
        .post(app.url("/AK00/revoke"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again = app
        .token(
            "AK00",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some(("portal", PORTAL_SECRET)),
        )
        .await;
    assert_eq!(again.status(), 400);
    let res = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the grant's access token is revoked as well"
    );
}

#[tokio::test]
async fn every_page_shows_the_caisses_logo_from_the_realm_files() {
    let app = spawn_app().await;
    let res = app.get(&app.url("/AK00/logo")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let shipped = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config/logos/AK00.svg"),
    )
    .unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), shipped.as_slice());
    let page = unescape(
        &app.get(&app.url("/AK00/register"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        page.contains("<img class=\"logo\" src=\"/AK00/logo\""),
        "{page}"
    );
    assert_eq!(app.get(&app.url("/AK99/logo")).await.status(), 404);
}

#[tokio::test]
async fn a_logo_outside_the_realm_directory_or_of_another_kind_is_refused() {
    for (logo, why) in [
        ("../secret.svg", "inside"),
        ("logos/AK00.gif", ".svg or .png"),
        ("logos/missing.svg", "missing.svg"),
    ] {
        let dir = realm_dir_with(|t| set_key(&t, "logo", &format!("\"{logo}\"")));
        let err = connect::realm::Realms::load_dir(dir.path()).unwrap_err();
        assert_eq!(err.key, "logo", "{logo}");
        assert!(err.reason.contains(why), "{logo}: {}", err.reason);
    }
}
