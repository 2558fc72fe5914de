//! Staff of the support desk (issue 13): `connect admin staff add` creates Eva's account in
//! the staff realm and mails her a single-use link; the link's pages take her names, a
//! password and the terms, then register her passkey; from then on she logs in to the
//! staff realm with the passkey alone, never with a password, and the consoles' client gets
//! an ID token with the phishing-resistant class.

use connect::{
    domain::acr,
    storage::{accounts, staff},
};
use serde_json::Value;

use crate::{admin::Admin, helpers::*};

const EVA: &str = "eva@caisse.ch";

/// `connect admin staff <args>` as operator `desk-lead`.
fn staff_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["staff"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--operator", "desk-lead"]);
    all
}

fn add_eva(admin: &Admin<'_>) -> String {
    admin.ok(&staff_args(&[
        "add",
        "--realm",
        "STAFF",
        "--email",
        EVA,
        "--role",
        "support",
        "--caisse",
        "AK00,AK01",
    ]))
}

async fn staff_events(app: &TestApp) -> Vec<(String, Value, Option<String>, Option<String>)> {
    connect::storage::audit::list(&app.state.db, &realm("STAFF"), None, 0)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| {
            (
                e.kind,
                serde_json::from_str(&e.detail).unwrap_or(Value::Null),
                e.operator,
                e.reason,
            )
        })
        .collect()
}

async fn eva(app: &TestApp) -> Option<accounts::Account> {
    accounts::by_email(&app.state.db, &realm("STAFF"), &EVA.parse().unwrap())
        .await
        .unwrap()
}

/// The console client's authorization request for AK00's console, at the test's base.
fn console_authorize(app: &TestApp, acr_values: Option<&str>) -> String {
    let callback = app.url("/AK00/console/callback");
    let mut query = vec![
        ("client_id", "console"),
        ("redirect_uri", callback.as_str()),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st"),
        ("nonce", "n-staff"),
        ("code_challenge", PORTAL_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    if let Some(a) = acr_values {
        query.push(("acr_values", a));
    }
    let query = serde_urlencoded::to_string(&query).unwrap();
    format!("/STAFF/authorize?{query}")
}

/// The console's code exchange (a public client: PKCE, no secret); the ID token's claims.
async fn console_id_token(app: &TestApp, callback: &str) -> Value {
    let code = query_param(callback, "code").expect("a code in the callback");
    let redirect = app.url("/AK00/console/callback");
    let res = app
        .token(
            "STAFF",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "console"),
                ("code", code.as_str()),
                ("redirect_uri", redirect.as_str()),
                ("code_verifier", PORTAL_VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200, "code exchange");
    let tokens: Value = res.json().await.unwrap();
    jsonwebtoken::dangerous::insecure_decode::<Value>(tokens["id_token"].as_str().unwrap())
        .unwrap()
        .claims
}

fn fresh_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

#[tokio::test]
async fn eva_is_added_enrols_with_a_passkey_and_logs_in_to_the_console_with_it_alone() {
    let (app, _realms) = spawn_console_app().await;
    let admin = Admin::new(&app);
    let out = add_eva(&admin);
    assert!(out.contains("added as support"), "{out}");

    // Her account waits: it cannot log in, it has no AHV number and no phone.
    let waiting = eva(&app).await.expect("an account");
    assert_eq!(waiting.status, accounts::AccountStatus::Invited);
    assert!(!waiting.may_log_in(app.clock().unix()));
    assert!(waiting.ahv.is_none() && waiting.phone.is_none());
    let member = staff::by_account(&app.state.db, &realm("STAFF"), &waiting.id)
        .await
        .unwrap()
        .expect("a staff member");
    assert_eq!(member.caisses, vec![realm("AK00"), realm("AK01")]);
    assert_eq!(member.created_by, "desk-lead");
    let events = staff_events(&app).await;
    assert_eq!(events.len(), 1, "one event: {events:?}");
    assert_eq!(events[0].0, "staff_added");
    assert_eq!(events[0].2.as_deref(), Some("desk-lead"));

    // The mail carries the link; the link's token is nowhere in the database or the trail.
    let mail = app.mail_outbox().pop().expect("the invitation mail");
    assert_eq!(mail.to, EVA);
    assert!(
        mail.subject.starts_with("Votre accès au support"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("72 heures"), "{}", mail.text);
    let link = invitation_link(&app, EVA);
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    let trail = format!("{events:?}");
    assert!(!trail.contains(&token));

    // The first page: names empty, the password rule, the terms; then the passkey.
    let browser = TestApp::sharing(&app);
    let page = browser.get(&browser.url(&link)).await;
    assert_eq!(page.status(), 200);
    let html = unescape(&page.text().await.unwrap());
    assert!(
        html.contains("Ouverture de votre accès au support"),
        "{html}"
    );
    assert!(html.contains("value=\"\""), "names start empty");
    assert!(html.contains("Chaque action est enregistrée avec votre nom"));
    // Until the passkey is registered, nothing opens.
    let res = browser
        .fill(
            &link,
            &[
                ("given_name", "Eva"),
                ("family_name", "Keller"),
                ("password", "kurz"),
                ("confirm", "kurz"),
                ("terms", "accept"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400, "the realm's password policy");
    let (_, res) = enrol_staff(&browser, &link).await;
    assert_eq!(location(&res), "/STAFF/staff/done");
    let done = browser.get(&browser.url("/STAFF/staff/done")).await;
    assert_eq!(done.status(), 200);
    let html = unescape(&done.text().await.unwrap());
    assert!(html.contains("href=\"/AK00/console\""), "{html}");
    assert!(html.contains("href=\"/AK01/console\""), "{html}");
    let open = eva(&app).await.unwrap();
    assert_eq!(open.status, accounts::AccountStatus::Active);
    assert_eq!(
        (open.given_name.as_str(), open.family_name.as_str()),
        ("Eva", "Keller")
    );
    assert!(open.terms_version.is_some());
    // (Sorted: the command ran on the system clock, the server on the test's.)
    let mut kinds: Vec<String> = staff_events(&app).await.into_iter().map(|e| e.0).collect();
    kinds.sort();
    assert_eq!(kinds, ["staff_added", "staff_enrolled"]);

    // Logging in (Max, enrolled by the tests' helper the same way): his device in a fresh
    // browser, the console client, and an acr_values of password+SMS that does not weaken
    // the staff realm's login.
    let device = enrolled_staff(&app, "max@caisse.ch", "supervisor", &["AK00"]).await;
    let res = device
        .log_in(
            &app,
            &fresh_browser(),
            &console_authorize(&app, Some(acr::MFA)),
        )
        .await;
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(
        callback.starts_with(&app.url("/AK00/console/callback?code=")),
        "{callback}"
    );
    let id_token = console_id_token(&app, &callback).await;
    assert_eq!(id_token["acr"], acr::PHISHING_RESISTANT);
    assert_eq!(id_token["sub"], device.account_id);
    assert_eq!(id_token["aud"], serde_json::json!(["console"]));
}

#[tokio::test]
async fn a_password_never_logs_in_to_the_staff_realm_and_its_person_pages_do_not_exist() {
    let (app, _realms) = spawn_console_app().await;
    enrolled_staff(&app, EVA, "support", &["AK00"]).await;
    let browser = TestApp::sharing(&app);
    let res = browser.get(&app.url(&console_authorize(&app, None))).await;
    let login = location(&res);
    assert!(login.starts_with("/STAFF/login?flow="), "{login}");
    let page = browser.get(&browser.url(&login)).await;
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("Connexion du support"), "{html}");
    assert!(!html.contains("name=\"password\""), "no password field");
    assert!(!html.contains("/STAFF/register") && !html.contains("/STAFF/password/forgot"));

    // Her right password, posted anyway, is not even checked: the passkey page again.
    let csrf = form_value(&html, "csrf").unwrap();
    let flow = form_value(&html, "flow").unwrap();
    let res = browser
        .browser
        .post(browser.url("/STAFF/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("flow", flow.as_str()),
            ("email", EVA),
            ("password", "Schalter-Bern-2026"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(!browser.has_session().await);
    let failures = staff_events(&app).await;
    assert!(!failures.iter().any(|e| e.0 == "login_succeeded"));

    for path in [
        "/STAFF/register",
        "/STAFF/password/forgot",
        "/STAFF/phone/lost",
        "/STAFF/login/sms",
        "/STAFF/login/app",
        "/STAFF/login/recovery-code",
        "/STAFF/account",
        "/STAFF/account/app",
        "/STAFF/account/passkeys",
    ] {
        let res = browser.get(&browser.url(path)).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    // And a caisse has no staff enrolment.
    let res = browser.get(&browser.url("/AK00/staff/enrol/abc")).await;
    assert_eq!(res.status(), 404);
    let res = browser.get(&browser.url("/AK00/register")).await;
    assert_eq!(res.status(), 200, "a caisse keeps its enrolment");
}

/// The page a link answers, status and text, with the link's token taken out (the
/// language switcher names the page's own path).
async fn link_page(app: &TestApp, link: &str) -> (u16, String) {
    let res = app.get(&app.url(link)).await;
    let status = res.status().as_u16();
    let token = link.rsplit('/').next().unwrap();
    (status, res.text().await.unwrap().replace(token, "TOKEN"))
}

#[tokio::test]
async fn a_link_works_once_and_for_invitation_hours_and_a_bad_link_looks_like_both() {
    let (app, _realms) = spawn_console_app().await;
    let admin = Admin::new(&app);
    let unknown = link_page(
        &app,
        "/STAFF/staff/enrol/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(unknown.0, 410);
    assert!(unescape(&unknown.1).contains("Ce lien d'invitation n'est pas ou plus valable"));

    // Spent: Eva enrolled with it.
    enrolled_staff(&app, EVA, "support", &["AK00"]).await;
    let spent = link_page(&app, &invitation_link(&app, EVA)).await;
    assert_eq!(spent, unknown, "spent and unknown look alike");
    let refused = admin.fails(&staff_args(&["invite", "--realm", "STAFF", "--email", EVA]));
    assert!(refused.contains("finished the enrolment"), "{refused}");

    // Revoked: Max's first link, once `staff invite` sent him a second one.
    admin.ok(&staff_args(&[
        "add",
        "--realm",
        "STAFF",
        "--email",
        "max@caisse.ch",
        "--role",
        "support",
        "--caisse",
        "AK00",
    ]));
    let first = invitation_link(&app, "max@caisse.ch");
    assert_eq!(link_page(&app, &first).await.0, 200);
    let out = admin.ok(&staff_args(&[
        "invite",
        "--realm",
        "STAFF",
        "--email",
        "max@caisse.ch",
    ]));
    assert!(out.contains("new invitation"), "{out}");
    let second = invitation_link(&app, "max@caisse.ch");
    assert_ne!(first, second);
    assert_eq!(link_page(&app, &second).await.0, 200);
    assert_eq!(
        link_page(&app, &first).await,
        unknown,
        "revoked looks alike"
    );

    // Expired: Max waits longer than invitation_hours (72).
    app.advance(72 * 3600 - 60);
    assert_eq!(link_page(&app, &second).await.0, 200, "still valid");
    app.advance(61);
    assert_eq!(
        link_page(&app, &second).await,
        unknown,
        "expired looks alike"
    );
    // A new invitation works again (sent through the command's service: the command runs
    // on the system clock, which the test's clock has left behind).
    let staff_realm = app.state.realms.get(&realm("STAFF")).unwrap().clone();
    let by = connect::staff::By {
        operator: "desk-lead",
        reason: None,
    };
    app.state
        .staff
        .invite(&staff_realm, &"max@caisse.ch".parse().unwrap(), by)
        .await
        .unwrap();
    let third = invitation_link(&app, "max@caisse.ch");
    assert_eq!(link_page(&app, &third).await.0, 200);
    let kinds: Vec<String> = staff_events(&app).await.into_iter().map(|e| e.0).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "staff_invited").count(), 2);
}

#[tokio::test]
async fn an_address_that_is_staff_already_or_a_bad_realm_is_refused_and_nothing_is_written() {
    let (app, _realms) = spawn_console_app().await;
    let admin = Admin::new(&app);
    add_eva(&admin);
    let mails = app.mail_outbox().len();
    let events = staff_events(&app).await.len();
    let err = admin.fails(&staff_args(&[
        "add",
        "--realm",
        "STAFF",
        "--email",
        "EVA@caisse.ch",
        "--role",
        "supervisor",
        "--caisse",
        "AK01",
    ]));
    assert!(err.contains("is staff already; nothing written"), "{err}");
    for (args, says) in [
        (
            vec![
                "add",
                "--realm",
                "AK00",
                "--email",
                "x@caisse.ch",
                "--role",
                "support",
                "--caisse",
                "AK00",
            ],
            "not a staff realm",
        ),
        (
            vec![
                "add",
                "--realm",
                "STAFF",
                "--email",
                "x@caisse.ch",
                "--role",
                "support",
                "--caisse",
                "STAFF",
            ],
            "not a caisse whose console names STAFF",
        ),
        (
            vec![
                "add",
                "--realm",
                "STAFF",
                "--email",
                "x@caisse.ch",
                "--role",
                "boss",
                "--caisse",
                "AK00",
            ],
            "support",
        ),
        (
            vec!["remove", "--realm", "STAFF", "--email", EVA],
            "--reason is required",
        ),
    ] {
        let err = admin.fails(&staff_args(&args));
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(app.mail_outbox().len(), mails, "no mail");
    assert_eq!(staff_events(&app).await.len(), events, "no event");
    let listed = staff::list(&app.state.db, &realm("STAFF")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].role.as_str(), "support");
    assert!(eva(&app).await.is_some());
    assert!(accounts::by_email(
        &app.state.db,
        &realm("STAFF"),
        &"x@caisse.ch".parse().unwrap()
    )
    .await
    .unwrap()
    .is_none());
}

#[tokio::test]
async fn a_removed_member_still_logs_in_but_is_staff_no_more() {
    let (app, _realms) = spawn_console_app().await;
    let admin = Admin::new(&app);
    let eva_device = enrolled_staff(&app, EVA, "support", &["AK00"]).await;
    let out = admin.ok(&staff_args(&[
        "remove",
        "--realm",
        "STAFF",
        "--email",
        &eva_device.email,
        "--reason",
        "left the desk, ticket 12",
    ]));
    assert!(out.contains("no longer staff"), "{out}");
    assert!(
        staff::by_account(&app.state.db, &realm("STAFF"), &eva_device.account_id)
            .await
            .unwrap()
            .is_none()
    );
    let removed = staff_events(&app)
        .await
        .into_iter()
        .find(|e| e.0 == "staff_removed")
        .expect("the removal's event");
    assert_eq!(removed.2.as_deref(), Some("desk-lead"));
    assert_eq!(removed.3.as_deref(), Some("left the desk, ticket 12"));
    // The login still works (the console decides, by the staff role, that it opens nothing).
    let res = eva_device
        .log_in(&app, &fresh_browser(), &console_authorize(&app, None))
        .await;
    assert!(location(&res).contains("code="), "{}", location(&res));
    let err = admin.fails(&staff_args(&[
        "remove", "--realm", "STAFF", "--email", EVA, "--reason", "again",
    ]));
    assert!(err.contains("no staff member"), "{err}");
}

#[tokio::test]
async fn the_list_shows_roles_caisses_and_enrolment_and_set_changes_them() {
    let (app, _realms) = spawn_console_app().await;
    let admin = Admin::new(&app);
    add_eva(&admin);
    enrolled_staff(&app, "max@caisse.ch", "supervisor", &["AK01"]).await;
    let text = admin.ok(&["staff", "list", "--realm", "STAFF"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(EVA) && lines[0].contains("AK00,AK01"),
        "{text}"
    );
    assert!(lines[0].contains("invited, link valid until"), "{text}");
    assert!(
        lines[1].contains("supervisor") && lines[1].contains("enrolled"),
        "{text}"
    );

    admin.ok(&staff_args(&[
        "set",
        "--realm",
        "STAFF",
        "--email",
        EVA,
        "--role",
        "supervisor",
        "--caisse",
        "AK01",
    ]));
    let json: Value =
        serde_json::from_str(&admin.ok(&["staff", "list", "--realm", "STAFF", "--json"])).unwrap();
    assert_eq!(json[0]["email"], EVA);
    assert_eq!(json[0]["role"], "supervisor");
    assert_eq!(json[0]["caisses"], serde_json::json!(["AK01"]));
    assert_eq!(json[0]["enrolled"], false);
    assert!(json[0]["invitation_expires_at"].is_i64());
    assert_eq!(json[1]["enrolled"], true);
    assert_eq!(json[1]["created_by"], "test");
    let changed = staff_events(&app)
        .await
        .into_iter()
        .find(|e| e.0 == "staff_changed")
        .expect("the change's event");
    assert_eq!(changed.1["role"]["from"], "support");
    assert_eq!(changed.1["caisses"]["to"], serde_json::json!(["AK01"]));
    let err = admin.fails(&staff_args(&["set", "--realm", "STAFF", "--email", EVA]));
    assert!(err.contains("give --role, --caisse or both"), "{err}");
}
