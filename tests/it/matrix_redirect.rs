//! Matrix, open redirects: every redirect parameter of the IdP (`redirect_uri` at authorize,
//! `post_logout_redirect_uri` at logout) tried with open-redirect payloads. The browser is
//! only ever sent to a URI registered for the client, character for character.

use crate::{helpers::*, matrix_support::*};

/// Payloads against a client whose registered URI is `registered` (`http://host:port/path`).
fn payloads(registered: &str) -> Vec<String> {
    let url = url::Url::parse(registered).expect("registered URI");
    let host = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().expect("port")
    );
    let path = url.path().to_owned();
    let mut out: Vec<String> = [
        "https://evil.example",
        "https://evil.example/callback",
        "//evil.example",
        "//evil.example/callback",
        "/\\evil.example",
        "\\\\evil.example",
        "%2F%09%2Fevil.example",
        "/\t/evil.example",
        "/%2F/evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://client@evil.example",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.extend([
        // Userinfo and authority tricks around the registered host.
        format!("http://{host}@evil.example{path}"),
        format!("http://evil.example@{host}{path}"),
        format!("http://{host}.evil.example{path}"),
        format!("http://evil.example#@{host}{path}"),
        format!("http://evil.example\\@{host}{path}"),
        format!("http://evil.example?@{host}{path}"),
        // The registered URI with something more or something different.
        format!("{registered}/extra"),
        format!("{registered}/../evil"),
        format!("{registered}evil"),
        format!("{registered}?x=1"),
        format!("{registered}?redirect=https://evil.example"),
        format!("{registered}#fragment"),
        format!("{registered}%00"),
        format!("{registered}%2F"),
        format!("{registered} "),
        format!(" {registered}"),
        format!("{registered}\t"),
        format!("{registered}\r\nLocation: https://evil.example"),
        registered.to_uppercase(),
        registered.replacen("http://", "HTTP://", 1),
        registered.replacen("http://", "https://", 1),
        registered.replacen("127.0.0.1", "localhost", 1),
        registered.replacen("127.0.0.1", "127.1", 1),
        format!("{}/", registered.trim_end_matches('/')),
        registered.trim_end_matches('/').to_owned(),
    ]);
    out.retain(|p| p != registered);
    out
}

/// Fails when the answer sends the browser anywhere.
fn assert_no_redirect(res: &reqwest::Response, what: &str) {
    assert!(
        res.headers().get("location").is_none(),
        "{what}: Location {:?}",
        res.headers().get("location")
    );
    assert!(
        !res.status().is_redirection(),
        "{what}: status {}",
        res.status()
    );
    assert!(
        res.headers().get("refresh").is_none(),
        "{what}: a Refresh header"
    );
}

async fn authorize(app: &TestApp, client: &str, redirect_uri: &str) -> reqwest::Response {
    let (_, challenge) = pkce();
    app.browser
        .get(app.url("/AK00/authorize"))
        .query(&[
            ("client_id", client),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize")
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_redirect_uri() {
    let app = spawn_app().await;
    for (client, registered) in [("portal", PORTAL_REDIRECT), ("mobile", MOBILE_REDIRECT)] {
        // The registered URI itself goes on (to the login page): the checks below can fail.
        let res = authorize(&app, client, registered).await;
        assert_eq!(res.status(), 303, "{client}: the registered URI");
        for uri in payloads(registered) {
            let what = format!("{client} with {uri:?}");
            let res = authorize(&app, client, &uri).await;
            assert_no_redirect(&res, &what);
            assert_eq!(res.status(), 400, "{what}");
            let html = unescape(&res.text().await.unwrap());
            assert!(
                html.contains("adresse de retour non enregistrée"),
                "{what}: {html}"
            );
            assert!(!html.contains("evil.example\""), "{what}: link to it");
        }
    }
    // Another client's registered URI is not the portal's.
    let res = authorize(&app, "portal", MOBILE_REDIRECT).await;
    assert_no_redirect(&res, "the mobile app's URI for the portal");
}

#[tokio::test]
async fn a_post_authorize_never_redirects_to_an_unregistered_redirect_uri() {
    let app = spawn_app().await;
    for uri in payloads(PORTAL_REDIRECT) {
        let (_, challenge) = pkce();
        let res = app
            .browser
            .post(app.url("/AK00/authorize"))
            .form(&[
                ("client_id", "portal"),
                ("redirect_uri", uri.as_str()),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize");
        assert_no_redirect(&res, &uri);
        assert_eq!(res.status(), 400, "{uri:?}");
    }
}

async fn logout(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    app.get_query("/AK00/logout", query).await
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_post_logout_redirect_uri() {
    let app = spawn_app().await;
    for (client, registered) in [
        ("portal", "http://127.0.0.1:8090/"),
        ("mobile", "http://127.0.0.1:8091/"),
    ] {
        // The registered URI is followed: the checks below can fail.
        let res = logout(
            &app,
            &[
                ("client_id", client),
                ("post_logout_redirect_uri", registered),
            ],
        )
        .await;
        assert_eq!(res.status(), 303, "{client}");
        assert_eq!(location(&res), registered);
        for uri in payloads(registered) {
            let what = format!("{client} with {uri:?}");
            let res = logout(
                &app,
                &[("client_id", client), ("post_logout_redirect_uri", &uri)],
            )
            .await;
            assert_no_redirect(&res, &what);
            assert_eq!(res.status(), 400, "{what}");
        }
    }
    // Without a client, no URI is registered for anybody.
    let res = logout(
        &app,
        &[("post_logout_redirect_uri", "http://127.0.0.1:8090/")],
    )
    .await;
    assert_no_redirect(&res, "no client named");
    // The mobile app's URI is not the portal's.
    let res = logout(
        &app,
        &[
            ("client_id", "portal"),
            ("post_logout_redirect_uri", "http://127.0.0.1:8091/"),
        ],
    )
    .await;
    assert_no_redirect(&res, "another client's URI");
    // The same through the confirmation form of a person with a session.
    anna_signed_in(&app).await;
    let page = logout(&app, &[]).await.text().await.unwrap();
    let confirm = form_value(&page, "confirm").expect("confirmation form");
    for uri in ["https://evil.example", "//evil.example", "/\\evil.example"] {
        let res = app
            .browser
            .post(app.url("/AK00/logout"))
            .form(&[
                ("confirm", confirm.as_str()),
                ("client_id", "portal"),
                ("post_logout_redirect_uri", uri),
            ])
            .send()
            .await
            .unwrap();
        assert_no_redirect(&res, uri);
    }
}

#[tokio::test]
async fn the_state_of_a_logout_cannot_add_parameters_to_the_redirect() {
    let app = spawn_app().await;
    let res = logout(
        &app,
        &[
            ("client_id", "portal"),
            ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
            ("state", "s&next=https://evil.example#x"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    let url = url::Url::parse(&to).expect("URL");
    assert_eq!(url.origin().ascii_serialization(), "http://127.0.0.1:8090");
    assert_eq!(url.path(), "/");
    assert_eq!(url.fragment(), None, "{to}");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        vec![(
            "state".to_owned(),
            "s&next=https://evil.example#x".to_owned()
        )]
    );
}

#[tokio::test]
async fn the_authorization_response_keeps_state_inside_one_parameter() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let res = app
        .browser
        .get(app.url("/AK00/authorize"))
        .query(&[
            ("client_id", "portal"),
            ("redirect_uri", PORTAL_REDIRECT),
            ("response_type", "token"),
            ("scope", "openid"),
            ("state", "s&redirect_uri=https://evil.example#x"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with(&format!("{PORTAL_REDIRECT}?")), "{to}");
    let url = url::Url::parse(&to).unwrap();
    assert_eq!(url.fragment(), None, "{to}");
    assert_eq!(
        query_param(&to, "state").as_deref(),
        Some("s&redirect_uri=https://evil.example#x")
    );
    assert_eq!(query_param(&to, "redirect_uri"), None);
}
