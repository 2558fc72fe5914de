//! The caisse's support desk on the command line (issue 13): `connect admin account
//! show|lock|unlock|disable|reset-phone|remove-factor|end-sessions|close` and `connect admin
//! letters queue|print`, the real binary on the test server's database. Each action writes
//! exactly one audit event with its operator and reason, changes exactly what it says and
//! tells the person; bad input changes nothing; nothing printed or audited holds a hash, a
//! code or a token.

use std::process::Output;

use connect::{
    domain::{Language, PasskeyName},
    storage::{accounts, audit::StoredEvent, letter_requests, passkeys},
};

use crate::{admin::Admin, helpers::*};

const ANNA_AHV: &str = "756.1234.5678.97";
const OPERATOR: &str = "m.rossi";
const REASON: &str = "called the support desk, ticket 4711";

/// Runs `connect admin <args>` as support: the operator and reason given, Anna by AHV number.
fn desk(admin: &Admin<'_>, action: &[&str]) -> Output {
    let mut args = vec!["account"];
    args.extend_from_slice(action);
    args.extend_from_slice(&[
        "--realm",
        "AK00",
        "--ahv",
        "7561234567897",
        "--operator",
        OPERATOR,
        "--reason",
        REASON,
    ]);
    admin.run(&args)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

async fn events(app: &TestApp) -> Vec<StoredEvent> {
    connect::storage::audit::list(&app.state.db, &realm("AK00"), None, 0)
        .await
        .unwrap()
}

async fn anna(app: &TestApp) -> Option<accounts::Account> {
    accounts::by_email(
        &app.state.db,
        &realm("AK00"),
        &"anna@example.ch".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Runs one support action and returns the one audit event it wrote; asserts there is
/// exactly one, naming the operator and the reason, and that it holds no secret.
async fn one_event(app: &TestApp, admin: &Admin<'_>, action: &[&str]) -> (String, StoredEvent) {
    let before = events(app).await.len();
    let out = ok(&desk(admin, action));
    let after = events(app).await;
    assert_eq!(
        after.len(),
        before + 1,
        "{action:?} writes exactly one audit event: {:?}",
        &after[before..]
    );
    let event = after.last().unwrap().clone();
    assert_eq!(event.operator.as_deref(), Some(OPERATOR));
    assert_eq!(event.reason.as_deref(), Some(REASON));
    assert_no_secret(app, &format!("{out}{event:?}")).await;
    (out, event)
}

/// No password hash, stored code hash or session token in `text`.
async fn assert_no_secret(app: &TestApp, text: &str) {
    assert!(!text.contains("$argon2"), "a password hash: {text}");
    if let Some(a) = anna(app).await {
        assert!(
            !text.contains(&a.password_hash),
            "the password hash: {text}"
        );
        assert!(!text.contains("+41791234567"), "the full number: {text}");
    }
}

#[tokio::test]
async fn support_locks_annas_account_with_a_reason_one_audit_entry_her_sessions_end_she_gets_a_mail(
) {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.has_session().await);

    let (out, event) = one_event(&app, &admin, &["lock"]).await;
    assert!(out.starts_with("locked"), "{out}");
    assert_eq!(event.kind, "account_locked");
    assert!(!app.has_session().await, "her session ended");
    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("bloqué"), "{}", mail.subject);
    assert_eq!(
        anna(&app).await.unwrap().status,
        accounts::AccountStatus::Locked
    );

    let (_, event) = one_event(&app, &admin, &["unlock"]).await;
    assert_eq!(event.kind, "account_unlocked");
    assert!(anna(&app).await.unwrap().active);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "she logs in again");
}

#[tokio::test]
async fn every_support_action_writes_one_event_and_changes_exactly_what_it_says() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let id = app.create_account("AK00", "anna@example.ch").await;
    let r = realm("AK00");

    let (_, e) = one_event(&app, &admin, &["disable"]).await;
    assert_eq!(e.kind, "account_disabled");
    assert_eq!(
        anna(&app).await.unwrap().status,
        accounts::AccountStatus::Disabled
    );
    assert!(last_subject(&app).contains("désactivé"));
    let (_, e) = one_event(&app, &admin, &["enable"]).await;
    assert_eq!(e.kind, "account_enabled");
    assert!(anna(&app).await.unwrap().active);

    let epoch = anna(&app).await.unwrap().sessions_epoch;
    let (out, e) = one_event(&app, &admin, &["end-sessions"]).await;
    assert!(out.contains("sessions and grants ended"), "{out}");
    assert_eq!(e.kind, "sessions_ended");
    let after = anna(&app).await.unwrap();
    assert!(after.sessions_epoch > epoch, "every session ended");
    assert_eq!(after.phone.as_deref(), Some("+41791234567"), "nothing else");
    assert!(last_subject(&app).contains("déconnecté"));

    // Recovery codes and a passkey to lose.
    app.state.recovery_codes.issue(&r, &id).await.unwrap();
    let name: PasskeyName = "Clé USB".parse().unwrap();
    let passkey = passkeys::insert(
        &app.state.db,
        &passkeys::NewPasskey {
            realm: &r,
            account_id: &id,
            credential_id: "cred-1",
            credential: "{}",
            name: &name,
        },
        app.clock().unix(),
    )
    .await
    .unwrap();

    let shown = ok(&desk(&admin, &["show"]));
    assert!(
        shown.contains(&passkey) && shown.contains("Clé USB"),
        "{shown}"
    );
    assert!(shown.contains("+41 79 *** ** 67"), "{shown}");
    assert_no_secret(&app, &shown).await;

    let (_, e) = one_event(&app, &admin, &["remove-factor", "--recovery-codes"]).await;
    assert_eq!(e.kind, "recovery_codes_removed");
    assert_eq!(app.state.recovery_codes.left(&r, &id).await.unwrap(), 0);
    assert_eq!(
        passkeys::of_account(&app.state.db, &r, &id)
            .await
            .unwrap()
            .len(),
        1,
        "the passkey stays"
    );
    let (_, e) = one_event(&app, &admin, &["remove-factor", "--passkey", &passkey]).await;
    assert_eq!(e.kind, "passkey_removed");
    assert!(passkeys::of_account(&app.state.db, &r, &id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        anna(&app).await.unwrap().phone.as_deref(),
        Some("+41791234567"),
        "the number stays"
    );
    let refused = desk(&admin, &["remove-factor", "--app"]);
    assert!(!refused.status.success(), "she has no app");

    let (out, e) = one_event(&app, &admin, &["close"]).await;
    assert!(out.starts_with("closed"), "{out}");
    assert_eq!(e.kind, "account_closed");
    assert!(anna(&app).await.is_none(), "the account is gone");
    assert!(last_subject(&app).contains("fermé"));
}

#[tokio::test]
async fn after_a_reset_of_her_phone_anna_registers_a_new_number_at_her_next_login() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let id = app.create_account("AK00", "anna@example.ch").await;
    let r = realm("AK00");
    app.state.recovery_codes.issue(&r, &id).await.unwrap();
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.has_session().await);

    let (out, e) = one_event(&app, &admin, &["reset-phone"]).await;
    assert!(
        out.contains("mobile number and second factors removed"),
        "{out}"
    );
    assert_eq!(e.kind, "second_factors_removed");
    assert!(e.detail.contains("+41 79 *** ** 67"), "{}", e.detail);
    assert!(!app.has_session().await, "her sessions ended");
    let after = anna(&app).await.unwrap();
    assert_eq!(after.phone, None);
    assert_eq!(after.phone_verified_at, None);
    assert!(after.phone_reset_at.is_some(), "marked for a new number");
    assert_eq!(app.state.recovery_codes.left(&r, &id).await.unwrap(), 0);
    let mail = app.mail_outbox().pop().expect("a mail");
    assert!(mail.text.contains("nouveau numéro"), "{}", mail.text);

    // The password alone does not let her in: a code goes to her address.
    let sms_before = app.sms_outbox().len();
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    let mail_step = location(&res);
    assert!(mail_step.ends_with("/mail"), "{mail_step}");
    assert!(
        !app.has_session().await,
        "no session from the password alone"
    );
    assert_eq!(app.sms_outbox().len(), sms_before);
    let mail = app.mail_outbox().pop().expect("the code by mail");
    assert!(mail.subject.contains("nouveau numéro"), "{}", mail.subject);
    let code = letter_code(&mail.text).expect("a 12-character code");
    // Not yet: the number page waits for the code.
    let number_step = mail_step.replace("/mail", "/number");
    let res = app.get(&app.url(&number_step)).await;
    assert_eq!(res.status(), 303, "the number waits for the mail's code");
    let res = app.fill(&mail_step, &[("code", "ABCD EFGH JKMN")]).await;
    assert_eq!(res.status(), 400, "a wrong code");
    let res = app.fill(&mail_step, &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("/number"), "{}", location(&res));
    let res = app
        .fill(&location(&res), &[("phone", "076 555 44 33")])
        .await;
    assert_eq!(res.status(), 303);
    let (to, sms) = app.sms_outbox().pop().unwrap();
    assert_eq!(to, "+41765554433");
    let res = app
        .fill(&location(&res), &[("code", &six_digits(&sms).unwrap())])
        .await;
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).contains("/phone/new/done"),
        "{}",
        location(&res)
    );
    let after = anna(&app).await.unwrap();
    assert_eq!(after.phone.as_deref(), Some("+41765554433"));
    assert_eq!(after.phone_verified_at, Some(app.clock().unix()));
    assert_eq!(after.phone_reset_at, None, "the mark is lifted");
    assert!(last_subject(&app).contains("portable"));

    // From now on the login asks for the SMS code to the new number.
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.has_session().await, "logged in with the SMS code");
    assert_eq!(app.sms_outbox().pop().unwrap().0, "+41765554433");
}

#[tokio::test]
async fn support_can_still_register_the_new_number_itself_after_a_reset() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    ok(&desk(&admin, &["reset-phone"]));
    let out = admin.run(&[
        "account",
        "phone",
        "--realm",
        "AK00",
        "--email",
        "anna@example.ch",
        "--phone",
        "076 555 44 33",
        "--reason",
        REASON,
    ]);
    ok(&out);
    assert_eq!(anna(&app).await.unwrap().phone_reset_at, None);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.has_session().await, "logged in with the SMS code");
    assert_eq!(app.sms_outbox().pop().unwrap().0, "+41765554433");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_message_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    let before = events(&app).await.len();
    let refusals: &[(&[&str], &str)] = &[
        (
            &[
                "account",
                "lock",
                "--realm",
                "AK00",
                "--ahv",
                "756.9999.9999.91",
                "--reason",
                "x",
            ],
            "",
        ),
        (
            &[
                "account",
                "lock",
                "--realm",
                "AK00",
                "--email",
                "nobody@example.ch",
                "--reason",
                "x",
            ],
            "no account",
        ),
        (
            &[
                "account",
                "lock",
                "--realm",
                "AK00",
                "--email",
                "anna@example.ch",
                "--reason",
                "   ",
            ],
            "--reason",
        ),
        (
            &[
                "account",
                "lock",
                "--realm",
                "AK00",
                "--email",
                "anna@example.ch",
            ],
            "--reason",
        ),
        (
            &[
                "account",
                "lock",
                "--realm",
                "AK00",
                "--email",
                "anna@example.ch",
                "--ahv",
                ANNA_AHV,
                "--reason",
                "x",
            ],
            "cannot be used with",
        ),
        (
            &["account", "lock", "--realm", "AK00", "--reason", "x"],
            "required",
        ),
        (
            &["account", "show", "--realm", "AK00", "--ahv", "123"],
            "--ahv",
        ),
        (
            &[
                "letters",
                "queue",
                "--realm",
                "AK00",
                "--ahv",
                "756.9999.9999.91",
                "--reason",
                "x",
            ],
            "",
        ),
        (
            &[
                "account",
                "remove-factor",
                "--realm",
                "AK00",
                "--email",
                "anna@example.ch",
                "--reason",
                "x",
            ],
            "required",
        ),
    ];
    for (args, says) in refusals {
        let err = admin.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(events(&app).await.len(), before, "nothing audited");
    let a = anna(&app).await.unwrap();
    assert!(a.active);
    assert_eq!(a.phone.as_deref(), Some("+41791234567"));
    assert!(app.mail_outbox().is_empty(), "nobody told");
}

#[tokio::test]
async fn show_gives_support_the_whole_picture_and_json_for_scripts() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    crate::admin::add_person(&app, ANNA_AHV, "Anna", "Muster", Language::Fr).await;
    app.create_account("AK00", "anna@example.ch").await;
    app.wrong_passwords("anna@example.ch", 1).await;
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    let before = events(&app).await.len();

    let text = ok(&desk(&admin, &["show"]));
    for fact in [
        "756.1234.5678.97",
        "Anna Muster",
        "active",
        "anna@example.ch",
        "+41 79 *** ** 67",
        "recovery codes left",
        "open activation code",
        "letters waiting",
        "last failure",
    ] {
        assert!(text.contains(fact), "{fact}: {text}");
    }
    assert_no_secret(&app, &text).await;
    let json = ok(&desk(&admin, &["show", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["status"], "active");
    assert_eq!(v["phone"], "+41 79 *** ** 67");
    assert_eq!(v["register"]["ahv"], ANNA_AHV);
    assert_eq!(v["last_failures"].as_array().unwrap().len(), 1);
    assert_no_secret(&app, &json).await;
    assert_eq!(events(&app).await.len(), before, "reading writes nothing");
}

#[tokio::test]
async fn a_new_letter_is_queued_for_the_mailroom_or_written_at_once() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    crate::admin::add_person(&app, ANNA_AHV, "Anna", "Muster", Language::Fr).await;
    app.create_account("AK00", "anna@example.ch").await;
    let r = realm("AK00");
    let letter = |extra: &[&str]| {
        let mut args = vec![
            "letters",
            "queue",
            "--realm",
            "AK00",
            "--email",
            "anna@example.ch",
            "--operator",
            OPERATOR,
            "--reason",
            REASON,
        ];
        args.extend_from_slice(extra);
        admin.run(&args)
    };

    let before = events(&app).await.len();
    let out = ok(&letter(&[]));
    assert!(out.contains("queued"), "{out}");
    let after = events(&app).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[before].kind, "letter_requested");
    assert_eq!(after[before].operator.as_deref(), Some(OPERATOR));
    assert_eq!(after[before].reason.as_deref(), Some(REASON));
    assert_eq!(
        letter_requests::waiting(&app.state.db, &r)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(last_subject(&app).contains("lettre d'activation"));
    assert!(!letter(&[]).status.success(), "one letter waits already");

    let out = ok(&admin.run(&["letters", "print", "--realm", "AK00", "--out", "letters"]));
    assert!(out.contains("1 letter(s) written"), "{out}");
    assert!(admin.path("letters/7561234567897.pdf").exists());
    assert!(letter_requests::waiting(&app.state.db, &r)
        .await
        .unwrap()
        .is_empty());

    // Written at once: the code printed like `code issue`, one event.
    let before = events(&app).await.len();
    let out = ok(&letter(&["--pdf", "anna.pdf"]));
    assert!(admin.path("anna.pdf").exists());
    assert!(out.contains("letter written to"), "{out}");
    let after = events(&app).await;
    assert_eq!(after.len(), before + 1, "{:?}", &after[before..]);
    assert_eq!(after[before].kind, "activation_code_issued");
    assert_eq!(after[before].reason.as_deref(), Some(REASON));
    let code = out.lines().next().unwrap();
    assert!(!format!("{:?}", after[before]).contains(code));
    assert!(letter_requests::waiting(&app.state.db, &r)
        .await
        .unwrap()
        .is_empty());
}

fn last_subject(app: &TestApp) -> String {
    app.mail_outbox().pop().expect("a mail").subject
}
