//! The portal as a person uses it: sent to the IdP to log in (password and SMS code), back to
//! the page they asked for, their data on the overview; logout at the portal ends the IdP
//! session too.

use connect::{domain::Language, storage::persons};

use crate::helpers::*;

/// Logs in at the IdP from its login page URL; returns where the IdP sends the browser.
async fn log_in(p: &TestPortal, login_url: &str, email: &str) -> String {
    let res = p.idp.submit_login(login_url, email, PASSWORD).await;
    assert_eq!(res.status(), 303, "login and SMS step done");
    location(&res)
}

/// Anna in the register of AK00, with her postal address.
async fn register_anna(p: &TestPortal) {
    let person = persons::Person {
        ahv: "756.1234.5678.97".parse().unwrap(),
        given_name: "Anna".into(),
        family_name: "Muster".into(),
        birth_date: "1950-03-14".parse().unwrap(),
        language: Language::Fr,
        address: persons::PostalAddress::default(),
    };
    persons::add(&p.idp.state.db, &realm("AK00"), &person, 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_is_sent_to_the_idp_and_comes_back_to_the_page_asked_for() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    register_anna(&p).await;

    let (at, page) = p.browse(&p.url("/?lang=fr")).await;
    assert!(
        at.contains("/AK00/login?flow="),
        "sent to the IdP's login: {at}"
    );
    assert_eq!(page.status(), 200);
    let back = log_in(&p, &at, "anna@example.ch").await;
    assert!(back.starts_with(&p.url("/callback?")), "{back}");
    let (at, page) = p.browse(&back).await;
    assert_eq!(at, p.url("/?lang=fr"), "back to the page asked for");
    let html = unescape(&page.text().await.unwrap());
    assert!(html.contains("Vue d'ensemble"), "{html}");
    assert!(html.contains("Anna Muster"));
    assert!(
        html.contains("756.1234.5678.97"),
        "AHV number from userinfo"
    );
    assert!(html.contains("anna@example.ch"));
    assert!(
        html.contains("031 390 23 25"),
        "the caisse's support contact"
    );
}

#[tokio::test]
async fn a_replayed_or_forged_callback_is_refused() {
    let p = spawn_portal().await;
    let res = p.idp.get(&p.url("/callback?code=abc&state=forged")).await;
    assert_eq!(res.status(), 400);
    let res = p.idp.get(&p.url("/callback?code=abc")).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn logout_at_the_portal_ends_the_idp_session_too() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (at, _) = p.browse(&p.url("/")).await;
    let back = log_in(&p, &at, "anna@example.ch").await;
    let (_, page) = p.browse(&back).await;
    let html = page.text().await.unwrap();
    let csrf = form_value(&html, "csrf").expect("logout form");
    let res = p
        .idp
        .browser
        .post(p.url("/logout"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with(&p.idp.url("/AK00/logout?")),
        "to the IdP's end-session endpoint: {to}"
    );
    assert!(to.contains("id_token_hint="));
    let res = p.idp.get(&to).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        p.url("/"),
        "back at the portal after the IdP's logout"
    );
    // Both sessions are gone: the portal sends to the IdP, which asks for a login again.
    let (at, _) = p.browse(&p.url("/")).await;
    assert!(at.contains("/AK00/login?flow="), "{at}");
}

#[tokio::test]
async fn logout_at_the_idp_ends_the_portal_session_by_back_channel() {
    let p = spawn_portal().await;
    p.idp.create_account("AK00", "anna@example.ch").await;
    let (at, _) = p.browse(&p.url("/")).await;
    let back = log_in(&p, &at, "anna@example.ch").await;
    let (at, _) = p.browse(&back).await;
    assert_eq!(at, p.url("/"));

    // The person logs out at the IdP itself (as another application would send them there).
    let page = p
        .idp
        .get(&p.idp.url("/AK00/logout"))
        .await
        .text()
        .await
        .unwrap();
    let confirm = form_value(&page, "confirm").expect("the confirmation form");
    let res = p
        .idp
        .browser
        .post(p.idp.url("/AK00/logout"))
        .form(&[("confirm", confirm)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    // The IdP tells the portal in the background; the portal session ends.
    let mut ended = false;
    for _ in 0..50 {
        let res = p.idp.get(&p.url("/")).await;
        if res.status() == 303 && location(&res).starts_with("/login") {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ended, "the portal session ended by back-channel logout");
}

#[tokio::test]
async fn a_forged_logout_token_is_refused_and_ends_nothing() {
    let p = spawn_portal().await;
    let res = p
        .idp
        .api
        .post(p.url("/backchannel-logout"))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = p
        .idp
        .api
        .post(p.url("/backchannel-logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
