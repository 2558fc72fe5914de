//! Matrix, tokens: `alg: none`, HS256 keyed with the realm's public key, a wrong `typ`, an
//! expired token, a token of another realm and one of another client, at every endpoint that
//! takes a token (userinfo, introspection, revocation, `id_token_hint` at authorize and at
//! logout, the portal's delivery API and its back-channel logout).

use connect::realm::SigningAlg;
use serde_json::{json, Value};

use crate::{helpers::*, matrix_support::*};

const ANNA: &str = "anna@example.ch";

/// Anna's tokens from the portal (AK00), a second login of hers through the mobile app, and
/// her tokens of AK01.
struct Fixture {
    app: TestApp,
    portal: Tokens,
    mobile: Tokens,
    ak01: Tokens,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    app.create_account("AK00", ANNA).await;
    app.create_account("AK01", ANNA).await;
    let portal = login_tokens(
        &app,
        "AK00",
        "portal",
        PORTAL_REDIRECT,
        Some(PORTAL_SECRET),
        ANNA,
    )
    .await;
    let mobile = login_tokens(&app, "AK00", "mobile", MOBILE_REDIRECT, None, ANNA).await;
    let ak01 = login_tokens(
        &app,
        "AK01",
        "portal",
        PORTAL_REDIRECT,
        Some(PORTAL_SECRET),
        ANNA,
    )
    .await;
    Fixture {
        app,
        portal,
        mobile,
        ak01,
    }
}

/// Every access token that must not pass for `real` (an access token of AK00), by name.
async fn forged_access_tokens(f: &Fixture, real: &str) -> Vec<(String, String)> {
    let app = &f.app;
    let mut out = forgeries(app, "AK00", real, &["JWT", "logout+jwt"]).await;
    let now = app.clock().unix();
    out.push((
        "expired".into(),
        resigned(app, "AK00", real, "at+jwt", |c| {
            c["iat"] = json!(now - 7200);
            c["exp"] = json!(now - 3600);
        })
        .await,
    ));
    out.push(("an ID token".into(), f.portal.id.clone()));
    out.push(("an access token of AK01".into(), f.ak01.access.clone()));
    out
}

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
}

#[tokio::test]
async fn forged_expired_and_foreign_access_tokens_are_invalid_token_at_userinfo() {
    let f = fixture().await;
    let app = &f.app;
    assert_eq!(userinfo(app, &f.portal.access).await.status(), 200);
    for (what, token) in forged_access_tokens(&f, &f.portal.access).await {
        let res = userinfo(app, &token).await;
        assert_eq!(res.status(), 401, "{what}");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        let body = res.text().await.unwrap();
        assert!(!body.contains(&token), "{what}: the token is echoed");
    }
}

async fn introspect_as(app: &TestApp, client: (&str, &str), token: &str) -> Value {
    let res = app
        .api
        .post(app.url("/AK00/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    assert_eq!(res.status(), 200);
    res.json().await.expect("introspection JSON")
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_inactive_at_introspection() {
    let f = fixture().await;
    let app = &f.app;
    let portal = ("portal", PORTAL_SECRET);
    assert_eq!(
        introspect_as(app, portal, &f.portal.access).await["active"],
        true
    );
    let mut forged = forged_access_tokens(&f, &f.portal.access).await;
    if let Some(refresh) = &f.ak01.refresh {
        forged.push(("a refresh token of AK01".into(), refresh.clone()));
    }
    for (what, token) in forged {
        let body = introspect_as(app, portal, &token).await;
        assert_eq!(body, json!({"active": false}), "{what}");
    }
}

#[tokio::test]
async fn a_client_cannot_introspect_the_token_of_another_client() {
    let f = fixture().await;
    let app = &f.app;
    let cc = cc_token(app, "AK00", ("bench-cc", "bench-secret"), "documents:read").await;
    assert_eq!(
        introspect_as(app, ("bench-cc", "bench-secret"), &cc).await["active"],
        true,
        "its own client may"
    );
    let body = introspect_as(app, ("portal", PORTAL_SECRET), &cc).await;
    assert_eq!(body, json!({"active": false}));
}

async fn revoke_as(app: &TestApp, client: &str, secret: Option<&str>, token: &str) {
    let mut req = app.api.post(app.url("/AK00/revoke"));
    req = match secret {
        Some(s) => req.basic_auth(client, Some(s)).form(&[("token", token)]),
        None => req.form(&[("token", token), ("client_id", client)]),
    };
    let res = req.send().await.expect("revoke");
    assert_eq!(res.status(), 200, "RFC 7009: always 200");
}

#[tokio::test]
async fn forged_and_foreign_tokens_revoke_nothing() {
    let f = fixture().await;
    let app = &f.app;
    // Each forgery names the real grant (`gid`): were it believed, the grant would end.
    let mut forged: Vec<(String, String)> = forged_access_tokens(&f, &f.portal.access)
        .await
        .into_iter()
        .filter(|(what, _)| what != "expired")
        .collect();
    forged.push((
        "the mobile app's access token".into(),
        f.mobile.access.clone(),
    ));
    if let Some(refresh) = &f.mobile.refresh {
        forged.push(("the mobile app's refresh token".into(), refresh.clone()));
    }
    for (what, token) in forged {
        revoke_as(app, "portal", Some(PORTAL_SECRET), &token).await;
        assert_eq!(
            userinfo(app, &f.portal.access).await.status(),
            200,
            "{what} revoked the portal's grant"
        );
        assert_eq!(
            userinfo(app, &f.mobile.access).await.status(),
            200,
            "{what}: the portal revoked the mobile app's grant"
        );
    }
    // The mobile app's refresh token still works for the mobile app.
    if let Some(refresh) = &f.mobile.refresh {
        let res = app
            .token(
                "AK00",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", "mobile"),
                ],
                None,
            )
            .await;
        assert_eq!(res.status(), 200, "the mobile app's grant stands");
    }
    // And the real token, by its own client, does end the grant: the check above can fail.
    revoke_as(app, "portal", Some(PORTAL_SECRET), &f.portal.access).await;
    assert_eq!(userinfo(app, &f.portal.access).await.status(), 401);
}

/// Every ID token hint that must not pass for `real` (Anna's ID token of AK00).
async fn forged_hints(f: &Fixture, real: &str) -> Vec<(String, String)> {
    let mut out = forgeries(&f.app, "AK00", real, &["at+jwt", "logout+jwt"]).await;
    out.push(("an access token".into(), f.portal.access.clone()));
    out.push(("an ID token of AK01".into(), f.ak01.id.clone()));
    out
}

#[tokio::test]
async fn forged_and_foreign_id_token_hints_are_refused_at_authorize() {
    let f = fixture().await;
    let app = &f.app;
    let (_, challenge) = pkce();
    let ask = |hint: String| {
        let challenge = challenge.clone();
        async move {
            let res = app
                .browser
                .get(app.url("/AK00/authorize"))
                .query(&portal_request(
                    &challenge,
                    &[("state", "s".into()), ("id_token_hint", hint)],
                ))
                .send()
                .await
                .expect("authorize");
            assert_eq!(res.status(), 303);
            location(&res)
        }
    };
    let to = ask(f.portal.id.clone()).await;
    assert_eq!(query_param(&to, "error"), None, "the real hint: {to}");
    assert!(query_param(&to, "code").is_some(), "the session answers");
    for (what, hint) in forged_hints(&f, &f.portal.id).await {
        let to = ask(hint).await;
        assert!(to.starts_with(PORTAL_REDIRECT), "{what}: {to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request"),
            "{what}: {to}"
        );
        assert_eq!(query_param(&to, "code"), None, "{what}");
    }
}

/// Whether the browser's SSO session still answers (a code without a login).
async fn session_alive(app: &TestApp) -> bool {
    let (_, challenge) = pkce();
    let res = app
        .browser
        .get(app.url("/AK00/authorize"))
        .query(&portal_request(&challenge, &[("prompt", "none".into())]))
        .send()
        .await
        .expect("authorize");
    query_param(&location(&res), "code").is_some()
}

async fn logout_with(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    app.get_query("/AK00/logout", query).await
}

#[tokio::test]
async fn forged_foreign_and_other_client_id_token_hints_are_refused_at_logout() {
    let f = fixture().await;
    let app = &f.app;
    assert!(session_alive(app).await);
    let mut hints = forged_hints(&f, &f.portal.id).await;
    hints.push((
        "the mobile app's ID token for client portal".into(),
        f.mobile.id.clone(),
    ));
    for (what, hint) in hints {
        let res = logout_with(
            app,
            &[
                ("id_token_hint", &hint),
                ("client_id", "portal"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
            ],
        )
        .await;
        assert!(res.headers().get("location").is_none(), "{what}");
        assert_eq!(res.status(), 400, "{what}");
        let html = unescape(&res.text().await.unwrap());
        assert!(
            html.contains("La demande de déconnexion n'est pas valable"),
            "{what}: {html}"
        );
        assert!(session_alive(app).await, "{what} ended the session");
    }
    // The real hint does log out: the checks above can fail.
    let res = logout_with(
        app,
        &[
            ("id_token_hint", &f.portal.id),
            ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(!session_alive(app).await);
}

#[tokio::test]
async fn a_hint_from_another_session_of_the_same_person_does_not_skip_the_logout_confirmation() {
    let f = fixture().await;
    let app = &f.app;
    // A second browser, a second session of Anna: its ID token names another `sid`.
    let other = TestApp::sharing(app);
    let theirs = login_tokens(
        &other,
        "AK00",
        "portal",
        PORTAL_REDIRECT,
        Some(PORTAL_SECRET),
        ANNA,
    )
    .await;
    assert_ne!(part(&theirs.id, 1)["sid"], part(&f.portal.id, 1)["sid"]);
    let res = logout_with(app, &[("id_token_hint", &theirs.id)]).await;
    assert_eq!(res.status(), 200, "the confirmation page");
    assert!(form_value(&res.text().await.unwrap(), "confirm").is_some());
    assert!(session_alive(app).await);
}

// ---------------------------------------------------------------------------------------
// The portal: its delivery API's bearer tokens and its back-channel logout.

async fn documents_rows(p: &TestPortal) -> i64 {
    use connect::storage::Db;
    const SQL: &str = "SELECT COUNT(*) FROM documents";
    match &p.state.db {
        Db::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await,
    }
    .expect("count")
}

async fn deliver(p: &TestPortal, token: &str, n: u32) -> reqwest::Response {
    let metadata = json!({
        "realm": "AK00",
        "ahv": ahv(n),
        "category": "decision",
        "titles": {"fr": "Décision", "de": "Verfügung"},
        "issue_date": connect::letter::swiss_date(p.idp.clock().now()).to_string(),
    });
    deliver_pdf(p, token, &metadata, 7).await
}

#[tokio::test]
async fn forged_expired_and_foreign_bearer_tokens_are_refused_by_the_delivery_api() {
    let p = spawn_portal().await;
    let app = &p.idp;
    let bench = ("bench-cc", "bench-secret");
    let real = cc_token(app, "AK00", bench, "documents:write").await;
    let ak01 = cc_token(app, "AK01", bench, "documents:write").await;
    let mut forged = forgeries(app, "AK00", &real, &["JWT", "logout+jwt"]).await;
    let now = app.clock().unix();
    forged.push((
        "expired".into(),
        resigned(app, "AK00", &real, "at+jwt", |c| {
            c["iat"] = json!(now - 7200);
            c["exp"] = json!(now - 3600);
        })
        .await,
    ));
    forged.push(("a token of AK01".into(), ak01));
    for (what, token) in forged {
        let res = deliver(&p, &token, 1).await;
        assert_eq!(res.status(), 401, "{what}");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
    }
    assert_eq!(documents_rows(&p).await, 0, "nothing stored");
    assert_eq!(deliver(&p, &real, 1).await.status(), 201, "the real token");
    assert_eq!(documents_rows(&p).await, 1);
}

#[tokio::test]
async fn a_client_not_listed_for_delivery_is_refused_by_the_delivery_api() {
    let p = spawn_portal().await;
    let app = &p.idp;
    let real = cc_token(app, "AK00", ("bench-cc", "bench-secret"), "documents:write").await;
    // A token the IdP signed for the portal client (which may never deliver).
    let portal = resigned(app, "AK00", &real, "at+jwt", |c| {
        c["client_id"] = "portal".into();
        c["sub"] = "portal".into();
    })
    .await;
    let res = deliver(&p, &portal, 1).await;
    assert_eq!(res.status(), 403);
    assert_eq!(documents_rows(&p).await, 0);
}

/// Anna logged in at the portal; the `sid` of her IdP session.
async fn portal_session(p: &TestPortal) -> String {
    use connect::storage::Db;
    let sub = p.idp.create_account("AK00", ANNA).await;
    let (at, _) = p.browse(&p.url("/")).await;
    let res = p.idp.submit_login(&at, ANNA, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (at, page) = p.browse(&location(&res)).await;
    assert_eq!(at, p.url("/"));
    assert_eq!(page.status(), 200);
    const SQL: &str = "SELECT sid FROM grants WHERE client_id = 'portal' AND account_id = $1";
    let sid: String = match &p.idp.state.db {
        Db::Sqlite(pool) => sqlx::query_scalar(SQL).bind(&sub).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(SQL).bind(&sub).fetch_one(pool).await,
    }
    .expect("the portal's grant");
    sid
}

async fn portal_session_alive(p: &TestPortal) -> bool {
    p.idp.get(&p.url("/")).await.status() == 200
}

/// A Logout Token for the portal as the IdP would sign it, changed by `edit`.
async fn logout_token(
    p: &TestPortal,
    realm_id: &str,
    typ: Option<&str>,
    sid: &str,
    edit: impl FnOnce(&mut Value),
) -> String {
    let key = p
        .idp
        .state
        .keys
        .signer(&realm(realm_id), SigningAlg::RS256)
        .await
        .expect("signing key");
    let now = p.idp.clock().unix();
    let mut claims = json!({
        "iss": p.idp.issuer(realm_id),
        "aud": "portal",
        "iat": now,
        "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": "someone",
        "sid": sid,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    edit(&mut claims);
    let mut h = jsonwebtoken::Header::new(key.algorithm());
    h.kid = Some(key.kid.clone());
    h.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, &key.encoding).expect("sign")
}

async fn backchannel(p: &TestPortal, token: &str) -> reqwest::Response {
    p.idp
        .api
        .post(p.url("/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("back-channel logout")
}

#[tokio::test]
async fn forged_expired_and_foreign_logout_tokens_end_no_portal_session() {
    let p = spawn_portal().await;
    let sid = portal_session(&p).await;
    let real = logout_token(&p, "AK00", Some("logout+jwt"), &sid, |_| {}).await;
    let now = p.idp.clock().unix();
    // Re-signed under another `typ`, with everything else right.
    let mut forged = forgeries(&p.idp, "AK00", &real, &["JWT", "at+jwt"]).await;
    forged.push((
        "expired".into(),
        logout_token(&p, "AK00", Some("logout+jwt"), &sid, |c| {
            c["iat"] = json!(now - 900);
            c["exp"] = json!(now - 780);
        })
        .await,
    ));
    forged.push((
        "signed by AK01".into(),
        logout_token(&p, "AK01", Some("logout+jwt"), &sid, |_| {}).await,
    ));
    forged.push((
        "AK00's issuer, signed by AK01".into(),
        logout_token(&p, "AK01", Some("logout+jwt"), &sid, |c| {
            c["iss"] = p.idp.issuer("AK00").into();
        })
        .await,
    ));
    forged.push((
        "for another client".into(),
        logout_token(&p, "AK00", Some("logout+jwt"), &sid, |c| {
            c["aud"] = "mobile".into();
        })
        .await,
    ));
    for (what, token) in forged {
        let res = backchannel(&p, &token).await;
        assert_eq!(res.status(), 400, "{what}");
        let body: Value = res.json().await.expect("an OAuth error object");
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert!(portal_session_alive(&p).await, "{what} ended the session");
    }
    // The real Logout Token ends it: the checks above can fail.
    assert_eq!(backchannel(&p, &real).await.status(), 200);
    assert!(!portal_session_alive(&p).await);
}

#[tokio::test]
async fn a_logout_token_without_its_typ_ends_no_portal_session() {
    let p = spawn_portal().await;
    let sid = portal_session(&p).await;
    let untyped = logout_token(&p, "AK00", None, &sid, |_| {}).await;
    assert_eq!(backchannel(&p, &untyped).await.status(), 400);
    assert!(portal_session_alive(&p).await);
}
