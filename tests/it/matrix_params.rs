//! Matrix, parameters: invalid UTF-8 (`%FF`) and repeated parameters at every form and
//! protocol endpoint that reads parameters get a clear 400, never a 500, and nothing is
//! stored; a body over `max_body_bytes` gets a 413 with a body that says so.

use connect::domain::Language;

use crate::{helpers::*, matrix_support::*};

/// The two bad forms of a body whose good form is `field=value`: the field as invalid
/// UTF-8, and the field twice.
fn bad_bodies(hidden: &str, field: &str, value: &str) -> Vec<(String, String)> {
    let v = encode(&[(field, value)]);
    vec![
        (
            format!("{field} as invalid UTF-8"),
            format!("{hidden}&{field}=%FF%FE"),
        ),
        (format!("{field} twice"), format!("{hidden}&{v}&{v}")),
    ]
}

/// Opens `page`, then posts each bad form of `field` to its form; each must be a 400 page.
async fn refuse_bad_forms(app: &TestApp, page: &str, field: &str, value: &str, extra: &str) {
    let res = app.get(&app.url(page)).await;
    assert_eq!(res.status(), 200, "GET {page}");
    let html = res.text().await.unwrap();
    let action = form_action(&html).expect("a form");
    let mut hidden = hidden_fields(&html);
    if !extra.is_empty() {
        hidden = format!("{hidden}&{extra}");
    }
    for (what, body) in bad_bodies(&hidden, field, value) {
        let res = post_raw(&app.browser, &app.url(&action), body).await;
        assert_bad_request_page(res, &format!("{page}: {what}")).await;
    }
}

/// Where a GET of the enrolment's `step` sends the browser (None: the page is shown).
async fn step_redirect(app: &TestApp, base: &str, step: &str) -> Option<String> {
    let res = app.get(&app.url(&format!("{base}/{step}"))).await;
    res.status().is_redirection().then(|| location(&res))
}

#[tokio::test]
async fn every_enrolment_step_refuses_invalid_utf8_and_repeated_fields_and_stays_where_it_was() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(1), Language::Fr).await;

    refuse_bad_forms(&app, "/AK00/register", "code", &code, "").await;
    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 303, "step 1");
    let base = location(&res).trim_end_matches("/email").to_owned();

    let mails = app.mail_outbox().len();
    refuse_bad_forms(
        &app,
        &format!("{base}/email"),
        "email",
        "anna@example.ch",
        "",
    )
    .await;
    assert_eq!(app.mail_outbox().len(), mails, "no mail sent");
    let res = app
        .fill(&format!("{base}/email"), &[("email", "anna@example.ch")])
        .await;
    assert_eq!(res.status(), 303, "step 2");
    let mail = app.mail_outbox().pop().expect("the mail");
    let mail_code = letter_code(&mail.text).expect("code in mail");

    refuse_bad_forms(&app, &format!("{base}/confirm"), "code", &mail_code, "").await;
    assert_eq!(
        step_redirect(&app, &base, "account").await,
        Some(format!("{base}/confirm")),
        "still at step 3"
    );
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", &mail_code)])
        .await;
    assert_eq!(res.status(), 303, "step 3 after the refusals");

    let names = "family_name=Muster&language=fr&terms=accept";
    refuse_bad_forms(
        &app,
        &format!("{base}/account"),
        "given_name",
        "Anna",
        names,
    )
    .await;
    assert_eq!(
        step_redirect(&app, &base, "password").await,
        Some(format!("{base}/account")),
        "still at step 4"
    );
    let res = app
        .fill(
            &format!("{base}/account"),
            &[
                ("given_name", "Anna"),
                ("family_name", "Muster"),
                ("language", "fr"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "step 4");

    let password = "Aare-Ufer-Spaziergang";
    refuse_bad_forms(
        &app,
        &format!("{base}/password"),
        "password",
        password,
        &encode(&[("confirm", password)]),
    )
    .await;
    assert_eq!(
        step_redirect(&app, &base, "phone").await,
        Some(format!("{base}/password")),
        "still at step 5"
    );
    let res = app
        .fill(
            &format!("{base}/password"),
            &[("password", password), ("confirm", password)],
        )
        .await;
    assert_eq!(res.status(), 303, "step 5");

    let sms = app.sms_outbox().len();
    refuse_bad_forms(&app, &format!("{base}/phone"), "phone", "079 123 45 67", "").await;
    assert_eq!(app.sms_outbox().len(), sms, "no SMS sent");
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", "079 123 45 67")])
        .await;
    assert_eq!(res.status(), 303, "step 6");
    let sms_code = app.last_sms_code();

    refuse_bad_forms(&app, &format!("{base}/sms"), "code", &sms_code, "").await;
    // The resend form carries only its hidden fields: send them twice, or undecodable.
    let html = app
        .get(&app.url(&format!("{base}/sms")))
        .await
        .text()
        .await
        .unwrap();
    let hidden = hidden_fields(&html);
    let resend = app.url(&format!("{base}/sms/resend"));
    for (what, body) in [
        ("twice", format!("{hidden}&{hidden}")),
        ("invalid UTF-8", format!("{hidden}&x=%FF")),
    ] {
        let res = post_raw(&app.browser, &resend, body).await;
        assert_bad_request_page(res, &format!("resend: {what}")).await;
    }
    let email: connect::domain::Email = "anna@example.ch".parse().unwrap();
    assert!(
        connect::storage::accounts::by_email(&app.state.db, &realm("AK00"), &email)
            .await
            .unwrap()
            .is_none(),
        "no account yet"
    );
    let res = app
        .fill(&format!("{base}/sms"), &[("code", &sms_code)])
        .await;
    assert_eq!(res.status(), 303, "step 7 after the refusals");
    assert!(
        connect::storage::accounts::by_email(&app.state.db, &realm("AK00"), &email)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn login_and_its_sms_step_refuse_invalid_utf8_and_repeated_fields_and_count_nothing() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let (_, challenge) = pkce();
    let q = portal_request(&challenge, &[]);
    let res = app
        .browser
        .get(app.url("/AK00/authorize"))
        .query(&q)
        .send()
        .await
        .unwrap();
    let login = location(&res);
    // Wrong passwords in bad forms: were they counted, the throttle would stop the good one.
    for _ in 0..8 {
        refuse_bad_forms(
            &app,
            &login,
            "email",
            "anna@example.ch",
            "password=wrong-password",
        )
        .await;
    }
    let res = app.get(&app.url(&login)).await;
    let html = res.text().await.unwrap();
    let res = app
        .submit_on(
            &html,
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303, "the password step is not throttled");
    let sms_step = location(&res);
    assert!(sms_step.starts_with("/AK00/login/sms"), "{sms_step}");
    let code = app.last_sms_code();
    for _ in 0..6 {
        refuse_bad_forms(&app, &sms_step, "code", "000000", "").await;
    }
    let html = app.get(&app.url(&sms_step)).await.text().await.unwrap();
    let hidden = hidden_fields(&html);
    for (what, body) in [
        ("twice", format!("{hidden}&{hidden}")),
        ("invalid UTF-8", format!("{hidden}&x=%FF")),
    ] {
        let res = post_raw(&app.browser, &app.url("/AK00/login/sms/resend"), body).await;
        assert_bad_request_page(res, &format!("resend: {what}")).await;
    }
    // The bad forms used none of the flow's code attempts.
    let res = app.submit_sms_code(&sms_step, &code).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(PORTAL_REDIRECT));
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_invalid_utf8_and_repeated_parameters() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let good = encode(
        &portal_request(&challenge, &[])
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let bad = [
        ("state as invalid UTF-8", format!("{good}&state=%FF")),
        ("nonce as invalid UTF-8", format!("{good}&nonce=a%C3%28")),
        (
            "client_id as invalid UTF-8",
            format!("{good}&x=1").replace("client_id=portal", "client_id=%FF"),
        ),
        ("scope twice", format!("{good}&scope=openid")),
        (
            "redirect_uri twice",
            format!("{good}&redirect_uri=https%3A%2F%2Fevil.example"),
        ),
        ("client_id twice", format!("{good}&client_id=mobile")),
        ("state twice", format!("{good}&state=a&state=b")),
    ];
    for (what, query) in &bad {
        let res = app.get(&app.url(&format!("/AK00/authorize?{query}"))).await;
        assert!(res.headers().get("location").is_none(), "GET {what}");
        assert_bad_request_page(res, &format!("GET {what}")).await;
        let res = post_raw(&app.browser, &app.url("/AK00/authorize"), query.clone()).await;
        assert!(res.headers().get("location").is_none(), "POST {what}");
        assert_bad_request_page(res, &format!("POST {what}")).await;
    }
    // The good request goes on: the checks above can fail.
    let res = app.get(&app.url(&format!("/AK00/authorize?{good}"))).await;
    assert_eq!(res.status(), 303);
    let res = post_raw(&app.browser, &app.url("/AK00/authorize"), good).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn token_introspection_revocation_and_userinfo_refuse_invalid_utf8_and_repeated_parameters() {
    let app = spawn_app().await;
    let token = cc_token(&app, "AK00", ("bench-cc", "bench-secret"), "documents:read").await;
    let t = encode(&[("token", &token)]);
    for path in ["/AK00/introspect", "/AK00/revoke"] {
        for (what, body) in [
            ("invalid UTF-8", "token=%FF%FE".to_owned()),
            ("token twice", format!("{t}&{t}")),
            (
                "token_type_hint as invalid UTF-8",
                format!("{t}&token_type_hint=%FF"),
            ),
            (
                "token_type_hint twice",
                format!("{t}&token_type_hint=access_token&token_type_hint=refresh_token"),
            ),
        ] {
            let res = app
                .api
                .post(app.url(path))
                .basic_auth("bench-cc", Some("bench-secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_oauth_error(res, 400, "invalid_request", &format!("{path}: {what}")).await;
        }
    }
    // The token was revoked by none of the refused requests.
    let intro = app.introspect("AK00", &token).await;
    assert_eq!(intro["active"], true);

    for (what, body) in [
        (
            "client_secret as invalid UTF-8",
            "grant_type=client_credentials&client_id=bench-cc&client_secret=%FF".to_owned(),
        ),
        (
            "client_id twice",
            "grant_type=client_credentials&client_id=bench-cc&client_id=bench-cc&client_secret=bench-secret"
                .to_owned(),
        ),
        (
            "code as invalid UTF-8",
            "grant_type=authorization_code&code=%FF&redirect_uri=x".to_owned(),
        ),
        (
            "refresh_token twice",
            "grant_type=refresh_token&refresh_token=a&refresh_token=b".to_owned(),
        ),
    ] {
        let res = post_raw(&app.api, &app.url("/AK00/token"), body).await;
        assert_oauth_error(res, 400, "invalid_request", &format!("token: {what}")).await;
    }

    for (what, body) in [
        ("invalid UTF-8", "access_token=%FF".to_owned()),
        (
            "twice",
            format!("access_token={token}&access_token={token}"),
        ),
    ] {
        let res = post_raw(&app.api, &app.url("/AK00/userinfo"), body).await;
        assert_eq!(res.status(), 400, "userinfo: {what}");
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_request", "userinfo: {what}");
    }
}

#[tokio::test]
async fn logout_refuses_invalid_utf8_and_repeated_parameters_and_keeps_the_session() {
    let app = spawn_app().await;
    anna_signed_in(&app).await;
    let page = app
        .get(&app.url("/AK00/logout"))
        .await
        .text()
        .await
        .unwrap();
    let confirm = encode(&[("confirm", &form_value(&page, "confirm").expect("confirm"))]);
    let target = encode(&[
        ("client_id", "portal"),
        ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
    ]);
    for (what, params) in [
        ("state as invalid UTF-8", format!("{target}&state=%FF")),
        (
            "ui_locales as invalid UTF-8",
            format!("{target}&ui_locales=%C3%28"),
        ),
        ("client_id twice", format!("{target}&client_id=mobile")),
        (
            "post_logout_redirect_uri twice",
            format!("{target}&post_logout_redirect_uri=https%3A%2F%2Fevil.example"),
        ),
        ("state twice", format!("{target}&state=a&state=b")),
    ] {
        let res = app.get(&app.url(&format!("/AK00/logout?{params}"))).await;
        assert!(res.headers().get("location").is_none(), "GET {what}");
        assert_bad_request_page(res, &format!("GET {what}")).await;
        let body = format!("{confirm}&{params}");
        let res = post_raw(&app.browser, &app.url("/AK00/logout"), body).await;
        assert!(res.headers().get("location").is_none(), "POST {what}");
        assert_bad_request_page(res, &format!("POST {what}")).await;
    }
    let res = post_raw(
        &app.browser,
        &app.url("/AK00/logout"),
        format!("{confirm}&{confirm}"),
    )
    .await;
    assert_bad_request_page(res, "confirm twice").await;
    // The session is still there: the logout page still asks.
    let page = app
        .get(&app.url("/AK00/logout"))
        .await
        .text()
        .await
        .unwrap();
    assert!(form_value(&page, "confirm").is_some(), "the session stands");
}

#[tokio::test]
async fn the_portal_login_callback_and_logout_refuse_invalid_utf8_and_repeated_parameters() {
    let p = spawn_portal().await;
    for (what, path) in [
        ("return_to as invalid UTF-8", "/login?return_to=%FF"),
        (
            "return_to twice",
            "/login?return_to=%2F&return_to=%2Fdocuments",
        ),
        ("state as invalid UTF-8", "/callback?code=abc&state=%FF"),
        ("code as invalid UTF-8", "/callback?code=%FF&state=abc"),
        ("code twice", "/callback?code=a&code=b&state=abc"),
        ("state twice", "/callback?code=a&state=b&state=c"),
        (
            "error twice",
            "/callback?error=access_denied&error=x&state=b",
        ),
    ] {
        let res = p.idp.get(&p.url(path)).await;
        assert!(res.headers().get("location").is_none(), "{what}");
        assert_bad_request_page(res, what).await;
    }
    for (what, body) in [
        ("invalid UTF-8", "logout_token=%FF"),
        ("twice", "logout_token=a.b.c&logout_token=a.b.c"),
    ] {
        let res = post_raw(&p.idp.api, &p.url("/backchannel-logout"), body).await;
        assert_eq!(res.status(), 400, "back-channel logout: {what}");
    }
    for (what, body) in [("invalid UTF-8", "csrf=%FF"), ("twice", "csrf=a&csrf=b")] {
        let res = post_raw(&p.idp.browser, &p.url("/logout"), body).await;
        assert!(
            res.status().is_client_error(),
            "portal logout: {what}: {}",
            res.status()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Oversized bodies.

/// Every endpoint of the IdP that reads a body (enrolment steps with a made-up transaction:
/// the limit applies before anything else).
const IDP_POSTS: [&str; 22] = [
    "/AK00/authorize",
    "/AK00/token",
    "/AK00/introspect",
    "/AK00/revoke",
    "/AK00/userinfo",
    "/AK00/logout",
    "/AK00/login",
    "/AK00/login/sms",
    "/AK00/login/sms/resend",
    "/AK00/login/app",
    "/AK00/login/recovery-code",
    "/AK00/account/app",
    "/AK00/account/app/remove",
    "/AK00/account/recovery-codes",
    "/AK00/register",
    "/AK00/register/tx/email",
    "/AK00/register/tx/confirm",
    "/AK00/register/tx/account",
    "/AK00/register/tx/password",
    "/AK00/register/tx/phone",
    "/AK00/register/tx/sms",
    "/AK00/register/tx/sms/resend",
];

async fn assert_too_large(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 413, "{what}");
    let body = res.text().await.unwrap_or_default();
    assert!(!body.trim().is_empty(), "{what}: a body that says why");
}

#[tokio::test]
async fn every_form_and_protocol_endpoint_answers_413_to_a_body_over_the_limit() {
    let app = spawn_app().await;
    let limit = app.state.config.max_body_bytes;
    let big = format!("a={}", "b".repeat(limit));
    for path in IDP_POSTS {
        let res = post_raw(&app.api, &app.url(path), big.clone()).await;
        assert_too_large(res, path).await;
    }
    // Without a Content-Length, the limit cuts the stream as it is read.
    for path in [
        "/AK00/token",
        "/AK00/introspect",
        "/AK00/userinfo",
        "/AK00/login",
        "/AK00/register",
    ] {
        let (status, body) = post_chunked(&app.base, path, big.as_bytes()).await;
        assert_eq!(status, 413, "{path}, streamed");
        assert!(
            !body.trim().is_empty(),
            "{path}, streamed: a body that says why"
        );
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    let res = post_raw(
        &app.api,
        &app.url("/AK00/token"),
        format!("a={}", "b".repeat(limit - 64)),
    )
    .await;
    assert_ne!(res.status(), 413);
}

#[tokio::test]
async fn the_portal_answers_413_to_a_form_over_the_limit() {
    let p = spawn_portal().await;
    let limit = p.state.config.max_body_bytes;
    let big = format!("a={}", "b".repeat(limit));
    for path in ["/logout", "/backchannel-logout"] {
        let res = post_raw(&p.idp.api, &p.url(path), big.clone()).await;
        assert_too_large(res, path).await;
    }
}

/// A POST whose body comes in chunks, without a Content-Length (as a streaming client sends
/// it); the status and body of the answer. The server may answer before it has read it all.
async fn post_chunked(base: &str, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let (mut read, mut write) = stream.split();
    let writer = async {
        write.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(4096) {
            write
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            write.write_all(chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await?;
        Ok::<(), std::io::Error>(())
    };
    let mut answer = Vec::new();
    let reader = read.read_to_end(&mut answer);
    let (_, _) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("an answer within 10 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
