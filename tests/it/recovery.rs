//! Recovery without a phone call, as a person lives it: « Mot de passe oublié ? » (the address,
//! the mail's code, the SMS code, a new password) and « J'ai perdu mon téléphone » (e-mail and
//! password ask for a letter; the mailroom prints it; its code, e-mail and password register a
//! new number). With the refusals: wrong and expired codes, limits, unknown addresses that
//! learn nothing, and never a way in with one factor.

use std::time::Duration;

use connect::{
    domain::{Email, Language},
    storage::{accounts, letter_requests},
};

use crate::{
    admin::{add_person, pdf_text, Admin},
    helpers::*,
};

const ANNA: &str = "anna@example.ch";
const ANNA_PHONE: &str = "+41791234567";
const ANNA_AHV: &str = "756.1234.5678.97";
const NEW_PASSWORD: &str = "Aare-Ufer-Spaziergang";

/// The recovery mail goes out after the answer: wait (at most 15 s on real time, for a
/// loaded machine) until `n` mails have reached `to`, and return the latest.
async fn mail_to(app: &TestApp, to: &str, n: usize) -> OutboxMail {
    for _ in 0..750 {
        let mut mails: Vec<OutboxMail> = app
            .mail_outbox()
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        if mails.len() >= n {
            return mails.pop().expect("a mail");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no mail number {n} to {to}");
}

fn mails_to(app: &TestApp, to: &str) -> usize {
    app.mail_outbox().iter().filter(|m| m.to == to).count()
}

/// « Mot de passe oublié ? » with `email`: the path of the mail-code step it leads to.
async fn start_reset(app: &TestApp, email: &str) -> String {
    let res = app.fill("/AK00/password/forgot", &[("email", email)]).await;
    assert_eq!(res.status(), 303, "the address step always goes on");
    let to = location(&res);
    assert!(
        to.starts_with("/AK00/password/forgot/") && to.ends_with("/mail"),
        "{to}"
    );
    to
}

/// The mail's code for a reset just started for Anna (her `n`th mail).
async fn reset_code(app: &TestApp, mail_step: &str, n: usize) -> String {
    let mail = mail_to(app, ANNA, n).await;
    assert!(
        mail.subject.contains("nouveau mot de passe"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text.contains(&format!("{}{mail_step}", app.base)),
        "the mail links to the step:\n{}",
        mail.text
    );
    letter_code(&mail.text).expect("a code in the mail")
}

/// The path of a reset's step, from the path of its mail step.
fn step(mail_step: &str, name: &str) -> String {
    format!("{}{name}", mail_step.trim_end_matches("mail"))
}

async fn text(res: reqwest::Response) -> String {
    unescape(&res.text().await.expect("body"))
}

/// Anna's login still works with `password` (and the SMS code to her number).
async fn logs_in(app: &TestApp, password: &str) -> bool {
    let browser = TestApp::sharing(app);
    let res = browser.submit_login("/AK00/login", ANNA, password).await;
    res.status() == 303 && location(&res).ends_with("/AK00/account")
}

async fn audit_kinds(app: &TestApp, account: &str) -> Vec<String> {
    app.state
        .audit
        .read(&realm("AK00"), Some(account), 0)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_forgotten_password_is_replaced_after_the_mail_and_the_sms_code_and_everything_ends() {
    let app = spawn_app().await;
    let anna = app.create_account("AK00", ANNA).await;
    // Anna is logged in at the portal on her computer.
    let callback = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid offline_access"),
            ],
            ANNA,
        )
        .await;
    let tokens = app.portal_tokens("AK00", &callback).await;
    assert!(app.has_session().await);

    // On her phone's browser she forgot the password: the login page links to the recovery.
    let phone = TestApp::sharing(&app);
    let login = text(phone.get(&phone.url("/AK00/login")).await).await;
    assert!(login.contains("Mot de passe oublié ?"), "{login}");
    assert!(login.contains("href=\"/AK00/password/forgot\""), "{login}");
    let page = text(phone.get(&phone.url("/AK00/password/forgot")).await).await;
    assert!(page.contains("<h1>Mot de passe oublié</h1>"), "{page}");

    let mail_step = start_reset(&phone, ANNA).await;
    let code = reset_code(&phone, &mail_step, 1).await;
    let res = phone.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(res.status(), 303, "the mail's code proves the address");
    assert_eq!(location(&res), step(&mail_step, "sms"));
    let sms = text(phone.get(&phone.url(&step(&mail_step, "sms"))).await).await;
    assert!(
        sms.contains("+41 79 *** ** 67"),
        "the number, masked:\n{sms}"
    );
    assert!(sms.contains("J'ai perdu mon téléphone"), "{sms}");
    let (to, _) = phone.sms_outbox().pop().expect("an SMS");
    assert_eq!(to, ANNA_PHONE);
    let res = phone
        .fill(
            &step(&mail_step, "sms"),
            &[("code", &phone.last_sms_code())],
        )
        .await;
    assert_eq!(res.status(), 303, "the SMS code proves the second factor");
    assert_eq!(location(&res), step(&mail_step, "new"));

    // The realm's policy holds for the new password.
    let new = step(&mail_step, "new");
    let page = text(phone.get(&phone.url(&new)).await).await;
    assert!(page.contains("au moins 8 caractères"), "{page}");
    let res = phone
        .fill(&new, &[("password", "kurz"), ("confirm", "kurz")])
        .await;
    assert_eq!(res.status(), 400, "too short");
    let res = phone
        .fill(
            &new,
            &[("password", NEW_PASSWORD), ("confirm", "Aare-Ufer")],
        )
        .await;
    assert_eq!(res.status(), 400, "the confirmation differs");
    let res = phone
        .fill(
            &new,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303, "the new password is saved");
    assert_eq!(location(&res), "/AK00/password/forgot/done");
    let done = text(phone.get(&phone.url("/AK00/password/forgot/done")).await).await;
    assert!(done.contains("Votre mot de passe a été changé"), "{done}");
    assert!(done.contains("href=\"/AK00/login\""), "{done}");

    // Not logged in by the recovery: the login proves password and SMS again.
    assert!(!phone.has_session().await, "the recovery logs nobody in");
    // Every session and grant of the account ended; the person is told.
    assert!(!app.has_session().await, "the computer's session ended");
    app.assert_revoked(&tokens).await;
    let told = mail_to(&app, ANNA, 2).await;
    assert!(
        told.subject.contains("mot de passe a été changé"),
        "{}",
        told.subject
    );
    assert!(told.text.contains("031 390 23 25"), "{}", told.text);

    assert!(!logs_in(&app, PASSWORD).await, "the old password is gone");
    assert!(
        logs_in(&app, NEW_PASSWORD).await,
        "the new one works, with the SMS"
    );
    let kinds = audit_kinds(&app, &anna).await;
    for kind in [
        "recovery_started",
        "recovery_step_completed",
        "password_changed",
        "sessions_ended",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The recovery, once done, is over.
    let res = phone.get(&phone.url(&new)).await;
    assert_eq!(res.status(), 410);
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    let known = TestApp::sharing(&app);
    let unknown = TestApp::sharing(&app);

    let answer = |res: &reqwest::Response| {
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_owned())
            .collect();
        (res.status(), location(res).len(), cookies)
    };
    let page = known.get(&known.url("/AK00/password/forgot")).await;
    let html = page.text().await.unwrap();
    let res_known = known.submit_on(&html, &[("email", ANNA)]).await;
    let page = unknown.get(&unknown.url("/AK00/password/forgot")).await;
    let html = page.text().await.unwrap();
    let res_unknown = unknown
        .submit_on(&html, &[("email", "nobody.at.all@example.ch")])
        .await;
    assert_eq!(answer(&res_known), answer(&res_unknown));

    // The next page reads the same, but for its own address and token.
    let normal = |html: String, path: &str| {
        let csrf = form_value(&html, "csrf").unwrap();
        unescape(&html).replace(path, "PATH").replace(&csrf, "CSRF")
    };
    let (pk, pu) = (location(&res_known), location(&res_unknown));
    let page_known = normal(known.get(&known.url(&pk)).await.text().await.unwrap(), &pk);
    let page_unknown = normal(
        unknown.get(&unknown.url(&pu)).await.text().await.unwrap(),
        &pu,
    );
    assert_eq!(page_known, page_unknown);
    assert!(page_known.contains("Si un compte existe pour cette adresse"));

    mail_to(&app, ANNA, 1).await;
    assert_eq!(app.mail_outbox().len(), 1, "no mail for an unknown address");
    // Whatever code is tried, the unknown address's recovery never goes on.
    let res = unknown.fill(&pu, &[("code", "ABCD EFGH JKMN")]).await;
    assert_eq!(res.status(), 400);
    assert!(text(res).await.contains("Ce code n'est pas correct"));
}

#[tokio::test]
async fn wrong_and_expired_mail_codes_are_refused_and_too_many_end_the_recovery() {
    let app = spawn_app().await;
    let anna = app.create_account("AK00", ANNA).await;
    let mail_step = start_reset(&app, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;

    let res = app.fill(&mail_step, &[("code", "ABCD EFGH JKMN")]).await;
    assert_eq!(res.status(), 400);
    assert!(text(res).await.contains("Ce code n'est pas correct"));
    let res = app.fill(&mail_step, &[("code", "not a code")]).await;
    assert_eq!(res.status(), 400);

    // Past `email_code_minutes` (30) the right code is refused as expired.
    app.advance(31 * 60);
    let res = app.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(res.status(), 400);
    assert!(text(res).await.contains("Ce code a expiré"));

    // `code_attempts` (5) tries in all; the next ends the recovery, right code or not.
    app.fill(&mail_step, &[("code", "ABCD EFGH JKMN")]).await;
    app.fill(&mail_step, &[("code", "ABCD EFGH JKMN")]).await;
    let page = app.get(&app.url(&mail_step)).await;
    let html = page.text().await.unwrap();
    let res = app.submit_on(&html, &[("code", &code)]).await;
    assert_eq!(res.status(), 429);
    assert!(text(res).await.contains("Trop de codes erronés"));
    let res = app.get(&app.url(&mail_step)).await;
    assert_eq!(res.status(), 410, "the recovery is over");
    let kinds = audit_kinds(&app, &anna).await;
    assert!(
        kinds
            .iter()
            .filter(|k| *k == "recovery_step_refused")
            .count()
            >= 5
    );
    assert!(logs_in(&app, PASSWORD).await, "nothing changed");
}

#[tokio::test]
async fn wrong_expired_and_too_many_sms_codes_are_refused() {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    let mail_step = start_reset(&app, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;
    app.fill(&mail_step, &[("code", &code)]).await;
    let sms = step(&mail_step, "sms");
    let right = app.last_sms_code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    let res = app.fill(&sms, &[("code", wrong)]).await;
    assert_eq!(res.status(), 401);
    assert!(text(res).await.contains("Ce code n'est pas correct"));
    // A new code after the cooldown; the old one no longer counts.
    app.advance(61);
    let page = app.get(&app.url(&sms)).await.text().await.unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let res = app
        .browser
        .post(app.url(&format!("{sms}/resend")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(text(res).await.contains("Un nouveau code a été envoyé"));
    let newer = app.last_sms_code();
    let mut tries = 1;
    if newer != right {
        let res = app.fill(&sms, &[("code", &right)]).await;
        assert_eq!(res.status(), 401, "the first code was replaced");
        tries += 1;
    }
    // Past `code_seconds` (300) the code is refused as expired.
    app.advance(301);
    let res = app.fill(&sms, &[("code", &newer)]).await;
    assert_eq!(res.status(), 401);
    assert!(text(res).await.contains("Ce code a expiré"));
    tries += 1;
    // Five tries in all (`code_attempts`); the sixth ends the recovery.
    while tries < 5 {
        assert_eq!(app.fill(&sms, &[("code", wrong)]).await.status(), 401);
        tries += 1;
    }
    let res = app.fill(&sms, &[("code", &newer)]).await;
    assert_eq!(res.status(), 429);
    assert_eq!(app.get(&app.url(&sms)).await.status(), 410);
    assert!(logs_in(&app, PASSWORD).await, "nothing changed");
}

#[tokio::test]
async fn one_factor_alone_never_replaces_the_password() {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    let mail_step = start_reset(&app, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;
    let new = step(&mail_step, "new");

    // Before any code, and with the mail's code alone, the new password's page is not there.
    let res = app.get(&app.url(&new)).await;
    assert_eq!(location(&res), mail_step);
    app.fill(&mail_step, &[("code", &code)]).await;
    let res = app.get(&app.url(&new)).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), step(&mail_step, "sms"));
    // Posting the password form anyway changes nothing.
    let html = app
        .get(&app.url("/AK00/password/forgot"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = form_value(&html, "csrf").unwrap();
    let res = app
        .browser
        .post(app.url(&new))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), step(&mail_step, "sms"));
    assert!(logs_in(&app, PASSWORD).await, "the password is unchanged");

    // Another browser that knows the recovery's address (not its cookie) cannot go on.
    let other = TestApp::sharing(&app);
    let res = other.get(&other.url(&step(&mail_step, "sms"))).await;
    assert_eq!(res.status(), 403);
    assert!(text(res).await.contains("dans un autre navigateur"));
}

#[tokio::test]
async fn the_mail_link_moves_the_recovery_to_the_browser_that_proves_the_code() {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    let started = TestApp::sharing(&app);
    let mail_step = start_reset(&started, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;
    // The mail is opened on the phone: the phone continues, the first browser no longer can.
    let phone = TestApp::sharing(&app);
    let res = phone.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let sms = step(&mail_step, "sms");
    assert_eq!(phone.get(&phone.url(&sms)).await.status(), 200);
    assert_eq!(started.get(&started.url(&sms)).await.status(), 403);
}

#[tokio::test]
async fn an_account_without_a_mobile_number_is_sent_to_support() {
    let app = spawn_app().await;
    let hash = app
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let email: Email = "ben@example.ch".parse().unwrap();
    let new = accounts::NewAccount {
        realm: &realm("AK00"),
        email: &email,
        password_hash: &hash,
        given_name: "Ben",
        family_name: "Beispiel",
        ahv: None,
        phone: None,
        language: Language::Fr,
    };
    accounts::create(&app.state.db, &new, app.clock().unix())
        .await
        .unwrap();
    let mail_step = start_reset(&app, "ben@example.ch").await;
    let mail = mail_to(&app, "ben@example.ch", 1).await;
    let code = letter_code(&mail.text).unwrap();
    let res = app.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(res.status(), 200);
    let page = text(res).await;
    assert!(page.contains("Veuillez nous appeler"), "{page}");
    assert!(page.contains("031 390 23 25"), "{page}");
    assert_eq!(
        app.get(&app.url(&step(&mail_step, "new"))).await.status(),
        410
    );
}

#[tokio::test]
async fn recoveries_are_limited_per_client_address_and_per_e_mail_address() {
    let (app, _realms) = spawn_with_realm(&[("starts_per_email_per_day", "2")]).await;
    app.create_account("AK00", ANNA).await;
    for _ in 0..2 {
        start_reset(&app, ANNA).await;
        start_reset(&app, "nobody.at.all@example.ch").await;
    }
    // The third of a day is refused alike for a known and an unknown address.
    for email in [ANNA, "nobody.at.all@example.ch"] {
        let res = app.fill("/AK00/password/forgot", &[("email", email)]).await;
        assert_eq!(res.status(), 429, "{email}");
        assert!(res.headers().contains_key("retry-after"));
    }
    mail_to(&app, ANNA, 2).await;
    assert_eq!(mails_to(&app, ANNA), 2);

    // Ten starts an hour from one client address (the realm's default), whatever the address.
    let (app, _realms) = spawn_with_realm(&[("starts_per_address_per_hour", "3")]).await;
    for n in 0..3 {
        start_reset(&app, &format!("person{n}@example.ch")).await;
    }
    let res = app
        .fill("/AK00/password/forgot", &[("email", "person9@example.ch")])
        .await;
    assert_eq!(res.status(), 429);
}

/// Anna with an account, her number, and her entry in the register with a postal address.
async fn anna_in_the_register(app: &TestApp) -> String {
    let id = app.create_account("AK00", ANNA).await;
    add_person(app, ANNA_AHV, "Anna", "Muster", Language::Fr).await;
    id
}

/// « J'ai perdu mon téléphone » with Anna's e-mail and `password`.
async fn ask_for_a_letter(app: &TestApp, password: &str) -> reqwest::Response {
    app.fill(
        "/AK00/phone/lost",
        &[("email", ANNA), ("password", password)],
    )
    .await
}

#[tokio::test]
async fn a_lost_phone_is_replaced_with_the_code_of_a_requested_letter() {
    let app = spawn_app().await;
    let anna = anna_in_the_register(&app).await;
    let callback = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid offline_access"),
            ],
            ANNA,
        )
        .await;
    let tokens = app.portal_tokens("AK00", &callback).await;

    // The SMS step of the login links to « J'ai perdu mon téléphone ».
    let browser = TestApp::sharing(&app);
    let res = browser
        .fill("/AK00/login", &[("email", ANNA), ("password", PASSWORD)])
        .await;
    let sms = text(browser.get(&browser.url(&location(&res))).await).await;
    assert!(sms.contains("href=\"/AK00/phone/lost\""), "{sms}");

    let res = ask_for_a_letter(&browser, "wrong-wrong").await;
    assert_eq!(res.status(), 401, "a wrong password asks for nothing");
    assert!(letter_requests::waiting(&app.state.db, &realm("AK00"))
        .await
        .unwrap()
        .is_empty());
    let res = ask_for_a_letter(&browser, PASSWORD).await;
    assert_eq!(res.status(), 200);
    let page = text(res).await;
    assert!(page.contains("Votre demande est enregistrée"), "{page}");
    assert!(page.contains("5 jours"), "{page}");
    assert!(page.contains("031 390 23 25"), "{page}");
    assert!(
        !browser.has_session().await,
        "the password alone logs nobody in"
    );
    let told = mail_to(&app, ANNA, 1).await;
    assert!(
        told.subject.contains("Nouvelle lettre d'activation"),
        "{}",
        told.subject
    );
    // Asking again queues no second letter and sends no second mail.
    assert_eq!(ask_for_a_letter(&browser, PASSWORD).await.status(), 200);
    let waiting = letter_requests::waiting(&app.state.db, &realm("AK00"))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(mails_to(&app, ANNA), 1);

    // The mailroom prints the queue with the other letters.
    let admin = Admin::new(&app);
    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    assert!(out.starts_with("1 letter(s) written"), "{out}");
    assert!(out.contains("after a lost phone"), "{out}");
    let letter = pdf_text(&admin.path("batch").join("7561234567897.pdf"));
    assert!(letter.contains("nouveau numéro de portable"), "{letter}");
    let code: String = letter
        .split("est le: ")
        .nth(1)
        .map(|rest| rest.chars().take(14).collect())
        .expect("a code in the letter");
    assert!(letter_requests::waiting(&app.state.db, &realm("AK00"))
        .await
        .unwrap()
        .is_empty());
    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    assert!(
        out.starts_with("0 letter(s) written"),
        "printed once: {out}"
    );

    // The letter's code at the letter's link hands over to the new number.
    let res = browser.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let login = location(&res);
    assert!(
        login.starts_with("/AK00/phone/new/") && login.ends_with("/login"),
        "{login}"
    );
    let base = login.trim_end_matches("login").to_owned();
    assert_eq!(
        location(&browser.get(&browser.url(&format!("{base}number"))).await),
        login,
        "no number before e-mail and password"
    );
    let res = browser
        .fill(&login, &[("email", ANNA), ("password", "wrong-wrong")])
        .await;
    assert_eq!(res.status(), 401);
    // Another account's e-mail and password do not fit the letter.
    app.create_account("AK00", "other@example.ch").await;
    let res = browser
        .fill(
            &login,
            &[("email", "other@example.ch"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = browser
        .fill(&login, &[("email", ANNA), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 303);
    let number = format!("{base}number");
    assert_eq!(location(&res), number);
    let res = browser.fill(&number, &[("phone", "031 123 45 67")]).await;
    assert_eq!(res.status(), 400, "a landline");
    let res = browser.fill(&number, &[("phone", "079 765 43 21")]).await;
    assert_eq!(res.status(), 303);
    let sms = format!("{base}sms");
    assert_eq!(location(&res), sms);
    let (to, _) = app.sms_outbox().pop().unwrap();
    assert_eq!(to, "+41797654321");
    let res = browser.fill(&sms, &[("code", "000000x")]).await;
    assert_eq!(res.status(), 401);
    let res = browser.fill(&sms, &[("code", &app.last_sms_code())]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/phone/new/done");
    let done = text(browser.get(&browser.url("/AK00/phone/new/done")).await).await;
    assert!(
        done.contains("Votre nouveau numéro est enregistré"),
        "{done}"
    );
    assert!(
        !browser.has_session().await,
        "not logged in by the recovery"
    );

    // The old number is gone, every session and grant ended, the person told.
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.phone.as_deref(), Some("+41797654321"));
    assert!(account.phone_verified_at.is_some());
    assert!(!app.has_session().await);
    app.assert_revoked(&tokens).await;
    let told = mail_to(&app, ANNA, 2).await;
    assert!(told.text.contains("+41 79 *** ** 21"), "{}", told.text);
    // The next login's SMS goes to the new number.
    assert!(logs_in(&app, PASSWORD).await);
    assert_eq!(app.sms_outbox().pop().unwrap().0, "+41797654321");
    let kinds = audit_kinds(&app, &anna).await;
    for kind in [
        "letter_requested",
        "activation_code_issued",
        "activation_code_spent",
        "second_factors_removed",
        "phone_changed",
        "sessions_ended",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }

    // The code is spent.
    let res = browser.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 400);
    assert!(text(res).await.contains("déjà été utilisé"));
}

#[tokio::test]
async fn the_letter_request_page_says_the_realm_s_days_and_needs_a_postal_address() {
    let (app, _realms) = spawn_with_realm(&[("letter_days", "9")]).await;
    // Without an entry in the register, there is no address to write to.
    app.create_account("AK00", ANNA).await;
    let page = text(app.get(&app.url("/AK00/phone/lost")).await).await;
    assert!(page.contains("9 jours"), "{page}");
    let res = ask_for_a_letter(&app, PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert!(text(res).await.contains("pas d'adresse postale"));
    assert!(letter_requests::waiting(&app.state.db, &realm("AK00"))
        .await
        .unwrap()
        .is_empty());

    add_person(&app, ANNA_AHV, "Anna", "Muster", Language::Fr).await;
    let res = ask_for_a_letter(&app, PASSWORD).await;
    assert!(text(res).await.contains("9 jours"));
    let told = mail_to(&app, ANNA, 1).await;
    assert!(told.text.contains("9 jours"), "{}", told.text);
}

#[tokio::test]
async fn letter_requests_are_limited_per_account_and_throttled_like_the_login() {
    let (app, _realms) = spawn_with_realm(&[("letter_requests_per_account_per_day", "2")]).await;
    anna_in_the_register(&app).await;
    for _ in 0..2 {
        assert_eq!(ask_for_a_letter(&app, PASSWORD).await.status(), 200);
    }
    assert_eq!(ask_for_a_letter(&app, PASSWORD).await.status(), 429);

    // Wrong passwords slow the next ones down exactly as at the login (five free).
    let app = spawn_app().await;
    anna_in_the_register(&app).await;
    for _ in 0..5 {
        assert_eq!(ask_for_a_letter(&app, "wrong-wrong").await.status(), 401);
    }
    let res = ask_for_a_letter(&app, PASSWORD).await;
    assert_eq!(res.status(), 429, "the fifth failure earned a wait");
    assert!(text(res)
        .await
        .contains("Veuillez réessayer dans 1 secondes"));
    let res = app
        .fill("/AK00/login", &[("email", ANNA), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 429, "one throttle for both");
}

#[tokio::test]
async fn a_spent_or_other_code_does_not_open_the_new_number_path() {
    let app = spawn_app().await;
    anna_in_the_register(&app).await;
    // A code nobody issued.
    let res = app
        .fill("/AK00/register", &[("code", "ABCD EFGH JKMN")])
        .await;
    assert_eq!(res.status(), 400);
    // A requested letter, printed, whose code expired.
    ask_for_a_letter(&app, PASSWORD).await;
    let admin = Admin::new(&app);
    admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    let letter = pdf_text(&admin.path("batch").join("7561234567897.pdf"));
    let code: String = letter
        .split("est le: ")
        .nth(1)
        .map(|rest| rest.chars().take(14).collect())
        .unwrap();
    app.advance(31 * 86400);
    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 400);
    assert!(text(res).await.contains("a expiré"));
}

#[tokio::test]
async fn remove_second_factors_leaves_no_factor_and_no_session() {
    let app = spawn_app().await;
    let anna = app.create_account("AK00", ANNA).await;
    app.submit_login("/AK00/login", ANNA, PASSWORD).await;
    assert!(app.has_session().await);
    accounts::remove_second_factors(&app.state.db, &anna, app.clock().unix())
        .await
        .unwrap();
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.phone, None);
    assert!(!app.has_session().await);
}

#[tokio::test]
async fn every_recovery_page_speaks_the_four_languages() {
    let app = spawn_app().await;
    for (lang, title, lost) in [
        ("fr", "Mot de passe oublié", "J'ai perdu mon téléphone"),
        ("de", "Passwort vergessen", "Ich habe mein Telefon verloren"),
        ("it", "Password dimenticata", "Ho perso il telefono"),
        ("en", "Forgotten password", "I lost my phone"),
    ] {
        let page = text(
            app.get(&app.url(&format!("/AK00/password/forgot?lang={lang}")))
                .await,
        )
        .await;
        assert!(
            page.contains(&format!("<h1>{title}</h1>")),
            "{lang}: {page}"
        );
        assert!(page.contains(&format!("lang=\"{lang}\"")), "{lang}");
        let page = text(
            app.get(&app.url(&format!("/AK00/phone/lost?lang={lang}")))
                .await,
        )
        .await;
        assert!(page.contains(&format!("<h1>{lost}</h1>")), "{lang}: {page}");
    }
}

/// The code Anna's app (holding `secret`, base32) shows at `unix`.
fn app_code(secret: &str, unix: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).expect("RFC 6238");
    totp.generate(u64::try_from(unix).expect("after 1970"))
}

#[tokio::test]
async fn with_an_app_the_reset_asks_its_code_and_sends_no_sms_unless_asked() {
    let app = spawn_app().await;
    let anna = app.create_account("AK00", ANNA).await;
    let realm = realm("AK00");
    let secret = app
        .state
        .totp
        .begin(&realm, "sid-of-the-test", &anna)
        .await
        .expect("secret")
        .base32();
    let first = app_code(&secret, app.clock().unix());
    app.state
        .totp
        .confirm(&realm, "sid-of-the-test", &anna, &first)
        .await
        .expect("the app is registered");
    app.advance(30);

    let mail_step = start_reset(&app, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;
    let sms_before = app.sms_outbox().len();
    let res = app.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(
        location(&res),
        step(&mail_step, "app"),
        "the app by default"
    );
    assert_eq!(app.sms_outbox().len(), sms_before, "no SMS goes out");
    let page = text(app.get(&app.url(&step(&mail_step, "app"))).await).await;
    assert!(
        !page.contains(&step(&mail_step, "recovery-code")),
        "no recovery codes yet: {page}"
    );
    assert!(
        page.contains(&step(&mail_step, "sms")),
        "the SMS is offered: {page}"
    );

    // A wrong code, and the code the enrolment spent, are refused.
    let right = app_code(&secret, app.clock().unix());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = app.fill(&step(&mail_step, "app"), &[("code", wrong)]).await;
    assert_eq!(res.status(), 401);
    assert!(text(res).await.contains("Ce code n'est pas correct"));
    let res = app
        .fill(&step(&mail_step, "app"), &[("code", &first)])
        .await;
    assert_eq!(res.status(), 401, "a spent code");
    assert_eq!(
        location(&app.get(&app.url(&step(&mail_step, "new"))).await),
        step(&mail_step, "app"),
        "still no way to the new password"
    );

    let res = app
        .fill(&step(&mail_step, "app"), &[("code", &right)])
        .await;
    assert_eq!(location(&res), step(&mail_step, "new"));
    let res = app
        .fill(
            &step(&mail_step, "new"),
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(location(&res), "/AK00/password/forgot/done");
    let kinds = audit_kinds(&app, &anna).await;
    assert!(kinds.contains(&"password_changed".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a_recovery_code_proves_the_second_factor_of_a_reset_once() {
    let app = spawn_app().await;
    let anna = app.create_account("AK00", ANNA).await;
    let codes = app
        .state
        .recovery_codes
        .issue(&realm("AK00"), &anna)
        .await
        .expect("codes");

    let mail_step = start_reset(&app, ANNA).await;
    let code = reset_code(&app, &mail_step, 1).await;
    let res = app.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(
        location(&res),
        step(&mail_step, "sms"),
        "SMS stays the default"
    );
    let page = text(app.get(&app.url(&step(&mail_step, "sms"))).await).await;
    assert!(
        page.contains(&step(&mail_step, "recovery-code")),
        "a recovery code is offered: {page}"
    );
    let res = app
        .fill(
            &step(&mail_step, "recovery-code"),
            &[("code", "AAAAA-BBBBB")],
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = app
        .fill(
            &step(&mail_step, "recovery-code"),
            &[("code", &codes[0].to_string())],
        )
        .await;
    assert_eq!(location(&res), step(&mail_step, "new"));
    assert_eq!(
        app.state
            .recovery_codes
            .left(&realm("AK00"), &anna)
            .await
            .expect("left"),
        9,
        "the code is spent"
    );
}
