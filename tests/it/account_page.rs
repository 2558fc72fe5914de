//! The person's own account page: the overview, the step-up gate, changing the password, the
//! mobile number, the e-mail address and the language, the sessions, the recent security
//! events, the data download and closing the account; each with its refusals.

use connect::{
    domain::{Email, Language},
    storage::{accounts, activation_codes, persons},
};

use crate::{helpers::*, matrix_support::*};

const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const NEW_PASSWORD: &str = "Zug-nach-Lausanne-1961";
const NEW_NUMBER: &str = "+41 78 765 43 21";

/// A server whose SMS limits leave room for the logins and proofs of one test; the tests of
/// the limits themselves set their own.
async fn app() -> (TestApp, tempfile::TempDir) {
    spawn_with_realm(&[
        ("per_number_per_hour", "50"),
        ("per_number_per_day", "100"),
        ("per_account_per_hour", "50"),
        ("per_account_per_day", "100"),
    ])
    .await
}

/// Anna has an account and is logged in in `app`'s browser (password and SMS code): the login
/// ends on her account page. Returns her account id.
async fn anna(app: &TestApp) -> String {
    let id = app.create_account("AK00", "anna@example.ch").await;
    log_in(app, "anna@example.ch", PASSWORD).await;
    id
}

async fn log_in(app: &TestApp, email: &str, password: &str) {
    let res = app.submit_login("/AK00/login", email, password).await;
    assert_eq!(res.status(), 303, "the login ends with a redirect");
    assert_eq!(location(&res), "/AK00/account");
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.get(&app.url(path)).await;
    let status = res.status().as_u16();
    (status, unescape(&res.text().await.expect("html")))
}

async fn account(app: &TestApp, id: &str) -> Option<accounts::Account> {
    accounts::by_id(&app.state.db, &realm("AK00"), id)
        .await
        .expect("db")
}

/// The confirmation page of the gate for `action`, submitted with `password` when it asks
/// for one; the answer to that POST.
async fn confirm_with(app: &TestApp, action: &str, password: &str) -> reqwest::Response {
    let (status, html) = page(app, &format!("/AK00/account/confirm?next={action}")).await;
    assert_eq!(status, 200, "the gate's page");
    let mut fields = vec![
        ("next", form_value(&html, "next").expect("next")),
        ("factor", form_value(&html, "factor").expect("factor")),
    ];
    if html.contains("name=\"password\"") {
        fields.push(("password", password.to_owned()));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.submit_on(&html, &fields).await
}

/// Passes the gate for `action` as a person would: the current password when asked, then
/// the SMS code. Returns where the gate sends the browser.
async fn step_up(app: &TestApp, action: &str) -> String {
    app.step_up(action).await
}

fn kinds(trail: &[serde_json::Value]) -> Vec<String> {
    trail
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn trail(app: &TestApp, account: &str) -> Vec<serde_json::Value> {
    app.state
        .audit
        .read(&realm("AK00"), Some(account), 0)
        .await
        .expect("audit")
}

#[tokio::test]
async fn the_overview_shows_what_the_idp_holds_masked_and_needs_a_full_login() {
    let (app, _dir) = app().await;
    let (status, _) = page(&app, "/AK00/account").await;
    assert_eq!(status, 303, "without a session: the login");
    let res = app.get(&app.url("/AK00/account")).await;
    assert_eq!(location(&res), "/AK00/login");

    anna(&app).await;
    // A relying party logged her in: the overview names it.
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "anna@example.ch",
        )
        .await;
    app.portal_tokens("AK00", &cb).await;
    let (status, html) = page(&app, "/AK00/account").await;
    assert_eq!(status, 200);
    for shown in [
        "Mon compte",
        "Anna Muster",
        "756.****.****.97",
        "anna@example.ch",
        "+41 79 *** ** 67",
        "Français",
        "Mot de passe",
        "Code par SMS",
        "Mes documents",
    ] {
        assert!(html.contains(shown), "the overview shows {shown}:\n{html}");
    }
    for hidden in [
        "756.1234.5678.97",
        "+41791234567",
        "79 123 45 67",
        "$argon2",
    ] {
        assert!(!html.contains(hidden), "the overview hides {hidden}");
    }
}

#[tokio::test]
async fn a_password_only_session_is_not_enough_and_an_account_without_a_number_is_sent_to_support()
{
    let (app, _dir) = app().await;
    let hash = app
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let email: Email = "carla.bernasconi-rossi@example.ch".parse().unwrap();
    accounts::create(
        &app.state.db,
        &accounts::NewAccount {
            realm: &realm("AK00"),
            email: &email,
            password_hash: &hash,
            given_name: "Carla",
            family_name: "Bernasconi",
            ahv: None,
            phone: None,
            language: Language::It,
        },
        app.clock().unix(),
    )
    .await
    .unwrap();
    log_in(&app, email.as_str(), PASSWORD).await;
    let (status, html) = page(&app, "/AK00/account").await;
    assert_eq!(
        status, 403,
        "a password alone does not open the account page"
    );
    assert!(
        html.contains("numero di cellulare"),
        "in her language:\n{html}"
    );
    let (status, _) = page(&app, "/AK00/account/confirm?next=password").await;
    assert_eq!(status, 403, "nor the gate");
}

#[tokio::test]
async fn the_gate_asks_the_current_password_and_a_fresh_sms_code_and_opens_the_action_for_minutes()
{
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    let res = app.get(&app.url("/AK00/account/password")).await;
    assert_eq!(res.status(), 303, "no fresh proof yet");
    assert_eq!(location(&res), "/AK00/account/confirm?next=password");
    let (status, _) = page(&app, "/AK00/account/confirm?next=nothing").await;
    assert_eq!(status, 400, "an unknown action");

    // A wrong current password: refused, audited, no SMS.
    let sms_before = app.sms_outbox().len();
    let res = confirm_with(&app, "password", "not-her-password").await;
    assert_eq!(res.status(), 401);
    let html = unescape(&res.text().await.unwrap());
    assert!(
        html.contains("Le mot de passe actuel n'est pas correct"),
        "{html}"
    );
    assert_eq!(
        app.sms_outbox().len(),
        sms_before,
        "no SMS for a wrong password"
    );

    // The right password sends a code to her number; a wrong code is refused.
    let res = confirm_with(&app, "password", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let code_page = location(&res);
    let (to, _) = app.sms_outbox().pop().unwrap();
    assert_eq!(to, "+41791234567");
    let (_, html) = page(&app, &code_page).await;
    assert!(html.contains("+41 79 *** ** 67"), "{html}");
    let res = app.fill(&code_page, &[("code", "000000")]).await;
    assert_eq!(res.status(), 401);
    let res = app
        .fill(&code_page, &[("code", &app.last_sms_code())])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account/password");
    let (status, html) = page(&app, "/AK00/account/password").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Nouveau mot de passe"));
    // The proof is spent with its flow: the code page is over.
    let (status, _) = page(&app, &code_page).await;
    assert_eq!(status, 400);

    // It opens this action only, and for a few minutes.
    let res = app.get(&app.url("/AK00/account/email")).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=email");
    app.advance(601);
    let res = app.get(&app.url("/AK00/account/password")).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=password");

    let events = kinds(&trail(&app, &id).await);
    assert!(events.contains(&"step_up_refused".to_owned()), "{events:?}");
    assert!(events.contains(&"step_up_passed".to_owned()), "{events:?}");
    let text = serde_json::to_string(&trail(&app, &id).await).unwrap();
    assert!(!text.contains("not-her-password") && !text.contains(PASSWORD));
}

#[tokio::test]
async fn the_gate_refuses_a_forged_form_an_expired_code_and_another_sessions_proof() {
    let (app, _dir) = app().await;
    anna(&app).await;
    let (_, html) = page(&app, "/AK00/account/confirm?next=password").await;
    let res = app
        .browser
        .post(app.url("/AK00/account/confirm"))
        .form(&[
            ("csrf", "forged"),
            ("next", "password"),
            ("factor", "sms"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "CSRF");
    assert!(form_value(&html, "csrf").is_some());

    let res = confirm_with(&app, "password", PASSWORD).await;
    let code_page = location(&res);
    let code = app.last_sms_code();
    // The same person in another browser cannot finish this browser's proof.
    let other = TestApp::sharing(&app);
    log_in(&other, "anna@example.ch", PASSWORD).await;
    let (status, _) = page(&other, &code_page).await;
    assert_eq!(status, 400, "another session's proof");

    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    app.advance(realm.sms.code_validity.as_secs() + 1);
    let res = app.fill(&code_page, &[("code", &code)]).await;
    assert_eq!(res.status(), 401);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("Ce code a expiré"), "{html}");
}

#[tokio::test]
async fn too_many_wrong_answers_at_the_gate_end_the_session() {
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    for _ in 0..realm.sms.code_attempts {
        let res = confirm_with(&app, "close", "wrong-wrong").await;
        assert_eq!(res.status(), 401);
    }
    let res = confirm_with(&app, "close", PASSWORD).await;
    assert_eq!(res.status(), 429, "even the right password, past the limit");
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("vous avez été déconnecté"), "{html}");
    let res = app.get(&app.url("/AK00/account")).await;
    assert_eq!(location(&res), "/AK00/login", "the session is over");
    let trail = trail(&app, &id).await;
    assert!(trail
        .iter()
        .any(|e| e["kind"] == "step_up_refused" && e["detail"]["refused"] == "too_many"));
}

#[tokio::test]
async fn a_new_password_ends_every_other_session_and_grant_and_the_person_is_told() {
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    // Another browser of hers, with tokens of the portal.
    let other = TestApp::sharing(&app);
    let cb = other
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "anna@example.ch",
        )
        .await;
    let tokens = other.portal_tokens("AK00", &cb).await;
    assert!(other.has_session().await);

    assert_eq!(step_up(&app, "password").await, "/AK00/account/password");
    for (password, confirm, message) in [
        ("kurz", "kurz", "au moins 8 caractères"),
        ("password1", "password1", "trop courant"),
        ("Anna-Muster-1950", "Anna-Muster-1950", "ni votre nom"),
        (NEW_PASSWORD, "Zug-nach-Genf-1961", "pas identiques"),
    ] {
        let res = app
            .fill(
                "/AK00/account/password",
                &[("password", password), ("confirm", confirm)],
            )
            .await;
        assert_eq!(res.status(), 400, "{password}");
        let html = unescape(&res.text().await.unwrap());
        assert!(html.contains(message), "{password}: {html}");
    }
    let res = app
        .fill(
            "/AK00/account/password",
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account?done=password");
    let (status, html) = page(&app, "/AK00/account?done=password").await;
    assert_eq!(status, 200, "this browser stays logged in");
    assert!(html.contains("Votre mot de passe a été changé"));

    assert!(
        !other.has_session().await,
        "the other browser is logged out"
    );
    app.assert_revoked(&tokens).await;
    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("mot de passe"), "{}", mail.subject);
    assert!(!mail.text.contains(NEW_PASSWORD));
    let support = app
        .state
        .realms
        .get(&realm("AK00"))
        .unwrap()
        .support_phone
        .clone();
    assert!(mail.text.contains(&support), "{}", mail.text);

    // The proof is spent; the old password no longer logs in, the new one does.
    let res = app.get(&app.url("/AK00/account/password")).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=password");
    let third = TestApp::sharing(&app);
    let res = third
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 401);
    log_in(&third, "anna@example.ch", NEW_PASSWORD).await;
    let events = kinds(&trail(&app, &id).await);
    assert!(
        events.contains(&"password_changed".to_owned()),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_new_mobile_number_is_proved_by_its_own_code_and_the_person_is_told() {
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    let other = TestApp::sharing(&app);
    log_in(&other, "anna@example.ch", PASSWORD).await;

    // The current factor alone: the gate does not ask for the password.
    let (_, html) = page(&app, "/AK00/account/confirm?next=phone").await;
    assert!(!html.contains("name=\"password\""), "{html}");
    assert_eq!(step_up(&app, "phone").await, "/AK00/account/phone");
    for (typed, message) in [
        ("12", "n'est pas valable"),
        ("031 390 23 25", "pas un numéro de portable"),
        ("+49 151 23456789", "ce pays"),
        ("079 123 45 67", "déjà le numéro"),
    ] {
        let res = app.fill("/AK00/account/phone", &[("phone", typed)]).await;
        assert_eq!(res.status(), 400, "{typed}");
        let html = unescape(&res.text().await.unwrap());
        assert!(html.contains(message), "{typed}: {html}");
    }
    let res = app
        .fill("/AK00/account/phone", &[("phone", NEW_NUMBER)])
        .await;
    assert_eq!(res.status(), 303);
    let code_page = location(&res);
    let (to, _) = app.sms_outbox().pop().unwrap();
    assert_eq!(to, "+41787654321", "the code goes to the new number");
    let (_, html) = page(&app, &code_page).await;
    assert!(html.contains("+41 78 *** ** 21"), "{html}");
    let res = app.fill(&code_page, &[("code", "000000")]).await;
    assert_eq!(res.status(), 401);
    // A new code waits for the cooldown.
    let (_, html) = page(&app, &code_page).await;
    let resend = app
        .browser
        .post(app.url("/AK00/account/phone/resend"))
        .form(&[
            ("csrf", form_value(&html, "csrf").unwrap()),
            ("flow", form_value(&html, "flow").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 429);
    let res = app
        .fill(&code_page, &[("code", &app.last_sms_code())])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account?done=phone");

    let anna = account(&app, &id).await.unwrap();
    assert_eq!(anna.phone.as_deref(), Some("+41787654321"));
    assert!(anna.phone_verified_at.is_some());
    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.text.contains("+41 78 *** ** 21"), "{}", mail.text);
    let res = other.get(&app.url("/AK00/account")).await;
    assert_eq!(location(&res), "/AK00/login", "the other session ended");
    // The next login's code goes to the new number.
    log_in(&other, "anna@example.ch", PASSWORD).await;
    assert_eq!(app.sms_outbox().pop().unwrap().0, "+41787654321");
    let trail = trail(&app, &id).await;
    let changed = trail
        .iter()
        .find(|e| e["kind"] == "phone_changed")
        .expect("audited");
    assert_eq!(changed["detail"]["phone"], "+41 78 *** ** 21");
}

#[tokio::test]
async fn wrong_codes_for_a_new_number_end_the_change_and_the_sms_limits_apply() {
    let (limited, _limited_dir) = spawn_with_realm(&[
        ("per_number_per_hour", "1"),
        ("per_account_per_hour", "50"),
        ("per_account_per_day", "100"),
    ])
    .await;
    anna(&limited).await;
    // Her own number had its one SMS of the hour at login: the gate's code is refused.
    let res = confirm_with(&limited, "phone", PASSWORD).await;
    assert_eq!(res.status(), 429, "the realm's limit per number");
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("Trop de tentatives"), "{html}");

    let (app, _dir) = app().await;
    anna(&app).await;
    step_up(&app, "phone").await;
    let res = app
        .fill("/AK00/account/phone", &[("phone", NEW_NUMBER)])
        .await;
    let code_page = location(&res);
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    for _ in 0..realm.sms.code_attempts {
        let res = app.fill(&code_page, &[("code", "000000")]).await;
        assert_eq!(res.status(), 401);
    }
    let (_, html) = page(&app, &code_page).await;
    let res = app
        .submit_on(&html, &[("code", &app.last_sms_code())])
        .await;
    assert_eq!(res.status(), 429, "past the limit even the right code");
    let (status, _) = page(&app, &code_page).await;
    assert_eq!(status, 400, "the change is over");
}

#[tokio::test]
async fn a_new_address_is_proved_by_its_code_and_the_old_one_is_told() {
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    let new = "anna.muster-bernasconi.1950@beispiel-gemeinde.ch";
    assert_eq!(step_up(&app, "email").await, "/AK00/account/email");
    for (typed, message) in [
        ("not an address", "n'est pas valable"),
        ("ANNA@example.ch", "déjà l'adresse"),
    ] {
        let res = app.fill("/AK00/account/email", &[("email", typed)]).await;
        assert_eq!(res.status(), 400, "{typed}");
        let html = unescape(&res.text().await.unwrap());
        assert!(html.contains(message), "{typed}: {html}");
    }
    let res = app.fill("/AK00/account/email", &[("email", new)]).await;
    assert_eq!(res.status(), 303);
    let code_page = location(&res);
    let mail = app.mail_outbox().pop().expect("the code's mail");
    assert_eq!(mail.to, new);
    let code = letter_code(&mail.text).expect("a code in the mail");
    let res = app.fill(&code_page, &[("code", "ABCD EFGH JKMN")]).await;
    assert_eq!(res.status(), 401);
    let res = app.fill(&code_page, &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account?done=email");

    assert_eq!(account(&app, &id).await.unwrap().email.as_str(), new);
    let told = app
        .mail_outbox()
        .into_iter()
        .find(|m| m.to == "anna@example.ch")
        .expect("the old address is told");
    assert!(
        told.text.contains("a***@beispiel-gemeinde.ch"),
        "{}",
        told.text
    );
    let support = app
        .state
        .realms
        .get(&realm("AK00"))
        .unwrap()
        .support_phone
        .clone();
    assert!(told.text.contains(&support), "{}", told.text);
    let (_, html) = page(&app, "/AK00/account").await;
    assert!(html.contains(new));
    // She logs in with the new address; the old one is nobody's.
    let other = TestApp::sharing(&app);
    let res = other
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 401);
    log_in(&other, new, PASSWORD).await;
}

#[tokio::test]
async fn an_address_in_use_gets_the_same_answer_and_its_owner_a_warning() {
    let (app, _dir) = app().await;
    anna(&app).await;
    app.create_account("AK00", "beat@example.ch").await;
    step_up(&app, "email").await;
    let free = app
        .fill("/AK00/account/email", &[("email", "anna.neu@example.ch")])
        .await;
    let taken = app
        .fill("/AK00/account/email", &[("email", "Beat@example.ch")])
        .await;
    assert_eq!(
        (free.status(), taken.status()),
        (
            reqwest::StatusCode::SEE_OTHER,
            reqwest::StatusCode::SEE_OTHER
        )
    );
    let taken_page = location(&taken);
    let free_page = location(&free);
    let (_, free_html) = page(&app, &free_page).await;
    let (_, taken_html) = page(&app, &taken_page).await;
    let flow = |p: &str| p.split("flow=").nth(1).unwrap().to_owned();
    let (free_flow, taken_flow) = (flow(&free_page), flow(&taken_page));
    let strip = |t: &str| {
        t.split("name=\"csrf\"")
            .next()
            .unwrap()
            .replace("anna.neu@example.ch", "")
            .replace("Beat@example.ch", "")
            .replace(&free_flow, "")
            .replace(&taken_flow, "")
    };
    assert_eq!(strip(&free_html), strip(&taken_html), "the same page");
    let mail = app.mail_outbox().pop().expect("the owner is told");
    assert_eq!(mail.to, "Beat@example.ch");
    assert!(
        letter_code(&mail.text).is_none(),
        "no code for a taken address"
    );
    let res = app.fill(&taken_page, &[("code", "ABCD EFGH JKMN")]).await;
    assert_eq!(res.status(), 401, "no code can match");
}

#[tokio::test]
async fn an_expired_code_for_a_new_address_is_refused() {
    let (app, _dir) = app().await;
    anna(&app).await;
    step_up(&app, "email").await;
    let res = app
        .fill("/AK00/account/email", &[("email", "anna.neu@example.ch")])
        .await;
    let code_page = location(&res);
    let code = letter_code(&app.mail_outbox().pop().unwrap().text).unwrap();
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    app.advance(realm.enrolment.email_code_validity.as_secs() + 1);
    let res = app.fill(&code_page, &[("code", &code)]).await;
    assert_eq!(res.status(), 401);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("Ce code a expiré"), "{html}");
}

#[tokio::test]
async fn the_language_is_the_accounts_and_pages_and_mails_follow_it() {
    let (app, _dir) = app().await;
    let id = anna(&app).await;
    let res = app.fill("/AK00/account", &[("language", "xx")]).await;
    assert_eq!(res.status(), 400);
    let res = app.fill("/AK00/account", &[("language", "de")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account?done=language");
    assert_eq!(account(&app, &id).await.unwrap().language, Language::De);
    let (_, html) = page(&app, "/AK00/account?done=language").await;
    assert!(html.contains("<html lang=\"de\">") && html.contains("Mein Konto"));
    assert!(html.contains("Die Sprache wurde gespeichert"));
    // Another browser, French by its own wish, still gets her pages in German.
    let other = TestApp::sharing(&app);
    other.get(&app.url("/AK00/login?lang=fr")).await;
    log_in(&other, "anna@example.ch", PASSWORD).await;
    let (_, html) = page(&other, "/AK00/account").await;
    assert!(html.contains("Mein Konto"), "{html}");
    // Her mails follow too.
    step_up(&app, "password").await;
    app.fill(
        "/AK00/account/password",
        &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
    )
    .await;
    let mail = app.mail_outbox().pop().unwrap();
    assert!(mail.subject.contains("Passwort"), "{}", mail.subject);
}

#[tokio::test]
async fn sessions_show_browser_and_network_and_the_others_can_be_ended() {
    let (app, _dir) = app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let firefox = TestApp::sharing_as(&app, FIREFOX_WINDOWS);
    let iphone = TestApp::sharing_as(&app, SAFARI_IPHONE);
    log_in(&firefox, "anna@example.ch", PASSWORD).await;
    log_in(&iphone, "anna@example.ch", PASSWORD).await;
    let (status, html) = page(&firefox, "/AK00/account/sessions").await;
    assert_eq!(status, 200);
    for shown in [
        "Firefox sous Windows",
        "Safari sous iPhone",
        "127.0.0.*",
        "Cet appareil",
    ] {
        assert!(html.contains(shown), "{shown}:\n{html}");
    }
    assert!(!html.contains("127.0.0.1"), "the address is cut");

    let res = firefox
        .browser
        .post(app.url("/AK00/account/sessions/others"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(iphone.get(&app.url("/AK00/account")).await.status() == 200);

    let res = firefox.fill("/AK00/account/sessions", &[]).await;
    assert_eq!(res.status(), 303);
    let res = iphone.get(&app.url("/AK00/account")).await;
    assert_eq!(location(&res), "/AK00/login", "the iPhone is logged out");
    let (status, html) = page(&firefox, "/AK00/account/sessions?done=1").await;
    assert_eq!(status, 200, "this one stays");
    assert!(html.contains("Vos autres sessions ont été fermées"));
    assert!(!html.contains("Safari"), "{html}");
}

#[tokio::test]
async fn recent_security_events_read_as_sentences() {
    let (app, _dir) = app().await;
    app.create_account("AK00", "anna@example.ch").await;
    app.wrong_passwords("anna@example.ch", 1).await;
    let firefox = TestApp::sharing_as(&app, FIREFOX_WINDOWS);
    log_in(&firefox, "anna@example.ch", PASSWORD).await;
    let res = confirm_with(&firefox, "password", "wrong-wrong").await;
    assert_eq!(res.status(), 401);
    let (status, html) = page(&firefox, "/AK00/account/events").await;
    assert_eq!(status, 200);
    for sentence in [
        "Connexion",
        "Tentative de connexion avec un mot de passe erroné",
        "Confirmation d'identité refusée",
        "Firefox sous Windows",
    ] {
        assert!(html.contains(sentence), "{sentence}:\n{html}");
    }
    for raw in ["login_failed", "login_succeeded", "step_up_refused"] {
        assert!(!html.contains(raw), "no raw kind {raw}");
    }
    let (_, html) = page(&firefox, "/AK00/account/events?lang=it").await;
    assert!(
        html.contains("Tentativo di accesso con una password errata"),
        "{html}"
    );
}

#[tokio::test]
async fn my_data_is_everything_the_idp_holds_and_no_secret() {
    let (app, _dir) = app().await;
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
    let id = anna(&app).await;
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "anna@example.ch",
        )
        .await;
    app.portal_tokens("AK00", &cb).await;
    let (status, html) = page(&app, "/AK00/account/data").await;
    assert_eq!(status, 200);
    assert!(html.contains("/AK00/account/data.json"));
    let res = app.get(&app.url("/AK00/account/data.json")).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = res.text().await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data["account"]["id"], id.as_str());
    assert_eq!(data["account"]["email"], "anna@example.ch");
    assert_eq!(data["account"]["ahv_number"], "756.1234.5678.97");
    assert_eq!(data["account"]["mobile_number"], "+41791234567");
    assert_eq!(data["register"]["birth_date"], "1950-03-14");
    assert_eq!(data["register"]["address"]["locality"], "Bern");
    assert_eq!(data["applications"][0]["client_id"], "portal");
    assert_eq!(data["applications"][0]["client_name"], "Mes documents");
    assert!(data["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["this_browser"] == true));
    assert!(data["security_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "login_succeeded"));
    let factors: Vec<&str> = data["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(factors, ["password", "sms"]);
    for secret in [
        "$argon2",
        "password_hash",
        "refresh_token",
        "code_hash",
        "token_hash",
        PASSWORD,
    ] {
        assert!(!text.contains(secret), "the download holds {secret}");
    }
    assert!(kinds(&trail(&app, &id).await).contains(&"data_downloaded".to_owned()));
    let fresh = TestApp::sharing(&app);
    let res = fresh.get(&app.url("/AK00/account/data.json")).await;
    assert_eq!(location(&res), "/AK00/login", "only with a session");
}

#[tokio::test]
async fn closing_the_account_deletes_it_keeps_the_register_entry_and_tells_the_person() {
    let (app, _dir) = app().await;
    let person = persons::Person {
        ahv: "756.1234.5678.97".parse().unwrap(),
        given_name: "Anna".into(),
        family_name: "Muster".into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: persons::PostalAddress::default(),
    };
    persons::add(&app.state.db, &realm("AK00"), &person, 0)
        .await
        .unwrap();
    let id = anna(&app).await;
    let other = TestApp::sharing(&app);
    let cb = other
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
            ],
            "anna@example.ch",
        )
        .await;
    let tokens = other.portal_tokens("AK00", &cb).await;

    // Without a fresh proof, closing goes through the gate first.
    let (_, overview) = page(&app, "/AK00/account").await;
    let res = app
        .browser
        .post(app.url("/AK00/account/close"))
        .form(&[("csrf", form_value(&overview, "csrf").unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/AK00/account/confirm?next=close");
    assert!(account(&app, &id).await.is_some());

    assert_eq!(step_up(&app, "close").await, "/AK00/account/close");
    let (_, html) = page(&app, "/AK00/account/close").await;
    assert!(
        html.contains("reste inchangée"),
        "the consequences are explained"
    );
    let res = app.fill("/AK00/account/close", &[]).await;
    assert_eq!(res.status(), 200);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("Votre compte est fermé"), "{html}");

    assert!(account(&app, &id).await.is_none(), "the account is deleted");
    let kept = persons::by_ahv(&app.state.db, &realm("AK00"), &person.ahv)
        .await
        .unwrap();
    assert!(kept.is_some(), "the register entry stays");
    let waiting = activation_codes::persons_waiting_for_a_code(
        &app.state.db,
        &realm("AK00"),
        app.clock().unix(),
    )
    .await
    .unwrap();
    assert!(waiting.is_empty(), "no letter goes out by itself");
    app.assert_revoked(&tokens).await;
    assert!(!other.has_session().await);
    let res = app.get(&app.url("/AK00/account")).await;
    assert_eq!(location(&res), "/AK00/login");
    let mail = app.mail_outbox().pop().unwrap();
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("fermé"), "{}", mail.subject);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 401, "nobody logs in with it");
    assert!(kinds(&trail(&app, &id).await).contains(&"account_closed".to_owned()));
}

#[tokio::test]
async fn markup_in_names_and_addresses_stays_inert_on_every_account_page() {
    let (app, _dir) = app().await;
    let hash = app
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let email: Email = "mark.up@example.ch".parse().unwrap();
    for payload in MARKUP {
        let id = accounts::create(
            &app.state.db,
            &accounts::NewAccount {
                realm: &realm("AK00"),
                email: &email,
                password_hash: &hash,
                given_name: payload,
                family_name: payload,
                ahv: None,
                phone: Some("+41791234567"),
                language: Language::Fr,
            },
            app.clock().unix(),
        )
        .await
        .unwrap();
        let browser = TestApp::sharing_as(&app, payload);
        log_in(&browser, email.as_str(), PASSWORD).await;
        for path in [
            "/AK00/account",
            "/AK00/account/sessions",
            "/AK00/account/events",
            "/AK00/account/data",
            "/AK00/account/confirm?next=email",
        ] {
            let res = browser.get(&app.url(path)).await;
            assert_eq!(res.status(), 200, "{path}");
            assert_inert(&res.text().await.unwrap(), &format!("{payload} at {path}"));
        }
        let one = accounts::by_id(&app.state.db, &realm("AK00"), &id)
            .await
            .unwrap()
            .unwrap();
        assert!(accounts::close(&app.state.db, &one, 0).await.unwrap());
    }
}

#[tokio::test]
async fn account_forms_refuse_invalid_utf8_and_repeated_fields() {
    let (app, _dir) = app().await;
    anna(&app).await;
    let (_, html) = page(&app, "/AK00/account").await;
    let hidden = hidden_fields(&html);
    for body in [
        format!("{hidden}&language=%FF%FE"),
        format!("{hidden}&language=de&language=it"),
    ] {
        let res = post_raw(&app.browser, &app.url("/AK00/account/language"), body).await;
        assert_bad_request_page(res, "language").await;
    }
    let (_, html) = page(&app, "/AK00/account/confirm?next=password").await;
    let hidden = hidden_fields(&html);
    for body in [
        format!("{hidden}&next=password&factor=sms&password=%FF%FE"),
        format!("{hidden}&next=password&next=close&factor=sms&password=x"),
    ] {
        let res = post_raw(&app.browser, &app.url("/AK00/account/confirm"), body).await;
        assert_bad_request_page(res, "confirm").await;
    }
    assert_eq!(app.sms_outbox().len(), 1, "only the login's SMS");
    let res = post_raw(
        &app.browser,
        &app.url("/AK00/account/confirm"),
        format!("{hidden}&next=password&factor=carrier-pigeon&password=x"),
    )
    .await;
    assert_bad_request_page(res, "an unknown factor").await;
}
