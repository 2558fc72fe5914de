//! The audit trail: every security event of a journey is recorded with realm, account,
//! address and user agent, none carries a secret, `connect admin audit` prints it as JSON
//! lines, and the realm's retention purges it.

use std::process::Command;

use connect::domain::Language;
use secrecy::ExposeSecret;

use crate::{
    enrol::{enrol, EMAIL, NEW_PASSWORD},
    helpers::*,
};

const AHV: &str = "756.1234.5678.97";

async fn trail(app: &TestApp, realm_id: &str) -> Vec<serde_json::Value> {
    app.state
        .audit
        .read(&realm(realm_id), None, 0)
        .await
        .expect("audit trail")
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_enrolment_leaves_each_step_in_the_trail_and_no_secret() {
    let app = spawn_app().await;
    let code = app.person_with_code("AK00", AHV, Language::Fr).await;
    let res = enrol(&app, &code).await;
    assert_eq!(res.status(), 303, "enrolment completes");

    let events = trail(&app, "AK00").await;
    let kinds = kinds(&events);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("activation_code_issued")
    );
    let steps: Vec<u64> = events
        .iter()
        .filter(|e| e["kind"] == "enrol_step_completed")
        .map(|e| e["detail"]["step"].as_u64().expect("step number"))
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6, 7]);
    let spent = events
        .iter()
        .find(|e| e["kind"] == "activation_code_spent")
        .expect("the code is recorded as spent");
    let account = spent["account"].as_str().expect("the new account");
    assert!(!account.is_empty());
    for e in events
        .iter()
        .filter(|e| e["kind"] != "activation_code_issued")
    {
        assert_eq!(e["addr"], "127.0.0.1", "{e}");
        assert!(e["user_agent"].is_null() || e["user_agent"].is_string());
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }

    // Nothing secret: not the letter's code, the password, the mail or SMS codes, the full AHV.
    let all = serde_json::to_string(&events).unwrap();
    let mut secrets = vec![
        code.replace(' ', ""),
        code.clone(),
        NEW_PASSWORD.to_owned(),
        AHV.to_owned(),
        AHV.replace('.', ""),
    ];
    secrets.extend(app.sms_outbox().iter().filter_map(|(_, t)| six_digits(t)));
    secrets.extend(
        app.mail_outbox()
            .iter()
            .filter_map(|m| letter_code(&m.text)),
    );
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "the trail holds a secret: {secret}"
        );
    }
    assert!(
        all.contains("756.****.****.97"),
        "the masked AHV number names the person"
    );
    assert!(
        !all.contains(EMAIL),
        "no e-mail address in enrolment events"
    );
}

#[tokio::test]
async fn wrong_letter_codes_and_the_limit_they_reach_are_recorded() {
    let dir = realm_dir_with(|text| set_key(&text, "code_guesses_per_address_per_hour", "2"));
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| c.realm_dir = path).await;
    for _ in 0..4 {
        app.fill("/AK00/register", &[("code", "ABCD EFGH JKMN")])
            .await;
    }
    let events = trail(&app, "AK00").await;
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "enrol_step_refused")
        .collect();
    assert_eq!(refused.len(), 2, "two guesses were checked: {events:?}");
    assert_eq!(refused[0]["detail"]["step"], 1);
    assert_eq!(refused[0]["detail"]["reason"], "error-code-wrong");
    let limits: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "abuse_limit_hit")
        .collect();
    assert_eq!(
        limits.len(),
        1,
        "recorded once per window, not at every refusal"
    );
    assert_eq!(
        limits[0]["detail"]["limit"],
        "activation-code-guesses-per-address"
    );
}

#[tokio::test]
async fn events_past_the_realms_retention_are_purged() {
    let app = spawn_app().await;
    app.person_with_code("AK00", AHV, Language::Fr).await;
    app.advance(729 * 86_400);
    app.person_with_code("AK00", AHV, Language::Fr).await;
    assert_eq!(app.state.audit.purge(&app.state.realms).await.unwrap(), 0);
    app.advance(2 * 86_400);
    // The default retention is 730 days: the first code's event goes, the second's stays.
    let purged = app.state.audit.purge(&app.state.realms).await.unwrap();
    assert_eq!(purged, 1);
    let left = trail(&app, "AK00").await;
    assert_eq!(kinds(&left), ["activation_code_issued"]);
    let expires = left[0]["detail"]["expires_at"].as_i64().unwrap();
    assert!(
        expires > app.clock().unix(),
        "the one left is the newer code"
    );
}

/// `connect admin …` on the test server's storage, as support runs it.
fn admin(app: &TestApp, args: &[&str]) -> std::process::Output {
    let c = &app.state.config;
    let connect::config::MasterKeySource::Inline(key) = &c.master_key else {
        panic!("tests use an inline master key");
    };
    Command::new(env!("CARGO_BIN_EXE_connect"))
        .current_dir(&c.data_dir)
        .env_remove("CONNECT_TEST_DATABASE_URL")
        .env_remove("CONNECT_TEST_REDIS_URL")
        .env("CONNECT_DATA_DIR", &c.data_dir)
        .env("CONNECT_DATABASE_URL", &c.database_url)
        .env("CONNECT_REALM_DIR", &c.realm_dir)
        .env("CONNECT_MASTER_KEY", key.expose_secret())
        .env("CONNECT_PUBLIC_URL", &app.base)
        .env("USER", "batch")
        .arg("admin")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn admin_commands_are_audited_with_operator_and_reason_and_the_trail_prints_as_json_lines() {
    let app = spawn_app().await;
    app.person_with_code("AK00", AHV, Language::Fr).await;
    let out = admin(
        &app,
        &[
            "--operator",
            "m.rossi",
            "code",
            "issue",
            "--realm",
            "AK00",
            "--ahv",
            AHV,
            "--reason",
            "letter lost, call of 28.11.",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed_code = String::from_utf8(out.stdout).unwrap();
    let printed_code = printed_code.lines().next().unwrap().to_owned();
    let out = admin(&app, &["code", "revoke", "--realm", "AK00", "--ahv", AHV]);
    assert!(out.status.success());

    let out = admin(&app, &["audit", "--realm", "AK00"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains(&printed_code),
        "the code is not in the trail"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let commands: Vec<_> = lines
        .iter()
        .filter(|e| e["kind"] == "admin_command")
        .collect();
    assert_eq!(commands.len(), 2, "{text}");
    assert_eq!(commands[0]["detail"]["command"], "code issue");
    assert_eq!(commands[0]["operator"], "m.rossi");
    assert_eq!(commands[0]["reason"], "letter lost, call of 28.11.");
    assert_eq!(commands[1]["detail"]["command"], "code revoke");
    assert_eq!(
        commands[1]["operator"], "batch",
        "the logged-in user by default"
    );
    assert!(commands[1]["reason"].is_null());
    // Issued by the test, issued by support (revoking the first), revoked by support.
    let codes: Vec<_> = lines
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|k| k.starts_with("activation_code"))
        .collect();
    assert_eq!(
        codes,
        [
            "activation_code_issued",
            "activation_code_issued",
            "activation_code_revoked"
        ]
    );

    let out = admin(&app, &["audit", "--realm", "AK00", "--since", "2999-01-01"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing after a future day");
    let out = admin(&app, &["audit", "--realm", "AK00", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    let out = admin(
        &app,
        &["audit", "--realm", "AK00", "--account", "nobody@example.ch"],
    );
    assert!(
        !out.status.success(),
        "an unknown account is an error, not an empty trail"
    );
}
