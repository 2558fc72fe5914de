//! A stolen copy of the database (and, with Redis, of the store) gives nothing to replay:
//! after an enrolment, a login and a code exchange, none of the codes, the password, the
//! tokens or a private key appears in clear anywhere in it.

use connect::domain::Language;

use crate::{
    enrol::{enrol, NEW_PASSWORD},
    helpers::*,
};

/// Everything the SQL database holds, as text: the SQLite files byte for byte (the
/// write-ahead log included), or every row of every PostgreSQL table as JSON.
async fn database_dump(app: &TestApp) -> String {
    let url = &app.state.config.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        return String::from_utf8_lossy(&all).into_owned();
    }
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("database");
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables")
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    let mut dump = String::new();
    for table in tables {
        let sql = format!(
            "SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') FROM \"{table}\" t"
        );
        let rows: String = sqlx::query(&sql)
            .fetch_one(&mut conn)
            .await
            .expect("rows")
            .get(0);
        dump.push_str(&rows);
    }
    dump
}

/// Every key and value of this test's Redis keys; nothing without Redis (the in-process
/// store leaves with the process).
async fn store_dump(app: &TestApp) -> String {
    let (Some(url), prefix) = (&app.state.config.redis_url, &app.state.config.redis_prefix) else {
        return String::new();
    };
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(!keys.is_empty(), "the journey left short-lived state");
    let mut dump = String::new();
    for key in keys {
        let value: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap_or(None);
        dump.push_str(&key);
        dump.push('\n');
        dump.push_str(&value.unwrap_or_default());
        dump.push('\n');
    }
    dump
}

/// Whether `needle` stands in `text` on its own: not inside a longer run of letters and
/// digits, where a six-digit code may appear by chance (a timestamp, a hex digest).
fn holds(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[tokio::test]
async fn a_stolen_database_or_store_holds_no_code_password_token_or_private_key_in_clear() {
    let app = spawn_app().await;
    // An enrolment: the letter's code, the mail's code, a password, an SMS code.
    let letter = app
        .person_with_code("AK00", "756.9217.0769.85", Language::Fr)
        .await;
    assert_eq!(enrol(&app, &letter).await.status(), 303);
    // A login at a relying party and its tokens.
    app.create_account("AK00", "anna@example.ch").await;
    let callback = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid email offline_access"),
            ],
            "anna@example.ch",
        )
        .await;
    let code = query_param(&callback, "code").expect("authorization code");
    let tokens = app.portal_tokens("AK00", &callback).await;

    let mut secrets = vec![
        letter.clone(),
        letter.replace(' ', ""),
        NEW_PASSWORD.to_owned(),
        PASSWORD.to_owned(),
        code,
    ];
    for name in ["access_token", "refresh_token"] {
        secrets.push(tokens[name].as_str().expect(name).to_owned());
    }
    secrets.extend(app.sms_outbox().iter().filter_map(|(_, t)| six_digits(t)));
    secrets.extend(
        app.mail_outbox()
            .iter()
            .filter_map(|m| letter_code(&m.text)),
    );
    assert!(
        secrets.len() >= 9,
        "every kind of secret was collected: {}",
        secrets.len()
    );

    let database = database_dump(&app).await;
    assert!(database.contains("anna@example.ch"), "the dump is real");
    let store = store_dump(&app).await;
    for secret in &secrets {
        let compact = secret.replace(' ', "");
        assert!(
            !holds(&database, &compact),
            "the database holds a secret in clear"
        );
        assert!(
            !holds(&store, &compact),
            "the store holds a secret in clear"
        );
    }
    for marker in ["PRIVATE KEY", "\"d\":"] {
        assert!(
            !database.contains(marker),
            "a private key in clear: {marker}"
        );
    }
}
