//! Whole journeys through nginx over three IdP and two portal replicas: enrolment, login with
//! the SMS code, code exchange, refresh, userinfo, a document delivered and downloaded,
//! RP-initiated and back-channel logout; a key rotation seen by every replica; the same
//! journeys under load, and the database checked after.

use std::{
    collections::{BTreeSet, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64::Engine;
use sha2::Digest;

use crate::{
    browser::*,
    harness::{postgres_url, Cluster, Shape, BENCH_SECRET, DOCS_SECRET, PORTAL_SECRET},
    ONE_AT_A_TIME,
};

const VERIFIER: &str = "cluster-test-code-verifier-0123456789-abcdefghijklmnop";

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER))
}

fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().expect("a JWT");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("JSON");
    header["kid"].as_str().expect("a kid").to_owned()
}

/// The kids a replica publishes for AK00.
async fn kids(url: &str) -> BTreeSet<String> {
    let jwks: serde_json::Value = reqwest::get(url)
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// A client-credentials token of the caisse's document service, from the IdP behind nginx.
async fn docs_token(c: &Cluster, client: &reqwest::Client) -> String {
    let res = client
        .post(c.idp_url("/AK00/token"))
        .basic_auth("caisse-docs", Some(DOCS_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "documents:write"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200, "client credentials");
    let body: serde_json::Value = res.json().await.expect("JSON");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Delivers one PDF for `p` with `key` as its Idempotency-Key; status and document id.
async fn deliver(c: &Cluster, token: &str, p: &Person, key: &str, pdf: &[u8]) -> (u16, String) {
    let metadata = serde_json::json!({
        "realm": "AK00",
        "ahv": p.ahv,
        "category": "decision",
        "titles": { "fr": format!("Décision {}", p.n), "de": format!("Verfügung {}", p.n) },
        "issue_date": "2026-11-01",
    });
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf.to_vec())
                .file_name("d.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let res = reqwest::Client::new()
        .post(c.portal_url("/api/v1/documents"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .multipart(form)
        .send()
        .await
        .expect("delivery");
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (status, body["id"].as_str().unwrap_or_default().to_owned())
}

fn pdf(n: u8) -> Vec<u8> {
    format!("%PDF-1.7\n% person {n}\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n").into_bytes()
}

fn document_ids(html: &str) -> Vec<String> {
    html.split("href=\"/documents/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// From the portal's front page to its overview: sent to the IdP, enrolled with the letter
/// (steps 1–7), logged in with password and SMS code, back at the portal.
async fn enrol_and_log_in_at_the_portal(c: &Cluster, b: &Browser, p: &Person, code: &str) {
    let (at, page) = b.browse(&c.portal_url("/")).await;
    assert!(at.contains("/AK00/login?flow="), "sent to the IdP: {at}");
    let html = page.text().await.expect("html");
    let flow = form_value(&html, "flow").expect("the login's flow");
    let register = c.idp_url(&format!("/AK00/register?flow={flow}"));
    let done = enrol(c, b, &register, code, p).await;
    assert_eq!(done.status(), 303, "step 7 opens the account: {}", c.logs());
    let login = absolute(&register, &location(&done));
    assert!(login.contains("enrolled=1"), "{login}");
    let back = log_in(c, b, &login, p).await;
    assert!(back.starts_with(&c.portal_url("/callback?")), "{back}");
    let (at, page) = b.browse(&back).await;
    let status = page.status();
    let html = unescape(&page.text().await.expect("html"));
    assert_eq!(at, c.portal_url("/"), "back at the portal: {status} {html}");
    assert!(
        html.contains("Anna Muster"),
        "the portal's overview: {html}"
    );
}

/// A document delivered twice with the same Idempotency-Key (each time to whichever portal
/// replica nginx picks), then listed and downloaded by the person.
async fn document_delivered_and_downloaded(c: &Cluster, b: &Browser, p: &Person) {
    let token = docs_token(c, &reqwest::Client::new()).await;
    let body = pdf(p.n);
    let key = format!("letter-{}", p.n);
    let (first, id) = deliver(c, &token, p, &key, &body).await;
    assert_eq!(first, 201, "delivered: {}", c.logs());
    let (again, same) = deliver(c, &token, p, &key, &body).await;
    assert_eq!(
        (again, same.as_str()),
        (200, id.as_str()),
        "a retry is the same document"
    );
    let html = b
        .get(&c.portal_url("/documents"))
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(document_ids(&html), vec![id.clone()], "one document listed");
    let res = b.get(&c.portal_url(&format!("/documents/{id}"))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), body.as_slice());
}

/// The test as a relying party with the portal's client: a code for the IdP session the
/// browser holds, exchanged, refreshed; the tokens.
async fn code_exchange_and_refresh(
    c: &Cluster,
    b: &Browser,
) -> (serde_json::Value, serde_json::Value) {
    let callback = c.portal_url("/callback");
    let res = b
        .client
        .get(c.idp_url("/AK00/authorize"))
        .query(&[
            ("client_id", "portal"),
            ("redirect_uri", callback.as_str()),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "cluster"),
            ("nonce", "n-cluster"),
            ("code_challenge", &challenge()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), 303, "the IdP session answers at once");
    let to = location(&res);
    let code = query_param(&to, "code").unwrap_or_else(|| panic!("a code: {to}"));
    let api = reqwest::Client::new();
    let res = api
        .post(c.idp_url("/AK00/token"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("code exchange");
    assert_eq!(res.status(), 200, "code exchange");
    let tokens: serde_json::Value = res.json().await.expect("JSON");
    let refreshed = refresh(c, &tokens).await;
    (tokens, refreshed)
}

async fn refresh(c: &Cluster, tokens: &serde_json::Value) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(c.idp_url("/AK00/token"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("refresh token"),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200, "refresh");
    res.json().await.expect("JSON")
}

/// Userinfo with `token` at `url` (a replica or the balancer); the status.
async fn userinfo(url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_idp_and_two_portal_replicas_behind_nginx_serve_whole_journeys() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start(&pg, Shape::new(3, 2)).await;
    let p = Person::new(1);
    let code = c.person_with_code(&p.ahv).await;
    let b = Browser::new(p.n);

    enrol_and_log_in_at_the_portal(&c, &b, &p, &code).await;
    // Every request of the enrolment and the login went to another IdP replica than the one
    // before, and between them all three served.
    let idp = b.upstreams(c.idp_lb, 0);
    assert!(idp.len() >= 15, "{idp:?}");
    for pair in idp.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "two requests in a row on one replica: {idp:?}"
        );
    }
    let served: HashSet<&String> = idp.iter().collect();
    assert_eq!(served.len(), 3, "{idp:?}");
    let portal: HashSet<String> = b.upstreams(c.portal_lb, 0).into_iter().collect();
    assert!(portal.len() >= 2, "both portal replicas served: {portal:?}");
    eprintln!(
        "cluster: enrolment and login in {} requests through nginx, each on another IdP replica",
        idp.len()
    );

    document_delivered_and_downloaded(&c, &b, &p).await;

    let (tokens, refreshed) = code_exchange_and_refresh(&c, &b).await;
    let access = refreshed["access_token"].as_str().expect("access token");
    for replica in &c.idp {
        assert_eq!(userinfo(&replica.url("/AK00/userinfo"), access).await, 200);
    }

    // A key rotation at one replica's host reaches every replica within keys_reload_seconds
    // (2 s here, 30 s by default).
    let before = kids(&c.idp[0].url("/AK00/jwks")).await;
    let old_kid = kid(access);
    c.connect(&[
        "admin",
        "--reason",
        "cluster test",
        "keys",
        "rotate",
        "--realm",
        "AK00",
    ])
    .await;
    let rotated = Instant::now();
    let mut seen = Vec::new();
    for replica in &c.idp {
        loop {
            let now = kids(&replica.url("/AK00/jwks")).await;
            if now.len() > before.len() && now.is_superset(&before) {
                break;
            }
            assert!(
                rotated.elapsed() < Duration::from_secs(10),
                "rotation not seen"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen.push(rotated.elapsed());
    }
    let slowest = seen.iter().max().copied().unwrap_or_default();
    eprintln!("cluster: key rotation seen by all three IdP replicas after {slowest:?}");
    assert!(
        slowest <= Duration::from_secs(4),
        "bounded by keys_reload_seconds: {seen:?}"
    );
    // Until the hand-over (keys_reload_seconds + 10 s) the old key signs, on every replica;
    // then the new one. Tokens signed with the new key, by whichever replica, verify at every
    // replica; those signed before verify still.
    let during_tokens = refresh(&c, &refreshed).await;
    let during = during_tokens["access_token"]
        .as_str()
        .expect("access token");
    assert_eq!(
        kid(during),
        old_kid,
        "the old key signs during the hand-over"
    );
    let handover = Duration::from_secs(2 + 10);
    tokio::time::sleep((handover + Duration::from_secs(1)).saturating_sub(rotated.elapsed())).await;
    let renewed = refresh(&c, &during_tokens).await;
    let new_access = renewed["access_token"].as_str().expect("access token");
    assert_ne!(kid(new_access), old_kid, "signed with the new key");
    for replica in &c.idp {
        assert_eq!(
            userinfo(&replica.url("/AK00/userinfo"), new_access).await,
            200
        );
        assert_eq!(userinfo(&replica.url("/AK00/userinfo"), access).await, 200);
    }
    let _ = tokens;

    // RP-initiated logout at the portal: its session and the IdP's end.
    let (_, page) = b.browse(&c.portal_url("/")).await;
    let html = page.text().await.expect("html");
    let csrf = form_value(&html, "csrf").expect("the logout form");
    let res = b
        .post(&c.portal_url("/logout"), &[("csrf".into(), csrf)])
        .await;
    assert_eq!(res.status(), 303);
    let to = absolute(&c.portal_url("/logout"), &location(&res));
    assert!(to.starts_with(&c.idp_url("/AK00/logout?")), "{to}");
    let (at, _) = b.browse(&to).await;
    assert!(at.contains("/AK00/login?flow="), "logged out of both: {at}");

    // Logged in again, the portal verifies an ID token signed with the new key.
    let back = log_in(&c, &b, &at, &p).await;
    let (at, _) = b.browse(&back).await;
    assert_eq!(
        at,
        c.portal_url("/"),
        "back at the portal after the rotation"
    );

    // Logout at the IdP itself: the portal hears it by back-channel and ends its session.
    let page = b
        .get(&c.idp_url("/AK00/logout"))
        .await
        .text()
        .await
        .expect("html");
    let confirm = form_value(&page, "confirm").expect("the confirmation form");
    let res = b
        .post(&c.idp_url("/AK00/logout"), &[("confirm".into(), confirm)])
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (at, _) = b.browse(&c.portal_url("/")).await;
        if at.contains("/AK00/login?flow=") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the portal session outlived the IdP's"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_every_journey_completes_and_nothing_is_lost_or_duplicated() {
    let Some(pg) = postgres_url() else { return };
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Arc::new(Cluster::start(&pg, Shape::new(3, 2)).await);
    let people: Vec<Person> = (20..24).map(Person::new).collect();
    let mut codes = Vec::new();
    for p in &people {
        codes.push(c.person_with_code(&p.ahv).await);
    }

    // The load: caisse systems asking for tokens and reading discovery and keys, without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (c, stop, done, failed) = (c.clone(), stop.clone(), done.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let token = client
                    .post(c.idp_url("/AK00/token"))
                    .basic_auth("bench-cc", Some(BENCH_SECRET))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("scope", "documents:read"),
                    ])
                    .send()
                    .await;
                let discovery = client
                    .get(c.idp_url("/AK00/.well-known/openid-configuration"))
                    .send()
                    .await;
                let jwks = client.get(c.idp_url("/AK00/jwks")).send().await;
                for res in [token, discovery, jwks] {
                    match res {
                        Ok(r) if r.status().is_success() => done.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
    }

    let started = Instant::now();
    let mut journeys = Vec::new();
    for (p, code) in people.iter().cloned().zip(codes) {
        let c = c.clone();
        journeys.push(tokio::spawn(async move {
            let b = Browser::new(p.n);
            enrol_and_log_in_at_the_portal(&c, &b, &p, &code).await;
            document_delivered_and_downloaded(&c, &b, &p).await;
        }));
    }
    for j in journeys {
        j.await.expect("a journey completes under load");
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "cluster: {} journeys in {:?} beside {done} load requests ({failed} failed)",
        people.len(),
        started.elapsed()
    );
    assert!(done > 100, "the load ran: {done}");
    assert_eq!(failed, 0, "no load request failed");

    // The database after: one account per person, every letter code used once, one document
    // per person.
    let idp = c.idp_db().await;
    let portal = c.portal_db().await;
    for p in &people {
        let (accounts,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM accounts WHERE realm = 'AK00' AND ahv = $1")
                .bind(&p.ahv)
                .fetch_one(&idp)
                .await
                .unwrap();
        assert_eq!(accounts, 1, "{}: one account", p.email);
        let (documents,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM documents WHERE realm = 'AK00' AND ahv = $1")
                .bind(&p.ahv)
                .fetch_one(&portal)
                .await
                .unwrap();
        assert_eq!(documents, 1, "{}: one document", p.email);
    }
    let (accounts,): (i64,) = sqlx::query_as("SELECT count(*) FROM accounts WHERE realm = 'AK00'")
        .fetch_one(&idp)
        .await
        .unwrap();
    assert_eq!(accounts, people.len() as i64, "no other account");
    let (open,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM activation_codes WHERE used_at IS NULL")
            .fetch_one(&idp)
            .await
            .unwrap();
    assert_eq!(open, 0, "every letter's code was used");
}
