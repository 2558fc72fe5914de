//! The support desk's console: a staff member finds the person on the phone and helps them.

use connect::{
    domain::Language,
    storage::{
        accounts,
        lookup::{self, Lookup},
        persons::{self, Person, PostalAddress},
    },
};

use crate::helpers::*;

/// Anna Muster's AHV number, the one `create_account` gives anna@example.ch.
const ANNA: &str = "756.1234.5678.97";

async fn register(app: &TestApp, ahv: &str, given: &str, family: &str, born: &str) -> Person {
    let person = Person {
        ahv: ahv.parse().expect("ahv"),
        given_name: given.into(),
        family_name: family.into(),
        birth_date: born.parse().expect("date"),
        language: Language::Fr,
        address: PostalAddress::default(),
    };
    persons::add(&app.state.db, &realm("AK00"), &person, app.clock().unix())
        .await
        .expect("person");
    person
}

fn names(found: &[lookup::Found]) -> Vec<String> {
    found
        .iter()
        .map(|f| format!("{} {}", f.given_name, f.family_name))
        .collect()
}

#[tokio::test]
async fn the_search_finds_a_caller_by_what_they_say_on_the_phone() {
    let app = spawn_app().await;
    register(&app, ANNA, "Anna", "Muster", "1950-03-14").await;
    register(&app, &ahv(2), "Éric", "Rochat", "1948-11-02").await;
    register(&app, &ahv(3), "Hans", "Müller", "1950-03-14").await;
    register(&app, &ahv(4), "Anna", "Keller", "1961-07-30").await;
    register(&app, &ahv(5), "Léa", "Du_Pont", "1961-07-30").await;
    // Anna Muster has an account.
    let anna = app.create_account("AK00", "anna@example.ch").await;
    let search = |text: &'static str| {
        let app = &app;
        async move {
            let lookup = connect_lookup(text);
            lookup::search(&app.state.db, &realm("AK00"), &lookup)
                .await
                .expect("search")
        }
    };
    // An AHV number in any formatting.
    for text in [ahv(2), ahv(2).replace('.', ""), ahv(2).replace('.', " ")] {
        let found = lookup::search(&app.state.db, &realm("AK00"), &connect_lookup(&text))
            .await
            .expect("search");
        assert_eq!(names(&found), ["Éric Rochat"], "{text}");
        assert!(found[0].account_id.is_none());
    }
    // A birth date, in Swiss or ISO writing: two persons, by family name.
    assert_eq!(
        names(&search("14.03.1950").await),
        ["Anna Muster", "Hans Müller"]
    );
    assert_eq!(
        names(&search("1950-03-14").await),
        ["Anna Muster", "Hans Müller"]
    );
    // A name: each word starts the given or the family name, in any case, accents kept.
    assert_eq!(names(&search("anna").await), ["Anna Keller", "Anna Muster"]);
    assert_eq!(names(&search("MUST anna").await), ["Anna Muster"]);
    assert_eq!(names(&search("éric").await), ["Éric Rochat"]);
    assert_eq!(names(&search("müll").await), ["Hans Müller"]);
    // The operator's % and _ are letters, not wildcards.
    assert_eq!(names(&search("du_").await), ["Léa Du_Pont"]);
    assert!(search("d_").await.is_empty());
    assert!(search("%").await.is_empty());
    // An e-mail address finds the account, with the person of the register.
    let found = search("ANNA@example.ch").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].account_id.as_deref(), Some(anna.as_str()));
    assert!(found[0].person_id.is_some());
    assert_eq!(found[0].birth_date.as_deref(), Some("1950-03-14"));
    // The person found by name shows the account too.
    let found = search("muster").await;
    assert_eq!(found[0].account_id.as_deref(), Some(anna.as_str()));
    // Nothing of another caisse.
    let other = lookup::search(&app.state.db, &realm("AK01"), &connect_lookup("anna"))
        .await
        .expect("search");
    assert!(other.is_empty());
}

fn connect_lookup(text: &str) -> Lookup {
    connect::console::parse_lookup(text).expect("a readable search")
}

// ---- The console over HTTP, with a staff login through the staff realm ----

/// A staff member's browser at a caisse's console, after the passkey login.
struct Desk {
    browser: TestApp,
    /// `http://localhost:<port>/<CAISSE>/console`: the public URL, where the cookies live.
    base: String,
}

impl Desk {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.browser.get(&format!("{}{path}", self.base)).await
    }

    /// The CSRF token of the console's pages.
    async fn csrf(&self) -> String {
        let html = self.get("").await.text().await.expect("html");
        form_value(&html, "csrf").expect("csrf")
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.browser
            .browser
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// The person's page (`/people/<handle>`, under the console) of the first result for `q`.
    async fn find(&self, q: &str) -> String {
        let res = self.post("/search", &[("q", q)]).await;
        assert_eq!(res.status(), 200, "search {q}");
        let html = unescape(&res.text().await.expect("html"));
        let at = html
            .find("/console/people/")
            .unwrap_or_else(|| panic!("a result for {q}"))
            + "/console".len();
        let rest = &html[at..];
        rest[..rest.find('"').expect("end")].to_owned()
    }

    /// Does `action` on the person's page with `reason`.
    async fn act(&self, person: &str, action: &str, reason: &str) -> reqwest::Response {
        self.post(&format!("{person}/{action}"), &[("reason", reason)])
            .await
    }
}

fn public_base(app: &TestApp) -> String {
    app.state
        .config
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// The console's login: the console sends the browser to the staff realm, the passkey logs
/// in, the callback starts the console's session.
async fn console_login(app: &TestApp, staff: &StaffDevice, caisse: &str) -> Desk {
    let browser = TestApp::sharing(app);
    let public = public_base(app);
    let base = format!("{public}/{caisse}/console");
    let res = browser.get(&base).await;
    assert_eq!(res.status(), 303, "no console session: the login");
    assert_eq!(location(&res), format!("/{caisse}/console/login"));
    let res = browser.get(&format!("{base}/login")).await;
    assert_eq!(res.status(), 303);
    let authorize = location(&res);
    assert!(
        authorize.starts_with(&format!("{public}/STAFF/authorize?")),
        "{authorize}"
    );
    assert!(authorize.contains("acr_values=urn%3Aconnect%3Aacr%3Aphishing-resistant"));
    assert!(authorize.contains("code_challenge_method=S256"));
    let res = staff.log_in(app, &browser.browser, &authorize).await;
    let callback = location(&res);
    assert!(
        callback.starts_with(&format!("{base}/callback?")),
        "{callback}"
    );
    let res = browser.get(&callback).await;
    assert_eq!(res.status(), 303, "the callback starts the console");
    assert_eq!(location(&res), format!("/{caisse}/console"));
    Desk { browser, base }
}

/// Anna of AK00: in the register (born 14.03.1950) with an account, a number and a code of
/// her own outstanding nowhere.
async fn anna(app: &TestApp) -> String {
    register(app, ANNA, "Anna", "Muster", "1950-03-14").await;
    app.create_account("AK00", "anna@example.ch").await
}

async fn support_events(app: &TestApp, account: &str) -> Vec<connect::storage::audit::StoredEvent> {
    connect::storage::audit::list(&app.state.db, &realm("AK00"), Some(account), 0)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.operator.is_some())
        .collect()
}

#[tokio::test]
async fn a_support_agent_finds_anna_by_her_ahv_number_and_resets_her_lost_phone() {
    let (app, _realms) = spawn_console_app().await;
    let anna = anna(&app).await;
    let eva = enrolled_staff(&app, "eva.keller@ak00.example", "support", &["AK00"]).await;
    let desk = console_login(&app, &eva, "AK00").await;
    let home = desk.get("").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.expect("html");
    assert!(html.contains("eva.keller@ak00.example"), "who is logged in");

    // The number as read over the phone, without dots.
    let person = desk.find(&ANNA.replace('.', "")).await;
    let page = desk.get(&person).await;
    assert_eq!(page.status(), 200);
    let html = unescape(&page.text().await.expect("html"));
    assert!(
        html.contains("anna@example.ch") && html.contains(ANNA),
        "register and account"
    );
    assert!(html.contains("+41 79 *** ** 67"), "the number masked");
    assert!(
        !html.contains("+41791234567") && !html.contains("$argon2"),
        "nothing secret"
    );
    assert!(html.contains("/reset-phone"), "support may reset the phone");
    assert!(!html.contains("/close\""), "closing is the supervisor's");

    // No reason: nothing happens, and the page says why.
    let res = desk.act(&person, "reset-phone", "   ").await;
    assert_eq!(res.status(), 400);
    assert!(support_events(&app, &anna).await.is_empty());
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert!(account.phone.is_some());

    let res = desk
        .act(
            &person,
            "reset-phone",
            "Call 29.11., phone stolen, ticket 4711",
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("/AK00/console{person}?done=reset-phone")
    );
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert!(account.phone.is_none() && account.phone_reset_at.is_some());
    let events = support_events(&app, &anna).await;
    assert_eq!(events.len(), 1, "exactly one audit entry");
    assert_eq!(events[0].kind, "second_factors_removed");
    assert_eq!(
        events[0].operator.as_deref(),
        Some("eva.keller@ak00.example")
    );
    assert_eq!(
        events[0].reason.as_deref(),
        Some("Call 29.11., phone stolen, ticket 4711")
    );
    assert!(
        app.mail_outbox().iter().any(|m| m.to == "anna@example.ch"),
        "Anna is told"
    );

    // Her own recent actions list it, with the reason.
    let mine = unescape(&desk.get("/audit").await.text().await.expect("html"));
    assert!(mine.contains("ticket 4711"));
    // A supervisor's view is not hers.
    assert_eq!(desk.get("/audit?all=1").await.status(), 403);
}

#[tokio::test]
async fn a_locked_account_and_a_lost_letter_are_handled_from_the_console() {
    let (app, _realms) = spawn_console_app().await;
    let anna = anna(&app).await;
    let hans = register(&app, &ahv(3), "Hans", "Müller", "1949-06-01").await;
    let ak00 = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let first = app
        .state
        .activation
        .issue(&ak00, &hans.ahv)
        .await
        .expect("code");
    let eva = enrolled_staff(&app, "eva.keller@ak00.example", "support", &["AK00"]).await;
    let marc = enrolled_staff(&app, "marc.favre@ak00.example", "supervisor", &["AK00"]).await;
    let desk = console_login(&app, &eva, "AK00").await;

    // A call about fraud: support locks the account.
    let person = desk.find("Muster Anna").await;
    let res = desk
        .act(
            &person,
            "lock",
            "Caller could not answer the questions, ticket 88",
        )
        .await;
    assert_eq!(res.status(), 303);
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert!(!account.may_log_in(app.clock().unix()));
    // Lifting a lock support put is the supervisor's, on the page and on the form.
    assert_eq!(desk.get(&format!("{person}/unlock")).await.status(), 403);
    assert_eq!(desk.act(&person, "unlock", "sure").await.status(), 403);
    assert_eq!(support_events(&app, &anna).await.len(), 1);
    let boss = console_login(&app, &marc, "AK00").await;
    let res = boss
        .act(&person, "unlock", "Anna came to the counter with her ID")
        .await;
    assert_eq!(res.status(), 303);
    let account = accounts::by_id(&app.state.db, &realm("AK00"), &anna)
        .await
        .unwrap()
        .unwrap();
    assert!(account.may_log_in(app.clock().unix()));
    let events = support_events(&app, &anna).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.operator.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("account_locked", Some("eva.keller@ak00.example")),
            ("account_unlocked", Some("marc.favre@ak00.example")),
        ]
    );
    // The supervisor sees both in every staff member's actions.
    let all = unescape(&boss.get("/audit?all=1").await.text().await.expect("html"));
    assert!(all.contains("ticket 88") && all.contains("counter with her ID"));

    // Hans never got his letter: a new one, printed here.
    let person = desk.find("14.03.1950").await;
    assert!(!person.is_empty());
    let person = desk.find("müller").await;
    let page = unescape(&desk.get(&person).await.text().await.expect("html"));
    assert!(
        !page.contains(&first.code.to_string()),
        "no code on any page"
    );
    let res = desk
        .post(
            &format!("{person}/letter"),
            &[("reason", "Letter lost in the post"), ("delivery", "now")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let pdf = res.bytes().await.expect("pdf");
    assert!(pdf.starts_with(b"%PDF"));
    // The first code no longer works; a new one is open.
    let open = connect::storage::activation_codes::open_code_expiry(
        &app.state.db,
        &realm("AK00"),
        &hans.ahv,
        app.clock().unix(),
    )
    .await
    .expect("db");
    assert!(open.is_some());
    let issued: Vec<_> = connect::storage::audit::list(&app.state.db, &realm("AK00"), None, 0)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Letter lost in the post"))
        .collect();
    assert_eq!(issued.len(), 1, "one entry: {issued:?}");
    assert_eq!(
        issued[0].operator.as_deref(),
        Some("eva.keller@ak00.example")
    );

    // Anna's lost-phone letter goes to the mailroom's queue.
    let person = desk.find("anna@example.ch").await;
    let res = desk
        .post(
            &format!("{person}/letter"),
            &[("reason", "New phone, ticket 90"), ("delivery", "queue")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let waiting = connect::storage::letter_requests::waiting(&app.state.db, &realm("AK00"))
        .await
        .expect("queue");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].account_id, anna);
}

/// Every page and action of the console for one person: (method, path under the console).
fn every_page_and_action(person: &str) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("GET", String::new()),
        ("POST", "/search".to_owned()),
        ("GET", person.to_owned()),
        ("GET", "/audit".to_owned()),
        ("GET", "/audit?all=1".to_owned()),
    ];
    for action in [
        "letter",
        "lock",
        "unlock",
        "disable",
        "enable",
        "reset-phone",
        "end-sessions",
        "close",
        "remove-app",
        "remove-recovery-codes",
    ] {
        all.push(("GET", format!("{person}/{action}")));
        all.push(("POST", format!("{person}/{action}")));
    }
    all
}

async fn answer(desk: &Desk, method: &str, path: &str) -> u16 {
    match method {
        "GET" => desk.get(path).await.status().as_u16(),
        _ => desk
            .post(path, &[("reason", "matrix"), ("q", "Muster")])
            .await
            .status()
            .as_u16(),
    }
}

#[tokio::test]
async fn staff_without_the_caisse_or_the_role_get_403_from_every_page_and_action() {
    let (app, _realms) = spawn_console_app().await;
    let anna = anna(&app).await;
    let now = app.clock().unix();
    // Three accounts in the states whose steps are the supervisor's.
    let bob = app.create_account("AK00", "bob@example.ch").await;
    accounts::disable(&app.state.db, &bob, now)
        .await
        .expect("disabled");
    let carla = app.create_account("AK00", "carla@example.ch").await;
    accounts::lock(&app.state.db, &carla, None, now)
        .await
        .expect("locked by support");
    let eva = enrolled_staff(&app, "eva.keller@ak00.example", "support", &["AK00"]).await;
    let desk = console_login(&app, &eva, "AK00").await;
    let anna_page = desk.find(ANNA).await;
    for (method, path) in [
        ("GET", format!("{anna_page}/close")),
        ("POST", format!("{anna_page}/close")),
        ("GET", format!("/people/a-{bob}/enable")),
        ("POST", format!("/people/a-{bob}/enable")),
        ("GET", format!("/people/a-{carla}/unlock")),
        ("POST", format!("/people/a-{carla}/unlock")),
        ("GET", "/audit?all=1".to_owned()),
    ] {
        assert_eq!(
            answer(&desk, method, &path).await,
            403,
            "support: {method} {path}"
        );
    }
    for account in [&anna, &bob, &carla] {
        assert!(
            support_events(&app, account).await.is_empty(),
            "nothing done"
        );
    }

    // A staff member whose caisse is taken away while logged in: 403 everywhere at once.
    let otto = enrolled_staff(&app, "otto@ak00.example", "supervisor", &["AK00"]).await;
    let desk = console_login(&app, &otto, "AK00").await;
    let person = desk.find(ANNA).await;
    let csrf = desk.csrf().await;
    connect::storage::staff::set(
        &app.state.db,
        &realm("STAFF"),
        &otto.account_id,
        connect::domain::StaffRole::Supervisor,
        &[realm("AK01")],
        "test",
        now,
    )
    .await
    .expect("caisses changed");
    for (method, path) in every_page_and_action(&person) {
        let status = match method {
            "GET" => desk.get(&path).await.status().as_u16(),
            _ => desk
                .browser
                .browser
                .post(format!("{}{path}", desk.base))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("reason", "matrix"),
                    ("q", "Muster"),
                ])
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16(),
        };
        assert_eq!(status, 403, "without the caisse: {method} {path}");
    }
    assert!(support_events(&app, &anna).await.is_empty(), "nothing done");

    // And one of AK01 only cannot log in to AK00's console.
    let ida = enrolled_staff(&app, "ida@ak01.example", "supervisor", &["AK01"]).await;
    let browser = TestApp::sharing(&app);
    let base = format!("{}/AK00/console", public_base(&app));
    let authorize = location(&browser.get(&format!("{base}/login")).await);
    let callback = location(&ida.log_in(&app, &browser.browser, &authorize).await);
    assert_eq!(browser.get(&callback).await.status(), 403);
    assert_eq!(browser.get(&base).await.status(), 303, "no console session");
}

#[tokio::test]
async fn the_console_ends_with_the_staff_realm_session_and_refuses_forms_from_elsewhere() {
    let (app, _realms) = spawn_console_app().await;
    anna(&app).await;
    let eva = enrolled_staff(&app, "eva.keller@ak00.example", "support", &["AK00"]).await;
    let desk = console_login(&app, &eva, "AK00").await;
    let person = desk.find(ANNA).await;
    // A form without this browser's CSRF token changes nothing.
    let res = desk
        .browser
        .browser
        .post(format!("{}{person}/lock", desk.base))
        .form(&[("csrf", "forged"), ("reason", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 403);
    // Her sessions in the staff realm end (a supervisor's action, a lock, a logout): the
    // console asks for a new login at the next click.
    let staff = app.state.realms.get(&realm("STAFF")).unwrap().clone();
    app.state
        .logouts
        .end_all(&staff, &eva.account_id)
        .await
        .expect("ended");
    let res = desk.get(&person).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/AK00/console/login");
    // Idle for more than 15 minutes: the same.
    let desk = console_login(&app, &eva, "AK00").await;
    assert_eq!(desk.get("").await.status(), 200);
    app.advance(16 * 60);
    assert_eq!(desk.get("").await.status(), 303);
}

#[tokio::test]
async fn every_other_action_does_what_it_says_with_one_audit_entry_each() {
    let (app, _realms) = spawn_console_app().await;
    let anna = anna(&app).await;
    let r = realm("AK00");
    // An app, recovery codes and a passkey to lose.
    connect::storage::totp::insert(&app.state.db, &r, &anna, "sealed", 0, app.clock().unix())
        .await
        .expect("app");
    app.state
        .recovery_codes
        .issue(&r, &anna)
        .await
        .expect("codes");
    let name: connect::domain::PasskeyName = "Clé USB".parse().unwrap();
    let passkey = connect::storage::passkeys::insert(
        &app.state.db,
        &connect::storage::passkeys::NewPasskey {
            realm: &r,
            account_id: &anna,
            credential_id: "cred-1",
            credential: "{}",
            name: &name,
        },
        app.clock().unix(),
    )
    .await
    .expect("passkey");
    let marc = enrolled_staff(&app, "marc.favre@ak00.example", "supervisor", &["AK00"]).await;
    let desk = console_login(&app, &marc, "AK00").await;
    let person = desk.find(ANNA).await;
    let page = unescape(&desk.get(&person).await.text().await.expect("html"));
    assert!(page.contains("Clé USB"), "{page}");
    assert!(
        page.contains(&format!("remove-passkey?passkey={passkey}")),
        "{page}"
    );

    let account = || async { accounts::by_id(&app.state.db, &r, &anna).await.expect("db") };
    let mut seen = 0;
    let mut step = |kind: &'static str| {
        seen += 1;
        (seen, kind)
    };
    for (action, fields, kind) in [
        ("disable", vec![], "account_disabled"),
        ("enable", vec![], "account_enabled"),
        ("end-sessions", vec![], "sessions_ended"),
        ("remove-app", vec![], "app_removed"),
        ("remove-recovery-codes", vec![], "recovery_codes_removed"),
        (
            "remove-passkey",
            vec![("passkey", passkey.as_str())],
            "passkey_removed",
        ),
    ] {
        let before = account().await.expect("account");
        let reason = format!("console test: {action}");
        let mut form = vec![("reason", reason.as_str())];
        form.extend(fields);
        let res = desk.post(&format!("{person}/{action}"), &form).await;
        assert_eq!(res.status(), 303, "{action}");
        let (n, kind) = step(kind);
        let events = support_events(&app, &anna).await;
        assert_eq!(events.len(), n, "one entry for {action}");
        let last = events.last().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.reason.as_deref()),
            (kind, Some(reason.as_str()))
        );
        let after = account().await.expect("account");
        match action {
            "disable" => assert!(!after.may_log_in(app.clock().unix())),
            "enable" => assert!(after.may_log_in(app.clock().unix())),
            "end-sessions" => assert!(after.sessions_epoch > before.sessions_epoch),
            "remove-app" => assert!(connect::storage::totp::by_account(&app.state.db, &r, &anna)
                .await
                .unwrap()
                .is_none()),
            "remove-recovery-codes" => {
                assert_eq!(app.state.recovery_codes.left(&r, &anna).await.unwrap(), 0)
            }
            _ => assert!(
                connect::storage::passkeys::of_account(&app.state.db, &r, &anna)
                    .await
                    .unwrap()
                    .is_empty()
            ),
        }
        // Nothing else: the number stays.
        assert_eq!(after.phone, before.phone, "{action}");
    }
    // A passkey that is gone: nothing to do, nothing written.
    let res = desk
        .post(
            &format!("{person}/remove-passkey"),
            &[("reason", "again"), ("passkey", &passkey)],
        )
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(support_events(&app, &anna).await.len(), 6);
    // Closing, the supervisor's: the account goes, the person stays in the register.
    let res = desk
        .act(&person, "close", "Asked in writing, letter of 28.11.")
        .await;
    assert_eq!(res.status(), 303);
    assert!(account().await.is_none());
    let found = desk.find(ANNA).await;
    let page = unescape(&desk.get(&found).await.text().await.expect("html"));
    assert!(page.contains(ANNA), "still in the register");
}

#[tokio::test]
async fn a_staff_member_who_lost_the_passkey_enrols_again_and_the_old_one_opens_nothing() {
    let (app, _realms) = spawn_console_app().await;
    anna(&app).await;
    let eva = enrolled_staff(&app, "eva.keller@ak00.example", "support", &["AK00"]).await;
    let desk = console_login(&app, &eva, "AK00").await;
    let staff = app.state.realms.get(&realm("STAFF")).unwrap().clone();
    let email: connect::domain::Email = eva.email.parse().unwrap();
    let lead = |reason| connect::staff::By {
        operator: "lead",
        reason,
    };
    // A finished member starts again only for a reason.
    assert!(app
        .state
        .staff
        .invite(&staff, &email, lead(None))
        .await
        .is_err());
    let passkeys = || async {
        connect::storage::passkeys::of_account(&app.state.db, &realm("STAFF"), &eva.account_id)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(passkeys().await, 1);
    app.state
        .staff
        .invite(&staff, &email, lead(Some("laptop stolen, ticket 12")))
        .await
        .expect("invited again");
    // The lost passkey is gone and the console closes at once.
    assert_eq!(passkeys().await, 0);
    assert_eq!(desk.get("").await.status(), 303);
    let events =
        connect::storage::audit::list(&app.state.db, &realm("STAFF"), Some(&eva.account_id), 0)
            .await
            .unwrap();
    let again: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("laptop stolen, ticket 12"))
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].kind, "staff_invited");
    // The new link, a new passkey: the console again.
    let eva = enrolled_again(&app, "eva.keller@ak00.example", &eva.account_id).await;
    let desk = console_login(&app, &eva, "AK00").await;
    assert_eq!(desk.get("").await.status(), 200);
}
