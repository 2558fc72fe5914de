//! Accounts under attack and after support's changes: parallel password guessing, the lock
//! that ends by itself, limits per client address, an unusable stored number, the hashing
//! queue, NFKC passwords, and what a lock ends.

use connect::{
    config::PasswordHashing,
    domain::{Email, Language, Password, PasswordContext},
    storage::accounts,
};

use crate::helpers::*;

async fn app_with(settings: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    spawn_with_realm(settings).await
}

fn portal_request() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email phone"),
        ("state", "st"),
    ]
}

/// `n` login POSTs with `password` for `email`, all at once, with one page's CSRF token.
async fn parallel_logins(app: &TestApp, email: &str, password: &str, n: usize) -> Vec<u16> {
    let html = app.get(&app.url("/AK00/login")).await.text().await.unwrap();
    let csrf = form_value(&html, "csrf").unwrap();
    let posts = (0..n).map(|_| {
        app.browser
            .post(app.url("/AK00/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
    });
    futures_util::future::join_all(posts)
        .await
        .into_iter()
        .map(|r| r.expect("POST login").status().as_u16())
        .collect()
}

async fn account(app: &TestApp, email: &str) -> accounts::Account {
    let email: Email = email.parse().unwrap();
    accounts::by_email(&app.state.db, &realm("AK00"), &email)
        .await
        .unwrap()
        .expect("account")
}

#[tokio::test]
async fn parallel_wrong_passwords_get_only_the_free_turns_and_lock_nothing() {
    let (app, _dir) = app_with(&[
        ("free_password_failures", "3"),
        ("lock_after_failures", "5"),
        ("password_attempts_per_address_per_hour", "1000"),
        ("password_attempts_per_address_per_day", "1000"),
    ])
    .await;
    app.create_account("AK00", "anna@example.ch").await;
    let statuses = parallel_logins(&app, "anna@example.ch", "wrong-wrong", 40).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let waited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (checked, waited),
        (3, 37),
        "only the free turns are checked: {statuses:?}"
    );
    let anna = account(&app, "anna@example.ch").await;
    assert!(
        anna.active,
        "forty parallel guesses do not lock the account"
    );

    // The designed pace: each further password waits 1 s, 2 s, 4 s … whatever the
    // concurrency, so the fifth failure (the lock) comes no sooner than 1 + 2 s later.
    app.advance(1);
    let statuses = parallel_logins(&app, "anna@example.ch", "wrong-wrong", 20).await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1);
    assert!(account(&app, "anna@example.ch").await.active);
    app.advance(2);
    let statuses = parallel_logins(&app, "anna@example.ch", "wrong-wrong", 20).await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1);
    assert!(
        !account(&app, "anna@example.ch").await.active,
        "the fifth checked failure locks"
    );
}

#[tokio::test]
async fn the_lock_ends_by_itself_after_lock_minutes_and_the_person_is_told() {
    let (app, _dir) = app_with(&[
        ("free_password_failures", "10"),
        ("lock_after_failures", "2"),
        ("lock_minutes", "120"),
    ])
    .await;
    app.create_account("AK00", "anna@example.ch").await;
    app.wrong_passwords("anna@example.ch", 2).await;
    let mails = app.mail_outbox();
    let mail = mails.last().expect("a mail about the lock");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("bloqué"), "{}", mail.subject);
    assert!(mail.text.contains("dans 2 heures"), "{}", mail.text);
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    assert!(mail.text.contains(&realm.support_phone), "{}", mail.text);
    assert!(mail.text.contains(&*realm.support_hours), "{}", mail.text);
    assert!(!mail.text.contains("wrong-wrong"));

    // The trail: each failure with its factor, the lock, and the sessions it ended.
    let anna = account(&app, "anna@example.ch").await;
    let trail = app
        .state
        .audit
        .read(&realm.id, Some(&anna.id), 0)
        .await
        .unwrap();
    let kinds: Vec<&str> = trail.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "login_failed",
            "login_failed",
            "account_locked",
            "sessions_ended"
        ],
        "{trail:?}"
    );
    assert_eq!(trail[0]["detail"]["factor"], "password");
    assert!(
        !format!("{trail:?}").contains("wrong-wrong"),
        "no password in the trail"
    );

    app.advance(119 * 60);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 403, "still locked within the two hours");
    app.advance(60);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "the lock has ended by itself");
    let anna = account(&app, "anna@example.ch").await;
    assert!(anna.active && anna.locked_until.is_none());
}

#[tokio::test]
async fn a_lock_ends_the_sessions_and_grants_of_the_account() {
    let (app, _dir) = app_with(&[
        ("free_password_failures", "10"),
        ("lock_after_failures", "2"),
    ])
    .await;
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    assert!(app.has_session().await, "logged in");

    let attacker = TestApp::sharing(&app);
    attacker.wrong_passwords("anna@example.ch", 2).await;
    assert!(!app.has_session().await, "the SSO session ended");
    app.assert_revoked(&tokens).await;
}

#[tokio::test]
async fn password_attempts_are_limited_per_client_address_across_accounts() {
    let (app, _dir) = app_with(&[("password_attempts_per_address_per_hour", "3")]).await;
    app.create_account("AK00", "dora@example.ch").await;
    for name in ["anna", "bruno", "chris"] {
        let res = app
            .fill(
                "/AK00/login",
                &[
                    ("email", &format!("{name}@example.ch")),
                    ("password", "wrong-wrong"),
                ],
            )
            .await;
        assert_eq!(res.status(), 401, "{name}");
    }
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "dora@example.ch"), ("password", PASSWORD)],
        )
        .await;
    let status = res.status();
    let page = unescape(&res.text().await.unwrap());
    assert_eq!(status, 429, "a fourth address from this client waits");
    assert!(page.contains("Trop de tentatives"), "{page}");
}

#[tokio::test]
async fn an_account_whose_stored_phone_no_longer_parses_is_sent_to_support() {
    let app = spawn_app().await;
    let id = app.create_account("AK00", "anna@example.ch").await;
    accounts::set_phone(&app.state.db, &id, "+41 12", app.clock().unix())
        .await
        .unwrap();
    let sent_before = app.sms_outbox().len();
    let res = app
        .submit_login("/AK00/login?lang=de", "anna@example.ch", PASSWORD)
        .await;
    let status = res.status();
    let page = unescape(&res.text().await.unwrap());
    assert_eq!(status, 403, "{page}");
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    assert!(page.contains("Bitte rufen Sie uns an"), "{page}");
    assert!(
        page.contains(&format!(
            "{} ({})",
            realm.support_phone, realm.support_hours
        )),
        "{page}"
    );
    assert!(!page.contains("login-phone"), "no key instead of words");
    assert_eq!(app.sms_outbox().len(), sent_before, "no SMS");
    assert!(!app.has_session().await, "no password-only session");
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_with_retry_after_and_a_page() {
    let app = spawn_with(|c| {
        c.password_hashing = PasswordHashing {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
            queue: 1,
        }
    })
    .await;
    let html = app.get(&app.url("/AK00/login")).await.text().await.unwrap();
    let csrf = form_value(&html, "csrf").unwrap();
    let posts = (0..12).map(|i| {
        let email = format!("nobody{i}@example.ch");
        let csrf = csrf.clone();
        let browser = app.browser.clone();
        let url = app.url("/AK00/login");
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email.as_str()),
                    ("password", "wrong-wrong"),
                ])
                .send()
                .await
                .expect("POST login")
        }
    });
    let responses = futures_util::future::join_all(posts).await;
    let mut busy = 0;
    for res in responses {
        match res.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(res.headers()["retry-after"], "5");
                let page = unescape(&res.text().await.unwrap());
                assert!(
                    page.contains("Trop de personnes se connectent en ce moment"),
                    "{page}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy >= 1,
        "with one running and one waiting, some are turned away"
    );
}

/// An account whose password was set the way enrolment sets it (NFKC-normalised).
async fn account_with_password(app: &TestApp, email: &str, password: &str) {
    let realm_id = realm("AK00");
    let policy = app.state.realms.get(&realm_id).unwrap().password_policy;
    let password = Password::new(password, &policy, &PasswordContext::default()).unwrap();
    let hash = app
        .state
        .passwords
        .hash(password.expose().to_owned().into())
        .await
        .unwrap();
    let email: Email = email.parse().unwrap();
    let new = accounts::NewAccount {
        realm: &realm_id,
        email: &email,
        password_hash: &hash,
        given_name: "Zoé",
        family_name: "Muster",
        ahv: None,
        phone: Some("+41791234567"),
        language: Language::Fr,
    };
    accounts::create(&app.state.db, &new, app.clock().unix())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_password_logs_in_in_its_composed_and_decomposed_forms() {
    let app = spawn_app().await;
    let composed = "Caf\u{e9}-Bern-1950";
    let decomposed = "Cafe\u{301}-Bern-1950";
    account_with_password(&app, "a@example.ch", composed).await;
    account_with_password(&app, "b@example.ch", decomposed).await;
    for (email, typed) in [
        ("a@example.ch", decomposed),
        ("b@example.ch", composed),
        ("a@example.ch", "Ｃａｆé-Bern-1950"),
    ] {
        let browser = TestApp::sharing(&app);
        let res = browser.submit_login("/AK00/login", email, typed).await;
        assert_eq!(res.status(), 303, "{email} with {typed:?}");
    }
}

#[tokio::test]
async fn email_and_phone_verified_answer_from_when_each_was_proved() {
    let app = spawn_app().await;
    let id = app.create_account("AK00", "anna@example.ch").await;
    let anna = account(&app, "anna@example.ch").await;
    assert_eq!(
        (anna.email_verified_at, anna.phone_verified_at),
        (None, None),
        "support created it: nothing proved"
    );
    let cb = app
        .authorize_and_login("AK00", &portal_request(), "anna@example.ch")
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;
    let info: serde_json::Value = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "anna@example.ch");
    assert_eq!(info["email_verified"], false, "{info}");
    assert_eq!(
        info["phone_number_verified"], true,
        "the SMS code of the login proved the number: {info}"
    );

    // Support registers another number: unproved until an SMS code comes back from it.
    accounts::set_phone(&app.state.db, &id, "+41765554433", app.clock().unix())
        .await
        .unwrap();
    assert_eq!(
        account(&app, "anna@example.ch").await.phone_verified_at,
        None
    );
}
