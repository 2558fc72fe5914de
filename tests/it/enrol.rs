//! Enrolment by activation letter, page by page as the user guide tells it, and each of its
//! rules: codes, the e-mail step, terms, the password policy, the mobile number, SMS codes,
//! racing completions and the abuse limits.

use connect::{domain::Language, flows::login::ACR_MFA, storage::accounts};

use crate::{helpers::*, receivers::*};

/// Where the test reads what was sent: the outbox, or the SMTP server and SMS gateway that
/// the test started.
enum Inbox {
    Outbox,
    Servers { smtp: SmtpServer, sms: SmsReceiver },
}

impl Inbox {
    fn last_mail(&self, app: &TestApp) -> OutboxMail {
        match self {
            Inbox::Outbox => app.mail_outbox().pop().expect("a mail in the outbox"),
            Inbox::Servers { smtp, .. } => {
                let received = smtp.received().pop().expect("a mail at the SMTP server");
                let msg = mail_parser::MessageParser::default()
                    .parse(&received.data)
                    .expect("a mail");
                OutboxMail {
                    to: received.to.first().cloned().unwrap_or_default(),
                    subject: msg.subject().unwrap_or_default().to_owned(),
                    text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                }
            }
        }
    }

    /// Number and text of the latest SMS.
    fn last_sms(&self, app: &TestApp) -> (String, String) {
        match self {
            Inbox::Outbox => app.sms_outbox().pop().expect("an SMS in the outbox"),
            Inbox::Servers { sms, .. } => {
                let req = sms.requests().pop().expect("an SMS at the gateway");
                let body: serde_json::Value = serde_json::from_str(&req.body).expect("JSON body");
                (
                    body["to"].as_str().unwrap().to_owned(),
                    body["text"].as_str().unwrap().to_owned(),
                )
            }
        }
    }
}

const OUTBOX: Inbox = Inbox::Outbox;

pub(crate) const EMAIL: &str = "anna.muster@example.ch";
pub(crate) const NEW_PASSWORD: &str = "Aare-Ufer-Spaziergang";
const MOBILE: &str = "079 123 45 67";
const MOBILE_E164: &str = "+41791234567";

/// Step 1: the letter's code. Returns the enrolment's base path `/AK00/register/<tx>`.
pub(crate) async fn enter_letter_code(app: &TestApp, start: &str, code: &str) -> String {
    let res = app.fill(start, &[("code", code)]).await;
    assert_eq!(res.status(), 303, "step 1 accepts the code");
    let to = location(&res);
    assert!(to.ends_with("/email"), "{to}");
    to.trim_end_matches("/email").to_owned()
}

/// Steps 2 and 3: the address, then the code of the mail sent to it.
pub(crate) async fn prove_email(app: &TestApp, base: &str, email: &str) {
    prove_email_via(app, &OUTBOX, base, email).await
}

async fn prove_email_via(app: &TestApp, inbox: &Inbox, base: &str, email: &str) {
    let res = app
        .fill(&format!("{base}/email"), &[("email", email)])
        .await;
    assert_eq!(res.status(), 303, "step 2");
    assert_eq!(location(&res), format!("{base}/confirm"));
    let mail = inbox.last_mail(app);
    assert_eq!(mail.to, email);
    assert!(
        mail.subject.contains("code de confirmation"),
        "{}",
        mail.subject
    );
    let code = letter_code(&mail.text).expect("a code in the mail");
    assert!(
        mail.text.contains(&app.url(&format!("{base}/confirm"))),
        "the mail links to step 3"
    );
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", &code)])
        .await;
    assert_eq!(res.status(), 303, "step 3");
    assert_eq!(location(&res), format!("{base}/account"));
}

/// Step 4 with the register's names, French, and the terms accepted.
async fn accept_terms(app: &TestApp, base: &str) {
    let fields = [
        ("given_name", "Anna"),
        ("family_name", "Muster"),
        ("language", "fr"),
        ("terms", "accept"),
    ];
    let res = app.fill(&format!("{base}/account"), &fields).await;
    assert_eq!(res.status(), 303, "step 4");
}

/// Steps 4 and 5: names, language and terms; then the password.
pub(crate) async fn open_account(app: &TestApp, base: &str) {
    let page = app
        .get(&app.url(&format!("{base}/account")))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(page.contains("Ouverture de compte"), "step 4 title");
    assert!(
        page.contains("value=\"Anna\""),
        "given name prefilled from the register"
    );
    assert!(page.contains(EMAIL), "the address is shown");
    let res = app
        .submit_on(
            &page,
            &[
                ("given_name", "Anna"),
                ("family_name", "Muster"),
                ("language", "fr"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "step 4");
    let res = app
        .fill(
            &format!("{base}/password"),
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303, "step 5");
    assert_eq!(location(&res), format!("{base}/phone"));
}

/// Steps 6 and 7: the mobile number, then the SMS code. Returns the answer to step 7.
pub(crate) async fn confirm_phone(app: &TestApp, base: &str) -> reqwest::Response {
    confirm_phone_via(app, &OUTBOX, base).await
}

async fn confirm_phone_via(app: &TestApp, inbox: &Inbox, base: &str) -> reqwest::Response {
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    assert_eq!(res.status(), 303, "step 6");
    let (to, text) = inbox.last_sms(app);
    assert_eq!(to, MOBILE_E164);
    let code = six_digits(&text).expect("a code in the SMS");
    app.fill(&format!("{base}/sms"), &[("code", &code)]).await
}

pub(crate) async fn enrol(app: &TestApp, code: &str) -> reqwest::Response {
    let base = enter_letter_code(app, "/AK00/register", code).await;
    prove_email(app, &base, EMAIL).await;
    open_account(app, &base).await;
    confirm_phone(app, &base).await
}

fn claims(jwt: &str) -> serde_json::Value {
    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(jwt)
        .unwrap()
        .claims
}

#[tokio::test]
async fn a_person_with_a_letter_enrols_then_logs_in_with_three_factors_at_a_relying_party() {
    // Mail goes through a real SMTP server, SMS through an HTTP gateway, both started here.
    let smtp = start_smtp(None, None);
    let (gateway, sms) = start_sms_receiver(&[]).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = spawn_with(|c| {
        c.smtp_url = Some(smtp_url.into());
        c.sms.url = Some(gateway);
    })
    .await;
    let inbox = Inbox::Servers { smtp, sms };
    let code = app.person_with_code("AK00", &ahv(1), Language::Fr).await;

    // The portal sends the person to the IdP; they have no account yet and follow the link.
    let res = app
        .browser
        .get(app.url("/AK00/authorize"))
        .query(&[
            ("client_id", "portal"),
            ("redirect_uri", PORTAL_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid phone"),
            ("state", "s1"),
            ("nonce", "n1"),
            ("code_challenge", PORTAL_CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let login = location(&res);
    let page = app
        .get(&app.url(&login))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    let flow = form_value(&page, "flow").expect("login flow");
    let register = format!("/AK00/register?flow={flow}");
    assert!(
        page.contains(&register),
        "the login page links to enrolment for this request"
    );

    let page = app
        .get(&app.url(&register))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(page.contains("Entrez le code d'accès"));
    assert!(page.contains("Étape 1 sur 7"));
    let base = enter_letter_code(&app, &register, &code.to_lowercase().replace(' ', "-")).await;
    prove_email_via(&app, &inbox, &base, EMAIL).await;
    open_account(&app, &base).await;
    let sms_page = app
        .get(&app.url(&format!("{base}/phone")))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(sms_page.contains("Numéro de portable"));
    let done = confirm_phone_via(&app, &inbox, &base).await;
    assert_eq!(done.status(), 303, "step 7 opens the account");
    let to = location(&done);
    assert_eq!(
        to,
        format!("/AK00/login?flow={flow}&enrolled=1"),
        "back to the login page of the request"
    );

    let account = accounts::by_email(&app.state.db, &realm("AK00"), &EMAIL.parse().unwrap())
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(
        account.ahv.as_ref().map(|a| a.as_str().to_owned()),
        Some(ahv(1))
    );
    assert_eq!(account.phone.as_deref(), Some(MOBILE_E164));
    assert_eq!(account.terms_version.as_deref(), Some("2026-01"));
    assert_eq!(account.terms_accepted_at, Some(app.clock().unix()));
    assert_eq!(account.language, Language::Fr);

    // The login: e-mail, password, then the SMS code; the portal gets its code.
    let page = app
        .get(&app.url(&to))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(page.contains("Votre compte est ouvert"));
    let res = app
        .submit_on(&page, &[("email", EMAIL), ("password", NEW_PASSWORD)])
        .await;
    assert_eq!(res.status(), 303);
    let sms_step = location(&res);
    let sms_page = app
        .get(&app.url(&sms_step))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(
        sms_page.contains("+41 79 *** ** 67"),
        "the number is shown masked"
    );
    let (_, text) = inbox.last_sms(&app);
    assert!(
        text.contains("Ne le communiquez à personne"),
        "the SMS in French: {text}"
    );
    let res = app
        .submit_sms_code(&sms_step, &six_digits(&text).unwrap())
        .await;
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(callback.starts_with(PORTAL_REDIRECT), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("s1"));
    let tokens = app.portal_tokens("AK00", &callback).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], account.id.as_str());
    assert_eq!(id["acr"], ACR_MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "sms", "mfa"]));
    assert_eq!(id["nonce"], "n1");
}

#[tokio::test]
async fn the_mail_link_continues_the_enrolment_on_another_device_which_then_owns_it() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(2), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    let res = app
        .fill(&format!("{base}/email"), &[("email", EMAIL)])
        .await;
    assert_eq!(res.status(), 303);
    let mail = app.mail_outbox().pop().unwrap();
    let mail_code = letter_code(&mail.text).unwrap();

    // A phone without the first browser's cookies opens the link from the mail.
    let phone = spawn_browser();
    let link = app.url(&format!("{base}/confirm"));
    let page = phone.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200, "the link opens step 3 anywhere");
    let html = page.text().await.map(|t| unescape(&t)).unwrap();
    let res = phone
        .post(&link)
        .form(&[
            ("csrf", form_value(&html, "csrf").unwrap()),
            ("code", mail_code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(
        phone
            .get(app.url(&format!("{base}/account")))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    );
    // The first browser no longer continues this enrolment.
    let first = app.get(&app.url(&format!("{base}/account"))).await;
    assert_eq!(first.status(), 403);
}

fn spawn_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn step1_error(app: &TestApp, code: &str) -> (u16, String) {
    let res = app.fill("/AK00/register", &[("code", code)]).await;
    let status = res.status().as_u16();
    (status, res.text().await.map(|t| unescape(&t)).unwrap())
}

#[tokio::test]
async fn mistyped_wrong_expired_revoked_and_used_codes_are_told_apart() {
    let app = spawn_app().await;
    let (status, page) = step1_error(&app, "ABCD EFGH").await;
    assert_eq!(status, 400);
    assert!(page.contains("12 caractères"), "mistyped: {page}");
    let (status, page) = step1_error(&app, "ABCD EFGH JKMN").await;
    assert_eq!(status, 400);
    assert!(page.contains("n'est pas correct"), "wrong");

    // Revoked: a newer code was issued for the same person.
    let first = app.person_with_code("AK00", &ahv(3), Language::Fr).await;
    let second = app.person_with_code("AK00", &ahv(3), Language::Fr).await;
    let (_, page) = step1_error(&app, &first).await;
    assert!(
        page.contains("un nouveau code a été émis"),
        "revoked: {page}"
    );

    // Expired: 30 days later.
    app.advance(30 * 86400 + 1);
    let (_, page) = step1_error(&app, &second).await;
    assert!(page.contains("a expiré"), "expired: {page}");

    // Used: after a complete enrolment.
    let third = app.person_with_code("AK00", &ahv(4), Language::Fr).await;
    assert_eq!(enrol(&app, &third).await.status(), 303);
    let (_, page) = step1_error(&app, &third).await;
    assert!(page.contains("déjà été utilisé"), "used: {page}");
    // And a person with an account gets no new code.
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let again = app
        .state
        .activation
        .issue(&realm, &ahv(4).parse().unwrap())
        .await;
    assert!(matches!(
        again,
        Err(connect::activation::ActivationError::AlreadyEnrolled)
    ));
}

#[tokio::test]
async fn five_wrong_mail_codes_end_the_enrolment_and_a_new_mail_does_not_reset_the_count() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(5), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    app.fill(&format!("{base}/email"), &[("email", EMAIL)])
        .await;
    for i in 0..3 {
        let res = app
            .fill(&format!("{base}/confirm"), &[("code", "ABCD EFGH JKMN")])
            .await;
        assert_eq!(res.status(), 400, "wrong code {i}");
    }
    // Asking for a new mail keeps the count of failures.
    let res = app
        .fill(&format!("{base}/email"), &[("email", EMAIL)])
        .await;
    assert_eq!(res.status(), 303);
    let good = letter_code(&app.mail_outbox().pop().unwrap().text).unwrap();
    for _ in 3..5 {
        let res = app
            .fill(&format!("{base}/confirm"), &[("code", "ABCD EFGH JKMN")])
            .await;
        assert_eq!(res.status(), 400);
    }
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", &good)])
        .await;
    assert_eq!(
        res.status(),
        429,
        "the sixth try is refused even with the right code"
    );
    let res = app.get(&app.url(&format!("{base}/confirm"))).await;
    assert_eq!(res.status(), 410, "the enrolment is over");
    // The letter's code still works for a new start.
    enter_letter_code(&app, "/AK00/register", &code).await;
}

#[tokio::test]
async fn an_address_with_an_account_gets_the_same_answer_and_its_owner_a_warning() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let code = app.person_with_code("AK00", &ahv(6), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    let taken = app
        .fill(&format!("{base}/email"), &[("email", "Anna@Example.ch")])
        .await;
    assert_eq!(taken.status(), 303);
    assert_eq!(
        location(&taken),
        format!("{base}/confirm"),
        "same page as for a new address"
    );
    let mail = app.mail_outbox().pop().unwrap();
    assert!(
        mail.to.eq_ignore_ascii_case("anna@example.ch"),
        "{}",
        mail.to
    );
    assert!(
        letter_code(&mail.text).is_none(),
        "no code for an address that has an account"
    );
    assert!(mail.text.contains("Un compte existe déjà"), "{}", mail.text);
    assert!(mail.text.contains(&app.url("/AK00/login")));
    // No code can prove it.
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", "ABCD EFGH JKMN")])
        .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn weak_common_personal_and_mismatched_passwords_are_refused_with_the_rule() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(7), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    prove_email(&app, &base, EMAIL).await;
    accept_terms(&app, &base).await;
    let page = app
        .get(&app.url(&format!("{base}/password")))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(
        page.contains("au moins 8 caractères"),
        "the page states the rule"
    );
    for (pw, confirm, expected) in [
        ("kurz12", "kurz12", "au moins 8 caractères"),
        ("password123", "password123", "trop courant"),
        ("Muster-Bern-1950", "Muster-Bern-1950", "ni votre nom"),
        ("anna.muster!x2", "anna.muster!x2", "ni votre nom"),
        (NEW_PASSWORD, "Aare-Ufer-Spaziergang!", "pas identiques"),
    ] {
        let res = app
            .fill(
                &format!("{base}/password"),
                &[("password", pw), ("confirm", confirm)],
            )
            .await;
        assert_eq!(res.status(), 400, "{pw}");
        let text = res.text().await.map(|t| unescape(&t)).unwrap();
        assert!(text.contains(expected), "{pw}: {expected}");
    }
    // A long passphrase with any characters, Unicode included, is fine.
    let pass = "Ünser Hüsli am Thunersee, 64 Zeichen sind erlaubt ✓";
    let res = app
        .fill(
            &format!("{base}/password"),
            &[("password", pass), ("confirm", pass)],
        )
        .await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn terms_must_be_accepted_and_names_given() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(8), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    prove_email(&app, &base, EMAIL).await;
    let res = app
        .fill(
            &format!("{base}/account"),
            &[
                ("given_name", "Anna"),
                ("family_name", "Muster"),
                ("language", "fr"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap()
        .contains("accepter les conditions"));
    let res = app
        .fill(
            &format!("{base}/account"),
            &[
                ("given_name", "  "),
                ("family_name", "Muster"),
                ("language", "fr"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    // Skipping ahead is not possible: the password step sends back to step 4.
    let res = app.get(&app.url(&format!("{base}/password"))).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{base}/account"));
    let terms = app
        .get(&app.url("/AK00/terms"))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    assert!(terms.contains("Version 2026-01"));
}

async fn at_phone_step(app: &TestApp, n: u32) -> String {
    let code = app.person_with_code("AK00", &ahv(n), Language::Fr).await;
    to_phone_step(app, &code, &format!("person{n}@example.ch")).await
}

/// Steps 1 to 5 with this letter's code and address; the enrolment's base path.
async fn to_phone_step(app: &TestApp, code: &str, email: &str) -> String {
    let base = enter_letter_code(app, "/AK00/register", code).await;
    prove_email(app, &base, email).await;
    accept_terms(app, &base).await;
    let password = [("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)];
    let res = app.fill(&format!("{base}/password"), &password).await;
    assert_eq!(res.status(), 303, "step 5");
    base
}

#[tokio::test]
async fn foreign_landline_and_malformed_numbers_are_refused() {
    let app = spawn_app().await;
    let base = at_phone_step(&app, 9).await;
    for (number, expected) in [
        ("+49 151 23456789", "ce pays"),
        ("031 390 23 25", "pas un numéro de portable"),
        ("12", "pas valable"),
    ] {
        let res = app
            .fill(&format!("{base}/phone"), &[("phone", number)])
            .await;
        assert_eq!(res.status(), 400, "{number}");
        assert!(
            res.text()
                .await
                .map(|t| unescape(&t))
                .unwrap()
                .contains(expected),
            "{number}"
        );
    }
    assert!(app.sms_outbox().is_empty(), "no SMS for a refused number");
    // A Swiss mobile number written the international way is taken.
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", "+41 76 123 45 67")])
        .await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn a_new_sms_code_waits_for_the_cooldown_and_replaces_the_old_one() {
    let app = spawn_app().await;
    let base = at_phone_step(&app, 10).await;
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    assert_eq!(res.status(), 303);
    let old = app.last_sms_code();
    let res = app.fill(&format!("{base}/sms"), &[("code", "")]).await;
    assert_eq!(res.status(), 400, "an empty code is just wrong");
    // The resend form is the second form of the page.
    let page = app
        .get(&app.url(&format!("{base}/sms")))
        .await
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let resend_url = app.url(&format!("{base}/sms/resend"));
    let resend = || {
        app.browser
            .post(&resend_url)
            .form(&[("csrf", csrf.as_str())])
            .send()
    };
    let res = resend().await.unwrap();
    assert_eq!(res.status(), 429, "too soon for a new code");
    assert!(res
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap()
        .contains("Veuillez attendre"));
    assert_eq!(app.sms_outbox().len(), 1, "no SMS during the cooldown");
    app.advance(61);
    let res = resend().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.sms_outbox().len(), 2);
    let new = app.last_sms_code();
    if new != old {
        let res = app.fill(&format!("{base}/sms"), &[("code", &old)]).await;
        assert_eq!(res.status(), 400, "the old code no longer works");
        assert!(res
            .text()
            .await
            .map(|t| unescape(&t))
            .unwrap()
            .contains("pas correct"));
    }
    let res = app.fill(&format!("{base}/sms"), &[("code", &new)]).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn an_expired_sms_code_is_refused() {
    let app = spawn_app().await;
    let base = at_phone_step(&app, 11).await;
    app.fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    let code = app.last_sms_code();
    app.advance(301);
    let res = app.fill(&format!("{base}/sms"), &[("code", &code)]).await;
    assert!(res
        .text()
        .await
        .map(|t| unescape(&t))
        .unwrap()
        .contains("a expiré"));
}

#[tokio::test]
async fn two_browsers_racing_with_one_letter_make_exactly_one_account() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", &ahv(12), Language::Fr).await;
    // Two enrolments with the same letter, both brought to step 7.
    let a = at_step7_with(&app, &code, "first@example.ch").await;
    let other = TestApp::sharing(&app);
    let b = at_step7_with(&other, &code, "second@example.ch").await;
    let code_a = app.sms_outbox()[0].1.clone();
    let code_b = app.sms_outbox()[1].1.clone();
    let (sms_a, sms_b) = (six_digits(&code_a).unwrap(), six_digits(&code_b).unwrap());
    let (url_a, url_b) = (format!("{a}/sms"), format!("{b}/sms"));
    let (fa, fb) = ([("code", sms_a.as_str())], [("code", sms_b.as_str())]);
    let (ra, rb) = tokio::join!(app.fill(&url_a, &fa), other.fill(&url_b, &fb));
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort();
    assert_eq!(
        statuses,
        [303, 409],
        "one opens the account, the other finds the code spent"
    );
    let first = accounts::by_email(
        &app.state.db,
        &realm("AK00"),
        &"first@example.ch".parse().unwrap(),
    )
    .await
    .unwrap();
    let second = accounts::by_email(
        &app.state.db,
        &realm("AK00"),
        &"second@example.ch".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(first.is_some() as u8 + second.is_some() as u8, 1);
}

async fn at_step7_with(app: &TestApp, code: &str, email: &str) -> String {
    let base = to_phone_step(app, code, email).await;
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    assert_eq!(res.status(), 303);
    base
}

#[tokio::test]
async fn five_wrong_sms_codes_end_the_enrolment_even_with_a_new_code_between() {
    let app = spawn_app().await;
    let base = at_phone_step(&app, 13).await;
    app.fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    let first = app.last_sms_code();
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        let res = app.fill(&format!("{base}/sms"), &[("code", wrong)]).await;
        assert_eq!(res.status(), 400);
    }
    // A new code does not give new tries (NIST SP 800-63B-4 §3.1.3.2).
    app.advance(61);
    let page = app
        .get(&app.url(&format!("{base}/sms")))
        .await
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").unwrap();
    let res = app
        .browser
        .post(app.url(&format!("{base}/sms/resend")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let good = app.last_sms_code();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 3..5 {
        let res = app.fill(&format!("{base}/sms"), &[("code", wrong)]).await;
        assert_eq!(res.status(), 400);
    }
    let res = app.fill(&format!("{base}/sms"), &[("code", &good)]).await;
    assert_eq!(
        res.status(),
        429,
        "the sixth try is refused even with the right code"
    );
    assert_eq!(
        app.get(&app.url(&format!("{base}/sms"))).await.status(),
        410
    );
    let none = accounts::by_email(
        &app.state.db,
        &realm("AK00"),
        &"person13@example.ch".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(none.is_none(), "no account was opened");
}

#[tokio::test]
async fn a_failed_mail_is_told_and_the_enrolment_waits_for_a_retry() {
    // Nothing listens for SMTP.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_with(|c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{closed}").into());
        c.smtp_timeout_seconds = 2;
    })
    .await;
    let code = app.person_with_code("AK00", &ahv(14), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    let res = app
        .fill(&format!("{base}/email"), &[("email", EMAIL)])
        .await;
    assert_eq!(res.status(), 503);
    assert!(unescape(&res.text().await.unwrap()).contains("L'e-mail n'a pas pu être envoyé"));
    // The enrolment is still at step 2, ready for another try.
    assert_eq!(
        app.get(&app.url(&format!("{base}/email"))).await.status(),
        200
    );
    let res = app.get(&app.url(&format!("{base}/confirm"))).await;
    assert_eq!(res.status(), 303, "no step 3 before a mail went out");
}

#[tokio::test]
async fn a_failed_sms_is_told_and_a_retry_goes_through() {
    // The SMS gateway fails three times in a row (all the retries of one send), then answers.
    let smtp = start_smtp(None, None);
    let (gateway, sms) =
        start_sms_receiver(&[Reply::Status(502), Reply::Status(502), Reply::Status(502)]).await;
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = spawn_with(|c| {
        c.smtp_url = Some(smtp_url.into());
        c.sms.url = Some(gateway);
        c.sms.max_attempts = 3;
    })
    .await;
    let inbox = Inbox::Servers { smtp, sms };
    let code = app.person_with_code("AK00", &ahv(15), Language::Fr).await;
    let base = enter_letter_code(&app, "/AK00/register", &code).await;
    prove_email_via(&app, &inbox, &base, EMAIL).await;
    open_account(&app, &base).await;
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", MOBILE)])
        .await;
    assert_eq!(res.status(), 503);
    assert!(unescape(&res.text().await.unwrap()).contains("Le SMS n'a pas pu être envoyé"));
    let Inbox::Servers { sms, .. } = &inbox else {
        unreachable!()
    };
    assert_eq!(sms.requests().len(), 3, "one send, three attempts");
    let done = confirm_phone_via(&app, &inbox, &base).await;
    assert_eq!(
        done.status(),
        303,
        "a retry goes through and the account opens"
    );
}

#[tokio::test]
async fn an_expired_enrolment_says_so_with_the_caisses_support_contact() {
    let app = spawn_app().await;
    let res = app
        .get(&app.url("/AK00/register/no-such-enrolment/email"))
        .await;
    assert_eq!(res.status(), 410);
    let page = unescape(&res.text().await.unwrap());
    assert!(page.contains("a expiré ou n'existe pas"), "{page}");
    assert!(
        page.contains("031 390 23 25"),
        "the support contact in the footer"
    );
    assert!(page.contains("/AK00/logo"), "the caisse's logo");
}
