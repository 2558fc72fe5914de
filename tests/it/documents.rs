//! The document portal's delivery API, retention, notification mail and demo documents:
//! a real IdP (`spawn_with`) and beside it a real portal whose issuer is the IdP's AK00, with
//! caisse systems taking client-credentials tokens from the IdP.

use std::{path::Path, process::Command};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use bytes::Bytes;
use connect::{
    domain::{AhvNumber, DocumentCategory, DocumentTitles, Language},
    portal::{demo, retention, Portal, PortalState},
    storage::{
        documents::{self, Document, Filter, Recipient},
        Db,
    },
};
use futures_util::StreamExt;
use reqwest::{
    multipart::{Form, Part},
    Response,
};
use serde_json::{json, Value};

use crate::helpers::*;

const CAISSE_DOCS: &str = r#"
# A caisse system delivering documents (tests): secret "caisse-docs-secret".
[[clients]]
client_id = "caisse-docs"
name = "Caisse documents"
type = "confidential"
secret_sha256 = "5f74ba993c150f4b42713bf1cc47af884da035815725db69d6e65feb342358cf"
grant_types = ["client_credentials"]
scopes = ["documents:write"]
"#;

/// The largest document the test portal takes; small, so that the 413 cases stay cheap.
const MAX_BYTES: usize = 64 * 1024;

/// An IdP and a portal on the same clock and outbox, each with its own database.
struct Docs {
    idp: TestApp,
    portal: PortalState,
    base: String,
    http: reqwest::Client,
    _realms: tempfile::TempDir,
}

async fn spawn_docs() -> Docs {
    spawn_docs_with(|_| {}).await
}

/// As [`spawn_docs`], with `edit` applied to the portal's configuration.
async fn spawn_docs_with(edit: impl FnOnce(&mut connect::config::Config)) -> Docs {
    let realms = realm_dir_with(|text| {
        // Another change adds the client to the shipped AK00 file; never twice.
        if text.contains("client_id = \"caisse-docs\"") {
            text
        } else {
            format!("{text}\n{CAISSE_DOCS}")
        }
    });
    let dir = realms.path().to_owned();
    let idp = spawn_with(move |c| c.realm_dir = dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = (*idp.state.config).clone();
    config.portal.database_url = portal_database(&config.data_dir).await;
    config.portal.issuer = idp.issuer("AK00").parse().expect("issuer");
    config.portal.client_secret = Some(PORTAL_SECRET.to_owned().into());
    config.portal.store_url = config.data_dir.join("documents").display().to_string();
    config.portal.max_document_bytes = MAX_BYTES;
    config.portal_bind = addr;
    config.portal_url = format!("http://{addr}/").parse().expect("url");
    edit(&mut config);
    let portal = Portal::with_listener(config, idp.state.clock.clone(), listener)
        .await
        .expect("portal starts");
    let state = portal.state.clone();
    tokio::spawn(portal.run_until(std::future::pending()));
    Docs {
        idp,
        portal: state,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        _realms: realms,
    }
}

/// A small PDF-looking body, different for each `seed`.
fn pdf(seed: u8, len: usize) -> Vec<u8> {
    let mut body = b"%PDF-1.7\n".to_vec();
    body.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    body.extend_from_slice(b"\n%%EOF\n");
    body
}

fn today(d: &Docs) -> chrono::NaiveDate {
    connect::letter::swiss_date(d.idp.clock().now())
}

fn metadata(d: &Docs, ahv: &str) -> Value {
    json!({
        "realm": "AK00",
        "ahv": ahv,
        "category": "decision",
        "titles": {"fr": "Décision de rente", "de": "Rentenverfügung"},
        "issue_date": today(d).to_string(),
    })
}

/// One way to build the multipart body.
struct Upload {
    metadata: Option<String>,
    file: Option<Vec<u8>>,
    extra: Option<(&'static str, &'static str)>,
}

impl Upload {
    fn new(metadata: &Value, file: Vec<u8>) -> Self {
        Upload {
            metadata: Some(metadata.to_string()),
            file: Some(file),
            extra: None,
        }
    }

    fn form(self) -> Form {
        let mut form = Form::new();
        if let Some(m) = self.metadata {
            form = form.part(
                "metadata",
                Part::text(m).mime_str("application/json").expect("mime"),
            );
        }
        if let Some(f) = self.file {
            form = form.part(
                "file",
                Part::bytes(f)
                    .file_name("document.pdf")
                    .mime_str("application/pdf")
                    .expect("mime"),
            );
        }
        if let Some((name, value)) = self.extra {
            form = form.text(name, value);
        }
        form
    }
}

impl Docs {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client-credentials access token of AK00's IdP.
    async fn token_of(&self, realm: &str, client: (&str, &str), scope: &str) -> String {
        let res = self
            .idp
            .token(
                realm,
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Some(client),
            )
            .await;
        assert_eq!(res.status(), 200, "token for {}", client.0);
        let body: Value = res.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn token(&self) -> String {
        self.token_of(
            "AK00",
            ("caisse-docs", "caisse-docs-secret"),
            "documents:write",
        )
        .await
    }

    async fn post(&self, token: Option<&str>, upload: Upload, key: Option<&str>) -> Response {
        let mut req = self
            .http
            .post(self.url("/api/v1/documents"))
            .multipart(upload.form());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.expect("POST documents")
    }

    async fn deliver(&self, token: &str, metadata: &Value, file: Vec<u8>) -> Response {
        self.post(Some(token), Upload::new(metadata, file), None)
            .await
    }

    async fn rows(&self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM documents";
        match &self.portal.db {
            Db::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
            Db::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
        }
        .expect("count")
    }

    /// Every body file in the local object store.
    fn bodies(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(Path::new(&self.portal.config.portal.store_url), &mut out);
        out
    }

    async fn body_of(&self, doc: &Document) -> Vec<u8> {
        let got = self.portal.blobs.get(&doc.object_key).await.expect("body");
        let chunks: Vec<Bytes> = got.chunks.map(|c| c.expect("chunk")).collect().await;
        chunks.concat()
    }

    async fn stored(&self, ahv: &str) -> Vec<Document> {
        documents::list(
            &self.portal.db,
            &realm("AK00"),
            &ahv.parse().expect("ahv"),
            Filter::default(),
        )
        .await
        .expect("list")
    }
}

/// A problem+json answer with this status; its body.
async fn problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status(), status, "status");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "problem+json"
    );
    let body: Value = res.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

fn challenge(res: &Response) -> String {
    res.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_delivery_stores_one_document_whose_bytes_come_back_identical() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let ahv = ahv(1);
    let file = pdf(1, 40_000);
    let res = d.deliver(&token, &metadata(&d, &ahv), file.clone()).await;
    assert_eq!(res.status(), 201);
    let location = location(&res);
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/documents/{id}"));
    assert_eq!(body["realm"], "AK00");
    assert_eq!(body["category"], "decision");
    assert_eq!(body["issue_date"], today(&d).to_string());
    assert_eq!(body["size"], file.len());
    assert_eq!(
        body["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&file))
    );
    assert_eq!(body["read"], false);
    assert!(body["received_at"].as_str().unwrap().ends_with('Z'));

    let stored = d.stored(&ahv).await;
    assert_eq!(stored.len(), 1);
    let doc = &stored[0];
    assert_eq!(doc.id.to_string(), id);
    assert_eq!(doc.client_id, "caisse-docs");
    assert_eq!(doc.category, DocumentCategory::Decision);
    assert_eq!(
        doc.titles.get(Language::De, Language::Fr),
        "Rentenverfügung"
    );
    assert_eq!(
        doc.titles.get(Language::It, Language::Fr),
        "Décision de rente"
    );
    assert_eq!(doc.object_key, format!("AK00/{id}.pdf"), "no AHV number");
    assert_eq!(d.body_of(doc).await, file);
    assert_eq!(d.bodies().len(), 1);
    assert_eq!(d.rows().await, 1);

    // Another person sees nothing of it.
    let other: AhvNumber = connect_ahv(2);
    assert!(
        documents::get_for_person(&d.portal.db, &realm("AK00"), &other, doc.id)
            .await
            .unwrap()
            .is_none()
    );
    // A single title is filed under the realm's default language and shown in all.
    let mut one = metadata(&d, &ahv);
    one.as_object_mut().unwrap().remove("titles");
    one["title"] = "Décompte".into();
    one["category"] = "decompte".into();
    let res = d.deliver(&token, &one, pdf(2, 100)).await;
    assert_eq!(res.status(), 201);
    let stored = d.stored(&ahv).await;
    assert_eq!(stored.len(), 2);
    let titles: Vec<_> = stored
        .iter()
        .map(|s| s.titles.get(Language::En, Language::En).to_owned())
        .collect();
    assert!(titles.contains(&"Décompte".to_owned()), "{titles:?}");
}

fn connect_ahv(n: u32) -> AhvNumber {
    ahv(n).parse().unwrap()
}

#[tokio::test]
async fn every_bad_delivery_is_a_problem_and_stores_nothing() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let good = metadata(&d, &ahv(3));
    let with = |key: &str, value: Value| {
        let mut m = good.clone();
        m[key] = value;
        m
    };
    let without = |key: &str| {
        let mut m = good.clone();
        m.as_object_mut().unwrap().remove(key);
        m
    };
    let future = (today(&d) + chrono::Days::new(3)).to_string();
    let too_old = (today(&d) - chrono::Months::new(12 * 5) - chrono::Days::new(1)).to_string();
    let cases: Vec<(&str, Upload, u16)> = vec![
        (
            "invalid AHV check digit",
            Upload::new(&with("ahv", "756.1234.5678.98".into()), pdf(1, 10)),
            422,
        ),
        (
            "AHV of another shape",
            Upload::new(&with("ahv", "123".into()), pdf(1, 10)),
            422,
        ),
        (
            "unknown category",
            Upload::new(&with("category", "facture".into()), pdf(1, 10)),
            422,
        ),
        (
            "month 13",
            Upload::new(&with("issue_date", "2024-13-01".into()), pdf(1, 10)),
            422,
        ),
        (
            "Swiss date format",
            Upload::new(&with("issue_date", "01.02.2024".into()), pdf(1, 10)),
            422,
        ),
        (
            "one-digit month",
            Upload::new(&with("issue_date", "2024-2-01".into()), pdf(1, 10)),
            422,
        ),
        (
            "future issue date",
            Upload::new(&with("issue_date", future.into()), pdf(1, 10)),
            422,
        ),
        (
            "issue date past retention",
            Upload::new(&with("issue_date", too_old.into()), pdf(1, 10)),
            422,
        ),
        (
            "realm of another caisse",
            Upload::new(&with("realm", "AK01".into()), pdf(1, 10)),
            422,
        ),
        (
            "not a realm name",
            Upload::new(&with("realm", "../etc".into()), pdf(1, 10)),
            422,
        ),
        (
            "title and titles",
            Upload::new(&with("title", "Décision".into()), pdf(1, 10)),
            422,
        ),
        ("no title", Upload::new(&without("titles"), pdf(1, 10)), 422),
        (
            "title in Romansh",
            Upload::new(&with("titles", json!({"rm": "Decisiun"})), pdf(1, 10)),
            422,
        ),
        (
            "empty title",
            Upload::new(&with("titles", json!({"fr": "  "})), pdf(1, 10)),
            422,
        ),
        ("no AHV", Upload::new(&without("ahv"), pdf(1, 10)), 400),
        (
            "unknown metadata field",
            Upload::new(&with("password", "x".into()), pdf(1, 10)),
            400,
        ),
        (
            "metadata not JSON",
            Upload {
                metadata: Some("realm=AK00".into()),
                file: Some(pdf(1, 10)),
                extra: None,
            },
            400,
        ),
        (
            "missing metadata part",
            Upload {
                metadata: None,
                file: Some(pdf(1, 10)),
                extra: None,
            },
            400,
        ),
        (
            "missing file part",
            Upload {
                metadata: Some(good.to_string()),
                file: None,
                extra: None,
            },
            400,
        ),
        (
            "an unexpected part",
            Upload {
                metadata: Some(good.to_string()),
                file: Some(pdf(1, 10)),
                extra: Some(("comment", "hello")),
            },
            400,
        ),
        (
            "not a PDF",
            Upload::new(&good, b"GIF89a not a pdf".to_vec()),
            415,
        ),
        ("an empty file", Upload::new(&good, Vec::new()), 415),
        // Announced larger than the limit: refused before reading.
        (
            "far too large",
            Upload::new(&good, pdf(1, 3 * MAX_BYTES)),
            413,
        ),
        // Within the framing allowance: refused while the file streams in.
        ("just too large", Upload::new(&good, pdf(1, MAX_BYTES)), 413),
    ];
    for (what, upload, status) in cases {
        let res = d.post(Some(&token), upload, None).await;
        assert_eq!(res.status(), status, "{what}");
        let body = problem(res, status).await;
        assert!(!body.to_string().contains(&token), "{what}: token echoed");
    }
    // A body that is not multipart at all.
    let res = d
        .http
        .post(d.url("/api/v1/documents"))
        .bearer_auth(&token)
        .json(&good)
        .send()
        .await
        .unwrap();
    problem(res, 415).await;
    // An Idempotency-Key that is not one.
    let long = "k".repeat(256);
    for key in [long.as_str(), "two words"] {
        let res = d
            .post(Some(&token), Upload::new(&good, pdf(1, 10)), Some(key))
            .await;
        problem(res, 400).await;
    }
    // The largest document that is allowed goes through.
    let exact = pdf(9, MAX_BYTES - 16);
    assert_eq!(exact.len(), MAX_BYTES);
    let res = d.deliver(&token, &good, exact).await;
    assert_eq!(res.status(), 201);

    assert_eq!(d.rows().await, 1, "only the last, good delivery");
    assert_eq!(d.bodies().len(), 1);
}

#[tokio::test]
async fn tokens_are_checked_and_never_echoed() {
    let d = spawn_docs().await;
    let good = metadata(&d, &ahv(4));

    // No token: a challenge without error code (RFC 6750 §3.1).
    let res = d.post(None, Upload::new(&good, pdf(1, 10)), None).await;
    assert_eq!(challenge(&res), "Bearer realm=\"connect\"");
    problem(res, 401).await;

    // Not a JWT.
    let res = d
        .post(
            Some("not-a-token-at-all"),
            Upload::new(&good, pdf(1, 10)),
            None,
        )
        .await;
    assert!(challenge(&res).contains("error=\"invalid_token\""));
    let body = problem(res, 401).await;
    assert!(!body.to_string().contains("not-a-token-at-all"));

    // Basic authentication is not a bearer token.
    let res = d
        .http
        .post(d.url("/api/v1/documents"))
        .basic_auth("caisse-docs", Some("caisse-docs-secret"))
        .multipart(Upload::new(&good, pdf(1, 10)).form())
        .send()
        .await
        .unwrap();
    problem(res, 401).await;

    // A token without documents:write: 403 insufficient_scope.
    let read_only = d
        .token_of("AK00", ("bench-cc", "bench-secret"), "documents:read")
        .await;
    let res = d
        .post(Some(&read_only), Upload::new(&good, pdf(1, 10)), None)
        .await;
    let c = challenge(&res);
    assert!(
        c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"documents:write\""),
        "{c}"
    );
    let body = problem(res, 403).await;
    assert!(!body.to_string().contains(&read_only));

    // A token of the other realm's IdP (another issuer, keys this portal does not trust).
    let ak01 = d
        .token_of("AK01", ("bench-cc", "bench-secret"), "documents:write")
        .await;
    let res = d
        .post(Some(&ak01), Upload::new(&good, pdf(1, 10)), None)
        .await;
    assert!(challenge(&res).contains("invalid_token"));
    problem(res, 401).await;

    // The same claims under the real kid, signed by another key.
    let real = d.token().await;
    let forged = resign(&real, |_| {});
    let res = d
        .post(Some(&forged), Upload::new(&good, pdf(1, 10)), None)
        .await;
    problem(res, 401).await;

    // An ID token is not an access token, nor is an unsigned one.
    let unsigned = {
        let mut parts = real.split('.');
        let (_, claims) = (parts.next(), parts.next().unwrap());
        format!(
            "{}.{claims}.",
            B64.encode(br#"{"alg":"none","typ":"at+jwt"}"#)
        )
    };
    let res = d
        .post(Some(&unsigned), Upload::new(&good, pdf(1, 10)), None)
        .await;
    problem(res, 401).await;
    let id_typ = resign_header(&real, "JWT");
    let res = d
        .post(Some(&id_typ), Upload::new(&good, pdf(1, 10)), None)
        .await;
    problem(res, 401).await;

    // Expired: the IdP's and the portal's clock move together past lifetime and leeway.
    let res = d
        .post(Some(&real), Upload::new(&good, pdf(1, 10)), None)
        .await;
    assert_eq!(res.status(), 201, "the real token works before it expires");
    d.idp.advance(300 + 31);
    let res = d
        .post(Some(&real), Upload::new(&good, pdf(2, 10)), None)
        .await;
    assert!(challenge(&res).contains("invalid_token"));
    let body = problem(res, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    assert_eq!(d.rows().await, 1);
    assert_eq!(d.bodies().len(), 1);
}

/// The token's header and claims, signed again with a fresh P-256 key (the kid kept).
fn resign(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut parts = token.split('.');
    let header: Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    edit(&mut claims);
    let der = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(der.as_ref()),
    )
    .unwrap()
}

/// The token with another `typ` in its header (the signature then fails too, but the `typ`
/// check comes first).
fn resign_header(token: &str, typ: &str) -> String {
    let mut parts = token.splitn(2, '.');
    let mut header: Value =
        serde_json::from_slice(&B64.decode(parts.next().unwrap()).unwrap()).unwrap();
    header["typ"] = typ.into();
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        parts.next().unwrap()
    )
}

#[tokio::test]
async fn a_new_signing_key_is_fetched_once_its_tokens_arrive() {
    let d = spawn_docs().await;
    let first = d.token().await;
    let res = d.deliver(&first, &metadata(&d, &ahv(5)), pdf(1, 10)).await;
    assert_eq!(res.status(), 201, "JWKS fetched and cached");
    let ak00 = d.idp.state.realms.get(&realm("AK00")).unwrap().clone();
    d.idp.state.keys.rotate(&ak00).await.expect("rotate");
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    // The new key is published first and signs only after the hand-over time, which is
    // longer than the ten seconds between the portal's forced refetches (so that made-up
    // kids cannot make it hammer the IdP): a real new key is always fetched in time.
    let during = d.token().await;
    assert_eq!(
        kid(&first),
        kid(&during),
        "the old key signs during the hand-over"
    );
    d.idp.advance(d.idp.state.keys.handover().as_secs());
    let second = d.token().await;
    assert_ne!(kid(&first), kid(&second), "signed with the new key");
    let res = d.deliver(&second, &metadata(&d, &ahv(5)), pdf(2, 10)).await;
    assert_eq!(res.status(), 201, "unknown kid: keys fetched again");
}

#[tokio::test]
async fn an_idempotency_key_gives_one_document() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let meta = metadata(&d, &ahv(6));
    let file = pdf(1, 5000);
    let first = d
        .post(
            Some(&token),
            Upload::new(&meta, file.clone()),
            Some("run-42/doc-1"),
        )
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = d
        .post(
            Some(&token),
            Upload::new(&meta, file.clone()),
            Some("run-42/doc-1"),
        )
        .await;
    assert_eq!(again.status(), 200, "the retry finds the first delivery");
    assert!(again.headers().get("location").is_none());
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(d.rows().await, 1);
    assert_eq!(d.bodies().len(), 1);

    // The same key for another document is a mistake of the caller.
    let res = d
        .post(
            Some(&token),
            Upload::new(&meta, pdf(2, 5000)),
            Some("run-42/doc-1"),
        )
        .await;
    let body = problem(res, 422).await;
    assert!(body["title"].as_str().unwrap().contains("Idempotency"));

    // Concurrent retries with a new key: still one document and one body.
    let meta2 = metadata(&d, &ahv(7));
    let attempts = (0..4).map(|_| {
        d.post(
            Some(&token),
            Upload::new(&meta2, file.clone()),
            Some("\"run-43\""),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );

    // Keys belong to a client: another client's same key is another document.
    let bench = d
        .token_of("AK00", ("bench-cc", "bench-secret"), "documents:write")
        .await;
    let res = d
        .post(Some(&bench), Upload::new(&meta, file), Some("run-42/doc-1"))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(d.rows().await, 3);
    assert_eq!(d.bodies().len(), 3);
}

#[tokio::test]
async fn status_and_delete_are_for_the_delivering_client_only() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let res = d
        .deliver(&token, &metadata(&d, &ahv(8)), pdf(1, 1000))
        .await;
    assert_eq!(res.status(), 201);
    let url = d.url(&location(&res));
    let created: Value = res.json().await.unwrap();

    let res = d.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let status: Value = res.json().await.unwrap();
    assert_eq!(status, created);

    // The person opens it: the status says read.
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    assert!(
        documents::mark_read(&d.portal.db, &realm("AK00"), &connect_ahv(8), id, 1)
            .await
            .unwrap()
    );
    let status: Value = d
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["read"], true);

    // documents:read suffices to read the status, but not of another client's document.
    let reader = d
        .token_of("AK00", ("bench-cc", "bench-secret"), "documents:read")
        .await;
    let res = d.http.get(&url).bearer_auth(&reader).send().await.unwrap();
    problem(res, 404).await;
    let res = d
        .http
        .delete(&url)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    let res = d.http.get(&url).send().await.unwrap();
    problem(res, 401).await;
    for path in [
        format!("/api/v1/documents/{}", uuid::Uuid::new_v4()),
        "/api/v1/documents/not-an-id".to_owned(),
    ] {
        let res = d
            .http
            .get(d.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        problem(res, 404).await;
    }

    let res = d
        .http
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(d.rows().await, 0);
    assert!(d.bodies().is_empty(), "the body is gone too");
    let res = d.http.get(&url).bearer_auth(&token).send().await.unwrap();
    problem(res, 404).await;
    let res = d
        .http
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
}

#[tokio::test]
async fn a_row_that_cannot_be_written_leaves_no_body() {
    let d = spawn_docs().await;
    let token = d.token().await;
    const SQL: &str = "DROP TABLE documents";
    match &d.portal.db {
        Db::Sqlite(p) => sqlx::query(SQL).execute(p).await.map(|_| ()),
        Db::Postgres(p) => sqlx::query(SQL).execute(p).await.map(|_| ()),
    }
    .expect("drop");
    let res = d
        .deliver(&token, &metadata(&d, &ahv(9)), pdf(1, 1000))
        .await;
    let body = problem(res, 500).await;
    assert!(
        !body.to_string().to_lowercase().contains("documents"),
        "{body}"
    );
    assert!(d.bodies().is_empty(), "{:?}", d.bodies());
}

#[tokio::test]
async fn retention_purges_old_documents_body_and_row() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let old = {
        let mut m = metadata(&d, &ahv(10));
        m["issue_date"] = (today(&d) - chrono::Days::new(400)).to_string().into();
        m
    };
    let res = d.deliver(&token, &old, pdf(1, 100)).await;
    assert_eq!(res.status(), 201);
    let res = d
        .deliver(&token, &metadata(&d, &ahv(10)), pdf(2, 100))
        .await;
    assert_eq!(res.status(), 201);
    let newer: Value = res.json().await.unwrap();
    assert_eq!(retention::purge(&d.portal).await.unwrap().purged, 0);
    assert_eq!(d.bodies().len(), 2);

    // Five years later the first is past retention, the second not yet.
    d.idp.advance(5 * 365 * 86_400);
    let counts = retention::purge(&d.portal).await.unwrap();
    assert_eq!(
        counts,
        retention::PurgeCounts {
            purged: 1,
            failed: 0
        }
    );
    let left = d.stored(&ahv(10)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id.to_string(), newer["id"].as_str().unwrap());
    assert_eq!(d.bodies().len(), 1);
    assert_eq!(d.body_of(&left[0]).await, pdf(2, 100));
}

#[tokio::test]
async fn the_admin_command_purges_without_the_portal_secret() {
    let d = spawn_docs().await;
    let realm_id = realm("AK00");
    // Delivered long ago (the command runs on the system clock): stored directly.
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for (n, years) in [(11u32, 7u32), (11, 1)] {
        let id = uuid::Uuid::new_v4();
        let ahv = connect_ahv(n);
        let doc = Document {
            id,
            realm: realm_id.clone(),
            ahv: ahv.clone(),
            category: DocumentCategory::TaxCertificate,
            titles: DocumentTitles::single(Language::Fr, "Attestation fiscale").unwrap(),
            issue_date: now.date_naive() - chrono::Months::new(12 * years),
            received_at: now.timestamp(),
            size: 10,
            sha256: String::new(),
            object_key: connect::portal::blobs::key(&realm_id, id),
            client_id: "caisse-docs".into(),
            idempotency_key: None,
            read_at: None,
        };
        d.portal
            .blobs
            .put(&doc.object_key, Bytes::from(pdf(n as u8, 10)))
            .await
            .unwrap();
        documents::insert(&d.portal.db, &doc).await.unwrap();
        ids.push(id);
    }
    let c = &d.portal.config;
    // The IdP's database and master key are out of reach: the command needs neither.
    let out = Command::new(env!("CARGO_BIN_EXE_connect"))
        .current_dir(c.data_dir.as_path())
        .env_remove("CONNECT_TEST_DATABASE_URL")
        .env_remove("CONNECT_TEST_REDIS_URL")
        .env_remove("CONNECT_PORTAL__CLIENT_SECRET")
        .env("CONNECT_DATA_DIR", &c.data_dir)
        .env(
            "CONNECT_DATABASE_URL",
            "postgres://nobody@127.0.0.1:9/no_idp_here",
        )
        .env("CONNECT_MASTER_KEY", "not the master key")
        .env("CONNECT_PORTAL__DATABASE_URL", &c.portal.database_url)
        .env("CONNECT_REALM_DIR", &c.realm_dir)
        .env("CONNECT_PORTAL__STORE_URL", &c.portal.store_url)
        .args(["admin", "documents", "purge", "--realm", "AK00"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 document(s) purged in AK00"
    );
    let left = d.stored(&ahv(11)).await;
    assert_eq!(left.iter().map(|l| l.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(d.bodies().len(), 1);
}

#[tokio::test]
async fn the_person_gets_a_mail_without_the_title_in_their_language() {
    let d = spawn_docs().await;
    let token = d.token().await;
    // Nobody to tell yet: no mail.
    let res = d
        .deliver(&token, &metadata(&d, &ahv(12)), pdf(1, 100))
        .await;
    assert_eq!(res.status(), 201);
    assert!(d.idp.mail_outbox().is_empty());

    documents::upsert_recipient(
        &d.portal.db,
        &realm("AK00"),
        &Recipient {
            ahv: connect_ahv(12),
            email: "anna@example.ch".parse().unwrap(),
            language: Language::De,
            updated_at: d.idp.clock().unix(),
        },
    )
    .await
    .unwrap();
    let res = d
        .deliver(&token, &metadata(&d, &ahv(12)), pdf(2, 100))
        .await;
    assert_eq!(res.status(), 201);
    let mails = d.idp.mail_outbox();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("Neues Dokument"), "{}", mail.subject);
    assert!(
        mail.text.contains(&d.portal.config.portal_url.to_string()),
        "{}",
        mail.text
    );
    for secret in ["Rentenverfügung", "Décision de rente", "decision", "756."] {
        assert!(
            !mail.text.contains(secret) && !mail.subject.contains(secret),
            "{secret} in the mail:\n{}",
            mail.text
        );
    }
    // An idempotent retry is no new document: no second mail.
    let meta = metadata(&d, &ahv(12));
    for _ in 0..2 {
        let res = d
            .post(Some(&token), Upload::new(&meta, pdf(3, 100)), Some("k-1"))
            .await;
        assert!(res.status().is_success());
    }
    assert_eq!(d.idp.mail_outbox().len(), 2);
}

#[tokio::test]
async fn demo_documents_are_three_readable_pdfs_written_once() {
    let d = spawn_docs().await;
    let ahv = connect_ahv(13);
    assert_eq!(demo::documents(&d.portal, &ahv).await.unwrap(), 3);
    assert_eq!(demo::documents(&d.portal, &ahv).await.unwrap(), 0);
    let docs = d.stored(ahv.as_str()).await;
    let mut categories: Vec<_> = docs.iter().map(|d| d.category).collect();
    categories.sort();
    assert_eq!(
        categories,
        vec![
            DocumentCategory::Statement,
            DocumentCategory::Decision,
            DocumentCategory::TaxCertificate
        ]
    );
    for doc in &docs {
        let pdf = d.body_of(doc).await;
        let parsed = lopdf::Document::load_mem(&pdf).expect("a readable PDF");
        let text = parsed.extract_text(&[1]).unwrap();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let title = doc.titles.get(Language::Fr, Language::Fr);
        assert!(text.contains(title), "{title} in {text}");
        assert!(text.contains(ahv.as_str()), "{text}");
        assert_eq!(doc.client_id, "demo");
    }
    let counts = documents::counts(&d.portal.db, &realm("AK00"), &ahv)
        .await
        .unwrap();
    assert_eq!(counts.len(), 3);
    assert!(counts.iter().all(|c| c.total == 1 && c.unread == 1));
}

#[tokio::test]
async fn a_person_lists_by_year_and_category_newest_first() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let ahv_text = ahv(14);
    let t = today(&d);
    let dates = [t - chrono::Days::new(800), t - chrono::Days::new(10), t];
    for (i, date) in dates.iter().enumerate() {
        let mut m = metadata(&d, &ahv_text);
        m["issue_date"] = date.to_string().into();
        if i == 1 {
            m["category"] = "attestation_fiscale".into();
        }
        let res = d.deliver(&token, &m, pdf(i as u8, 10)).await;
        assert_eq!(res.status(), 201);
    }
    let ahv = connect_ahv(14);
    let r = realm("AK00");
    let all = documents::list(&d.portal.db, &r, &ahv, Filter::default())
        .await
        .unwrap();
    let got: Vec<_> = all.iter().map(|x| x.issue_date).collect();
    assert_eq!(got, vec![dates[2], dates[1], dates[0]]);
    let year = chrono::Datelike::year(&dates[0]);
    let in_year = documents::list(
        &d.portal.db,
        &r,
        &ahv,
        Filter {
            year: Some(year),
            category: None,
        },
    )
    .await
    .unwrap();
    assert!(in_year
        .iter()
        .all(|x| chrono::Datelike::year(&x.issue_date) == year));
    assert!(in_year.iter().any(|x| x.issue_date == dates[0]));
    let tax = documents::list(
        &d.portal.db,
        &r,
        &ahv,
        Filter {
            year: None,
            category: Some(DocumentCategory::TaxCertificate),
        },
    )
    .await
    .unwrap();
    assert_eq!(tax.len(), 1);
    assert_eq!(tax[0].issue_date, dates[1]);
    let years = documents::years(&d.portal.db, &r, &ahv).await.unwrap();
    assert!(
        years.contains(&year) && years.windows(2).all(|w| w[0] > w[1]),
        "{years:?}"
    );
    let counts = documents::counts(&d.portal.db, &r, &ahv).await.unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.category, c.total))
            .collect::<Vec<_>>(),
        vec![
            (DocumentCategory::Decision, 2),
            (DocumentCategory::TaxCertificate, 1)
        ]
    );
    // Marking read is idempotent and keeps the first time.
    let id = all[0].id;
    assert!(documents::mark_read(&d.portal.db, &r, &ahv, id, 100)
        .await
        .unwrap());
    assert!(documents::mark_read(&d.portal.db, &r, &ahv, id, 200)
        .await
        .unwrap());
    let doc = documents::get_for_person(&d.portal.db, &r, &ahv, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.read_at, Some(100));
    assert!(
        !documents::mark_read(&d.portal.db, &r, &connect_ahv(15), id, 1)
            .await
            .unwrap()
    );
    // Recipients are replaced, not duplicated.
    for lang in [Language::Fr, Language::It] {
        documents::upsert_recipient(
            &d.portal.db,
            &r,
            &Recipient {
                ahv: ahv.clone(),
                email: "anna@example.ch".parse().unwrap(),
                language: lang,
                updated_at: 1,
            },
        )
        .await
        .unwrap();
    }
    let rec = documents::recipient(&d.portal.db, &r, &ahv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.language, Language::It);
}

#[tokio::test]
async fn without_a_list_of_delivery_clients_every_delivery_is_refused() {
    // Production (not dev mode) and no `portal.delivery_clients`: nobody may deliver.
    let d = spawn_docs_with(|c| {
        c.dev = false;
        c.portal.delivery_clients = None;
    })
    .await;
    assert!(d.portal.delivery_clients.is_empty());
    let token = d.token().await;
    let res = d.deliver(&token, &metadata(&d, &ahv(20)), pdf(1, 10)).await;
    let body = problem(res, 403).await;
    assert!(!body.to_string().contains(&token));
    let res = d
        .http
        .get(d.url(&format!("/api/v1/documents/{}", uuid::Uuid::new_v4())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    assert_eq!(d.rows().await, 0);
    assert!(d.bodies().is_empty());
}

#[tokio::test]
async fn only_the_listed_caisse_systems_may_deliver() {
    let d = spawn_docs_with(|c| c.portal.delivery_clients = Some(vec!["caisse-docs".into()])).await;
    // bench-cc holds documents:write from the same IdP, but is not listed.
    let bench = d
        .token_of("AK00", ("bench-cc", "bench-secret"), "documents:write")
        .await;
    let res = d.deliver(&bench, &metadata(&d, &ahv(21)), pdf(1, 10)).await;
    problem(res, 403).await;
    assert_eq!(d.rows().await, 0);
    let res = d
        .deliver(&d.token().await, &metadata(&d, &ahv(21)), pdf(1, 10))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(d.rows().await, 1);
}

#[tokio::test]
async fn object_keys_and_paths_name_no_ahv_number() {
    let d = spawn_docs().await;
    let token = d.token().await;
    let ahv = ahv(22);
    let res = d.deliver(&token, &metadata(&d, &ahv), pdf(1, 100)).await;
    assert_eq!(res.status(), 201);
    let digits = ahv.replace('.', "");
    let stored = d.stored(&ahv).await;
    assert_eq!(stored.len(), 1);
    let key = &stored[0].object_key;
    assert_eq!(key, &format!("AK00/{}.pdf", stored[0].id));
    for path in d.bodies() {
        let path = path.display().to_string();
        assert!(!path.contains(&digits) && !path.contains(&ahv), "{path}");
    }
}
