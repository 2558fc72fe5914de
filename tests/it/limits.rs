//! Every abuse limit of a realm, each with a low setting so the test reaches it: activation
//! code guesses per address, enrolments per code, SMS sends per number, per account and per
//! address, wrong SMS codes at login, and the growing delay and lock after wrong passwords.

use connect::domain::Language;

use crate::helpers::*;

async fn app_with(settings: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    spawn_with_realm(settings).await
}

fn is_limited(status: reqwest::StatusCode, page: &str) -> bool {
    status == 429 && page.contains("Trop de tentatives")
}

#[tokio::test]
async fn activation_code_guesses_are_limited_per_client_address() {
    let (app, _dir) = app_with(&[("code_guesses_per_address_per_hour", "3")]).await;
    let code = app.person_with_code("AK00", &ahv(20), Language::Fr).await;
    for _ in 0..3 {
        let res = app
            .fill("/AK00/register", &[("code", "ABCD EFGH JKMN")])
            .await;
        assert_eq!(res.status(), 400);
    }
    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    let status = res.status();
    let page = unescape(&res.text().await.unwrap());
    assert!(
        is_limited(status, &page),
        "{status}: even the right code waits: {page}"
    );
    assert!(page.contains("60 minutes"), "says when to try again");
}

#[tokio::test]
async fn one_code_starts_a_limited_number_of_enrolments_per_day() {
    let (app, _dir) = app_with(&[("enrolments_per_code_per_day", "2")]).await;
    let code = app.person_with_code("AK00", &ahv(21), Language::Fr).await;
    for _ in 0..2 {
        let res = app.fill("/AK00/register", &[("code", &code)]).await;
        assert_eq!(res.status(), 303);
    }
    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 429);
}

/// An account with a phone, logged in up to the SMS step; the path of that step.
async fn password_step(app: &TestApp, email: &str) -> String {
    let res = app
        .fill("/AK00/login", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 303, "password accepted");
    location(&res)
}

#[tokio::test]
async fn sms_sends_are_limited_per_number() {
    let (app, _dir) = app_with(&[("per_number_per_hour", "2")]).await;
    // Two accounts, one number (create_account gives every account the same mobile).
    app.create_account("AK00", "anna@example.ch").await;
    app.create_account("AK00", "bruno@example.ch").await;
    password_step(&app, "anna@example.ch").await;
    password_step(&app, "bruno@example.ch").await;
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    let status = res.status();
    assert!(
        is_limited(status, &unescape(&res.text().await.unwrap())),
        "{status}"
    );
    assert_eq!(app.sms_outbox().len(), 2, "no third SMS to the number");
}

#[tokio::test]
async fn sms_sends_are_limited_per_account() {
    let (app, _dir) =
        app_with(&[("per_account_per_hour", "2"), ("per_number_per_hour", "50")]).await;
    app.create_account("AK00", "anna@example.ch").await;
    for _ in 0..2 {
        password_step(&app, "anna@example.ch").await;
    }
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn sms_sends_are_limited_per_client_address_per_day() {
    let (app, _dir) = app_with(&[
        ("per_address_per_day", "3"),
        ("per_number_per_hour", "50"),
        ("per_number_per_day", "50"),
        ("per_account_per_hour", "50"),
        ("per_account_per_day", "50"),
        ("per_address_per_hour", "50"),
    ])
    .await;
    for name in ["a", "b", "c"] {
        app.create_account("AK00", &format!("{name}@example.ch"))
            .await;
        password_step(&app, &format!("{name}@example.ch")).await;
    }
    app.create_account("AK00", "d@example.ch").await;
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "d@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 429);
    assert!(
        unescape(&res.text().await.unwrap()).contains("1440 minutes"),
        "a day"
    );
}

#[tokio::test]
async fn wrong_sms_codes_at_login_end_the_login_after_the_limit() {
    let (app, _dir) = app_with(&[("code_attempts", "3")]).await;
    app.create_account("AK00", "anna@example.ch").await;
    let step = password_step(&app, "anna@example.ch").await;
    let good = app.last_sms_code();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let res = app.submit_sms_code(&step, wrong).await;
        assert_eq!(res.status(), 401);
    }
    let res = app.submit_sms_code(&step, &good).await;
    assert_eq!(
        res.status(),
        429,
        "the fourth try is refused, even with the right code"
    );
    let res = app.get(&app.url(&step)).await;
    assert_eq!(res.status(), 400, "the login is over");
}

#[tokio::test]
async fn wrong_passwords_slow_the_next_attempts_down_the_same_for_unknown_addresses() {
    let (app, _dir) = app_with(&[("free_password_failures", "2")]).await;
    app.create_account("AK00", "anna@example.ch").await;
    for email in ["anna@example.ch", "nobody@example.ch"] {
        for _ in 0..2 {
            let res = app
                .fill(
                    "/AK00/login",
                    &[("email", email), ("password", "wrong-wrong")],
                )
                .await;
            assert_eq!(res.status(), 401, "{email}");
        }
        // Two failures are free; the third attempt must wait 1 s, the fourth 2 s.
        let res = app
            .fill(
                "/AK00/login",
                &[("email", email), ("password", "wrong-wrong")],
            )
            .await;
        assert_eq!(res.status(), 429, "{email}");
        app.advance(1);
        let res = app
            .fill(
                "/AK00/login",
                &[("email", email), ("password", "wrong-wrong")],
            )
            .await;
        assert_eq!(res.status(), 401, "{email}");
        // Now even the right password waits.
        let res = app
            .fill("/AK00/login", &[("email", email), ("password", PASSWORD)])
            .await;
        let status = res.status();
        let page = unescape(&res.text().await.unwrap());
        assert_eq!(status, 429, "{email}");
        assert!(
            page.contains("réessayer dans 2 secondes"),
            "{email}: {page}"
        );
    }
    app.advance(3);
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        res.status(),
        303,
        "after the delay the right password works"
    );
    // A success forgets the failures.
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", "wrong-wrong")],
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn an_account_is_locked_after_the_realms_consecutive_failures_and_only_its_owner_is_told() {
    let (app, _dir) = app_with(&[
        ("lock_after_failures", "4"),
        ("free_password_failures", "10"),
    ])
    .await;
    app.create_account("AK00", "anna@example.ch").await;
    app.wrong_passwords("anna@example.ch", 4).await;
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", "wrong-wrong")],
        )
        .await;
    assert_eq!(
        res.status(),
        401,
        "a wrong password still looks like any failure"
    );
    let res = app
        .fill(
            "/AK00/login",
            &[("email", "anna@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(unescape(&res.text().await.unwrap()).contains("bloqué"));
}

#[tokio::test]
async fn the_lock_limit_cannot_exceed_one_hundred() {
    let dir = realm_dir_with(|t| set_key(&t, "lock_after_failures", "101"));
    let err = connect::realm::Realms::load_dir(dir.path()).unwrap_err();
    assert_eq!(err.key, "login.lock_after_failures");
}
