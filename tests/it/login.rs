//! The login page, the SSO session, and what `prompt`, `max_age`, `id_token_hint`,
//! languages and logout do with it.

use crate::helpers::*;

fn portal_request() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", PORTAL_CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

async fn start(app: &TestApp, q: &[(&str, &str)]) -> reqwest::Response {
    app.get_query("/AK00/authorize", q).await
}

async fn id_token(app: &TestApp, callback: &str) -> String {
    app.portal_tokens("AK00", callback).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn claims(jwt: &str) -> serde_json::Value {
    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(jwt)
        .unwrap()
        .claims
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let wrong = app
        .submit_login("/AK00/login", "anna@example.ch", "not-her-password")
        .await;
    let unknown = app
        .submit_login("/AK00/login", "nobody@example.ch", PASSWORD)
        .await;
    let malformed = app
        .submit_login("/AK00/login", "not an address", PASSWORD)
        .await;
    let (s1, s2, s3) = (wrong.status(), unknown.status(), malformed.status());
    let (t1, t2) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!((s1.as_u16(), s2.as_u16(), s3.as_u16()), (401, 401, 401));
    assert!(
        t1.contains("L&#x27;adresse e-mail ou le mot de passe est incorrect")
            || t1.contains("L'adresse e-mail ou le mot de passe est incorrect"),
        "{t1}"
    );
    let strip = |t: &str| {
        t.split("name=\"csrf\"")
            .next()
            .unwrap()
            .replace("anna@example.ch", "")
            .replace("nobody@example.ch", "")
    };
    assert_eq!(
        strip(&t1),
        strip(&t2),
        "same page apart from the typed address"
    );
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let _ = app.get(&app.url("/AK00/login")).await;
    let res = app
        .browser
        .post(app.url("/AK00/login"))
        .form(&[
            ("csrf", "forged"),
            ("email", "anna@example.ch"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let fresh = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = fresh
        .post(app.url("/AK00/login"))
        .form(&[
            ("csrf", "x"),
            ("email", "anna@example.ch"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_lax_and_answers_the_next_request() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let res = start(&app, &portal_request()).await;
    let login = location(&res);
    let res = app
        .submit_login_step(&login, "anna@example.ch", PASSWORD)
        .await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("connect_AK00="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let first = location(&app.resumed(res).await);
    let second = start(&app, &portal_request()).await;
    let to = location(&second);
    assert!(
        to.starts_with(PORTAL_REDIRECT),
        "SSO: no second login, got {to}"
    );
    let (a, b) = (
        claims(&id_token(&app, &first).await),
        claims(&id_token(&app, &to).await),
    );
    assert_eq!(a["sid"], b["sid"]);
    assert_eq!(a["auth_time"], b["auth_time"]);
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_again_and_move_auth_time() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let first = app
        .authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let t1 = claims(&id_token(&app, &first).await)["auth_time"]
        .as_i64()
        .unwrap();

    let mut q = portal_request();
    q.push(("prompt", "login"));
    let res = start(&app, &q).await;
    assert!(
        location(&res).starts_with("/AK00/login"),
        "prompt=login shows the form"
    );

    app.advance(5);
    let mut q = portal_request();
    q.push(("max_age", "1"));
    let res = start(&app, &q).await;
    let login = location(&res);
    assert!(
        login.starts_with("/AK00/login"),
        "max_age=1 after 5 s asks again"
    );
    let res = app.submit_login(&login, "anna@example.ch", PASSWORD).await;
    let t2 = claims(&id_token(&app, &location(&res)).await)["auth_time"]
        .as_i64()
        .unwrap();
    assert!(t2 >= t1 + 5, "auth_time moved: {t1} -> {t2}");

    let mut q = portal_request();
    q.push(("max_age", "3600"));
    assert!(
        location(&start(&app, &q).await).starts_with(PORTAL_REDIRECT),
        "a fresh enough session answers"
    );
}

#[tokio::test]
async fn id_token_hint_for_someone_else_with_prompt_none_is_login_required() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    app.create_account("AK00", "beat@example.ch").await;
    let anna = app
        .authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let anna_token = id_token(&app, &anna).await;

    let mut q = portal_request();
    q.push(("prompt", "none"));
    q.push(("id_token_hint", &anna_token));
    assert!(
        query_param(&location(&start(&app, &q).await), "code").is_some(),
        "same person: answered"
    );

    // Beat logs in on the same browser; a hint naming Anna must not get Beat's code.
    let mut q = portal_request();
    q.push(("prompt", "login"));
    let res = start(&app, &q).await;
    let res = app
        .submit_login(&location(&res), "beat@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    let mut q = portal_request();
    q.push(("prompt", "none"));
    q.push(("id_token_hint", &anna_token));
    let to = location(&start(&app, &q).await);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("login_required"),
        "{to}"
    );

    let mut q = portal_request();
    q.push(("id_token_hint", "not-a-jwt"));
    assert_eq!(
        query_param(&location(&start(&app, &q).await), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn the_page_speaks_the_negotiated_language() {
    let app = spawn_app().await;
    let mut q = portal_request();
    q.push(("ui_locales", "de-CH it"));
    let res = start(&app, &q).await;
    let html = app
        .get(&app.url(&location(&res)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("Anmelden"),
        "ui_locales"
    );

    let fresh = reqwest::Client::new();
    let html = fresh
        .get(app.url("/AK00/login"))
        .header("accept-language", "it-CH, de;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<html lang=\"it\">") && html.contains("Accedi"),
        "Accept-Language"
    );
    let html = fresh
        .get(app.url("/AK00/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<html lang=\"fr\">") && html.contains("Se connecter"),
        "realm default"
    );
    let html = fresh
        .get(app.url("/AK01/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<html lang=\"de\">"),
        "AK01 defaults to German"
    );

    let res = app.get(&app.url("/AK00/login?lang=en")).await;
    assert!(res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("connect_lang=en")));
    let html = app.get(&app.url("/AK00/login")).await.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">"),
        "the cookie remembers the switch"
    );
    for code in ["de", "fr", "it", "en"] {
        assert!(
            html.contains(&format!("lang={code}\"")),
            "switcher offers {code}"
        );
    }
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/AK00/login",
        "/AK00/authorize?client_id=x",
        "/nowhere",
        "/AK00/.well-known/openid-configuration",
    ] {
        let res = app.get(&app.url(path)).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'")
                && csp.contains("script-src 'self';")
                && !csp.contains("unsafe-inline")
                && !csp.contains("unsafe-eval"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    // The only script is connect's own file, and only where passkeys work: the test
    // server's address is no domain name (see `passkeys`).
    let html = app.get(&app.url("/AK00/login")).await.text().await.unwrap();
    assert!(!html.contains("<script"), "no script on pages");
}

#[tokio::test]
async fn logout_checks_the_post_logout_redirect_uri_and_ends_the_session() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let hint = id_token(&app, &cb).await;

    let bad = app
        .get(&app.url(&format!(
            "/AK00/logout?id_token_hint={hint}&post_logout_redirect_uri=http://evil.example/"
        )))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("location").is_none());
    assert!(
        query_param(&location(&start(&app, &portal_request()).await), "code").is_some(),
        "still logged in"
    );

    let res = app.get(&app.url(&format!("/AK00/logout?id_token_hint={hint}&post_logout_redirect_uri=http://127.0.0.1:8090/&state=bye"))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:8090/?state=bye");
    assert!(
        location(&start(&app, &portal_request()).await).starts_with("/AK00/login"),
        "session ended"
    );
}

#[tokio::test]
async fn logout_without_a_hint_asks_first() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    app.authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let page = app.get(&app.url("/AK00/logout")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        query_param(&location(&start(&app, &portal_request()).await), "code").is_some(),
        "a GET alone logs nobody out"
    );
    let confirm = form_value(&html, "confirm").unwrap();
    let res = app
        .browser
        .post(app.url("/AK00/logout"))
        .form(&[("confirm", confirm.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(location(&start(&app, &portal_request()).await).starts_with("/AK00/login"));
}

#[tokio::test]
async fn the_address_and_claims_parameter_are_served() {
    let app = spawn_app().await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let person = connect::storage::persons::Person {
        ahv: "756.1234.5678.97".parse().unwrap(),
        given_name: "Anna".into(),
        family_name: "Muster".into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: connect::domain::Language::Fr,
        address: connect::cli::parse_address("Rue du Marché 1, 3000 Bern"),
    };
    connect::storage::persons::add(&app.state.db, &realm("AK00"), &person, 0)
        .await
        .unwrap();
    let claims_req = r#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":null}}"#;
    let q = [
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid address"),
        ("claims", claims_req),
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
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["email"],
        "anna@example.ch",
        "claims.id_token"
    );
    for method in ["get", "post-header", "post-body"] {
        let token = body["access_token"].as_str().unwrap();
        let req = match method {
            "get" => app.api.get(app.url("/AK00/userinfo")).bearer_auth(token),
            "post-header" => app.api.post(app.url("/AK00/userinfo")).bearer_auth(token),
            _ => app
                .api
                .post(app.url("/AK00/userinfo"))
                .form(&[("access_token", token)]),
        };
        let info: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        assert_eq!(info["sub"], sub.as_str(), "{method}");
        assert_eq!(info["address"]["locality"], "Bern", "{method}");
        assert_eq!(info["address"]["postal_code"], "3000");
        assert_eq!(info["name"], "Anna Muster", "claims.userinfo");
        assert!(info.get("email").is_none(), "email scope not granted");
    }
}

#[tokio::test]
async fn two_submissions_of_one_login_flow_complete_it_once() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let res = start(&app, &portal_request()).await;
    let login = app.url(&location(&res));
    let html = app.get(&login).await.text().await.unwrap();
    let form = vec![
        ("csrf", form_value(&html, "csrf").unwrap()),
        ("flow", form_value(&html, "flow").unwrap()),
        ("email", "anna@example.ch".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let res = app
        .browser
        .post(app.url("/AK00/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let sms_page = app.url(&location(&res));
    assert!(sms_page.contains("/AK00/login/sms?flow="), "{sms_page}");
    let html = app.get(&sms_page).await.text().await.unwrap();
    let code = app.last_sms_code();
    let form = vec![
        ("csrf", form_value(&html, "csrf").unwrap()),
        ("flow", form_value(&html, "flow").unwrap()),
        ("code", code),
    ];
    let (a, b) = tokio::join!(
        app.browser
            .post(app.url("/AK00/login/sms"))
            .form(&form)
            .send(),
        app.browser
            .post(app.url("/AK00/login/sms"))
            .form(&form)
            .send()
    );
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(
        statuses,
        [303, 400],
        "one completes, the other finds the flow spent"
    );
}

#[tokio::test]
async fn a_login_form_with_missing_fields_gets_a_page_not_a_crash() {
    let app = spawn_app().await;
    let _ = app.get(&app.url("/AK00/login")).await;
    let res = app
        .browser
        .post(app.url("/AK00/login"))
        .form(&[("email", "anna@example.ch")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("<html lang=\"fr\">"));
}

#[tokio::test]
async fn the_resume_answers_once_and_only_in_the_browser_that_logged_in() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    app.create_account("AK00", "ben@example.ch").await;
    let login = location(&start(&app, &portal_request()).await);
    let id = login.split("flow=").nth(1).expect("interaction id");
    let resume = format!("/AK00/authorize/resume/{id}");
    // Before the login has finished it, the interaction cannot be resumed.
    assert_eq!(app.get(&app.url(&resume)).await.status(), 400, "unfinished");
    let unknown = app.get(&app.url("/AK00/authorize/resume/nothing")).await;
    assert_eq!(unknown.status(), 400, "unknown");

    let res = app
        .submit_login_step(&login, "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        resume,
        "the login sends the browser to resume"
    );
    // Another browser, without a session or with another person's, gets nothing, and does
    // not use the interaction up.
    let other = TestApp::sharing(&app);
    assert_eq!(other.get(&app.url(&resume)).await.status(), 400);
    let ben = other
        .submit_login("/AK00/login", "ben@example.ch", PASSWORD)
        .await;
    assert_eq!(location(&ben), "/AK00/account", "{:?}", ben.status());
    assert_eq!(other.get(&app.url(&resume)).await.status(), 400);

    let answer = app.get(&app.url(&resume)).await;
    assert_eq!(answer.status(), 303);
    let to = location(&answer);
    assert!(
        to.starts_with(PORTAL_REDIRECT) && to.contains("code="),
        "{to}"
    );
    assert_eq!(app.get(&app.url(&resume)).await.status(), 400, "once only");
}

#[tokio::test]
async fn an_interaction_expires_with_the_login_flow_lifetime() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let login = location(&start(&app, &portal_request()).await);
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    app.clock()
        .advance(realm.lifetimes.login_flow + std::time::Duration::from_secs(1));
    let page = app.get(&app.url(&login)).await;
    assert_eq!(page.status(), 400, "the login page says it is over");
}
