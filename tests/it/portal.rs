//! The portal as a person uses it: sent to the IdP to log in (password and SMS code), back to
//! the page they asked for, their data on the overview; logout at the portal ends the IdP
//! session too.

use connect::{domain::Language, storage::persons};

use crate::helpers::*;

/// Logs in at the IdP from its login page URL; returns where the IdP sends the browser.
async fn log_in(p: &TestPortal, login_url: &str, email: &str) -> String {
    let res = p.idp.submit_login(login_url, email, PASSWORD).await;
    assert_eq!(res.status(), 303, "login and SMS step done");
    location(&res)
}

/// Anna in the register of AK00, with her postal address.
async fn register_anna(p: &TestPortal) {
    let person = persons::Person {
        ahv: "756.1234.5678.97".parse().unwrap(),
        given_name: "Anna".into(),
        family_name: "Muster".into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: persons::PostalAddress::default(),
    };
    persons::add(&p.idp.state.db, &realm("AK00"), &person, 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_is_sent_to_the_idp_and_comes_back_to_the_page_asked_for() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    register_anna(&p).await;

    let (at, page) = p.browse(&p.url("/?lang=fr")).await;
    assert!(
        at.contains("/AK00/login?flow="),
        "sent to the IdP's login: {at}"
    );
    assert_eq!(page.status(), 200);
    let back = log_in(&p, &at, "anna@example.ch").await;
    assert!(back.starts_with(&p.url("/callback?")), "{back}");
    let (at, page) = p.browse(&back).await;
    assert_eq!(at, p.url("/?lang=fr"), "back to the page asked for");
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("Vue d'ensemble"), "{html}");
    assert!(html.contains("Anna Muster"));
    assert!(
        html.contains("756.1234.5678.97"),
        "AHV number from userinfo"
    );
    assert!(html.contains("anna@example.ch"));
    assert!(
        html.contains("031 390 23 25"),
        "the caisse's support contact"
    );
}

#[tokio::test]
async fn a_replayed_or_forged_callback_is_refused() {
    let p = spawn_portal().await;
    let res = p.idp.get(&p.url("/callback?code=abc&state=forged")).await;
    assert_eq!(res.status(), 400);
    let res = p.idp.get(&p.url("/callback?code=abc")).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn logout_at_the_portal_ends_the_idp_session_too() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (at, _) = p.browse(&p.url("/")).await;
    let back = log_in(&p, &at, "anna@example.ch").await;
    let (_, page) = p.browse(&back).await;
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf").expect("logout form");
    let res = p
        .idp
        .browser
        .post(p.url("/logout"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with(&p.idp.url("/AK00/logout?")),
        "to the IdP's end-session endpoint: {to}"
    );
    assert!(to.contains("id_token_hint="));
    let res = p.idp.get(&to).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        p.url("/"),
        "back at the portal after the IdP's logout"
    );
    // Both sessions are gone: the portal sends to the IdP, which asks for a login again.
    let (at, _) = p.browse(&p.url("/")).await;
    assert!(at.contains("/AK00/login?flow="), "{at}");
}

#[tokio::test]
async fn logout_at_the_idp_ends_the_portal_session_by_back_channel() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (at, _) = p.browse(&p.url("/")).await;
    let back = log_in(&p, &at, "anna@example.ch").await;
    let (at, _) = p.browse(&back).await;
    assert_eq!(at, p.url("/"));

    // The person logs out at the IdP itself (as another application would send them there).
    let page = p
        .idp
        .get(&p.idp.url("/AK00/logout"))
        .await
        .text()
        .await
        .unwrap();
    let confirm = form_value(&page, "confirm").expect("the confirmation form");
    let res = p
        .idp
        .browser
        .post(p.idp.url("/AK00/logout"))
        .form(&[("confirm", confirm)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    // The IdP tells the portal in the background; once that delivery has ended, the portal
    // session has ended.
    p.idp
        .state
        .backchannel
        .settle(std::time::Duration::from_secs(15))
        .await;
    let res = p.idp.get(&p.url("/")).await;
    assert_eq!(
        res.status(),
        303,
        "the portal session ended by back-channel logout"
    );
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
}

#[tokio::test]
async fn a_forged_logout_token_is_refused_and_ends_nothing() {
    let p = spawn_portal().await;
    let res = p
        .idp
        .api
        .post(p.url("/backchannel-logout"))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = p
        .idp
        .api
        .post(p.url("/backchannel-logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Anna logged in at the portal, with the demo documents delivered to her AHV number.
async fn anna_with_documents(p: &TestPortal) {
    p.idp.create_account("AK00", "anna@example.ch").await;
    let ahv = "756.1234.5678.97".parse().unwrap();
    let n = connect::portal::demo::documents(&p.state, &ahv)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let (at, _) = p.browse(&p.url("/documents")).await;
    let back = log_in(p, &at, "anna@example.ch").await;
    let (at, page) = p.browse(&back).await;
    assert_eq!(at, p.url("/documents"));
    assert_eq!(page.status(), 200);
}

/// The ids of the documents linked on a page, in order.
fn document_ids(html: &str) -> Vec<String> {
    html.split("href=\"/documents/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn mes_documents_lists_filters_and_downloads_the_persons_pdfs() {
    let p = spawn_portal().await;
    anna_with_documents(&p).await;
    let html = unescape(&p.idp.get(&p.url("/documents")).await.text().await.unwrap());
    assert!(html.contains("Mes documents"));
    assert!(html.contains("5 ans"), "the retention is stated");
    for heading in ["Décomptes", "Décisions", "Attestations fiscales"] {
        assert!(html.contains(heading), "{heading}");
    }
    let ids = document_ids(&html);
    assert_eq!(ids.len(), 3, "{html}");
    assert_eq!(html.matches("class=\"badge\"").count(), 3, "all unread");

    // A category filter keeps one group.
    let only = unescape(
        &p.idp
            .get(&p.url("/documents?category=decision"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(document_ids(&only).len(), 1);
    let none = p
        .idp
        .get(&p.url("/documents?year=1990"))
        .await
        .text()
        .await
        .unwrap();
    assert!(document_ids(&none).is_empty());

    // The download: a PDF, a safe file name, the bytes stored.
    let res = p.idp.get(&p.url(&format!("/documents/{}", ids[0]))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    let name = disposition.split('"').nth(1).unwrap();
    assert!(
        name.ends_with(".pdf")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)),
        "{name}"
    );
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let doc = connect::storage::documents::get_for_person(
        &p.state.db,
        &realm("AK00"),
        &"756.1234.5678.97".parse().unwrap(),
        ids[0].parse().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let stored = p
        .state
        .blobs
        .store
        .get(&doc.object_key.as_str().into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, stored, "the same bytes as stored");
    // Opened: no longer marked new.
    let html = p.idp.get(&p.url("/documents")).await.text().await.unwrap();
    assert_eq!(html.matches("class=\"badge\"").count(), 2);
    // The overview counts them and shows the latest.
    let overview = unescape(&p.idp.get(&p.url("/")).await.text().await.unwrap());
    assert!(overview.contains("Décisions</a>: 1"), "{overview}");
    assert_eq!(document_ids(&overview).len(), 3);
}

#[tokio::test]
async fn another_persons_document_is_not_found() {
    let p = spawn_portal().await;
    anna_with_documents(&p).await;
    // A document for someone else in the same realm.
    let bruno: connect::domain::AhvNumber = ahv(42).parse().unwrap();
    connect::portal::demo::documents(&p.state, &bruno)
        .await
        .unwrap();
    let theirs = connect::storage::documents::list(
        &p.state.db,
        &realm("AK00"),
        &bruno,
        connect::storage::documents::Filter {
            year: None,
            category: None,
        },
    )
    .await
    .unwrap();
    for d in &theirs {
        let res = p.idp.get(&p.url(&format!("/documents/{}", d.id))).await;
        assert_eq!(res.status(), 404, "never someone else's document");
    }
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        assert_eq!(
            p.idp
                .get(&p.url(&format!("/documents/{bad}")))
                .await
                .status(),
            404
        );
    }
    // Without a session, the download asks for a login first.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = stranger
        .get(p.url(&format!("/documents/{}", theirs[0].id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login?return_to="));
}

#[tokio::test]
async fn a_newcomer_enrols_from_the_portal_and_finds_the_demo_documents() {
    use crate::enrol::{
        confirm_phone, enter_letter_code, open_account, prove_email, EMAIL, NEW_PASSWORD,
    };
    let p = spawn_portal().await;
    let demo: connect::domain::AhvNumber = "756.1234.5678.97".parse().unwrap();
    let code = p
        .idp
        .person_with_code("AK00", demo.as_str(), Language::Fr)
        .await;
    connect::portal::demo::documents(&p.state, &demo)
        .await
        .unwrap();

    // The portal sends the newcomer to the IdP; its login page links to the enrolment.
    let (login, page) = p.browse(&p.url("/documents")).await;
    let html = unescape(&page.text().await.unwrap());
    let flow = query_param(&login, "flow").unwrap();
    let register = format!("/AK00/register?flow={flow}");
    assert!(html.contains(&register));
    let base = enter_letter_code(&p.idp, &register, &code).await;
    prove_email(&p.idp, &base, EMAIL).await;
    open_account(&p.idp, &base).await;
    let done = confirm_phone(&p.idp, &base).await;
    assert_eq!(done.status(), 303);
    let login = location(&done);
    assert!(
        login.contains(&flow),
        "the login finishes the portal's request"
    );

    // Log in with the three factors; back in « Mes documents ».
    let page = p.idp.get(&p.idp.url(&login)).await.text().await.unwrap();
    let res = p
        .idp
        .submit_on(&page, &[("email", EMAIL), ("password", NEW_PASSWORD)])
        .await;
    let sms = location(&res);
    let res = p.idp.submit_sms_code(&sms, &p.idp.last_sms_code()).await;
    let (at, page) = p.browse(&location(&res)).await;
    assert_eq!(at, p.url("/documents"));
    let html = page.text().await.unwrap();
    assert_eq!(document_ids(&html).len(), 3, "the demo documents are there");
    let res = p
        .idp
        .get(&p.url(&format!("/documents/{}", document_ids(&html)[0])))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().starts_with(b"%PDF-"));
}

#[tokio::test]
async fn a_document_delivered_by_a_caisse_system_appears_in_mes_documents() {
    let p = spawn_portal().await;
    anna_with_documents(&p).await;
    // The caisse system: a client-credentials token from the IdP, then the delivery API.
    let res = p
        .idp
        .token(
            "AK00",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "documents:write"),
            ],
            Some(("caisse-docs", "caisse-docs-secret")),
        )
        .await;
    assert_eq!(res.status(), 200);
    let token: serde_json::Value = res.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let metadata = serde_json::json!({
        "realm": "AK00",
        "ahv": "756.1234.5678.97",
        "category": "decision_allocations",
        "titles": { "fr": "Décision allocations familiales", "de": "Verfügung Familienzulagen" },
        "issue_date": p.idp.clock().now().date_naive().to_string(),
    });
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf.clone())
                .file_name("d.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let res = p
        .idp
        .api
        .post(p.url("/api/v1/documents"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let html = unescape(
        &p.idp
            .get(&p.url("/documents?category=decision_allocations"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(html.contains("Décision allocations familiales"), "{html}");
    let ids = document_ids(&html);
    assert_eq!(ids.len(), 1);
    let body = p
        .idp
        .get(&p.url(&format!("/documents/{}", ids[0])))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        body.as_ref(),
        pdf.as_slice(),
        "the bytes the caisse delivered"
    );
    // In German, the German title.
    let de = unescape(
        &p.idp
            .get(&p.url("/documents?lang=de"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(de.contains("Verfügung Familienzulagen"));
    assert!(de.contains("Meine Dokumente"));
    let who = connect::storage::documents::recipient(
        &p.state.db,
        &realm("AK00"),
        &"756.1234.5678.97".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(
        who.is_some(),
        "the portal knows Anna's address from her login"
    );
    // Anna logged in before: the portal told her by mail, without the title.
    let mail = read_mail_outbox(&p.state.config.outbox_dir)
        .pop()
        .expect("a mail about the new document");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(!mail.text.contains("allocations familiales"));
    assert!(mail.text.contains(&p.url("/")));
}

// ---- Issue 9: the portal's own defences ----

/// Follows the browser from `url` across portal and IdP (the IdP session answers at once)
/// until the IdP sends it back to the portal's callback; that callback URL.
async fn to_callback(p: &TestPortal, url: &str) -> String {
    let mut url = url.to_owned();
    for _ in 0..10 {
        let res = p.idp.get(&url).await;
        assert_eq!(res.status(), 303, "redirect expected at {url}");
        let to = location(&res);
        let to = if to.starts_with('/') {
            let here = url::Url::parse(&url).unwrap();
            here.join(&to).unwrap().to_string()
        } else {
            to
        };
        if to.starts_with(&p.url("/callback?")) {
            return to;
        }
        url = to;
    }
    panic!("never back at the portal's callback from {url}");
}

/// Whether the browser `b` holds a portal session: `/` shows a page rather than the way
/// to the login.
async fn in_session(p: &TestPortal, b: &TestApp) -> bool {
    b.get(&p.url("/")).await.status() == 200
}

#[tokio::test]
async fn after_a_real_login_the_callback_only_ever_returns_to_a_portal_page() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    // One login with password and SMS; the IdP session answers the later requests.
    let (at, _) = p.browse(&p.url("/login?return_to=%2Fdocuments")).await;
    let callback = log_in(&p, &at, "anna@example.ch").await;
    let res = p.idp.get(&callback).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/documents");

    let id = "0f8c2a9e-5d3b-4a71-9c1e-2b6d8f4a7e10";
    // The `return_to` query value as sent, and where the browser must land.
    let table: Vec<(String, String)> = [
        ("%2F%09%2Fevil.example", "/"),
        ("%2F%0A%2Fevil.example", "/"),
        ("%2F%0D%0ALocation%3A%20https%3A%2F%2Fevil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("%2F%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%5C%2Fevil.example", "/"),
        ("%2F%5C%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
        ("%2F%2Fevil.example%2Fdocuments", "/"),
        ("javascript%3Aalert(1)", "/"),
        ("%20%2Fdocuments", "/"),
        ("%2Fdocuments%2F..%2F..%2F%2Fevil.example", "/"),
        ("%2F%252F%252Fevil.example", "/"),
        ("%2Fdocuments%23%2F%2Fevil.example", "/"),
        ("%2Fdocuments%3Fnext%3D%2F%2Fevil.example", "/"),
        ("%2Fdocuments%E2%80%A8", "/"),
        ("%2Flogout", "/"),
        (
            "%2Fdocuments%3Fyear%3D2025%26category%3Ddecision",
            "/documents?year=2025&category=decision",
        ),
        ("%2F%3Flang%3Dde", "/?lang=de"),
    ]
    .into_iter()
    .map(|(q, to)| (q.to_owned(), to.to_owned()))
    .chain([(format!("%2Fdocuments%2F{id}"), format!("/documents/{id}"))])
    .collect();
    for (payload, expected) in &table {
        let callback = to_callback(&p, &p.url(&format!("/login?return_to={payload}"))).await;
        let res = p.idp.get(&callback).await;
        assert_eq!(res.status(), 303, "{payload}");
        let to = location(&res);
        assert_eq!(&to, expected, "return_to={payload}");
        assert!(
            to.starts_with('/')
                && !to.starts_with("//")
                && !to.contains('\\')
                && !to.chars().any(char::is_control),
            "{to:?}"
        );
    }
}

#[tokio::test]
async fn an_attackers_callback_url_logs_a_second_browser_into_nothing() {
    let p = spawn_portal().await;
    // The attacker logs in with their own account and keeps the callback URL unopened.
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (at, _) = p.browse(&p.url("/")).await;
    let attackers = log_in(&p, &at, "anna@example.ch").await;
    assert!(attackers.starts_with(&p.url("/callback?")), "{attackers}");

    // The victim's browser opens it: refused, no session.
    let victim = TestApp::sharing(&p.idp);
    let res = victim.get(&attackers).await;
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap_or_default().contains("portal_session")),
        "no session cookie"
    );
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("La connexion n'a pas abouti"), "{html}");
    assert!(
        !in_session(&p, &victim).await,
        "the victim is in no session"
    );

    // Also when the victim has begun a login of their own (a login cookie of their own).
    let attackers = to_callback(&p, &p.url("/login")).await;
    let res = victim.get(&p.url("/login")).await;
    assert_eq!(res.status(), 303, "the victim's own login begins");
    let res = victim.get(&attackers).await;
    assert_eq!(res.status(), 400);
    assert!(!in_session(&p, &victim).await);

    // The browser that began a login finishes it.
    let mine = to_callback(&p, &p.url("/login")).await;
    let res = p.idp.get(&mine).await;
    assert_eq!(res.status(), 303);
    assert!(in_session(&p, &p.idp).await);
}

/// An account as support creates it without a mobile number: the IdP logs it in with the
/// password alone.
async fn account_without_phone(p: &TestPortal, email: &str) {
    let hash = p
        .idp
        .state
        .passwords
        .hash(PASSWORD.to_owned().into())
        .await
        .unwrap();
    let new = connect::storage::accounts::NewAccount {
        realm: &realm("AK00"),
        email: &email.parse().unwrap(),
        password_hash: &hash,
        given_name: "Bruno",
        family_name: "Beispiel",
        ahv: None,
        phone: None,
        language: Language::Fr,
    };
    connect::storage::accounts::create(&p.idp.state.db, &new, p.idp.clock().unix())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_portal_asks_for_password_and_sms_and_refuses_a_login_without_the_sms() {
    let p = spawn_portal().await;
    account_without_phone(&p, "bruno@example.ch").await;
    let res = p.idp.get(&p.url("/login")).await;
    let authorize = location(&res);
    assert_eq!(
        query_param(&authorize, "acr_values").as_deref(),
        Some("urn:connect:acr:password+sms"),
        "{authorize}"
    );
    // The browser carries the request and may drop what it asks for.
    let mut stripped = url::Url::parse(&authorize).unwrap();
    let pairs: Vec<(String, String)> = stripped
        .query_pairs()
        .filter(|(k, _)| k != "acr_values")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(pairs);
    let res = p.idp.get(stripped.as_str()).await;
    assert_eq!(res.status(), 303);
    let login = location(&res);
    let res = p
        .idp
        .submit_login(&login, "bruno@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "the IdP logs in with the password alone");
    let callback = location(&res);
    assert!(callback.starts_with(&p.url("/callback?")), "{callback}");
    let res = p.idp.get(&callback).await;
    assert_eq!(res.status(), 403);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("mot de passe et un code SMS"), "{html}");
    assert!(!in_session(&p, &p.idp).await, "no portal session");
}

#[tokio::test]
async fn a_year_far_out_of_range_is_an_ignored_filter_not_a_crash() {
    let p = spawn_portal().await;
    anna_with_documents(&p).await;
    for year in [
        "2147483647",
        "-2147483648",
        "99999999999999999999",
        "9999",
        "-1",
        "0",
        "+2147483647",
        "1e9",
        "%00",
    ] {
        let res = p.idp.get(&p.url(&format!("/documents?year={year}"))).await;
        assert_eq!(res.status(), 200, "year={year}");
        let html = res.text().await.unwrap();
        assert_eq!(document_ids(&html).len(), 3, "year={year}: filter ignored");
    }
    let this_year = chrono::Datelike::year(&p.idp.clock().now());
    let res = p
        .idp
        .get(&p.url(&format!("/documents?year={}", this_year - 30)))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        document_ids(&res.text().await.unwrap()).is_empty(),
        "a real year still filters"
    );
}

/// A Logout Token for the portal signed with the IdP's key, as the IdP makes them, with
/// `typ` and times as given.
async fn logout_token(p: &TestPortal, typ: Option<&str>, jti: &str, iat: i64, exp: i64) -> String {
    let key = p
        .idp
        .state
        .keys
        .signer(&realm("AK00"), connect::realm::SigningAlg::ES256)
        .await
        .unwrap();
    let claims = serde_json::json!({
        "iss": p.idp.issuer("AK00"),
        "aud": "portal",
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "sub": "someone",
        "sid": format!("sid-{jti}"),
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let mut header = jsonwebtoken::Header::new(key.algorithm());
    header.kid = Some(key.kid.clone());
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

async fn post_logout_token(p: &TestPortal, token: &str) -> reqwest::Response {
    p.idp
        .api
        .post(p.url("/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_logout_token_is_taken_once_and_only_with_typ_logout_jwt() {
    let p = spawn_portal().await;
    let now = p.idp.clock().unix();
    let token = logout_token(&p, Some("logout+jwt"), "jti-1", now, now + 120).await;
    assert_eq!(post_logout_token(&p, &token).await.status(), 200);
    let res = post_logout_token(&p, &token).await;
    assert_eq!(res.status(), 400, "a replay is refused");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    for typ in [None, Some("JWT"), Some("at+jwt")] {
        let token = logout_token(&p, typ, &format!("jti-{typ:?}"), now, now + 120).await;
        assert_eq!(
            post_logout_token(&p, &token).await.status(),
            400,
            "typ {typ:?}"
        );
    }
    // Expired (within the `iat` window, past `exp`).
    let token = logout_token(&p, Some("logout+jwt"), "jti-old", now - 200, now - 100).await;
    assert_eq!(post_logout_token(&p, &token).await.status(), 400, "expired");
    // The same shape, fresh: taken.
    let token = logout_token(&p, Some("logout+jwt"), "jti-2", now, now + 120).await;
    assert_eq!(post_logout_token(&p, &token).await.status(), 200);
}

/// Whether `db` has a table named `documents`.
async fn has_documents_table(db: &connect::storage::Db) -> bool {
    const SQL: &str = "SELECT COUNT(*) FROM documents";
    match db {
        connect::storage::Db::Sqlite(p) => sqlx::query_scalar::<_, i64>(SQL).fetch_one(p).await,
        connect::storage::Db::Postgres(p) => sqlx::query_scalar::<_, i64>(SQL).fetch_one(p).await,
    }
    .is_ok()
}

#[tokio::test]
async fn the_portal_works_without_the_idps_database_and_master_key() {
    // The IdP's database cannot be reached and its master key is not one: the portal needs
    // neither, only its own database and key and the IdP over HTTP.
    let p = spawn_portal_with(
        |t| t,
        |c| {
            c.database_url = "postgres://nobody@127.0.0.1:9/no_idp_here".into();
            c.master_key = connect::config::MasterKeySource::Inline("not a key".to_owned().into());
        },
    )
    .await;
    anna_with_documents(&p).await;
    let html = p.idp.get(&p.url("/documents")).await.text().await.unwrap();
    assert_eq!(document_ids(&html).len(), 3);
    // The documents are in the portal's database; the IdP's has no such table.
    assert!(has_documents_table(&p.state.db).await);
    assert!(
        !has_documents_table(&p.idp.state.db).await,
        "the IdP keeps no documents"
    );
    assert_ne!(
        p.state.config.portal.database_url,
        p.idp.state.config.database_url
    );
}

#[tokio::test]
async fn the_portal_creates_its_own_secret_key_at_first_start_and_keeps_it() {
    let p = spawn_portal().await;
    let connect::config::MasterKeySource::File(path) = &p.state.config.portal.secret_key else {
        panic!("the test portal keeps its key in a file");
    };
    let text = std::fs::read_to_string(path).expect("portal.key written at first start");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    assert_eq!(raw.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only");
    }
    let connect::config::MasterKeySource::Inline(master) = &p.idp.state.config.master_key else {
        panic!("tests give the IdP an inline master key");
    };
    use secrecy::ExposeSecret;
    assert_ne!(
        text.trim(),
        master.expose_secret().trim(),
        "not the IdP's master key"
    );
    // A second start reads the same key: hashes (sessions, pending logins) stay valid.
    let again =
        connect::portal::PortalState::open((*p.state.config).clone(), p.state.clock.clone())
            .await
            .expect("second start");
    assert_eq!(std::fs::read_to_string(path).unwrap(), text);
    assert_eq!(again.hasher.hash("x"), p.state.hasher.hash("x"));
}

#[tokio::test]
async fn connect_dev_gives_the_portal_its_own_database_and_key_file() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_connect"))
        .arg("dev")
        .current_dir(dir.path())
        .env_remove("CONNECT_TEST_DATABASE_URL")
        .env_remove("CONNECT_TEST_REDIS_URL")
        .env("CONNECT_DATA_DIR", dir.path())
        .env("CONNECT_BIND", "127.0.0.1:0")
        .env("CONNECT_PORTAL_BIND", "127.0.0.1:0")
        .env("CONNECT_METRICS_BIND", "127.0.0.1:0")
        .env("CONNECT_LOG_LEVEL", "warn")
        .env(
            "CONNECT_REALM_DIR",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("stop with Ctrl-C") {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(started, Ok(true), "connect dev started");
    let key = std::fs::read_to_string(dir.path().join("portal.key")).expect("portal.key");
    let master = std::fs::read_to_string(dir.path().join("master.key")).expect("master.key");
    assert_ne!(key.trim(), master.trim());
    let db = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let portal = connect::storage::Db::connect(&db("portal.db"))
        .await
        .unwrap();
    let idp = connect::storage::Db::connect(&db("connect.db"))
        .await
        .unwrap();
    assert!(
        has_documents_table(&portal).await,
        "the demo documents are in portal.db"
    );
    assert!(
        !has_documents_table(&idp).await,
        "connect.db holds no documents"
    );
    let demo = connect::storage::documents::list(
        &portal,
        &realm("AK00"),
        &"756.1234.5678.97".parse().unwrap(),
        connect::storage::documents::Filter::default(),
    )
    .await
    .unwrap();
    assert_eq!(demo.len(), 3);
}

#[tokio::test]
async fn the_portal_answers_readyz_and_serves_metrics_only_on_their_own_listener() {
    let portal = spawn_portal().await;
    let (own, _guard) = own_metrics();
    let res = portal.idp.get(&portal.url("/readyz")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("x-request-id"),
        "the shared stack"
    );
    assert_eq!(res.text().await.unwrap(), "ready");
    assert_eq!(
        portal.idp.get(&portal.url("/metrics")).await.status(),
        404,
        "not on the public listener"
    );
    let counted = own.render();
    assert_eq!(
        metric(
            &counted,
            "connect_http_requests_total",
            r#"server="portal",route="/readyz",method="GET",status="200""#
        ),
        1.0,
        "{counted}"
    );
    let metrics_url = format!("http://{}/metrics", portal.state.config.portal.metrics_bind);
    assert_ne!(
        portal.state.config.portal.metrics_bind,
        portal.idp.state.config.metrics_bind
    );
    let res = portal.idp.get(&metrics_url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()[reqwest::header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
}
