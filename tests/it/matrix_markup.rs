//! Matrix, markup: HTML/JS and template payloads in every text that is rendered back (names
//! from the register and from the enrolment form, e-mail addresses, `login_hint`, logout
//! `state`, document titles) are escaped on pages, and written literally in the activation
//! letter's PDF.

use connect::{
    domain::{ActivationCode, Email, Language},
    letter::ActivationLetter,
    storage::{accounts, persons},
};
use serde_json::json;

use crate::{helpers::*, matrix_support::*};

/// Two names that together carry every payload (each at most 100 characters).
fn payload_names() -> (String, String) {
    (
        format!("{}{}", MARKUP[0], MARKUP[2]),
        format!("{}{}{}", MARKUP[1], MARKUP[3], MARKUP[4]),
    )
}

/// Addresses that `Email` accepts and that carry markup (a dot-atom holds no `<`, `"` or
/// space, but `'`, `=`, braces and backquotes).
const MARKUP_EMAILS: [&str; 3] = [
    "x'onfocus='alert`1`'autofocus='@example.ch",
    "{{7*7}}@example.ch",
    "a&ltscript&gt@example.ch",
];

#[tokio::test]
async fn addresses_that_would_be_markup_are_not_addresses() {
    for raw in [
        "<script>alert(1)</script>@example.ch",
        "\"><svg/onload=alert(1)>@example.ch",
        "a<b@example.ch",
    ] {
        assert!(raw.parse::<Email>().is_err(), "{raw}");
    }
}

/// Fails unless `html` is inert and shows `text` as text.
fn assert_shown_as_text(html: &str, text: &str, what: &str) {
    assert_inert(html, what);
    assert!(
        unescape(html).contains(text),
        "{what}: `{text}` is not shown as text"
    );
}

/// A person of the register with these names and address fields; their activation code.
async fn person(app: &TestApp, n: u32, given: &str, family: &str, street: &str) -> String {
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let p = persons::Person {
        ahv: ahv(n).parse().unwrap(),
        given_name: given.into(),
        family_name: family.into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: persons::PostalAddress {
            street: Some(street.into()),
            postal_code: Some("3000".into()),
            locality: Some(MARKUP[0].into()),
            country: Some("CH".into()),
        },
    };
    persons::add(&app.state.db, &realm.id, &p, app.clock().unix())
        .await
        .unwrap();
    app.state
        .activation
        .issue(&realm, &p.ahv)
        .await
        .expect("code issued")
        .code
        .to_string()
}

async fn page(app: &TestApp, path: &str) -> String {
    let res = app.get(&app.url(path)).await;
    assert_eq!(res.status(), 200, "GET {path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn markup_in_names_from_the_register_and_the_form_is_escaped_on_every_page() {
    let app = spawn_app().await;
    let (given, family) = payload_names();
    let code = person(&app, 1, &given, &family, MARKUP[1]).await;

    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    let base = location(&res).trim_end_matches("/email").to_owned();
    let res = app
        .fill(&format!("{base}/email"), &[("email", "anna@example.ch")])
        .await;
    assert_eq!(res.status(), 303);
    let mail = app.mail_outbox().pop().unwrap();
    let mail_code = letter_code(&mail.text).unwrap();
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", &mail_code)])
        .await;
    assert_eq!(res.status(), 303);

    // Step 4, prefilled from the register.
    let html = page(&app, &format!("{base}/account")).await;
    assert_shown_as_text(&html, &given, "step 4, given name from the register");
    assert_shown_as_text(&html, &family, "step 4, family name from the register");

    // Typed names come back in the form when the step is refused (terms not accepted).
    let res = app
        .submit_on(
            &html,
            &[
                ("given_name", family.as_str()),
                ("family_name", given.as_str()),
                ("language", "fr"),
            ],
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let html = res.text().await.unwrap();
    assert_shown_as_text(&html, &family, "step 4 again, typed given name");
    assert_shown_as_text(&html, &given, "step 4 again, typed family name");

    // Accepted, the typed names are kept (swapped, to tell them from the register's).
    let res = app
        .submit_on(
            &html,
            &[
                ("given_name", family.as_str()),
                ("family_name", given.as_str()),
                ("language", "fr"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "step 4");
    let password = "Aare-Ufer-Spaziergang";
    let res = app
        .fill(
            &format!("{base}/password"),
            &[("password", password), ("confirm", password)],
        )
        .await;
    assert_eq!(res.status(), 303, "step 5");
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", "079 123 45 67")])
        .await;
    assert_eq!(res.status(), 303, "step 6");
    let sms = app.last_sms_code();
    let res = app.fill(&format!("{base}/sms"), &[("code", &sms)]).await;
    assert_eq!(res.status(), 303, "step 7");

    let email: Email = "anna@example.ch".parse().unwrap();
    let account = accounts::by_email(&app.state.db, &realm("AK00"), &email)
        .await
        .unwrap()
        .expect("the account");
    assert_eq!(account.given_name, family, "stored as typed");
    assert_eq!(account.family_name, given);

    // The person's own page.
    let other = TestApp::sharing(&app);
    let res = other
        .submit_login("/AK00/login", "anna@example.ch", password)
        .await;
    assert_eq!(res.status(), 303);
    let html = page(&other, "/AK00/account").await;
    assert_shown_as_text(&html, &family, "account page, given name");
    assert_shown_as_text(&html, &given, "account page, family name");
}

async fn account_with(app: &TestApp, email: &str, given: &str, family: &str) -> String {
    let hash = app
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let realm = realm("AK00");
    let email: Email = email.parse().expect("the address parses");
    accounts::create(
        &app.state.db,
        &accounts::NewAccount {
            realm: &realm,
            email: &email,
            password_hash: &hash,
            given_name: given,
            family_name: family,
            ahv: Some(&"756.1234.5678.97".parse().unwrap()),
            phone: Some("+41791234567"),
            language: Language::Fr,
        },
        app.clock().unix(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn markup_in_an_email_address_is_escaped_on_the_login_and_account_pages() {
    for (n, address) in MARKUP_EMAILS.iter().enumerate() {
        let app = spawn_app().await;
        let (given, family) = payload_names();
        account_with(&app, address, &given, &family).await;

        // A failed login shows the form again with the address typed.
        let html = page(&app, "/AK00/login").await;
        let res = app
            .submit_on(&html, &[("email", address), ("password", "wrong")])
            .await;
        assert!(res.status().is_client_error());
        assert_inert(&res.text().await.unwrap(), &format!("login again, {n}"));

        let res = app.submit_login("/AK00/login", address, PASSWORD).await;
        assert_eq!(res.status(), 303, "{address} logs in");
        let html = page(&app, "/AK00/account").await;
        assert_shown_as_text(&html, address, &format!("account page, {address}"));
        assert_shown_as_text(&html, &given, "account page, given name");
    }
}

#[tokio::test]
async fn markup_in_login_hint_ui_locales_and_logout_state_is_escaped() {
    let app = spawn_app().await;
    for payload in MARKUP {
        let (_, challenge) = pkce();
        let res = app
            .browser
            .get(app.url("/AK00/authorize"))
            .query(&[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", payload),
                ("login_hint", payload),
                ("ui_locales", payload),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{payload}");
        let html = page(&app, &location(&res)).await;
        assert_shown_as_text(&html, payload, &format!("login page, login_hint {payload}"));

        let res = app
            .browser
            .get(app.url("/AK00/logout"))
            .query(&[
                ("client_id", "portal"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
                ("state", payload),
                ("ui_locales", payload),
            ])
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            assert_inert(&res.text().await.unwrap(), &format!("logout, {payload}"));
        }
    }
    // With a session, the confirmation page echoes `state` and the URI in its form.
    anna_signed_in(&app).await;
    for payload in MARKUP {
        let res = app
            .browser
            .get(app.url("/AK00/logout"))
            .query(&[
                ("client_id", "portal"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
                ("state", payload),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the confirmation");
        let html = res.text().await.unwrap();
        assert_inert(&html, &format!("logout confirmation, {payload}"));
        assert!(
            unescape(&html).contains(&format!("value=\"{payload}\"")),
            "the state is kept as a value: {payload}"
        );
    }
}

#[tokio::test]
async fn markup_in_names_and_address_is_escaped_on_the_portal_overview() {
    let p = spawn_portal().await;
    let (given, family) = payload_names();
    let address = MARKUP_EMAILS[1];
    account_with(&p.idp, address, &given, &family).await;
    let (at, _) = p.browse(&p.url("/")).await;
    let res = p.idp.submit_login(&at, address, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (at, res) = p.browse(&location(&res)).await;
    assert_eq!(at, p.url("/"));
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_shown_as_text(&html, &given, "overview, given name");
    assert_shown_as_text(&html, &family, "overview, family name");
    assert_shown_as_text(&html, address, "overview, address");
}

#[tokio::test]
async fn markup_in_document_titles_is_escaped_in_mes_documents_and_kept_out_of_file_names() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let token = cc_token(
        &p.idp,
        "AK00",
        ("bench-cc", "bench-secret"),
        "documents:write",
    )
    .await;
    let today = connect::letter::swiss_date(p.idp.clock().now()).to_string();
    for (i, title) in MARKUP.iter().enumerate() {
        let metadata = json!({
            "realm": "AK00",
            "ahv": "756.1234.5678.97",
            "category": "decision",
            "titles": {"fr": title, "de": title},
            "issue_date": today,
        });
        let res = deliver_pdf(&p, &token, &metadata, i as u8).await;
        assert_eq!(res.status(), 201, "{title}");
        let status = res.text().await.unwrap();
        assert!(!status.contains('<'), "the status JSON: {status}");
    }
    let (at, _) = p.browse(&p.url("/documents?lang=fr")).await;
    let res = p.idp.submit_login(&at, "anna@example.ch", PASSWORD).await;
    let (at, res) = p.browse(&location(&res)).await;
    assert!(at.starts_with(&p.url("/documents")), "{at}");
    let html = res.text().await.unwrap();
    for title in MARKUP {
        assert_shown_as_text(&html, title, &format!("Mes documents, {title}"));
    }
    let ids: Vec<String> = html
        .split("href=\"/documents/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), MARKUP.len(), "every document listed");
    for id in ids {
        let res = p.idp.get(&p.url(&format!("/documents/{id}"))).await;
        assert_eq!(res.status(), 200);
        let disposition = res.headers()["content-disposition"].to_str().unwrap();
        let name = disposition
            .strip_prefix("attachment; filename=\"")
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or_else(|| panic!("one quoted file name: {disposition}"));
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "{disposition}"
        );
    }
}

#[tokio::test]
async fn markup_in_register_names_is_written_literally_in_the_activation_letter() {
    let app = spawn_app().await;
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let (given, family) = payload_names();
    let person = persons::Person {
        ahv: ahv(3).parse().unwrap(),
        given_name: given.clone(),
        family_name: family.clone(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: persons::PostalAddress {
            street: Some(MARKUP[4].into()),
            postal_code: Some("3000".into()),
            locality: Some("{{7*7}} Bern".into()),
            country: Some("CH".into()),
        },
    };
    let code = ActivationCode::generate();
    let today = connect::letter::swiss_date(app.clock().now());
    let pdf = ActivationLetter {
        realm: &realm,
        person: &person,
        code: &code,
        registration_link: "https://login.example.ch/AK00/register",
        date: today,
        valid_until: today,
        validity_days: 30,
        purpose: Default::default(),
    }
    .pdf()
    .expect("the letter renders");
    let doc = lopdf::Document::load_mem(&pdf).expect("a PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).expect("text");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for literal in [
        "<script>alert(1)</script>{{7*7}}",
        "\"><img src=x onerror=alert(1)>javascript:alert(1)'><svg onload=alert(1)>",
        "'><svg onload=alert(1)>",
        "{{7*7}} Bern",
    ] {
        assert!(
            text.contains(literal),
            "`{literal}` not literal in:\n{text}"
        );
    }
    for escaped in ["&lt;", "&gt;", "&quot;", "&#x27;", "&amp;"] {
        assert!(
            !text.contains(escaped),
            "`{escaped}` in the letter:\n{text}"
        );
    }
}
