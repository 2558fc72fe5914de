//! The authenticator app and recovery codes, as a person uses them: added from the account
//! page with a QR code and a first code, ten recovery codes shown once, then the login with
//! the app by default, an SMS on request, or a recovery code; and every refusal on the way
//! (wrong codes, a code used twice in its window, too many tries, old codes after a new set).
//! Time is the manual clock's: the tests move it from one 30-second step to the next.

use connect::storage::{recovery_codes, totp};

use crate::helpers::*;

const ANNA: &str = "anna@example.ch";

/// The code an app holding `secret` (base32, as the page shows it) shows at `unix`.
fn app_code(secret: &str, unix: i64) -> String {
    let compact: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = totp_rs::Secret::Encoded(compact)
        .to_bytes()
        .expect("the page shows base32");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).expect("RFC 6238");
    totp.generate(u64::try_from(unix).expect("after 1970"))
}

/// Moves the clock to the start of the next 30-second step: a new code.
fn next_step(app: &TestApp) {
    let now = app.clock().unix();
    app.advance(u64::try_from(30 - now.rem_euclid(30)).expect("positive"));
}

/// The text between `<code id="secret">` and `</code>`.
fn shown_secret(html: &str) -> String {
    let start = html
        .find("<code id=\"secret\">")
        .expect("the secret as text")
        + 18;
    let end = html[start..].find("</code>").expect("end of the secret") + start;
    html[start..end].to_owned()
}

/// The recovery codes listed on a page (`XXXXX-XXXXX` inside `<code>`).
fn listed_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .filter_map(|rest| rest.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

/// Anna with her account, logged in with password and SMS in this browser.
async fn anna_logged_in(app: &TestApp) -> String {
    let id = app.create_account("AK00", ANNA).await;
    let res = app.submit_login("/AK00/login", ANNA, PASSWORD).await;
    assert_eq!(location(&res), "/AK00/account", "logged in");
    id
}

/// Adds an app from the account page; returns its secret and the page that answered.
async fn add_app(app: &TestApp) -> (String, reqwest::Response) {
    assert_eq!(
        app.step_up("app").await,
        "/AK00/account/app",
        "the gate opens the page"
    );
    let page = app.get(&app.url("/AK00/account/app")).await;
    assert_eq!(page.status(), 200, "the enrolment page");
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "the QR code is drawn in the page");
    assert!(
        !html.contains("src=\"http") && !html.contains("data:image"),
        "no image from elsewhere, none with the secret in it"
    );
    let secret = shown_secret(&html);
    let code = app_code(&secret, app.clock().unix());
    let res = app.submit_on(&html, &[("code", &code)]).await;
    (secret, res)
}

/// Logs in with password in this browser up to the second factor; the step's URL.
async fn password_step(app: &TestApp) -> String {
    let res = app.submit_login_step("/AK00/login", ANNA, PASSWORD).await;
    assert_eq!(res.status(), 303, "the password is right");
    location(&res)
}

#[tokio::test]
async fn a_person_adds_an_app_and_sees_ten_recovery_codes_once() {
    let app = spawn_app().await;
    let anna = anna_logged_in(&app).await;
    let (secret, res) = add_app(&app).await;
    assert_eq!(res.status(), 200, "the codes are shown in the answer");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("L&#x27;application d&#x27;authentification est ajoutée"),
        "{html}"
    );
    let codes = listed_codes(&html);
    assert_eq!(codes.len(), 10, "{html}");
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 11, "{code}");
        assert!(
            code.parse::<connect::domain::RecoveryCode>().is_ok(),
            "{code}"
        );
    }

    // Neither the secret nor a code is stored in clear.
    let realm = realm("AK00");
    let stored = totp::by_account(&app.state.db, &realm, &anna)
        .await
        .unwrap()
        .expect("the app is stored");
    let compact: String = secret.split_whitespace().collect();
    assert!(!stored.sealed_secret.contains(&compact));
    let unused = recovery_codes::unused(&app.state.db, &realm, &anna)
        .await
        .unwrap();
    assert_eq!(unused.len(), 10);
    for row in &unused {
        assert!(codes
            .iter()
            .all(|c| !row.code_hash.contains(&c.replace('-', ""))));
    }

    // The account pages tell what is registered, and never show the codes again.
    let page = app.get(&app.url("/AK00/account/app")).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("est enregistrée depuis le"), "{html}");
    assert!(!html.contains("<svg"), "no second enrolment");
    let page = app.get(&app.url("/AK00/account/recovery-codes")).await;
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Il vous reste 10 codes de secours sur 10"),
        "{html}"
    );
    assert!(listed_codes(&html).is_empty());

    let mail = app.mail_outbox().pop().expect("a mail");
    assert!(
        mail.subject
            .starts_with("Application d'authentification ajoutée"),
        "{}",
        mail.subject
    );
    assert!(!mail.text.contains(&compact));
    let events = app.state.audit.read(&realm, Some(&anna), 0).await.unwrap();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"app_added"), "{kinds:?}");
    assert!(kinds.contains(&"recovery_codes_issued"), "{kinds:?}");
}

#[tokio::test]
async fn a_wrong_first_code_adds_no_app_and_the_same_secret_stays_on_the_page() {
    let app = spawn_app().await;
    let anna = anna_logged_in(&app).await;
    app.step_up("app").await;
    let page = app.get(&app.url("/AK00/account/app")).await;
    let html = page.text().await.unwrap();
    let secret = shown_secret(&html);
    let right = app_code(&secret, app.clock().unix());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = app.submit_on(&html, &[("code", wrong)]).await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("Ce code n&#x27;est pas correct"), "{html}");
    assert_eq!(
        shown_secret(&html),
        secret,
        "a reload keeps what was scanned"
    );
    assert!(totp::by_account(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .is_none());
    // A code from another step than the one before, now or after is refused too.
    let old = app_code(&secret, app.clock().unix() - 90);
    if old != right {
        let res = app.submit_on(&html, &[("code", &old)]).await;
        assert_eq!(res.status(), 400);
    }
    let res = app.submit_on(&html, &[("code", &right)]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_app_is_the_default_at_login_and_no_sms_goes_out() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    let (secret, _) = add_app(&app).await;
    let sms_before = app.sms_outbox().len();

    let other = TestApp::sharing(&app);
    let start = other
        .get_query(
            "/AK00/authorize",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "st"),
                ("code_challenge", PORTAL_CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let res = other
        .submit_login_step(&location(&start), ANNA, PASSWORD)
        .await;
    let step = location(&res);
    assert!(step.starts_with("/AK00/login/app?flow="), "{step}");
    assert_eq!(app.sms_outbox().len(), sms_before, "no SMS");
    let page = other.get(&other.url(&step)).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Recevoir un code par SMS"), "{html}");
    assert!(html.contains("Utiliser un code de secours"), "{html}");

    // The code that confirmed the app is spent: the next step's code logs in.
    next_step(&app);
    let code = app_code(&secret, app.clock().unix());
    let res = other.fill(&step, &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let done = location(&other.resumed(res).await);
    assert!(done.starts_with(PORTAL_REDIRECT), "{done}");
    let tokens = other.portal_tokens("AK00", &done).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(id_token)
        .unwrap()
        .claims;
    assert_eq!(claims["acr"], "urn:connect:acr:password+sms");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn a_code_is_refused_a_second_time_in_its_window_and_the_next_one_works() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    let (secret, _) = add_app(&app).await;
    next_step(&app);
    let code = app_code(&secret, app.clock().unix());

    let first = TestApp::sharing(&app);
    let step = password_step(&first).await;
    let res = first.fill(&step, &[("code", &code)]).await;
    assert_eq!(location(&res), "/AK00/account");

    let second = TestApp::sharing(&app);
    let step = password_step(&second).await;
    let res = second.fill(&step, &[("code", &code)]).await;
    assert_eq!(res.status(), 401, "the same code again");
    let html = res.text().await.unwrap();
    assert!(html.contains("Ce code a déjà été utilisé"), "{html}");
    assert!(!second.has_session().await);
    // Ten seconds later the app still shows it: still refused.
    app.advance(10);
    let res = second.fill(&step, &[("code", &code)]).await;
    assert_eq!(res.status(), 401);

    next_step(&app);
    let res = second
        .fill(&step, &[("code", &app_code(&secret, app.clock().unix()))])
        .await;
    assert_eq!(location(&res), "/AK00/account");
    let events = app.state.audit.read(&realm("AK00"), None, 0).await.unwrap();
    assert!(events.iter().any(|e| e["kind"] == "login_failed"
        && e["detail"]["factor"] == "app"
        && e["detail"]["refused"] == "reused"));
}

#[tokio::test]
async fn wrong_app_codes_count_and_end_the_login() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    let (secret, _) = add_app(&app).await;
    let other = TestApp::sharing(&app);
    let step = password_step(&other).await;
    let right = app_code(&secret, app.clock().unix() + 30);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    // AK00 allows five wrong codes per login.
    for _ in 0..5 {
        let res = other.fill(&step, &[("code", wrong)]).await;
        assert_eq!(res.status(), 401);
    }
    let res = other.fill(&step, &[("code", &right)]).await;
    assert_eq!(res.status(), 429, "even the right code comes too late");
    let res = other.get(&other.url(&step)).await;
    assert_eq!(res.status(), 400, "the login is over");
    assert!(!other.has_session().await);
}

#[tokio::test]
async fn the_account_allows_no_more_app_codes_across_logins_than_sms_would() {
    // Two SMS per hour (the login's and the account page's proof) of five tries each: ten
    // codes an hour for the account, whatever the login.
    let (app, _realms) = spawn_with_realm(&[("per_account_per_hour", "2")]).await;
    anna_logged_in(&app).await;
    let (secret, _) = add_app(&app).await;
    for _ in 0..10 {
        let other = TestApp::sharing(&app);
        let step = password_step(&other).await;
        let res = other.fill(&step, &[("code", "000000")]).await;
        // It may be right by chance: then it is the account page.
        assert!(res.status() == 401 || res.status() == 303);
    }
    let other = TestApp::sharing(&app);
    let step = password_step(&other).await;
    next_step(&app);
    let res = other
        .fill(&step, &[("code", &app_code(&secret, app.clock().unix()))])
        .await;
    assert_eq!(res.status(), 429, "the account's hour is used up");
    let html = res.text().await.unwrap();
    assert!(html.contains("Trop de tentatives"), "{html}");
    assert!(!other.has_session().await);
    // Recovery codes draw on the same budget.
    let flow = query_param(&other.url(&step), "flow").unwrap();
    let recovery = format!("/AK00/login/recovery-code?flow={flow}");
    let res = other.fill(&recovery, &[("code", "AAAAA-AAAAA")]).await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn a_person_with_an_app_may_still_ask_for_an_sms() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    add_app(&app).await;
    let other = TestApp::sharing(&app);
    let step = password_step(&other).await;
    let page = other.get(&other.url(&step)).await;
    let html = page.text().await.unwrap();
    let sms_before = app.sms_outbox().len();
    // The second form of the page asks for the SMS.
    let ask = html
        .split("<form")
        .nth(2)
        .expect("the SMS button's form")
        .to_owned();
    let res = other.submit_on(&format!("<form{ask}"), &[]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Un code a été envoyé par SMS"), "{html}");
    assert!(html.contains("Utiliser l&#x27;application d&#x27;authentification"));
    assert_eq!(app.sms_outbox().len(), sms_before + 1);
    let flow = query_param(&other.url(&step), "flow").unwrap();
    let res = other
        .submit_sms_code_step(
            &format!("/AK00/login/sms?flow={flow}"),
            &app.last_sms_code(),
        )
        .await;
    assert_eq!(location(&res), "/AK00/account");
}

#[tokio::test]
async fn a_recovery_code_logs_in_once_and_the_person_is_told() {
    let app = spawn_app().await;
    let anna = anna_logged_in(&app).await;
    let (_, res) = add_app(&app).await;
    let codes = listed_codes(&res.text().await.unwrap());

    let other = TestApp::sharing(&app);
    let step = password_step(&other).await;
    let flow = query_param(&other.url(&step), "flow").unwrap();
    let recovery = format!("/AK00/login/recovery-code?flow={flow}");
    // Typed as a person would: lower case, a space instead of the dash.
    let typed = codes[3].to_lowercase().replace('-', " ");
    let res = other.fill(&recovery, &[("code", &typed)]).await;
    assert_eq!(location(&res), "/AK00/account");
    let mail = app.mail_outbox().pop().expect("a mail");
    assert!(
        mail.subject.starts_with("Code de secours utilisé"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Il vous en reste 9"), "{}", mail.text);

    let third = TestApp::sharing(&app);
    let step = password_step(&third).await;
    let flow = query_param(&third.url(&step), "flow").unwrap();
    let recovery = format!("/AK00/login/recovery-code?flow={flow}");
    let res = third.fill(&recovery, &[("code", &codes[3])]).await;
    assert_eq!(res.status(), 401, "a code works once");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Ce code de secours n&#x27;est pas correct"),
        "{html}"
    );
    let res = third.fill(&recovery, &[("code", "not a code")]).await;
    assert_eq!(res.status(), 401);
    let res = third.fill(&recovery, &[("code", &codes[4])]).await;
    assert_eq!(location(&res), "/AK00/account");

    let events = app
        .state
        .audit
        .read(&realm("AK00"), Some(&anna), 0)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "recovery_code_used")
            .count(),
        2
    );
    let left = app
        .state
        .recovery_codes
        .left(&realm("AK00"), &anna)
        .await
        .unwrap();
    assert_eq!(left, 8);
}

#[tokio::test]
async fn a_recovery_code_alone_never_logs_in() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    let (_, res) = add_app(&app).await;
    let codes = listed_codes(&res.text().await.unwrap());
    let stranger = TestApp::sharing(&app);
    // No password step, no login: a made-up flow is over before it began.
    let res = stranger
        .get(
            &stranger
                .url("/AK00/login/recovery-code?flow=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
        )
        .await;
    assert_eq!(res.status(), 400);
    let login = stranger.get(&stranger.url("/AK00/login")).await;
    let html = login.text().await.unwrap();
    let csrf = form_value(&html, "csrf").unwrap();
    let res = stranger
        .browser
        .post(stranger.url("/AK00/login/recovery-code"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("flow", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            ("code", codes[0].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!stranger.has_session().await);
    // A wrong password never reaches the second factor.
    let res = stranger
        .submit_login_step("/AK00/login", ANNA, "not-her-password")
        .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones_and_end_the_other_sessions() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    let (secret, res) = add_app(&app).await;
    let old = listed_codes(&res.text().await.unwrap());

    // Another device logs in with the app.
    let phone = TestApp::sharing(&app);
    let step = password_step(&phone).await;
    next_step(&app);
    let res = phone
        .fill(&step, &[("code", &app_code(&secret, app.clock().unix()))])
        .await;
    assert_eq!(location(&res), "/AK00/account");
    assert!(phone.has_session().await);

    app.step_up("recovery-codes").await;
    let res = app.fill("/AK00/account/recovery-codes", &[]).await;
    assert_eq!(res.status(), 200);
    let new = listed_codes(&res.text().await.unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    assert!(!phone.has_session().await, "the other device is logged out");
    assert!(app.has_session().await, "this browser stays logged in");
    let mail = app.mail_outbox().pop().unwrap();
    assert!(
        mail.subject.starts_with("Nouveaux codes de secours"),
        "{}",
        mail.subject
    );

    let other = TestApp::sharing(&app);
    let step = password_step(&other).await;
    let flow = query_param(&other.url(&step), "flow").unwrap();
    let recovery = format!("/AK00/login/recovery-code?flow={flow}");
    let res = other.fill(&recovery, &[("code", &old[0])]).await;
    assert_eq!(res.status(), 401, "an old code no longer works");
    let res = other.fill(&recovery, &[("code", &new[0])]).await;
    assert_eq!(location(&res), "/AK00/account");
}

#[tokio::test]
async fn removing_the_app_brings_the_sms_back_and_is_told() {
    // Four SMS: the login, two proofs at the account page, the login after.
    let (app, _realms) = spawn_with_realm(&[
        ("per_account_per_hour", "10"),
        ("per_number_per_hour", "10"),
    ])
    .await;
    let anna = anna_logged_in(&app).await;
    add_app(&app).await;
    app.step_up("app").await;
    let res = app.fill("/AK00/account/app", &[]).await;
    assert_eq!(location(&res), "/AK00/account?done=app-removed");
    let page = app.get(&app.url("/AK00/account?done=app-removed")).await;
    let html = page.text().await.unwrap();
    assert!(
        html.contains("L&#x27;application d&#x27;authentification est supprimée"),
        "{html}"
    );
    assert!(
        html.contains("href=\"&#x2f;AK00&#x2f;account/app\""),
        "a new app may be added: {html}"
    );
    assert!(
        !html.contains("<li>Application d&#x27;authentification</li>"),
        "the factors no longer list it: {html}"
    );
    assert!(app
        .state
        .totp
        .registered(&realm("AK00"), &anna)
        .await
        .unwrap()
        .is_none());
    let mail = app.mail_outbox().pop().unwrap();
    assert!(mail
        .subject
        .starts_with("Application d'authentification supprimée"));

    // The login asks for the SMS code again (the helper types it from the outbox).
    let sms_before = app.sms_outbox().len();
    let other = TestApp::sharing(&app);
    let res = other.submit_login_step("/AK00/login", ANNA, PASSWORD).await;
    assert_eq!(location(&res), "/AK00/account");
    assert_eq!(app.sms_outbox().len(), sms_before + 1, "an SMS went out");
}

#[tokio::test]
async fn the_pages_need_a_full_login_and_their_forms_a_csrf_token() {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    for path in ["/AK00/account/app", "/AK00/account/recovery-codes"] {
        let res = app.get(&app.url(path)).await;
        assert_eq!(location(&res), "/AK00/login", "{path}");
    }
    let res = app.submit_login("/AK00/login", ANNA, PASSWORD).await;
    assert_eq!(location(&res), "/AK00/account");
    for (path, fields) in [
        (
            "/AK00/account/app",
            &[("csrf", "forged"), ("code", "123456")][..],
        ),
        ("/AK00/account/app/remove", &[("csrf", "forged")][..]),
        ("/AK00/account/recovery-codes", &[("csrf", "forged")][..]),
    ] {
        let res = app
            .browser
            .post(app.url(path))
            .form(fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn the_pages_speak_every_language() {
    let app = spawn_app().await;
    anna_logged_in(&app).await;
    app.step_up("app").await;
    for (lang, title) in [
        ("fr", "Application d&#x27;authentification"),
        ("de", "Authenticator-App"),
        ("it", "App di autenticazione"),
        ("en", "Authenticator app"),
    ] {
        let res = app
            .get(&app.url(&format!("/AK00/account/app?lang={lang}")))
            .await;
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{lang}");
        assert!(html.contains(title), "{lang}: {html}");
        assert!(!html.contains("factors-"), "{lang}: a key, not a text");
    }
}
