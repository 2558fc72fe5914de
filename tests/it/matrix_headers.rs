//! Matrix, header injection: CR/LF and address syntax in whatever reaches a mail header (the
//! address, names, the caisse's name in the subject) or an SMS. Mail goes through the real
//! SMTP server of the tests, SMS through the HTTP gateway receiver: each message has exactly
//! its one recipient, no extra header, and is whole.

use connect::domain::Language;

use crate::{helpers::*, receivers::*};

/// Header lines of a raw message (before the first empty line), unfolded.
fn header_names(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    head.split("\r\n")
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
        .collect()
}

/// Every received message: one recipient, the expected one; one of each address header; no
/// `Bcc` or `Cc`; parseable, with a text part.
fn assert_whole_messages(smtp: &SmtpServer, expected_to: &[&str]) {
    let received = smtp.received();
    for (i, m) in received.iter().enumerate() {
        assert_eq!(m.to.len(), 1, "message {i}: recipients {:?}", m.to);
        assert!(
            expected_to.contains(&m.to[0].as_str()),
            "message {i} went to {:?}",
            m.to
        );
        let names = header_names(&m.data);
        for once in ["to", "from", "subject"] {
            assert_eq!(
                names.iter().filter(|n| *n == once).count(),
                1,
                "message {i}: `{once}` in {names:?}"
            );
        }
        for never in ["bcc", "cc", "reply-to", "x-injected"] {
            assert!(!names.contains(&never.to_owned()), "message {i}: {never}");
        }
        let parsed = mail_parser::MessageParser::default()
            .parse(&m.data)
            .expect("a whole message");
        assert!(parsed.body_text(0).is_some(), "message {i}: a text part");
    }
}

/// An enrolment of person `n` at step 2; its base path.
async fn at_email_step(app: &TestApp, n: u32) -> String {
    let code = app.person_with_code("AK00", &ahv(n), Language::Fr).await;
    let res = app.fill("/AK00/register", &[("code", &code)]).await;
    assert_eq!(res.status(), 303);
    location(&res).trim_end_matches("/email").to_owned()
}

/// Steps 3 to 5 with the mail's `code`: the enrolment is then at the phone step.
async fn steps_3_to_5(app: &TestApp, base: &str, code: &str) {
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", code)])
        .await;
    assert_eq!(res.status(), 303, "step 3");
    let res = app
        .fill(
            &format!("{base}/account"),
            &[
                ("given_name", "Anna"),
                ("family_name", "Muster"),
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
}

#[tokio::test]
async fn an_address_with_line_breaks_or_address_syntax_adds_no_recipient_and_no_header() {
    let smtp = start_smtp(None, None);
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = spawn_with(|c| c.smtp_url = Some(smtp_url.into())).await;
    let refused_or_sent = [
        "anna@example.ch\r\nBcc: evil@example.com",
        "anna@example.ch\nBcc: evil@example.com",
        "anna@example.ch\rBcc: evil@example.com",
        "anna@example.ch\r\n\r\nbody",
        "Anna <evil@example.com>",
        "anna@example.ch, evil@example.com",
        "anna@example.ch,evil@example.com",
        "evil@example.com,anna@example.ch",
        "anna,evil@example.ch",
        "anna>evil@example.ch",
        "anna;evil@example.ch",
        "\"anna\\\"@evil.example\"@example.ch",
        "anna@example.ch>",
        "anna@example.ch%0D%0ABcc:evil@example.com",
        "=?utf-8?q?anna=0D=0ABcc:evil@example.com?=@example.ch",
    ];
    for (i, address) in refused_or_sent.iter().enumerate() {
        let base = at_email_step(&app, i as u32 + 1).await;
        let before = smtp.received().len();
        let res = app
            .fill(&format!("{base}/email"), &[("email", address)])
            .await;
        let status = res.status();
        assert!(
            status == 303 || status.is_client_error(),
            "{address:?}: {status} is neither accepted nor a clear refusal"
        );
        if status.is_client_error() {
            assert_eq!(
                smtp.received().len(),
                before,
                "{address:?}: refused, yet sent"
            );
        }
    }
    assert_whole_messages(&smtp, &refused_or_sent);
    assert!(
        smtp.received()
            .iter()
            .all(|m| !m.to[0].contains("evil@example.com")),
        "a message to the injected address"
    );
}

#[tokio::test]
async fn line_breaks_in_names_are_refused_at_enrolment() {
    let app = spawn_app().await;
    let base = at_email_step(&app, 1).await;
    let res = app
        .fill(&format!("{base}/email"), &[("email", "anna@example.ch")])
        .await;
    assert_eq!(res.status(), 303);
    let code = letter_code(&app.mail_outbox().pop().unwrap().text).unwrap();
    let res = app
        .fill(&format!("{base}/confirm"), &[("code", &code)])
        .await;
    assert_eq!(res.status(), 303);
    for name in [
        "Anna\r\nBcc: evil@example.com",
        "Anna\nX-Injected: 1",
        "Anna\rX",
        "Anna\u{0}",
        "Anna\u{85}X",
    ] {
        for field in ["given_name", "family_name"] {
            let mut fields = vec![
                ("given_name", "Anna"),
                ("family_name", "Muster"),
                ("language", "fr"),
                ("terms", "accept"),
            ];
            fields.retain(|(k, _)| *k != field);
            fields.push((field, name));
            let res = app.fill(&format!("{base}/account"), &fields).await;
            assert!(
                res.status().is_client_error(),
                "{field} {name:?}: {}",
                res.status()
            );
        }
    }
    let res = app.get(&app.url(&format!("{base}/password"))).await;
    assert_eq!(
        location(&res),
        format!("{base}/account"),
        "no name was taken"
    );
}

#[tokio::test]
async fn line_breaks_in_a_phone_number_send_no_sms() {
    let (gateway, sms) = start_sms_receiver(&[]).await;
    let app = spawn_with(|c| c.sms.url = Some(gateway)).await;
    let base = at_email_step(&app, 1).await;
    let res = app
        .fill(&format!("{base}/email"), &[("email", "anna@example.ch")])
        .await;
    assert_eq!(res.status(), 303);
    let code = letter_code(&app.mail_outbox().pop().unwrap().text).unwrap();
    steps_3_to_5(&app, &base, &code).await;
    for number in [
        "079 123 45 67\r\n+41 79 765 43 21",
        "079 123 45 67\r\nX-Injected: 1",
        "+41791234567\",\"to\":\"+41797654321",
        "+41791234567,+41797654321",
        "+41791234567;+41797654321",
    ] {
        let res = app
            .fill(&format!("{base}/phone"), &[("phone", number)])
            .await;
        assert!(
            res.status().is_client_error(),
            "{number:?}: {}",
            res.status()
        );
    }
    assert!(sms.requests().is_empty(), "no SMS for a refused number");
    // A line break around the number is only white space: the number sent is canonical.
    let res = app
        .fill(
            &format!("{base}/phone"),
            &[("phone", "\r\n079 123 45 67\r\n")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let requests = sms.requests();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("JSON");
    assert_eq!(body["to"], "+41791234567");
}

#[tokio::test]
async fn quotes_braces_and_line_breaks_in_the_caisses_name_break_no_mail_header_and_no_sms_body() {
    let name = "Caisse \"AK00\" {to} {text}\r\nBcc: evil@example.com\r\nX-Injected: 1";
    let realms =
        realm_dir_with(|t| set_key(&t, "display_name", &toml::Value::from(name).to_string()));
    let smtp = start_smtp(None, None);
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let (gateway, sms) = start_sms_receiver(&[]).await;
    let dir = realms.path().to_owned();
    let app = spawn_with(move |c| {
        c.realm_dir = dir;
        c.smtp_url = Some(smtp_url.into());
        c.sms.url = Some(gateway);
    })
    .await;
    let base = at_email_step(&app, 1).await;
    let res = app
        .fill(&format!("{base}/email"), &[("email", "anna@example.ch")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(smtp.received().len(), 1);
    assert_whole_messages(&smtp, &["anna@example.ch"]);
    let raw = smtp.received().pop().unwrap().data;
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let subject = parsed.subject().unwrap_or_default();
    assert!(
        subject.contains("Caisse \"AK00\""),
        "the subject names the caisse: {subject}"
    );
    if let Some(html) = parsed.body_html(0) {
        assert!(
            !html.contains("\"AK00\""),
            "quotes escaped in the HTML part"
        );
    }
    let text = parsed.body_text(0).unwrap();
    assert!(!text.contains("&quot;"), "the text part is plain: {text}");
    let code = letter_code(&text).unwrap();

    // On to the SMS: the gateway's JSON body stays whole.
    steps_3_to_5(&app, &base, &code).await;
    let res = app
        .fill(&format!("{base}/phone"), &[("phone", "079 123 45 67")])
        .await;
    assert_eq!(res.status(), 303);
    let requests = sms.requests();
    assert_eq!(requests.len(), 1, "one SMS");
    let body: serde_json::Value =
        serde_json::from_str(&requests[0].body).expect("the gateway body stays JSON");
    assert_eq!(body["to"], "+41791234567", "{body}");
    let text = body["text"].as_str().expect("text");
    assert!(six_digits(text).is_some(), "{text}");
}
