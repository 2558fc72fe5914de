//! The protocol's defences of issue 9: claims within the registration, `acr_values`,
//! bounded authorization requests, access that ends with the account, introspection by the
//! token's own client, grant lifetimes, logout hints, PKCE for every client, and the bare
//! Bearer challenge.

use connect::{
    domain::{acr, Email, Language},
    storage::{accounts, persons},
};

use crate::helpers::*;

/// A client registered for `openid email` only, in a realm directory used by tests alone.
const MAIL_ONLY_CLIENT: &str = r#"
[[clients]]
client_id = "mail-only"
name = "Mail only"
type = "public"
redirect_uris = ["http://127.0.0.1:8092/callback"]
grant_types = ["authorization_code"]
scopes = ["openid", "email"]
"#;
const MAIL_ONLY_REDIRECT: &str = "http://127.0.0.1:8092/callback";

fn jwt_claims(jwt: &str) -> serde_json::Value {
    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(jwt)
        .unwrap()
        .claims
}

fn portal_query(scope: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "st"),
        ("code_challenge", PORTAL_CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

async fn authorize(app: &TestApp, q: &[(&str, &str)]) -> reqwest::Response {
    app.get_query("/AK00/authorize", q).await
}

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.token(
        "AK00",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some(("portal", PORTAL_SECRET)),
    )
    .await
}

async fn error_of(res: reqwest::Response) -> String {
    let body: serde_json::Value = res.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}

async fn introspect_as(app: &TestApp, client: (&str, &str), token: &str) -> serde_json::Value {
    app.api
        .post(app.url("/AK00/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Anna in the register, with her postal address (for the `address` claim).
async fn anna_in_the_register(app: &TestApp) {
    let person = persons::Person {
        ahv: "756.1234.5678.97".parse().unwrap(),
        given_name: "Anna".into(),
        family_name: "Muster".into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: connect::cli::parse_address("Rue du Marché 1, 3000 Bern"),
    };
    persons::add(&app.state.db, &realm("AK00"), &person, 0)
        .await
        .unwrap();
}

/// An account as support creates it without a mobile number: it logs in with the password.
async fn account_without_phone(app: &TestApp, email: &str) -> String {
    let hash = app
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let email: Email = email.parse().unwrap();
    let new = accounts::NewAccount {
        realm: &realm("AK00"),
        email: &email,
        password_hash: &hash,
        given_name: "Berta",
        family_name: "Beispiel",
        ahv: None,
        phone: None,
        language: Language::Fr,
    };
    accounts::create(&app.state.db, &new, app.clock().unix())
        .await
        .unwrap()
}

// Issue 9, defect 1.

#[tokio::test]
async fn a_client_registered_for_openid_email_gets_no_ahv_number_address_or_phone_through_claims() {
    let realms = realm_dir_with(|t| t + MAIL_ONLY_CLIENT);
    let app = spawn_with(|c| c.realm_dir = realms.path().to_path_buf()).await;
    app.create_account("AK00", "anna@example.ch").await;
    anna_in_the_register(&app).await;
    let wanted =
        r#"{"ahv_number":null,"address":null,"phone_number":null,"family_name":null,"email":null}"#;
    let claims = format!(r#"{{"userinfo":{wanted},"id_token":{wanted}}}"#);
    let q = [
        ("client_id", "mail-only"),
        ("redirect_uri", MAIL_ONLY_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email phone address ahv profile"),
        ("claims", claims.as_str()),
    ];
    let cb = app.authorize_and_login("AK00", &q, "anna@example.ch").await;
    let code = query_param(&cb, "code").expect("code");
    let res = app
        .token(
            "AK00",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", MAIL_ONLY_REDIRECT),
                ("client_id", "mail-only"),
                ("code_verifier", PORTAL_VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["scope"], "openid email",
        "scopes beyond the registration are dropped"
    );
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(
        id["email"], "anna@example.ch",
        "a claim of a registered scope"
    );
    let info: serde_json::Value = userinfo(&app, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "anna@example.ch");
    for name in ["ahv_number", "address", "phone_number", "family_name"] {
        assert!(id.get(name).is_none(), "ID token released {name}: {id}");
        assert!(info.get(name).is_none(), "userinfo released {name}: {info}");
    }
}

#[tokio::test]
async fn the_portal_with_scope_openid_gets_no_ahv_number_through_claims() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let claims = r#"{"userinfo":{"ahv_number":null,"name":null},"id_token":{"ahv_number":{"essential":true}}}"#;
    let mut q = portal_query("openid");
    q.push(("claims", claims));
    let cb = app.authorize_and_login("AK00", &q, "anna@example.ch").await;
    let body = app.portal_tokens("AK00", &cb).await;
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert!(id.get("ahv_number").is_none(), "{id}");
    let info: serde_json::Value = userinfo(&app, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(info.get("ahv_number").is_none(), "{info}");
    assert_eq!(
        info["name"], "Anna Muster",
        "OIDC Core §5.5 still serves `name`"
    );

    // With the scope `ahv` itself, the number is released.
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid ahv"), "anna@example.ch")
        .await;
    let body = app.portal_tokens("AK00", &cb).await;
    let info: serde_json::Value = userinfo(&app, body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["ahv_number"], "756.1234.5678.97");
}

// Issue 9, defect 5 (protocol part).

#[tokio::test]
async fn a_session_at_password_only_is_not_reused_when_password_and_sms_is_asked() {
    let app = spawn_app().await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    // An SSO session at the password level, as a login with the password alone leaves it.
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let (jar, _) = app
        .state
        .sessions
        .start(
            &realm,
            axum_extra::extract::CookieJar::new(),
            &sub,
            acr::PASSWORD,
            vec!["pwd".into()],
        )
        .await
        .unwrap();
    let cookie = format!(
        "connect_AK00={}",
        jar.get("connect_AK00").expect("session cookie").value()
    );
    let ask = |extra: Vec<(&'static str, &'static str)>| {
        let mut q = portal_query("openid");
        q.extend(extra);
        app.api
            .get(app.url("/AK00/authorize"))
            .query(&q)
            .header("cookie", cookie.clone())
            .send()
    };
    let to = location(&ask(vec![]).await.unwrap());
    assert!(
        query_param(&to, "code").is_some(),
        "reused when nothing is asked: {to}"
    );
    let to = location(&ask(vec![("acr_values", acr::PASSWORD)]).await.unwrap());
    assert!(
        query_param(&to, "code").is_some(),
        "reused for its own level: {to}"
    );

    let to = location(&ask(vec![("acr_values", acr::MFA)]).await.unwrap());
    assert!(to.starts_with("/AK00/login?flow="), "a new login, not {to}");
    let to = location(
        &ask(vec![("acr_values", acr::MFA), ("prompt", "none")])
            .await
            .unwrap(),
    );
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));

    // The login that follows proves the SMS code, and the ID token says so.
    let mut q = portal_query("openid");
    q.push(("acr_values", acr::MFA));
    let cb = app.authorize_and_login("AK00", &q, "anna@example.ch").await;
    let body = app.portal_tokens("AK00", &cb).await;
    let id = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], acr::MFA);
}

#[tokio::test]
async fn an_account_that_cannot_reach_the_level_asked_gets_unmet_authentication_requirements() {
    let app = spawn_app().await;
    account_without_phone(&app, "berta@example.ch").await;
    let mut q = portal_query("openid");
    q.push(("acr_values", acr::MFA));
    let to = app
        .authorize_and_login("AK00", &q, "berta@example.ch")
        .await;
    assert!(to.starts_with(PORTAL_REDIRECT), "{to}");
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    assert_eq!(query_param(&to, "state").as_deref(), Some("st"));
    assert!(query_param(&to, "code").is_none());

    // Without `acr_values`, the password is all this account has, and the token says so.
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "berta@example.ch")
        .await;
    let body = app.portal_tokens("AK00", &cb).await;
    assert_eq!(
        jwt_claims(body["id_token"].as_str().unwrap())["acr"],
        acr::PASSWORD
    );
}

// Issue 9, defect 8 (protocol part).

#[tokio::test]
async fn an_oversized_authorization_parameter_is_refused_before_it_is_stored() {
    let app = spawn_app().await;
    let long = |n: usize| "a".repeat(n);
    let claims = |n: usize| {
        let pad = "a".repeat(n - r#"{"userinfo":{"name":{"value":""}}}"#.len());
        format!(r#"{{"userinfo":{{"name":{{"value":"{pad}"}}}}}}"#)
    };
    for (name, max) in [
        ("state", 1024),
        ("nonce", 512),
        ("login_hint", 320),
        ("ui_locales", 128),
        ("acr_values", 512),
        ("claims", 4096),
    ] {
        let value = |n| if name == "claims" { claims(n) } else { long(n) };
        let (fits, over) = (value(max), value(max + 1));
        let mut q = portal_query("openid");
        q.retain(|(k, _)| *k != name);
        let mut ok = q.clone();
        ok.push((name, fits.as_str()));
        let to = location(&authorize(&app, &ok).await);
        assert!(
            to.starts_with("/AK00/login?flow="),
            "{name} of {max} bytes: {to}"
        );
        q.push((name, over.as_str()));
        let to = location(&authorize(&app, &q).await);
        assert!(to.starts_with(PORTAL_REDIRECT), "{name}: {to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request"),
            "{name}"
        );
        if name == "state" {
            assert!(query_param(&to, "state").is_none(), "not echoed");
        }
    }
}

#[tokio::test]
async fn too_many_pending_logins_from_one_address_get_a_429_page() {
    let realms = realm_dir_with(|t| set_key(&t, "flows_per_address_per_hour", "3"));
    let app = spawn_with(|c| c.realm_dir = realms.path().to_path_buf()).await;
    for _ in 0..3 {
        let to = location(&authorize(&app, &portal_query("openid")).await);
        assert!(to.starts_with("/AK00/login?flow="), "{to}");
    }
    let res = authorize(&app, &portal_query("openid")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert!(res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")));
}

// Issue 9, defect 10 (protocol part).

#[tokio::test]
async fn a_locked_account_loses_its_session_refresh_userinfo_and_introspection() {
    let app = spawn_app().await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let mut silent = portal_query("openid");
    silent.push(("prompt", "none"));
    let to = location(&authorize(&app, &silent).await);
    assert!(
        query_param(&to, "code").is_some(),
        "the session answers: {to}"
    );
    let portal = ("portal", PORTAL_SECRET);
    assert_eq!(introspect_as(&app, portal, access).await["active"], true);

    accounts::lock(&app.state.db, &sub, None, app.clock().unix())
        .await
        .unwrap();

    let to = location(&authorize(&app, &silent).await);
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
    let to = location(&authorize(&app, &portal_query("openid")).await);
    assert!(to.starts_with("/AK00/login?flow="), "{to}");
    let res = refresh(&app, refresh_token).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_grant");
    let res = userinfo(&app, access).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(introspect_as(&app, portal, access).await["active"], false);
    assert_eq!(
        introspect_as(&app, portal, refresh_token).await["active"],
        false
    );
}

// Issue 9, defect 11.

#[tokio::test]
async fn only_the_tokens_own_client_or_a_resource_server_learns_that_it_is_active() {
    let realms = realm_dir_with(|t| {
        t.replace(
            "scopes = [\"documents:write\"]\n",
            "scopes = [\"documents:write\"]\nresource_server = true\n",
        )
    });
    let app = spawn_with(|c| c.realm_dir = realms.path().to_path_buf()).await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let portal = ("portal", PORTAL_SECRET);
    let other = ("bench-cc", "bench-secret");
    let resource_server = ("caisse-docs", "caisse-docs-secret");

    let own = introspect_as(&app, portal, access).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], "portal");
    assert_eq!(
        introspect_as(&app, other, access).await,
        serde_json::json!({"active": false}),
        "another client learns nothing"
    );
    assert_eq!(
        introspect_as(&app, resource_server, access).await["active"],
        true
    );
    assert_eq!(
        introspect_as(&app, portal, refresh_token).await["active"],
        true
    );
    for client in [other, resource_server] {
        assert_eq!(
            introspect_as(&app, client, refresh_token).await,
            serde_json::json!({"active": false}),
            "{}: a refresh token is its client's business",
            client.0
        );
    }
}

#[test]
fn a_public_client_cannot_be_a_resource_server() {
    let realms = realm_dir_with(|t| {
        t.replace(
            "id_token_signed_response_alg = \"ES256\"\n",
            "id_token_signed_response_alg = \"ES256\"\nresource_server = true\n",
        )
    });
    let e = connect::realm::Realms::load_dir(realms.path()).unwrap_err();
    assert!(e.to_string().contains("resource_server"), "{e}");
}

// Issue 9, defect 13.

#[tokio::test]
async fn a_refresh_after_the_session_ended_needs_offline_access() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let online = app.portal_tokens("AK00", &cb).await;
    // A second grant from the same session, with `offline_access`.
    let cb = app
        .authorize_and_login(
            "AK00",
            &portal_query("openid offline_access"),
            "anna@example.ch",
        )
        .await;
    let offline = app.portal_tokens("AK00", &cb).await;
    assert_eq!(offline["scope"], "openid offline_access");

    // Within the session (8 h), both refresh.
    app.advance(20_000);
    let mut next = Vec::new();
    for t in [&online, &offline] {
        let res = refresh(&app, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        next.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    // The session is over (28 800 s after the login); the refresh tokens are not.
    app.advance(9_000);
    let res = refresh(&app, &next[0]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_grant");
    let res = refresh(&app, &next[1]).await;
    assert_eq!(
        res.status(),
        200,
        "offline_access refreshes beyond the session"
    );
}

#[tokio::test]
async fn a_grant_is_not_refreshed_past_its_absolute_lifetime() {
    let realms = realm_dir_with(|t| set_key(&t, "grant_absolute_seconds", "36000"));
    let app = spawn_with(|c| c.realm_dir = realms.path().to_path_buf()).await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login(
            "AK00",
            &portal_query("openid offline_access"),
            "anna@example.ch",
        )
        .await;
    let mut token = app.portal_tokens("AK00", &cb).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        app.advance(15_000);
        let res = refresh(&app, &token).await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    // 37 000 s after the login: past the grant's end, though the token itself is 7 000 s old.
    app.advance(7_000);
    let res = refresh(&app, &token).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_of(res).await, "invalid_grant");
}

// Issue 9, defect 14 (IdP part).

#[tokio::test]
async fn an_id_token_hint_of_another_session_of_the_same_person_gets_the_confirmation_page() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let first = app.portal_tokens("AK00", &cb).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same person in a second browser: another session, another `sid`.
    let second = TestApp::sharing(&app);
    let cb = second
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let own = second.portal_tokens("AK00", &cb).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(jwt_claims(&first)["sid"], jwt_claims(&own)["sid"]);

    let logout = |hint: String| {
        second
            .browser
            .get(second.url("/AK00/logout"))
            .query(&[
                ("id_token_hint", hint.as_str()),
                ("client_id", "portal"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
            ])
            .send()
    };
    let res = logout(first).await.unwrap();
    assert_eq!(res.status(), 200, "the confirmation page, not a logout");
    assert!(res.text().await.unwrap().contains("name=\"confirm\""));
    let mut silent = portal_query("openid");
    silent.push(("prompt", "none"));
    let to = location(&authorize(&second, &silent).await);
    assert!(query_param(&to, "code").is_some(), "still logged in: {to}");

    // The hint of this very session logs out at once.
    let res = logout(own).await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:8090/");
    let to = location(&authorize(&second, &silent).await);
    assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
}

// Issue 9, defect 20.

#[tokio::test]
async fn userinfo_without_any_token_is_401_with_a_bare_bearer_challenge() {
    let app = spawn_app().await;
    for res in [
        app.api.get(app.url("/AK00/userinfo")).send().await.unwrap(),
        app.api
            .post(app.url("/AK00/userinfo"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()["www-authenticate"].to_str().unwrap(),
            "Bearer realm=\"connect\""
        );
    }
}

// Audit: logout, the sessions and grants it ends, and a reused refresh token.

#[tokio::test]
async fn logout_and_a_reused_refresh_token_are_in_the_audit_trail_without_secrets() {
    let app = spawn_app().await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_query("openid"), "anna@example.ch")
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, first).await.status(), 200);
    assert_eq!(refresh(&app, first).await.status(), 400, "reused");
    let res = app
        .browser
        .get(app.url("/AK00/logout"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let events = app
        .state
        .audit
        .read(&realm("AK00"), Some(&sub), 0)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["refresh_token_reused", "logout", "sessions_ended"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let logout = events.iter().find(|e| e["kind"] == "logout").unwrap();
    assert_eq!(logout["client"], "portal");
    assert!(logout["addr"].is_string());
    let text = serde_json::to_string(&events).unwrap();
    for secret in [first, tokens["access_token"].as_str().unwrap()] {
        assert!(!text.contains(secret), "a token in the audit trail");
    }
}
