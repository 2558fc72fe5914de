//! Key rotation: new keys sign, old keys stay in the JWKS until their tokens expire.

use crate::helpers::*;

async fn kids(app: &TestApp, realm: &str) -> Vec<String> {
    let jwks: serde_json::Value = app
        .api
        .get(app.url(&format!("/{realm}/jwks")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn cc_token(app: &TestApp) -> String {
    let body: serde_json::Value = app
        .token(
            "AK00",
            &[("grant_type", "client_credentials")],
            Some(("bench-cc", "bench-secret")),
        )
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn active(app: &TestApp, token: &str) -> bool {
    app.introspect("AK00", token).await["active"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn a_rotated_key_stays_published_until_its_tokens_have_expired() {
    let app = spawn_app().await;
    let before = kids(&app, "AK00").await;
    assert_eq!(before.len(), 2, "one ES256 and one RS256 key");
    assert!(
        kids(&app, "AK01").await.iter().all(|k| !before.contains(k)),
        "realms have their own keys"
    );
    let old_token = cc_token(&app).await;

    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    app.state.keys.rotate(&realm).await.unwrap();
    let after = kids(&app, "AK00").await;
    assert_eq!(after.len(), 4);
    assert!(
        before.iter().all(|k| after.contains(k)),
        "old keys still published"
    );
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    // Published first, the new key signs once every replica and relying party has read it.
    let handing_over = cc_token(&app).await;
    assert_eq!(
        kid(&old_token),
        kid(&handing_over),
        "the old key signs a while longer"
    );
    app.advance(app.state.keys.handover().as_secs());
    let new_token = cc_token(&app).await;
    assert_ne!(kid(&old_token), kid(&new_token), "the new key signs");
    assert!(!before.contains(&kid(&new_token)));
    assert!(
        active(&app, &old_token).await,
        "tokens of the old key still verify"
    );

    // Past the longest token lifetime and the margin, the next rotation forgets the first keys.
    app.advance(3600);
    app.state.keys.rotate(&realm).await.unwrap();
    let later = kids(&app, "AK00").await;
    assert!(before.iter().all(|k| !later.contains(k)), "first keys gone");
    assert!(later.contains(&kid(&new_token)));
}

#[tokio::test]
async fn private_keys_are_stored_encrypted() {
    let app = spawn_app().await;
    let rows = connect::storage::keys::published(&app.state.db, &realm("AK00"), 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(!row.private_key.contains("PRIVATE KEY"));
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&row.private_key)
            .unwrap();
        // PKCS#8 and PKCS#1 DER both start with a SEQUENCE tag; a sealed blob starts with a random nonce.
        assert!(blob.len() > 40);
    }
}
