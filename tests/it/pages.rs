//! The page layer: every page on the common layout (logo, language menu that keeps the
//! page's query, support footer), and failures rendered in the page's language inside its
//! caisse.

use crate::helpers::*;

/// The layout's marks of the caisse AK00: its logo and its support number in the footer.
fn assert_on_layout(html: &str, what: &str) {
    let html = &unescape(html);
    assert!(
        html.contains("<img class=\"logo\" src=\"/AK00/logo\""),
        "{what}: no logo in:\n{html}"
    );
    assert!(
        html.contains("031 390 23 25"),
        "{what}: no support footer in:\n{html}"
    );
}

#[tokio::test]
async fn the_logout_pages_have_the_logo_the_language_menu_and_the_support_footer() {
    let app = spawn_app().await;
    app.create_account("AK00", "anna@example.ch").await;
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "logged in");

    let res = app
        .get_query(
            "/AK00/logout",
            &[
                ("client_id", "portal"),
                ("post_logout_redirect_uri", "http://127.0.0.1:8090/"),
                ("state", "s1"),
                ("ui_locales", "de"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("name=\"confirm\""), "the confirmation page");
    assert!(
        html.contains("<html lang=\"de\">"),
        "in ui_locales' language"
    );
    assert!(html.contains("Abmeldung"));
    assert_on_layout(&html, "confirmation page");
    // The language menu asks again with the same request (never with a token in the link).
    assert!(
        html.contains(
            "href=\"/AK00/logout?client_id=portal&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8090%2F&state=s1&lang=fr\""
        ),
        "language menu keeps the request: {html}"
    );

    let res = app.get(&app.url("/AK00/logout")).await;
    let html = res.text().await.unwrap();
    let confirm = form_value(&html, "confirm").expect("confirm token");
    let res = app
        .browser
        .post(app.url("/AK00/logout"))
        .form(&[("confirm", confirm.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("Vous êtes déconnecté"), "{html}");
    assert_on_layout(&html, "logged-out page");
    assert!(html.contains("href=\"/AK00/logout?lang=de\""), "{html}");
    assert!(!app.has_session().await, "logged out");
}

#[tokio::test]
async fn a_refused_form_speaks_the_pages_language_inside_its_caisse() {
    let app = spawn_app().await;
    // `?lang=de` is remembered for the next pages.
    let res = app.get(&app.url("/AK00/register?lang=de")).await;
    assert_eq!(res.status(), 200);
    let res = app
        .browser
        .post(app.url("/AK00/register"))
        .form(&[("csrf", "forged"), ("code", "ABCD-EFGH-JKLM")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("Das Formular ist abgelaufen"), "{html}");
    assert_on_layout(&html, "CSRF refusal");
}

#[tokio::test]
async fn an_error_met_inside_a_step_speaks_the_language_asked_for() {
    let app = spawn_app().await;
    let res = app
        .get(&app.url("/AK00/register/no-such-enrolment/email?lang=de"))
        .await;
    assert_eq!(res.status(), 410);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Diese Registrierung ist abgelaufen"),
        "{html}"
    );
    assert_on_layout(&html, "expired enrolment");
}

#[tokio::test]
async fn the_language_menu_keeps_the_pages_own_query() {
    let app = spawn_app().await;
    let res = app.get(&app.url("/AK00/register?flow=abc&lang=it")).await;
    assert_eq!(res.status(), 200);
    let html = unescape(&res.text().await.unwrap());
    assert!(html.contains("<html lang=\"it\">"));
    assert!(
        html.contains("href=\"/AK00/register?flow=abc&lang=de\""),
        "{html}"
    );
}
