//! The whole authorization-code flow with a real relying-party library (`openidconnect`):
//! discovery, PKCE, login form, code exchange, ID token checked against the JWKS,
//! userinfo, refresh, and what replays do.

use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims},
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::helpers::*;

fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_relying_party_logs_a_person_in_and_gets_verifiable_tokens() {
    let app = spawn_app().await;
    let sub = app.create_account("AK00", "anna@example.ch").await;
    let http = rp_http();

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer("AK00")).unwrap(), &http)
            .await
            .expect("discovery and JWKS");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("portal".into()),
        Some(ClientSecret::new(PORTAL_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(PORTAL_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("ahv".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser: authorize -> login page -> form -> back to the client.
    let res = app.get(auth_url.as_str()).await;
    assert_eq!(res.status(), 303);
    let login = location(&res);
    assert!(login.starts_with("/AK00/login?flow="), "{login}");
    let res = app.submit_login(&login, "anna@example.ch", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(callback.starts_with(PORTAL_REDIRECT), "{callback}");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(app.issuer("AK00").as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&callback, "code").expect("code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), sub);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.auth_method_refs().unwrap()[0].as_str(), "pwd");
    assert!(claims.auth_context_ref().is_some());
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);
    let header = jsonwebtoken::decode_header(id_token.to_string().as_str()).unwrap();
    assert!(header.kid.is_some(), "every JWT carries kid");
    let at_header = jsonwebtoken::decode_header(tokens.access_token().secret()).unwrap();
    assert_eq!(at_header.typ.as_deref(), Some("at+jwt"), "RFC 9068");
    assert!(at_header.kid.is_some());

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().unwrap().as_str(), "anna@example.ch");
    assert_eq!(
        info.given_name().unwrap().get(None).unwrap().as_str(),
        "Anna"
    );
    let raw: serde_json::Value = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["ahv_number"], "756.1234.5678.97");
    assert!(
        raw.get("phone_number").is_none(),
        "phone scope was not asked"
    );

    // Refresh: a new pair; the old refresh token is spent.
    let first_refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let second_refresh = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    let again = refreshed
        .id_token()
        .expect("id_token on refresh")
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()));
    assert_eq!(again.unwrap().subject().as_str(), sub);

    // Re-using the spent token fails and ends the whole family, the fresh token included.
    assert!(client
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .is_err());
    assert!(
        client
            .exchange_refresh_token(&second_refresh)
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "family revoked"
    );
    let res = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(refreshed.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "access tokens of the family are revoked too"
    );
}

#[tokio::test]
async fn a_second_use_of_a_code_fails_and_revokes_what_the_first_issued() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let callback = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid email"),
            ],
            "anna@example.ch",
        )
        .await;
    let code = query_param(&callback, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", PORTAL_REDIRECT),
        ("code_verifier", PORTAL_VERIFIER),
    ];
    let first = app
        .token("AK00", &form, Some(("portal", PORTAL_SECRET)))
        .await;
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    let ok = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let second = app
        .token("AK00", &form, Some(("portal", PORTAL_SECRET)))
        .await;
    assert_eq!(second.status(), 400);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    let after = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    assert!(after.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let res = app
        .token("AK00", &refresh_form, Some(("portal", PORTAL_SECRET)))
        .await;
    assert_eq!(
        res.status(),
        400,
        "the refresh token of the first use is revoked"
    );
}

#[tokio::test]
async fn a_public_client_with_pkce_gets_es256_tokens() {
    let app = spawn_app().await;
    app.create_account("AK01", "hans@example.ch").await;
    let (verifier, challenge) = pkce();
    let callback = app
        .authorize_and_login(
            "AK01",
            &[
                ("client_id", "mobile"),
                ("redirect_uri", MOBILE_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid phone"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("nonce", "n-0S6_WzA2Mj"),
            ],
            "hans@example.ch",
        )
        .await;
    let code = query_param(&callback, "code").unwrap();
    let res = app
        .token(
            "AK01",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", MOBILE_REDIRECT),
                ("client_id", "mobile"),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    let header = jsonwebtoken::decode_header(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let payload = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        body["id_token"].as_str().unwrap(),
    )
    .unwrap()
    .claims;
    assert_eq!(payload["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(payload["aud"], serde_json::json!(["mobile"]));
    assert!(payload["sid"].is_string());
    let info: serde_json::Value = app
        .api
        .get(app.url("/AK01/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["phone_number"], "+41791234567");
}

#[tokio::test]
async fn client_credentials_give_an_api_token_without_a_person() {
    let app = spawn_app().await;
    let res = app
        .token(
            "AK00",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "documents:write"),
            ],
            Some(("bench-cc", "bench-secret")),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        body["access_token"].as_str().unwrap(),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "bench-cc");
    assert_eq!(claims["scope"], "documents:write");
    assert_eq!(claims["iss"], app.issuer("AK00"));
    // Introspection by a confidential client says it is active.
    let intro = app
        .introspect("AK00", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "bench-cc");
    // And userinfo refuses it: no person behind it.
    let res = app
        .api
        .get(app.url("/AK00/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
