//! Mail and SMS delivery, each test with its own receivers from `receivers` (a real SMTP
//! server, a TLS front, an HTTP SMS gateway); then the outbox and `/_dev/outbox`.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::helpers::{metric, own_metrics, realm, spawn_app, spawn_with, test_config};
use crate::receivers::*;
use connect::{
    config::Config,
    domain::{Email, Language, PhoneNumber},
    notify::{messages, Mail, Notifier, NotifyError},
    realm::{Realm, Realms},
};

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn config(dir: &Path, edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config(dir);
    edit(&mut c);
    c
}

fn sample_realm() -> Arc<Realm> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
    let realms = Realms::load_dir(&dir).expect("sample realms");
    realms.get(&realm("AK00")).expect("AK00").clone()
}

fn anna() -> Email {
    "anna@example.ch".parse().expect("email")
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+41 79 123 45 67").expect("phone")
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a MIME message")
}

fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Asserts that a received message is `mail`: header fields, both parts, every character.
fn assert_same_mail(raw: &[u8], mail: &Mail) {
    let parsed = parse(raw);
    assert_eq!(parsed.subject(), Some(mail.subject.as_str()));
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(to, Some(mail.to.as_str()));
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(from, Some("no-reply@connect.localhost"));
    assert_eq!(parsed.text_body_count(), 1);
    assert_eq!(parsed.html_body_count(), 1);
    let text = parsed.body_text(0).expect("text part");
    assert_eq!(crlf_to_lf(&text).trim_end(), mail.text.trim_end());
    let html = parsed.body_html(0).expect("HTML part");
    assert_eq!(
        crlf_to_lf(&html).trim_end(),
        mail.html
            .as_deref()
            .expect("the message has HTML")
            .trim_end()
    );
}

fn german_mail() -> Mail {
    messages::enrolment_code(
        Language::De,
        &sample_realm(),
        &anna(),
        "https://login.example.ch/AK00/register/tx1/confirm",
        "K7QP-M2XW-9RTA",
        15,
    )
}

// ---------------------------------------------------------------------------------------
// SMTP

#[tokio::test]
async fn smtp_delivers_text_and_html_with_accents_intact() {
    let server = start_smtp(None, None);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}", server.port).into());
    });
    let notifier = Notifier::new(&c).expect("notifier");
    let mail = german_mail();
    assert!(
        mail.subject.contains("Bestätigungscode"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("Eröffnung") && mail.text.contains("gültig"));
    notifier.send_mail(mail.clone()).await.expect("sent");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.to, ["anna@example.ch"]);
    assert_eq!(got.from, "no-reply@connect.localhost");
    assert_same_mail(&got.data, &mail);
    let html = mail.html.unwrap();
    assert!(
        html.contains("K7QP-M2XW-9RTA") && html.contains("Eröffnung"),
        "{html}"
    );
    // Nothing went to the outbox.
    assert!(!c.outbox_dir.exists());
}

#[tokio::test]
async fn smtp_with_auth_over_starttls_trusts_the_private_ca() {
    let pki = make_pki();
    let server = start_smtp(Some(&pki), Some(("connect", "s3cret/pw")));
    let dir = tempfile::tempdir().unwrap();
    let notifier = |password: &str| {
        let c = config(dir.path(), |c| {
            c.smtp_url = Some(
                format!(
                    "smtp://connect:{password}@127.0.0.1:{}?tls=required",
                    server.port
                )
                .into(),
            );
            c.smtp_ca_file = Some(pki.ca_file.clone());
        });
        Notifier::new(&c).expect("notifier")
    };

    let err = notifier("wrong%2Fpw")
        .send_mail(german_mail())
        .await
        .expect_err("wrong password refused");
    assert!(matches!(err, NotifyError::Mail(_)), "{err}");
    assert!(err.to_string().contains("535"), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    assert!(server.received().is_empty());

    let mail = german_mail();
    notifier("s3cret%2Fpw")
        .send_mail(mail.clone())
        .await
        .expect("sent");
    let received = server.received();
    assert_eq!(received.len(), 1);
    // The server offers AUTH only after STARTTLS: an authenticated session was a TLS one.
    assert_eq!(received[0].user.as_deref(), Some("connect"));
    assert_same_mail(&received[0].data, &mail);
}

#[tokio::test]
async fn smtp_starttls_refuses_a_certificate_it_does_not_trust() {
    let pki = make_pki();
    let server = start_smtp(Some(&pki), None);
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}?tls=required", server.port).into());
    });
    let err = Notifier::new(&c)
        .unwrap()
        .send_mail(german_mail())
        .await
        .expect_err("unknown CA refused");
    assert!(matches!(err, NotifyError::Mail(_)), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.received().is_empty());

    // The same server, with the CA: delivered.
    let c = config(dir.path(), |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}?tls=required", server.port).into());
        c.smtp_ca_file = Some(pki.ca_file.clone());
    });
    Notifier::new(&c)
        .unwrap()
        .send_mail(german_mail())
        .await
        .expect("sent");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtps_implicit_tls_with_the_private_ca() {
    let pki = make_pki();
    let server = start_smtp(None, None);
    let port = tls_front(&pki, server.port).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), |c| {
        c.smtp_url = Some(format!("smtps://127.0.0.1:{port}").into());
        c.smtp_ca_file = Some(pki.ca_file.clone());
    });
    let mail = german_mail();
    Notifier::new(&c)
        .unwrap()
        .send_mail(mail.clone())
        .await
        .expect("sent");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_mail(&received[0].data, &mail);
}

#[tokio::test]
async fn smtp_server_that_never_answers_times_out() {
    // Accepts connections and says nothing, not even the greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
        c.smtp_timeout_seconds = 1;
    });
    let start = Instant::now();
    let err = Notifier::new(&c)
        .unwrap()
        .send_mail(german_mail())
        .await
        .expect_err("times out");
    assert!(matches!(err, NotifyError::Mail(_)), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// SMS gateway

fn gateway_config(dir: &Path, url: &str) -> Config {
    config(dir, |c| {
        c.sms.url = Some(url.to_owned());
        c.sms.auth_header = Some("Bearer gateway-token".to_owned().into());
        c.sms.sender = "AK00".into();
        c.sms.timeout_seconds = 1;
        c.sms.max_attempts = 3;
    })
}

#[tokio::test]
async fn sms_gateway_gets_json_and_the_auth_header() {
    let (url, rx) = start_sms_receiver(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let c = gateway_config(dir.path(), &url);
    let text = "Votre code : 482913 \"valable\" 10 min\\é";
    Notifier::new(&c)
        .unwrap()
        .send_sms(&phone(), text)
        .await
        .expect("delivered");

    let requests = rx.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.authorization.as_deref(), Some("Bearer gateway-token"));
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&req.body).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({ "to": "+41791234567", "text": text, "from": "AK00" })
    );
    assert!(!c.outbox_dir.join("sms.jsonl").exists());
}

#[tokio::test]
async fn sms_gateway_503_twice_then_200_is_delivered_on_the_third_attempt() {
    let (url, rx) = start_sms_receiver(&[Reply::Status(503), Reply::Status(503)]).await;
    let app = spawn_with(|c| {
        c.sms.url = Some(url.clone());
        c.sms.max_attempts = 3;
    })
    .await;
    let (own, _guard) = own_metrics();
    let start = Instant::now();
    app.state
        .notifier
        .send_sms(&phone(), "Code 111222")
        .await
        .expect("delivered");
    let requests = rx.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    // Backoff of 200 ms, then 400 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );

    // This test's own sends, counted apart from every other test's.
    let counted = own.render();
    let count = |outcome: &str| {
        metric(
            &counted,
            "connect_sms_gateway_total",
            &format!("outcome=\"{outcome}\""),
        )
    };
    assert_eq!(count("retried"), 2.0, "{counted}");
    assert_eq!(count("delivered"), 1.0, "{counted}");
}

#[tokio::test]
async fn sms_gateway_400_is_not_retried() {
    let (url, rx) = start_sms_receiver(&[Reply::Status(400)]).await;
    let dir = tempfile::tempdir().unwrap();
    let err = Notifier::new(&gateway_config(dir.path(), &url))
        .unwrap()
        .send_sms(&phone(), "Code 333444")
        .await
        .expect_err("refused");
    assert!(matches!(err, NotifyError::Sms(_)), "{err}");
    assert!(err.to_string().contains("400"), "{err}");
    assert!(
        !err.to_string().contains("333444") && !err.to_string().contains("791234567"),
        "{err}"
    );
    assert_eq!(rx.requests().len(), 1);
}

#[tokio::test]
async fn sms_gateway_always_5xx_gives_up_after_max_attempts() {
    let (url, rx) = start_sms_receiver(&[Reply::Status(502); 5]).await;
    let dir = tempfile::tempdir().unwrap();
    let err = Notifier::new(&gateway_config(dir.path(), &url))
        .unwrap()
        .send_sms(&phone(), "Code 555666")
        .await
        .expect_err("gave up");
    assert!(matches!(err, NotifyError::Sms(_)), "{err}");
    assert_eq!(rx.requests().len(), 3);
}

#[tokio::test]
async fn sms_gateway_down_fails_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/send", closed_port());
    let start = Instant::now();
    let err = Notifier::new(&gateway_config(dir.path(), &url))
        .unwrap()
        .send_sms(&phone(), "Code 777888")
        .await
        .expect_err("gateway down");
    let message = err.to_string();
    assert!(message.contains("3 times"), "{message}");
    assert!(
        !message.contains("127.0.0.1"),
        "the URL stays out: {message}"
    );
    // Three attempts: two waits, 200 ms and 400 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert!(
        !dir.path().join("outbox").exists(),
        "no silent fallback to the outbox"
    );
}

#[tokio::test]
async fn sms_gateway_timeout_is_retried() {
    let (url, rx) = start_sms_receiver(&[Reply::Hang]).await;
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    Notifier::new(&gateway_config(dir.path(), &url))
        .unwrap()
        .send_sms(&phone(), "Code 999000")
        .await
        .expect("delivered on the second attempt");
    assert_eq!(rx.requests().len(), 2);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Outbox and /_dev/outbox

#[tokio::test]
async fn without_smtp_and_gateway_mail_and_sms_go_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), |_| {});
    assert!(c.smtp_url.is_none() && c.sms.url.is_none());
    let notifier = Notifier::new(&c).unwrap();
    let mail = german_mail();
    notifier.send_mail(mail.clone()).await.expect("written");
    notifier
        .send_sms(&phone(), "Code 123 \"é\"")
        .await
        .expect("written");
    notifier
        .send_sms(&phone(), "Code 456")
        .await
        .expect("written");

    let emls: Vec<_> = std::fs::read_dir(c.outbox_dir.join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(emls.len(), 1, "{emls:?}");
    assert_eq!(emls[0].extension().unwrap(), "eml");
    assert_same_mail(&std::fs::read(&emls[0]).unwrap(), &mail);

    let lines = std::fs::read_to_string(c.outbox_dir.join("sms.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["to"], "+41791234567");
    assert_eq!(lines[0]["text"], "Code 123 \"é\"");
    assert_eq!(lines[1]["text"], "Code 456");
    let at = lines[0]["at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
}

#[tokio::test]
async fn dev_outbox_lists_mails_and_sms_newest_first() {
    let app = spawn_with(|c| c.dev = true).await;
    let ak00 = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let first = messages::enrolment_code(
        Language::Fr,
        &ak00,
        &anna(),
        "https://x.test/confirm",
        "FIRST-CODE",
        15,
    );
    app.state.notifier.send_mail(first.clone()).await.unwrap();
    // File times order the mails: date the first one back rather than wait.
    let mail_dir = app.state.config.outbox_dir.join("mail");
    let eml = std::fs::read_dir(&mail_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::File::options().write(true).open(&eml).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let other: Email = "bruno@example.ch".parse().unwrap();
    let second = messages::address_in_use(Language::It, &ak00, &other, "https://x.test/login");
    app.state.notifier.send_mail(second.clone()).await.unwrap();
    let sms = messages::sms_code(Language::De, &ak00, "246810", 10);
    app.state
        .notifier
        .send_sms(&phone(), "older SMS")
        .await
        .unwrap();
    app.state.notifier.send_sms(&phone(), &sms).await.unwrap();

    let res = app.get(&app.url("/_dev/outbox?lang=en")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("Outbox (development)"), "{page}");
    for needle in [
        "anna@example.ch",
        "bruno@example.ch",
        "FIRST-CODE",
        "Votre code de confirmation – Caisse de compensation AK00",
        "Tentativo di registrazione con il Suo indirizzo",
        "ouvrez ce lien :",
        "+41791234567",
        "246810",
        "An HTML version was sent with this text.",
    ] {
        assert!(page.contains(needle), "missing {needle}:\n{page}");
    }
    assert!(
        page.find("bruno@example.ch") < page.find("anna@example.ch"),
        "newest mail first"
    );
    assert!(
        page.find("246810") < page.find("older SMS"),
        "newest SMS first"
    );
    assert!(!page.contains("mail-outbox-unused") && !page.contains("sms-outbox-unused"));

    let de = app
        .get(&app.url("/_dev/outbox?lang=de"))
        .await
        .text()
        .await
        .unwrap();
    assert!(de.contains("Postausgang (Entwicklung)"), "{de}");
}

#[tokio::test]
async fn dev_outbox_says_when_smtp_and_gateway_take_the_messages() {
    let app = spawn_with(|c| {
        c.dev = true;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}", closed_port()).into());
        c.sms.url = Some(format!("http://127.0.0.1:{}/send", closed_port()));
    })
    .await;
    let page = app
        .get(&app.url("/_dev/outbox?lang=en"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"mail-outbox-unused\""), "{page}");
    assert!(page.contains("id=\"sms-outbox-unused\""), "{page}");
    assert!(page.contains("No e-mail in the outbox."), "{page}");
}

#[tokio::test]
async fn dev_outbox_is_404_outside_dev_mode() {
    let app = spawn_app().await;
    assert!(!app.state.config.dev);
    let res = app.get(&app.url("/_dev/outbox")).await;
    assert_eq!(res.status(), 404);
}

// ---------------------------------------------------------------------------------------
// Configuration

fn load(toml: &str) -> Result<Config, connect::config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("connect.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load(Some(&path))
}

#[test]
fn config_refuses_a_bad_smtp_url_without_printing_the_password() {
    let e = load("smtp_url = \"smtp://mailer:hunter2@mail.example.ch:99999\"").unwrap_err();
    assert_eq!(e.key, "smtp_url");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = load("smtp_url = \"imap://mailer:hunter2@mail.example.ch\"").unwrap_err();
    assert_eq!(e.key, "smtp_url");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let c = load("smtp_url = \"smtp://mailer:hunter2@mail.example.ch:587?tls=required\"").unwrap();
    assert!(c.smtp_url.is_some());
    assert!(!format!("{c:?}").contains("hunter2"), "Debug hides the URL");
}

#[test]
fn config_refuses_a_bad_sms_body_template() {
    let e = load("[sms]\nbody_template = '{\"text\":\"{text}\"}'").unwrap_err();
    assert_eq!(e.key, "sms.body_template");
    assert!(e.to_string().contains("{to}"), "{e}");
    let e = load("[sms]\nbody_template = '{\"to\":{to},\"text\":\"{text}\"}'").unwrap_err();
    assert_eq!(e.key, "sms.body_template");
    let c = load("[sms]\nurl = \"https://sms.example.ch/send\"\nbody_template = '{\"msisdn\":\"{to}\",\"message\":\"{text}\"}'").unwrap();
    assert_eq!(
        connect::notify::render_sms_body(
            &c.sms.body_template,
            &c.sms.sender,
            "+41791234567",
            "a\"b"
        ),
        r#"{"msisdn":"+41791234567","message":"a\"b"}"#
    );
}

#[test]
fn no_setting_turns_dev_mode_on_and_the_outbox_for_production_is_a_setting_of_its_own() {
    for toml in ["dev = true", "dev = false"] {
        let e = load(toml).unwrap_err();
        assert_eq!(e.key, "dev", "{toml}");
        assert!(e.to_string().contains("`connect dev`"), "{e}");
    }
    let c = load("allow_outbox = true").unwrap();
    assert!(c.allow_outbox);
    assert!(!c.dev, "the outbox for staging is not dev mode");
    assert_eq!(
        load("allow_outbox = \"yes\"").unwrap_err().key,
        "allow_outbox"
    );
}
