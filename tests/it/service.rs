//! Health, readiness, metrics and discovery as operators and relying parties see them.

use connect::domain::Language;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_metrics_only_on_their_own_listener() {
    let app = spawn_app().await;
    assert_eq!(app.get(&app.url("/healthz")).await.status(), 200);
    assert_eq!(
        app.get(&app.url("/readyz")).await.text().await.unwrap(),
        "ready"
    );
    let _ = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    assert_eq!(
        app.get(&app.url("/metrics")).await.status(),
        404,
        "not on the public listener"
    );
    let metrics_url = format!("http://{}/metrics", app.state.config.metrics_bind);
    let metrics = app.get(&metrics_url).await.text().await.unwrap();
    assert!(metrics.contains("connect_http_requests_total"), "{metrics}");
    assert!(metrics.contains("connect_tokens_issued_total"));

    // This test's own requests, counted apart from every other test's.
    let (own, _guard) = own_metrics();
    for _ in 0..2 {
        assert_eq!(app.get(&app.url("/readyz")).await.status(), 200);
    }
    let _ = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    let counted = own.render();
    let readyz = r#"server="idp",route="/readyz",method="GET",status="200""#;
    assert_eq!(
        metric(&counted, "connect_http_requests_total", readyz),
        2.0,
        "{counted}"
    );
    assert_eq!(
        metric(
            &counted,
            "connect_tokens_issued_total",
            r#"realm="AK00",grant_type="client_credentials""#
        ),
        1.0,
        "{counted}"
    );
}

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_realm_issuer() {
    let app = spawn_app().await;
    for realm in ["AK00", "AK01"] {
        let doc: serde_json::Value = app
            .get(&app.url(&format!("/{realm}/.well-known/openid-configuration")))
            .await
            .json()
            .await
            .unwrap();
        let issuer = app.issuer(realm);
        assert_eq!(doc["issuer"], issuer.as_str());
        for (field, path) in [
            ("authorization_endpoint", "authorize"),
            ("token_endpoint", "token"),
            ("userinfo_endpoint", "userinfo"),
            ("jwks_uri", "jwks"),
            ("end_session_endpoint", "logout"),
            ("revocation_endpoint", "revoke"),
            ("introspection_endpoint", "introspect"),
        ] {
            assert_eq!(doc[field], format!("{issuer}/{path}"), "{field}");
        }
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["request_parameter_supported"], false);
        assert_eq!(doc["request_uri_parameter_supported"], false);
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let algs = doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap();
        assert!(algs.contains(&"RS256".into()) && algs.contains(&"ES256".into()));
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"ahv".into()));
    }
}

#[tokio::test]
async fn revocation_ends_a_refresh_token() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let q = [
        ("client_id", "portal"),
        ("redirect_uri", PORTAL_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    let cb = app.authorize_and_login("AK00", &q, "anna@example.ch").await;
    let code = query_param(&cb, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    let body: serde_json::Value = app
        .token("AK00", &form, Some(("portal", PORTAL_SECRET)))
        .await
        .json()
        .await
        .unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let res = app
        .api
        .post(app.url("/AK00/revoke"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again = app
        .token(
            "AK00",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some(("portal", PORTAL_SECRET)),
        )
        .await;
    assert_eq!(again.status(), 400);
    let res = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the grant's access token is revoked as well"
    );
}

#[tokio::test]
async fn every_page_shows_the_caisses_logo_from_the_realm_files() {
    let app = spawn_app().await;
    let res = app.get(&app.url("/AK00/logo")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let shipped = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config/logos/AK00.svg"),
    )
    .unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), shipped.as_slice());
    let page = unescape(
        &app.get(&app.url("/AK00/register"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(
        page.contains("<img class=\"logo\" src=\"/AK00/logo\""),
        "{page}"
    );
    assert_eq!(app.get(&app.url("/AK99/logo")).await.status(), 404);
}

#[tokio::test]
async fn a_logo_outside_the_realm_directory_or_of_another_kind_is_refused() {
    for (logo, why) in [
        ("../secret.svg", "inside"),
        ("logos/AK00.gif", ".svg or .png"),
        ("logos/missing.svg", "missing.svg"),
    ] {
        let dir = realm_dir_with(|t| set_key(&t, "logo", &format!("\"{logo}\"")));
        let err = connect::realm::Realms::load_dir(dir.path()).unwrap_err();
        assert_eq!(err.key, "logo", "{logo}");
        assert!(err.reason.contains(why), "{logo}: {}", err.reason);
    }
}

// ---------------------------------------------------------------------------------------
// Headers

/// A `Location` of the IdP as a URL the browser opens.
fn absolute(p: &TestPortal, location: &str) -> String {
    if location.starts_with('/') {
        p.idp.url(location)
    } else {
        location.to_owned()
    }
}

#[tokio::test]
async fn an_https_public_url_sends_hsts_and_an_http_one_does_not() {
    let app = spawn_with(|c| c.public_url = "https://login.example.ch".parse().unwrap()).await;
    for path in [
        "/AK00/login",
        "/nowhere",
        "/AK00/.well-known/openid-configuration",
    ] {
        let res = app.get(&app.url(path)).await;
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let app = spawn_app().await;
    let res = app.get(&app.url("/AK00/login")).await;
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn every_idp_page_and_personal_answer_is_no_store_and_only_the_assets_are_cached() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/AK00/login",
        "/AK00/register",
        "/AK00/authorize?client_id=portal",
        "/nowhere",
        "/AK00/userinfo",
    ] {
        let res = app.get(&app.url(path)).await;
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
    let css = app.get(&app.url("/static/connect.css")).await;
    assert_eq!(css.headers()["cache-control"], "public, max-age=3600");
}

#[tokio::test]
async fn every_portal_page_is_no_store_and_hsts_follows_the_portal_url() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (login, _) = p.browse(&p.url("/documents")).await;
    let res = p
        .idp
        .submit_login(&login, "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    let (at, page) = p.browse(&absolute(&p, &location(&res))).await;
    assert_eq!(at, p.url("/documents"));
    assert_eq!(page.headers()["cache-control"], "no-store", "Mes documents");
    assert!(page.headers().get("strict-transport-security").is_none());
    for path in ["/", "/documents", "/callback?state=x"] {
        let res = p.idp.get(&p.url(path)).await;
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }

    let p = spawn_portal_with(
        |t| t,
        |c| c.portal_url = "https://documents.example.ch".parse().unwrap(),
    )
    .await;
    let res = p.idp.get(&p.url("/callback?state=x")).await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

// ---------------------------------------------------------------------------------------
// Bodies refused early, and slow clients

/// A body that arrives in `chunks` pieces of 4 KiB, 10 ms apart, after `head` and before
/// `tail`: a client on a slow line, still sending when the server has decided.
fn slow_body(head: &str, chunks: usize, fill: u8, tail: &str) -> reqwest::Body {
    let mut pieces: Vec<Vec<u8>> = vec![head.as_bytes().to_vec()];
    pieces.extend((0..chunks).map(|_| vec![fill; 4096]));
    pieces.push(tail.as_bytes().to_vec());
    let stream = futures_util::stream::unfold(pieces.into_iter(), |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn a_token_request_over_the_body_limit_sent_slowly_reads_its_413_not_a_reset() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let res = app
            .api
            .post(app.url("/AK00/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(slow_body(
                "grant_type=client_credentials&pad=",
                48,
                b'a',
                "",
            ))
            .send()
            .await
            .expect("the client reads the answer instead of a broken pipe");
        assert_eq!(res.status(), 413);
    }
}

const BOUNDARY: &str = "edge-test-boundary";

/// The head of a delivery whose metadata part is `metadata`, up to the start of the PDF.
fn delivery_head(metadata: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\
         Content-Type: application/json\r\n\r\n{metadata}\r\n--{BOUNDARY}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"d.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    )
}

async fn slow_delivery(p: &TestPortal, token: Option<&str>, metadata: &str) -> reqwest::Response {
    let mut req = p
        .idp
        .api
        .post(p.url("/api/v1/documents"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(slow_body(
            &delivery_head(metadata),
            48,
            b'x',
            &format!("\n%%EOF\n\r\n--{BOUNDARY}--\r\n"),
        ));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send()
        .await
        .expect("the client reads the answer instead of a broken pipe")
}

#[tokio::test]
async fn a_delivery_refused_before_or_after_its_metadata_reads_its_problem_not_a_reset() {
    let p = spawn_portal().await;
    // 401 before any body byte is read.
    let res = slow_delivery(&p, None, "{}").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // 422 once the metadata part is read, while the document is still on its way.
    let res = p
        .idp
        .token(
            "AK00",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "documents:write"),
            ],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    let body: serde_json::Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let metadata = serde_json::json!({
        "realm": "AK00", "ahv": "756.1234.5678.97", "category": "no-such-category",
        "title": "Décision", "issue_date": "2026-01-05",
    })
    .to_string();
    let res = slow_delivery(&p, Some(token), &metadata).await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["title"], "Unknown category");
}

/// Opens a connection and sends `bytes`, then nothing more; what the server answers before it
/// closes, or `None` when it still holds the connection after 10 seconds.
async fn stall_after(addr: &str, bytes: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(bytes.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .ok()?;
    // A reset after the answer counts as closed too.
    let _ = read;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_slow_head_is_cut_off_and_a_stalled_body_answered_408_on_both_servers() {
    let second = std::time::Duration::from_secs(1);
    let app = spawn_with(|c| c.read_timeout = second).await;
    let p = spawn_portal_with(|t| t, |c| c.read_timeout = second).await;
    let idp = app.base.trim_start_matches("http://").to_owned();
    let portal = p.base.trim_start_matches("http://").to_owned();
    for addr in [&idp, &portal] {
        let answer = stall_after(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
            .await
            .unwrap_or_else(|| panic!("{addr}: a head that never ends holds the connection"));
        assert!(!answer.contains("200 OK"), "{addr}: {answer}");
    }
    for (addr, path) in [(&idp, "/AK00/token"), (&portal, "/backchannel-logout")] {
        let answer = stall_after(
            addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: 1000\r\n\r\ngrant_type="
            ),
        )
        .await
        .unwrap_or_else(|| panic!("{addr}: a stalled body holds the connection"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{addr}{path}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
}

// ---------------------------------------------------------------------------------------
// Client addresses behind proxies

/// A browser of `app` whose requests carry `X-Forwarded-For: forwarded`.
fn forwarding(app: &TestApp, forwarded: &str) -> TestApp {
    let mut t = TestApp::sharing(app);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded.parse().unwrap());
    t.browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap();
    t
}

async fn code_guesses_limited(app: &TestApp, forwarded_for_each: &[&str]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for forwarded in forwarded_for_each {
        let res = forwarding(app, forwarded)
            .fill("/AK00/register", &[("code", "ABCD EFGH JKMN")])
            .await;
        statuses.push(res.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn the_forwarded_address_counts_only_from_a_trusted_proxy() {
    let realms = realm_dir_with(|t| set_key(&t, "code_guesses_per_address_per_hour", "2"));
    let dir = realms.path().to_path_buf();
    // The test client is the proxy: its header names the client.
    let behind_proxy = spawn_with(|c| {
        c.realm_dir = dir.clone();
        c.client_ip_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    assert_eq!(
        code_guesses_limited(
            &behind_proxy,
            &[
                "203.0.113.1",
                "203.0.113.1",
                // A forged entry left of what the proxy appended changes nothing.
                "198.51.100.7, 203.0.113.1",
                "203.0.113.2",
            ]
        )
        .await,
        [400, 400, 429, 400],
        "each client its own count; the right-most untrusted entry is the client"
    );
    // A peer that is no trusted proxy: its header is ignored, every guess is the peer's.
    let direct = spawn_with(|c| {
        c.realm_dir = dir.clone();
        c.client_ip_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    assert_eq!(
        code_guesses_limited(&direct, &["203.0.113.1", "203.0.113.2", "203.0.113.3"]).await,
        [400, 400, 429]
    );
}

// ---------------------------------------------------------------------------------------
// Logs

/// What the server logs, through the subscriber `connect::telemetry` installs.
#[derive(Clone, Default)]
struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

impl LogSink {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_logs_of_enrolment_login_and_a_forged_callback_hold_no_ahv_number_path_id_or_raw_text()
{
    use crate::enrol::{confirm_phone, enter_letter_code, open_account, prove_email, EMAIL};
    let sink = LogSink::default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.log_level = "info,connect=debug".into();
    let dispatch = connect::telemetry::dispatch(&config, sink.clone(), false);
    // The test's runtime has one thread: the servers' tasks log through this subscriber too.
    let _logging = tracing::dispatcher::set_default(&dispatch);
    // With a single dispatcher alive, tracing caches each callsite's interest as the default
    // of whichever thread meets it first: another test's thread, which has none, would switch
    // the request span off for this one too. A second dispatcher makes it ask them all.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());

    let p = spawn_portal().await;
    let ahv = "756.1234.5678.97";
    let code = p.idp.person_with_code("AK00", ahv, Language::Fr).await;
    let (login, _) = p.browse(&p.url("/documents")).await;
    let flow = query_param(&login, "flow").unwrap();
    let base = enter_letter_code(&p.idp, &format!("/AK00/register?flow={flow}"), &code).await;
    let tx = base.rsplit('/').next().unwrap().to_owned();
    prove_email(&p.idp, &base, EMAIL).await;
    open_account(&p.idp, &base).await;
    let done = confirm_phone(&p.idp, &base).await;
    assert_eq!(done.status(), 303);
    let res = p
        .idp
        .submit_login(&location(&done), EMAIL, crate::enrol::NEW_PASSWORD)
        .await;
    let (at, _) = p.browse(&absolute(&p, &location(&res))).await;
    assert_eq!(at, p.url("/documents"));

    // An attacker's callback: a real pending login, and an `error` that tries a log line.
    let start = p.idp.get(&p.url("/login")).await;
    let state = query_param(&location(&start), "state").unwrap();
    let evil = "access_denied\nFORGED  INFO login succeeded account=admin\u{1b}[2J";
    let res = p
        .idp
        .browser
        .get(p.url("/callback"))
        .query(&[("state", state.as_str()), ("error", evil)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let log = sink.text();
    assert!(
        log.contains("/{realm}/register/{tx}"),
        "the request spans name routes:\n{log}"
    );
    assert!(
        log.contains("FORGED"),
        "the error is logged, escaped:\n{log}"
    );
    for line in log.lines() {
        assert!(!line.starts_with("FORGED"), "a forged line: {line}");
    }
    assert!(!log.contains('\u{1b}'), "no terminal escape from a request");
    assert!(
        !log.contains(&tx),
        "the enrolment's id is in the log:\n{log}"
    );
    for secret in [
        ahv,
        &ahv.replace('.', ""),
        &code,
        &code.replace(' ', ""),
        crate::enrol::NEW_PASSWORD,
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
