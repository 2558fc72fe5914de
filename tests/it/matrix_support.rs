//! What the negative-test matrix (`matrix_*`) shares: the attack payloads, raw form posts,
//! person logins with PKCE, and forged tokens (unsigned, HMAC keyed with the public key,
//! re-signed with the realm's real key but another `typ` or expiry).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::Response;
use serde_json::Value;

use crate::helpers::*;

/// Markup and template payloads for every text that is rendered back.
pub const MARKUP: [&str; 5] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "{{7*7}}",
    "javascript:alert(1)",
    "'><svg onload=alert(1)>",
];

/// The raw forms of `MARKUP` that must never reach a page unescaped.
pub const RAW_MARKUP: [&str; 5] = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "'onfocus='alert",
];

/// Fails when a page carries a payload as live markup, or evaluated a template expression.
pub fn assert_inert(html: &str, what: &str) {
    for raw in RAW_MARKUP {
        assert!(!html.contains(raw), "{what}: `{raw}` unescaped in:\n{html}");
    }
    assert!(
        !html.contains(">49<") && !html.contains("\"49\"") && !html.contains(" 49 "),
        "{what}: a template expression was evaluated"
    );
}

/// `name=value` pairs, percent-encoded.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The hidden fields of a page's first form (`csrf`, `flow`), encoded, ready to prefix a body.
pub fn hidden_fields(html: &str) -> String {
    let mut pairs = vec![("csrf", form_value(html, "csrf").expect("csrf field"))];
    if let Some(flow) = form_value(html, "flow") {
        pairs.push(("flow", flow));
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    encode(&pairs)
}

/// A POST with a form body written by hand (so that it may be invalid).
pub async fn post_raw(client: &reqwest::Client, url: &str, body: impl Into<String>) -> Response {
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into())
        .send()
        .await
        .expect("POST")
}

/// A clear refusal of a page: 400, an HTML page with the realm's words, no server error.
pub async fn assert_bad_request_page(res: Response, what: &str) {
    assert_eq!(res.status(), 400, "{what}");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/html"), "{what}: content type {ct}");
    let html = res.text().await.expect("body");
    assert!(html.contains("<html"), "{what}: a page, not {html}");
}

/// An RFC 6749 error object with this status and code.
pub async fn assert_oauth_error(res: Response, status: u16, error: &str, what: &str) {
    assert_eq!(res.status(), status, "{what}");
    let body: Value = res.json().await.unwrap_or_else(|_| panic!("{what}: JSON"));
    assert_eq!(body["error"], error, "{what}: {body}");
}

/// The JSON of a JWT part.
pub fn part(jwt: &str, n: usize) -> Value {
    let raw = jwt.split('.').nth(n).expect("JWT part");
    serde_json::from_slice(&B64.decode(raw).expect("base64url")).expect("JSON")
}

/// Tokens of one person login: access, ID and refresh token.
pub struct Tokens {
    pub access: String,
    pub id: String,
    pub refresh: Option<String>,
}

/// A person login at `realm` through `client` with PKCE, code exchanged. `secret` is `None`
/// for a public client.
pub async fn login_tokens(
    app: &TestApp,
    realm: &str,
    client: &str,
    redirect: &str,
    secret: Option<&str>,
    email: &str,
) -> Tokens {
    let (verifier, challenge) = pkce();
    let to = app
        .authorize_and_login(
            realm,
            &[
                ("client_id", client),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", "openid email"),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            email,
        )
        .await;
    let code = query_param(&to, "code").unwrap_or_else(|| panic!("a code in {to}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
    ];
    if secret.is_none() {
        form.push(("client_id", client));
    }
    let res = app.token(realm, &form, secret.map(|s| (client, s))).await;
    assert_eq!(res.status(), 200, "code exchange at {realm} for {client}");
    let body: Value = res.json().await.expect("token JSON");
    Tokens {
        access: body["access_token"].as_str().expect("access").to_owned(),
        id: body["id_token"].as_str().expect("id_token").to_owned(),
        refresh: body["refresh_token"].as_str().map(str::to_owned),
    }
}

/// A client-credentials access token.
pub async fn cc_token(app: &TestApp, realm: &str, client: (&str, &str), scope: &str) -> String {
    let res = app
        .token(
            realm,
            &[("grant_type", "client_credentials"), ("scope", scope)],
            Some(client),
        )
        .await;
    assert_eq!(res.status(), 200, "client credentials for {}", client.0);
    let body: Value = res.json().await.expect("token JSON");
    body["access_token"].as_str().expect("access").to_owned()
}

/// The token's claims under a header `{"alg":"none"}` (kid and typ kept), without signature.
pub fn alg_none(token: &str) -> String {
    let mut header = part(token, 0);
    header["alg"] = "none".into();
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        token.split('.').nth(1).expect("claims")
    )
}

/// The token's claims as HS256, keyed with each public form of the realm key that signed it
/// (its JWK, its PEM, its raw bytes): the classic algorithm confusion.
pub async fn hs256_with_public_key(app: &TestApp, realm: &str, token: &str) -> Vec<String> {
    let header = part(token, 0);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwks: Value = app
        .api
        .get(app.url(&format!("/{realm}/jwks")))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published")
        .clone();
    let bytes = |name: &str| B64.decode(jwk[name].as_str().expect(name)).expect("b64");
    let mut secrets: Vec<Vec<u8>> = vec![jwk.to_string().into_bytes()];
    if jwk["kty"] == "EC" {
        // SEC 1 uncompressed point, and the same in a SubjectPublicKeyInfo (RFC 5480: the DER
        // header for id-ecPublicKey on prime256v1 is fixed), as DER and as PEM.
        let point = [&[4u8][..], &bytes("x"), &bytes("y")].concat();
        let spki = [
            &hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").expect("hex")[..],
            &point,
        ]
        .concat();
        let body = base64::engine::general_purpose::STANDARD.encode(&spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|l| std::str::from_utf8(l).expect("base64"))
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        secrets.push(point);
        secrets.push(pem.into_bytes());
        secrets.push(spki);
    } else {
        use rsa::{pkcs1::EncodeRsaPublicKey, pkcs8::EncodePublicKey};
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&bytes("n")),
            rsa::BigUint::from_bytes_be(&bytes("e")),
        )
        .expect("RSA key");
        secrets.push(
            key.to_public_key_pem(Default::default())
                .expect("PEM")
                .into_bytes(),
        );
        secrets.push(
            key.to_pkcs1_pem(Default::default())
                .expect("PEM")
                .into_bytes(),
        );
        secrets.push(key.to_public_key_der().expect("DER").as_bytes().to_vec());
    }
    let claims = part(token, 1);
    secrets
        .iter()
        .map(|secret| {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.kid = Some(kid.clone());
            h.typ = header["typ"].as_str().map(str::to_owned);
            jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
                .expect("HS256")
        })
        .collect()
}

/// The token's claims, changed by `edit`, signed again with the realm's real key that signed
/// it, under header `typ`: a token the IdP could have signed, but not this one.
pub async fn resigned(
    app: &TestApp,
    realm_id: &str,
    token: &str,
    typ: &str,
    edit: impl FnOnce(&mut Value),
) -> String {
    let header = part(token, 0);
    let kid = header["kid"].as_str().expect("kid");
    let key = app
        .state
        .keys
        .verifier(&realm(realm_id), kid)
        .await
        .expect("keys")
        .expect("the signing key");
    let mut claims = part(token, 1);
    edit(&mut claims);
    let mut h = jsonwebtoken::Header::new(key.algorithm());
    h.kid = Some(key.kid.clone());
    h.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&h, &claims, &key.encoding).expect("sign")
}

/// The usual forgeries of `real` (signed by `realm_id`): unsigned, HS256 keyed with each
/// public form of its key, and re-signed with the real key under each of `typs`.
pub async fn forgeries(
    app: &TestApp,
    realm_id: &str,
    real: &str,
    typs: &[&str],
) -> Vec<(String, String)> {
    let mut out = vec![("alg none".to_owned(), alg_none(real))];
    for (i, t) in hs256_with_public_key(app, realm_id, real)
        .await
        .into_iter()
        .enumerate()
    {
        out.push((format!("HS256 keyed with public key form {i}"), t));
    }
    for typ in typs {
        out.push((
            format!("typ {typ}"),
            resigned(app, realm_id, real, typ, |_| {}).await,
        ));
    }
    out
}

/// An authorization request of the portal with PKCE, plus `extra` parameters.
pub fn portal_request(
    challenge: &str,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut q = vec![
        ("client_id", "portal".to_owned()),
        ("redirect_uri", PORTAL_REDIRECT.to_owned()),
        ("response_type", "code".to_owned()),
        ("scope", "openid".to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ];
    q.extend(extra.iter().cloned());
    q
}

/// Anna (created here) logged in at AK00 in `app`'s browser, through the portal.
pub async fn anna_signed_in(app: &TestApp) {
    app.create_account("AK00", "anna@example.ch").await;
    let (_, challenge) = pkce();
    let q = portal_request(&challenge, &[]);
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.authorize_and_login("AK00", &q, "anna@example.ch").await;
}

/// A delivery to the portal's API: `metadata` and a small PDF-looking body from `seed`.
pub async fn deliver_pdf(p: &TestPortal, token: &str, metadata: &Value, seed: u8) -> Response {
    let mut body = b"%PDF-1.7\n".to_vec();
    body.extend_from_slice(&[seed; 32]);
    body.extend_from_slice(b"\n%%EOF\n");
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .expect("mime"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(body)
                .file_name("d.pdf")
                .mime_str("application/pdf")
                .expect("mime"),
        );
    p.idp
        .api
        .post(p.url("/api/v1/documents"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("delivery")
}
