//! Faults under a running cluster, each against services the test started itself: a replica
//! killed mid-journey, Redis restarted, PostgreSQL unreachable for ten seconds, SIGTERM.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    browser::*,
    harness::{postgres_url, wait_ready, Cluster, Kind, Shape, BENCH_SECRET, PORTAL_SECRET},
    ONE_AT_A_TIME,
};

/// The accounts of AK00 in the IdP's database.
async fn accounts(c: &Cluster) -> i64 {
    let db = c.idp_db().await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM accounts WHERE realm = 'AK00'")
        .fetch_one(&db)
        .await
        .expect("count");
    db.close().await;
    n
}

/// An authorization request of the portal's client; where the IdP sends the browser.
async fn authorize(c: &Cluster, b: &Browser) -> reqwest::Response {
    b.client
        .get(c.idp_url("/AK00/authorize"))
        .query(&[
            ("client_id", "portal"),
            ("redirect_uri", c.portal_url("/callback").as_str()),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
            (
                "code_challenge",
                "pVFSLitW9eWGQur1MDYCxYQ9-aX3lA06U7I808TUQDY",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize")
}

/// Readiness of every IdP replica: status codes, and how long the slowest answer took.
async fn readiness(c: &Cluster) -> (Vec<u16>, Duration) {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for r in &c.idp {
        let t = Instant::now();
        let status = client
            .get(r.url("/readyz"))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        slowest = slowest.max(t.elapsed());
        statuses.push(status);
    }
    (statuses, slowest)
}

/// Waits until every IdP replica is ready again; how long it took.
async fn recovered(c: &Cluster, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        if readiness(c).await.0.iter().all(|s| *s == 200) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "no recovery within {within:?}: {}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client-credentials request; its status.
async fn client_credentials(c: &Cluster) -> u16 {
    reqwest::Client::new()
        .post(c.idp_url("/AK00/token"))
        .basic_auth("bench-cc", Some(BENCH_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "documents:read"),
        ])
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("token")
        .status()
        .as_u16()
}

/// A 503 page in French, quick, with `Retry-After`, that names no store.
async fn assert_unavailable_page(res: reqwest::Response, took: Duration, what: &str) {
    assert_eq!(res.status(), 503, "{what}");
    assert!(res.headers().contains_key("retry-after"), "{what}");
    let html = unescape(&res.text().await.expect("html"));
    assert!(
        html.contains("momentanément indisponible"),
        "{what}: {html}"
    );
    for leak in ["redis", "postgres", "sqlx", "127.0.0.1:"] {
        assert!(!html.to_lowercase().contains(leak), "{what} names {leak}");
    }
    assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    eprintln!("cluster: {what}: 503 page in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_enrolment_and_mid_login_loses_nothing() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start(&pg, Shape::new(3, 0)).await;
    let p = Person::new(2);
    let code = c.person_with_code(&p.ahv).await;
    let b = Browser::new(p.n);

    // Steps 1–3, then a replica dies (SIGKILL: nothing of it is saved); steps 4–7 finish on
    // the other two.
    let base = letter_step(&c, &b, &c.idp_url("/AK00/register"), &code).await;
    email_steps(&c, &b, &base, &p).await;
    c.idp[0].kill().await;
    account_steps(&b, &base).await;
    let before = c.sms_count(&p.e164);
    phone_step(&b, &base, &p).await;
    let done = sms_step(&c, &b, &base, &p, before).await;
    assert_eq!(done.status(), 303, "the enrolment ends on another replica");
    assert_eq!(accounts(&c).await, 1);

    // A login at a relying party: the password on one replica, then another dies before the
    // SMS code; the last one finishes the login and the code exchange.
    let res = authorize(&c, &b).await;
    assert_eq!(res.status(), 303);
    let login = absolute(&c.idp_url("/"), &location(&res));
    let before = c.sms_count(&p.e164);
    let res = password_step(&b, &login, &p).await;
    assert_eq!(res.status(), 303, "password accepted");
    let sms_url = absolute(&login, &location(&res));
    c.idp[1].kill().await;
    let back = login_sms_step(&c, &b, &sms_url, &p, before).await;
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("a code: {back}"));
    let res = reqwest::Client::new()
        .post(c.idp_url("/AK00/token"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.portal_url("/callback").as_str()),
            (
                "code_verifier",
                "test-verifier-of-the-portal-0123456789-abcdefghij",
            ),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200, "the code exchange on the last replica");
    assert_eq!(accounts(&c).await, 1, "one account, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_loses_only_short_lived_state_and_everything_recovers() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start(&pg, Shape::new(2, 0)).await;
    let p = Person::new(3);
    let code = c.person_with_code(&p.ahv).await;
    let b = Browser::new(p.n);
    let base = letter_step(&c, &b, &c.idp_url("/AK00/register"), &code).await;
    email_steps(&c, &b, &base, &p).await;

    c.redis.stop().await;
    // Pages answer 503 in French, at once, every time; no 500.
    for what in ["first /authorize", "second /authorize"] {
        let t = Instant::now();
        let res = authorize(&c, &b).await;
        assert_unavailable_page(res, t.elapsed(), what).await;
    }
    let t = Instant::now();
    let res = b.get(&format!("{base}/account")).await;
    assert_unavailable_page(res, t.elapsed(), "enrolment step 4").await;
    let status = client_credentials(&c).await;
    assert!(status == 200 || status == 503, "token endpoint: {status}");
    let (ready, took) = readiness(&c).await;
    assert_eq!(ready, vec![503, 503], "/readyz tells");
    assert!(took < Duration::from_secs(5), "/readyz took {took:?}");
    eprintln!("cluster: /readyz 503 in {took:?} at most");

    c.redis.restart().await;
    let recovery = recovered(&c, Duration::from_secs(15)).await;
    eprintln!("cluster: ready again {recovery:?} after Redis came back (empty)");

    // What Redis held is gone: the enrolment begun says so and starts over with the same
    // letter code; nothing of it had reached the database.
    let res = b.get(&format!("{base}/account")).await;
    let status = res.status().as_u16();
    eprintln!(
        "cluster: the enrolment begun before the Redis restart answers {status} {}",
        location(&res)
    );
    assert!(
        status == 303 || (400..500).contains(&status),
        "the lost enrolment is told, not a failure: {status}"
    );
    assert_eq!(accounts(&c).await, 0);
    let res = enrol(&c, &b, &c.idp_url("/AK00/register"), &code, &p).await;
    assert_eq!(
        res.status(),
        303,
        "enrolled after starting over: {}",
        c.logs()
    );
    assert_eq!(accounts(&c).await, 1);
    // Logins work again on every replica.
    let res = authorize(&c, &b).await;
    assert_eq!(res.status(), 303);
    let login = absolute(&c.idp_url("/"), &location(&res));
    let back = log_in(&c, &b, &login, &p).await;
    assert!(query_param(&back, "code").is_some(), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_for_ten_seconds_fails_fast_writes_nothing_and_recovers() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut shape = Shape::new(2, 0);
    shape.pg_proxy = true;
    let c = Cluster::start(&pg, shape).await;
    let p = Person::new(4);
    let code = c.person_with_code(&p.ahv).await;
    let b = Browser::new(p.n);
    let base = letter_step(&c, &b, &c.idp_url("/AK00/register"), &code).await;
    email_steps(&c, &b, &base, &p).await;
    account_steps(&b, &base).await;
    let before = c.sms_count(&p.e164);
    phone_step(&b, &base, &p).await;
    let sms = c.sms_code(&p.e164, before).await;

    let proxy = c.pg.as_ref().expect("the proxy");
    proxy.cut();
    let cut = Instant::now();
    // Step 7 would open the account: refused at once, and nothing is written.
    let page = b.get(&format!("{base}/sms")).await;
    assert_eq!(page.status(), 200, "the step's page needs no database");
    let html = page.text().await.expect("html");
    let t = Instant::now();
    let res = b
        .submit_on(&format!("{base}/sms"), &html, &[("code", &sms)])
        .await;
    assert_unavailable_page(res, t.elapsed(), "step 7 without the database").await;
    let (ready, took) = readiness(&c).await;
    assert_eq!(ready, vec![503, 503], "/readyz tells");
    assert!(took < Duration::from_secs(5), "/readyz took {took:?}");
    eprintln!("cluster: /readyz 503 in {took:?} at most");
    let status = client_credentials(&c).await;
    assert!(status == 200 || status == 503, "token endpoint: {status}");

    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed())).await;
    proxy.restore();
    let recovery = recovered(&c, Duration::from_secs(15)).await;
    eprintln!("cluster: ready again {recovery:?} after PostgreSQL came back");
    assert_eq!(accounts(&c).await, 0, "nothing half-written");

    // The person sends the same code again and the account opens, once.
    let res = b.fill(&format!("{base}/sms"), &[("code", &sms)]).await;
    assert_eq!(res.status(), 303, "step 7 after the outage: {}", c.logs());
    assert_eq!(accounts(&c).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_finishes_open_requests_and_exits_in_time() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let mut shape = Shape::new(1, 0);
    shape.shutdown_seconds = 3;
    let mut c = Cluster::start(&pg, shape).await;

    // A request whose body is still arriving when SIGTERM comes.
    let body = "grant_type=client_credentials";
    let port = c.idp[0].port;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /AK00/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: \
         application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.idp[0].terminate();
    let term = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "no new connection after SIGTERM"
    );
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the open request is answered (no client authentication): {answer}"
    );
    let status = c.idp[0].child.wait().await.unwrap();
    let exited = term.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        exited < Duration::from_secs(3),
        "exited {exited:?} after SIGTERM"
    );
    eprintln!("cluster: SIGTERM to exit with a request in flight: {exited:?}");

    // A request that never completes holds the replica no longer than the shutdown timeout.
    let mut replica = c.spawn(Kind::Idp).await;
    wait_ready(&replica).await;
    let mut stuck = tokio::net::TcpStream::connect(("127.0.0.1", replica.port))
        .await
        .unwrap();
    stuck
        .write_all(
            head.replace(&port.to_string(), &replica.port.to_string())
                .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    replica.terminate();
    let term = Instant::now();
    let status = replica.child.wait().await.unwrap();
    let exited = term.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        exited >= Duration::from_millis(2500) && exited < Duration::from_secs(6),
        "exits at the 3 s shutdown timeout: {exited:?}"
    );
    eprintln!("cluster: SIGTERM to exit with a request that never completes: {exited:?}");
}
