//! Passkeys (issue 12): a person adds one from the account page, logs in with it alone,
//! renames and removes it; a relying party that asks for phishing resistance gets the
//! passkey prompt and an ID token that says so. The authenticator is webauthn-rs's software
//! passkey, held by a `Device` that plays the browser: it keeps which credential belongs to
//! which user handle, as a platform authenticator keeps its discoverable credentials.

use connect::{domain::acr, storage::passkeys};
use serde_json::{json, Value};

use crate::helpers::*;

/// A server whose public URL has a host name (WebAuthn refuses IP addresses), with SMS limits
/// that leave room for the account page's proofs; the realm files' directory beside it.
async fn spawn_passkey_app() -> (TestApp, tempfile::TempDir) {
    let dir = realm_dir_with(raised_sms_limits);
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| {
        c.realm_dir = path;
        c.public_url = format!("http://localhost:{}", c.bind.port())
            .parse()
            .expect("url");
    })
    .await;
    (app, dir)
}

/// Logs in with password and SMS code; the browser lands on the account page.
async fn log_in_with_password(app: &TestApp, email: &str) {
    let res = app.submit_login("/AK00/login", email, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account");
}

/// Opens « Ajouter une clé d'accès », starts the ceremony and answers it with `device`;
/// the answer to the form's POST.
async fn add_passkey(app: &TestApp, device: &mut Device, name: &str) -> reqwest::Response {
    app.step_up("passkeys").await;
    let page = app.get(&app.url("/AK00/account/passkeys/new")).await;
    assert_eq!(page.status(), 200, "the form to add a passkey");
    let html = page.text().await.unwrap();
    assert!(html.contains("/static/passkey.js"), "the ceremony's script");
    let csrf = form_value(&html, "csrf").expect("csrf");
    let started = registration_options(app, &csrf, name).await;
    let credential = device.create(&started["publicKey"]);
    app.browser
        .post(app.url("/AK00/account/passkeys/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", credential.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// The answer to the first passkey of an account: its ten recovery codes, shown once, and
/// the link on to the list of passkeys; that link.
async fn first_passkey_codes(res: reqwest::Response) -> String {
    assert_eq!(
        res.status(),
        200,
        "the first passkey comes with recovery codes"
    );
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("La clé d'accès est ajoutée."), "{html}");
    assert_eq!(html.matches("<li><code>").count(), 10, "{html}");
    let at = html
        .find("href=\"/AK00/account/passkeys?done=added")
        .expect("the link on");
    let link = &html[at + 6..];
    link[..link.find('"').unwrap()].to_owned()
}

async fn registration_options(app: &TestApp, csrf: &str, name: &str) -> Value {
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/options"))
        .form(&[("csrf", csrf), ("name", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "registration options");
    res.json().await.expect("JSON options")
}

/// The login page (of a relying party's flow, if any), and the options of a new ceremony
/// started from it: (csrf, flow, options).
async fn login_ceremony(app: &TestApp, login_url: &str) -> (String, Option<String>, Value) {
    let page = app.get(&app.url(login_url)).await;
    assert_eq!(page.status(), 200, "login page");
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf").expect("csrf");
    let flow = form_value(&html, "flow");
    let options = login_options(app, &csrf, flow.as_deref()).await;
    (csrf, flow, options)
}

async fn login_options(app: &TestApp, csrf: &str, flow: Option<&str>) -> Value {
    let mut form = vec![("csrf", csrf)];
    if let Some(f) = flow {
        form.push(("flow", f));
    }
    let res = app
        .browser
        .post(app.url("/AK00/login/passkey/options"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login options");
    res.json().await.expect("JSON options")
}

async fn post_assertion(
    app: &TestApp,
    csrf: &str,
    flow: Option<&str>,
    ceremony: &str,
    credential: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", csrf),
        ("ceremony", ceremony),
        ("credential", credential),
    ];
    if let Some(f) = flow {
        form.push(("flow", f));
    }
    app.browser
        .post(app.url("/AK00/login/passkey"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A whole login with the device's passkey in `app`'s browser; the answer to the POST.
async fn log_in_with_passkey(
    app: &TestApp,
    device: &mut Device,
    login_url: &str,
) -> reqwest::Response {
    let (csrf, flow, options) = login_ceremony(app, login_url).await;
    let credential = device.assert(&options["publicKey"]);
    let ceremony = options["ceremony"].as_str().unwrap();
    post_assertion(app, &csrf, flow.as_deref(), ceremony, &credential).await
}

/// Anna, logged in with password and SMS code, with one passkey on her device.
async fn anna_with_a_passkey(app: &TestApp) -> (String, Device) {
    let id = app.create_account("AK00", "anna@example.ch").await;
    log_in_with_password(app, "anna@example.ch").await;
    let mut device = Device::new(app);
    let res = add_passkey(app, &mut device, "iPhone de Jeanne").await;
    first_passkey_codes(res).await;
    (id, device)
}

async fn audit_kinds(app: &TestApp, account: &str) -> Vec<(String, Value)> {
    connect::storage::audit::list(&app.state.db, &realm("AK00"), Some(account), 0)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| {
            (
                e.kind,
                serde_json::from_str(&e.detail).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn claims(jwt: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode::<Value>(jwt)
        .unwrap()
        .claims
}

#[tokio::test]
async fn a_person_adds_a_passkey_and_then_logs_in_with_it_alone() {
    let (app, _realms) = spawn_passkey_app().await;
    let anna = app.create_account("AK00", "anna@example.ch").await;
    // Anna is also logged in on her computer.
    let computer = TestApp::sharing(&app);
    log_in_with_password(&computer, "anna@example.ch").await;
    log_in_with_password(&app, "anna@example.ch").await;

    let list = app.get(&app.url("/AK00/account/passkeys")).await;
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(
        html.contains("Vous n&#x27;avez encore aucune clé d&#x27;accès")
            || html.contains("Vous n'avez encore aucune clé d'accès"),
        "{html}"
    );

    let mut device = Device::new(&app);
    let res = add_passkey(&app, &mut device, "  iPhone   de Jeanne ").await;
    let to = first_passkey_codes(res).await;
    assert!(
        to.starts_with("/AK00/account/passkeys?done=added&key="),
        "{to}"
    );
    let html = unescape(&app.get(&app.url(&to)).await.text().await.unwrap());
    assert!(
        html.contains("La clé d'accès « iPhone de Jeanne » a été ajoutée."),
        "{html}"
    );
    assert!(html.contains("Pas encore utilisée"));

    // A factor changed: her other session is over, this one goes on; she is told by mail.
    let other = computer.get(&computer.url("/AK00/account/passkeys")).await;
    assert_eq!(
        location(&other),
        "/AK00/login",
        "the computer's session ended"
    );
    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(
        mail.subject.starts_with("Nouvelle clé d'accès"),
        "{}",
        mail.subject
    );
    let kinds = audit_kinds(&app, &anna).await;
    assert!(kinds
        .iter()
        .any(|(k, d)| k == "passkey_added" && d["name"] == "iPhone de Jeanne"));

    // On another browser she logs in with the passkey alone: no e-mail, password or SMS.
    let sms_before = app.sms_outbox().len();
    let fresh = TestApp::sharing(&app);
    let res = log_in_with_passkey(&fresh, &mut device, "/AK00/login").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account");
    assert_eq!(app.sms_outbox().len(), sms_before, "no SMS");
    let list = fresh.get(&fresh.url("/AK00/account/passkeys")).await;
    assert_eq!(
        list.status(),
        200,
        "the passkey login reaches the account page"
    );
    let html = list.text().await.unwrap();
    assert!(html.contains("Dernière utilisation le"), "{html}");
    let kinds = audit_kinds(&app, &anna).await;
    let login = kinds
        .iter()
        .rev()
        .find(|(k, _)| k == "login_succeeded")
        .expect("login audited");
    assert_eq!(login.1["acr"], acr::PHISHING_RESISTANT);
    assert_eq!(login.1["amr"], json!(["hwk", "user"]));
}

#[tokio::test]
async fn a_relying_party_asking_for_phishing_resistance_gets_the_passkey_prompt_and_that_acr() {
    let (app, _realms) = spawn_passkey_app().await;
    let (_, mut device) = anna_with_a_passkey(&app).await;
    let discovery: Value = app
        .get(&app.url("/AK00/.well-known/openid-configuration"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["acr_values_supported"][0],
        acr::PHISHING_RESISTANT
    );

    let ask = |who: &TestApp| {
        let who = TestApp::sharing(who);
        async move {
            let res = who
                .get_query(
                    "/AK00/authorize",
                    &[
                        ("client_id", "portal"),
                        ("redirect_uri", PORTAL_REDIRECT),
                        ("response_type", "code"),
                        ("scope", "openid"),
                        ("state", "st"),
                        ("nonce", "n-1"),
                        ("code_challenge", PORTAL_CHALLENGE),
                        ("code_challenge_method", "S256"),
                        ("acr_values", acr::PHISHING_RESISTANT),
                    ],
                )
                .await;
            (who, res)
        }
    };
    // Anna's session from password and SMS code is not enough: a new login is asked.
    let res = app
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
                ("acr_values", acr::PHISHING_RESISTANT),
            ],
        )
        .await;
    assert!(
        location(&res).starts_with("/AK00/login?flow="),
        "no code from a weaker session"
    );

    let (browser, res) = ask(&app).await;
    let login = location(&res);
    assert!(login.starts_with("/AK00/login?flow="), "{login}");
    let page = browser.get(&browser.url(&login)).await;
    assert_eq!(page.status(), 200);
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("Clé d'accès requise"), "{html}");
    assert!(html.contains("Se connecter avec une clé d'accès"));
    assert!(!html.contains("name=\"password\""), "no password field");
    // The password is not even checked: a password and an SMS code cannot reach the class.
    let csrf = form_value(&html, "csrf").unwrap();
    let flow = form_value(&html, "flow").unwrap();
    let res = browser
        .browser
        .post(browser.url("/AK00/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("flow", flow.as_str()),
            ("email", "anna@example.ch"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(unescape(&res.text().await.unwrap()).contains("Clé d'accès requise"));

    let res = log_in_with_passkey(&browser, &mut device, &login).await;
    assert_eq!(res.status(), 303);
    let res = browser.resumed(res).await;
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(callback.starts_with(PORTAL_REDIRECT), "{callback}");
    let tokens = browser.portal_tokens("AK00", &callback).await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], acr::PHISHING_RESISTANT);
    assert_eq!(id_token["amr"], json!(["hwk", "user"]));
    assert_eq!(id_token["nonce"], "n-1");

    // That session answers a later request for password and SMS without a new login.
    let res = browser
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
                ("acr_values", acr::MFA),
            ],
        )
        .await;
    assert!(
        location(&res).starts_with(PORTAL_REDIRECT),
        "a stronger class meets a weaker ask"
    );
}

#[tokio::test]
async fn a_removed_passkey_no_longer_logs_in_and_a_renamed_one_shows_its_new_name() {
    let (app, _realms) = spawn_passkey_app().await;
    let (anna, mut device) = anna_with_a_passkey(&app).await;
    let realm = realm("AK00");
    let key = passkeys::of_account(&app.state.db, &realm, &anna)
        .await
        .unwrap()
        .pop()
        .expect("stored");

    // Renamed.
    let rename = format!("/AK00/account/passkeys/{}/rename", key.id);
    let res = app.fill(&rename, &[("name", "")]).await;
    assert_eq!(res.status(), 422, "a name is needed");
    let long = "x".repeat(61);
    let res = app.fill(&rename, &[("name", long.as_str())]).await;
    assert_eq!(res.status(), 422, "at most 60 characters");
    let res = app.fill(&rename, &[("name", "Téléphone pro")]).await;
    assert_eq!(res.status(), 303);
    let html = unescape(
        &app.get(&app.url(&location(&res)))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        html.contains("La clé d'accès a été renommée « Téléphone pro »."),
        "{html}"
    );
    assert!(app
        .mail_outbox()
        .iter()
        .any(|m| m.subject.starts_with("Clé d'accès renommée")));

    // Another person cannot reach it.
    let bob = TestApp::sharing(&app);
    bob.create_account("AK00", "bob@example.ch").await;
    log_in_with_password(&bob, "bob@example.ch").await;
    let res = bob.get(&bob.url(&rename)).await;
    assert_eq!(res.status(), 404);
    let remove = format!("/AK00/account/passkeys/{}/remove", key.id);
    let res = bob.get(&bob.url(&remove)).await;
    assert_eq!(res.status(), 404);

    // Removed, after the gate and a page that says what follows.
    let res = app.get(&app.url(&remove)).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=passkeys");
    app.step_up("passkeys").await;
    let page = app.get(&app.url(&remove)).await;
    assert_eq!(page.status(), 200);
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("« Téléphone pro »"), "{html}");
    let res = app.submit_on(&html, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/account/passkeys?done=removed");
    assert!(passkeys::of_account(&app.state.db, &realm, &anna)
        .await
        .unwrap()
        .is_empty());
    assert!(app
        .mail_outbox()
        .iter()
        .any(|m| m.subject.starts_with("Clé d'accès supprimée")));
    let kinds = audit_kinds(&app, &anna).await;
    for kind in ["passkey_added", "passkey_renamed", "passkey_removed"] {
        assert!(kinds.iter().any(|(k, _)| k == kind), "{kind} audited");
    }

    let fresh = TestApp::sharing(&app);
    let res = log_in_with_passkey(&fresh, &mut device, "/AK00/login").await;
    assert_eq!(res.status(), 401);
    let html = unescape(&res.text().await.unwrap());
    assert!(
        html.contains("n'est enregistrée pour aucun compte"),
        "{html}"
    );
}

#[tokio::test]
async fn a_challenge_answers_once_in_the_browser_that_asked_and_only_for_its_own_ceremony() {
    let (app, _realms) = spawn_passkey_app().await;
    let (anna, mut device) = anna_with_a_passkey(&app).await;
    let browser = TestApp::sharing(&app);

    // The answer to another ceremony's challenge.
    let (csrf, _, first) = login_ceremony(&browser, "/AK00/login").await;
    let second = login_options(&browser, &csrf, None).await;
    let signed_second = device.assert(&second["publicKey"]);
    let res = post_assertion(
        &browser,
        &csrf,
        None,
        first["ceremony"].as_str().unwrap(),
        &signed_second,
    )
    .await;
    assert_eq!(res.status(), 401, "wrong challenge");
    assert!(unescape(&res.text().await.unwrap()).contains("n'a pas pu être vérifiée"));

    // The right one, once; the same assertion again finds its ceremony gone.
    let ceremony = second["ceremony"].as_str().unwrap();
    let res = post_assertion(&browser, &csrf, None, ceremony, &signed_second).await;
    assert_eq!(res.status(), 303, "logged in");
    let res = post_assertion(&browser, &csrf, None, ceremony, &signed_second).await;
    assert_eq!(res.status(), 400, "replayed: the ceremony is over");
    // Replayed into a new ceremony: its challenge is another.
    let third = login_options(&browser, &csrf, None).await;
    let res = post_assertion(
        &browser,
        &csrf,
        None,
        third["ceremony"].as_str().unwrap(),
        &signed_second,
    )
    .await;
    assert_eq!(res.status(), 401, "replayed assertion");

    // A ceremony started in one browser cannot be finished in another.
    let thief = TestApp::sharing(&app);
    let (thief_csrf, _, _) = login_ceremony(&thief, "/AK00/login").await;
    let (_, _, victim) = login_ceremony(&browser, "/AK00/login").await;
    let signed = device.assert(&victim["publicKey"]);
    let res = post_assertion(
        &thief,
        &thief_csrf,
        None,
        victim["ceremony"].as_str().unwrap(),
        &signed,
    )
    .await;
    assert_eq!(res.status(), 400, "another browser's ceremony");

    // Nothing, or no credential at all.
    let (csrf, _, options) = login_ceremony(&browser, "/AK00/login").await;
    let ceremony = options["ceremony"].as_str().unwrap();
    let res = post_assertion(&browser, &csrf, None, ceremony, "").await;
    assert_eq!(res.status(), 400);
    assert!(unescape(&res.text().await.unwrap()).contains("Aucune clé d'accès n'a été reçue"));
    let res = post_assertion(&browser, &csrf, None, ceremony, "{\"id\":1}").await;
    assert_eq!(res.status(), 401, "malformed");

    let refused: Vec<String> = audit_kinds(&app, &anna)
        .await
        .into_iter()
        .filter(|(k, d)| k == "login_failed" && d["factor"] == "passkey")
        .map(|(_, d)| d["refused"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(refused.contains(&"invalid".to_owned()), "{refused:?}");
}

#[tokio::test]
async fn a_credential_counts_for_its_own_account_and_realm_and_its_counter_must_grow() {
    let (app, _realms) = spawn_passkey_app().await;
    let (anna, mut device) = anna_with_a_passkey(&app).await;
    let bob = app.create_account("AK00", "bob@example.ch").await;

    // Anna's credential presented as Bob's (the user handle is not signed).
    let browser = TestApp::sharing(&app);
    let (csrf, _, options) = login_ceremony(&browser, "/AK00/login").await;
    let mut forged = device.sign(&options["publicKey"], 0);
    let bob_handle = uuid::Uuid::parse_str(&bob).unwrap().as_bytes().to_vec();
    forged.response.user_handle = Some(bob_handle.into());
    let forged = serde_json::to_string(&forged).unwrap();
    let res = post_assertion(
        &browser,
        &csrf,
        None,
        options["ceremony"].as_str().unwrap(),
        &forged,
    )
    .await;
    assert_eq!(res.status(), 401, "another account's handle");
    assert!(audit_kinds(&app, &anna)
        .await
        .iter()
        .any(|(k, d)| k == "login_failed" && d["refused"] == "other_account"));

    // The realm AK01 knows no passkey of AK00.
    let page = browser.get(&browser.url("/AK01/login")).await;
    let html = page.text().await.unwrap();
    let csrf01 = form_value(&html, "csrf").unwrap();
    let res = browser
        .browser
        .post(browser.url("/AK01/login/passkey/options"))
        .form(&[("csrf", csrf01.as_str())])
        .send()
        .await
        .unwrap();
    let options01: Value = res.json().await.unwrap();
    let signed = device.assert(&options01["publicKey"]);
    let res = browser
        .browser
        .post(browser.url("/AK01/login/passkey"))
        .form(&[
            ("csrf", csrf01.as_str()),
            ("ceremony", options01["ceremony"].as_str().unwrap()),
            ("credential", signed.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "unknown in another realm");

    // A counter that does not grow: the stored one is ahead of the authenticator's.
    let realm = realm("AK00");
    let key = passkeys::of_account(&app.state.db, &realm, &anna)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let mut credential: Value = serde_json::from_str(&key.credential).unwrap();
    credential["cred"]["counter"] = json!(1000);
    let ahead = credential.to_string();
    assert!(
        passkeys::used(&app.state.db, &realm, &key.id, &key.credential, &ahead, 0)
            .await
            .unwrap()
    );
    let res = log_in_with_passkey(&browser, &mut device, "/AK00/login").await;
    assert_eq!(res.status(), 401, "cloned authenticator");
    assert!(audit_kinds(&app, &anna)
        .await
        .iter()
        .any(|(k, d)| k == "login_failed" && d["refused"] == "counter"));
}

#[tokio::test]
async fn adding_a_passkey_needs_a_recent_proof_a_name_and_the_same_session() {
    let (app, _realms) = spawn_passkey_app().await;
    // Without a session: the login.
    let res = app.get(&app.url("/AK00/account/passkeys/new")).await;
    assert_eq!(location(&res), "/AK00/login");
    app.create_account("AK00", "anna@example.ch").await;
    log_in_with_password(&app, "anna@example.ch").await;
    // A session alone is not enough: the gate asks for password and code first.
    let res = app.get(&app.url("/AK00/account/passkeys/new")).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=passkeys");
    let overview = app
        .get(&app.url("/AK00/account"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = form_value(&overview, "csrf").unwrap();
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/options"))
        .form(&[("csrf", csrf.as_str()), ("name", "Clé")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "no ceremony before the proof");
    assert_eq!(
        res.text().await.unwrap(),
        "",
        "a bare status for the script"
    );
    assert_eq!(app.step_up("passkeys").await, "/AK00/account/passkeys");

    let page = app.get(&app.url("/AK00/account/passkeys/new")).await;
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf").unwrap();
    // No name: the options are refused and the form says why.
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/options"))
        .form(&[("csrf", csrf.as_str()), ("name", " ")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", " "),
            ("ceremony", ""),
            ("credential", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(
        unescape(&res.text().await.unwrap()).contains("Veuillez donner un nom à la clé d'accès.")
    );
    // No credential (no script): the form says what is needed.
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Clé"),
            ("ceremony", ""),
            ("credential", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(unescape(&res.text().await.unwrap()).contains("doit autoriser JavaScript"));
    // Without CSRF token.
    let res = app
        .browser
        .post(app.url("/AK00/account/passkeys/options"))
        .form(&[("csrf", "forged"), ("name", "Clé")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A ceremony of another session is no ceremony here.
    let mut device = Device::new(&app);
    let started = registration_options(&app, &csrf, "Clé").await;
    let credential = device.create(&started["publicKey"]);
    let other = TestApp::sharing(&app);
    log_in_with_password(&other, "anna@example.ch").await;
    other.step_up("passkeys").await;
    let other_page = other.get(&other.url("/AK00/account/passkeys/new")).await;
    let other_csrf = form_value(&other_page.text().await.unwrap(), "csrf").unwrap();
    let res = other
        .browser
        .post(other.url("/AK00/account/passkeys/new"))
        .form(&[
            ("csrf", other_csrf.as_str()),
            ("name", "Clé"),
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", credential.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "another session's ceremony");

    // Later, the proof is no longer fresh: the person proves her factors again first.
    app.advance(3600);
    let res = app.get(&app.url("/AK00/account/passkeys/new")).await;
    assert_eq!(location(&res), "/AK00/account/confirm?next=passkeys");
}

#[tokio::test]
async fn passkeys_are_not_offered_where_the_server_has_no_host_name() {
    // The test server's public URL is http://127.0.0.1:<port>.
    let app = spawn_app().await;
    let html = app.get(&app.url("/AK00/login")).await.text().await.unwrap();
    assert!(!html.contains("passkey.js"));
    assert!(!html.contains("webauthn"));
    let csrf = form_value(&html, "csrf").unwrap();
    let res = app
        .browser
        .post(app.url("/AK00/login/passkey/options"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The script itself is served with the pages' CSP allowing it.
    let js = app.get(&app.url("/static/passkey.js")).await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}
