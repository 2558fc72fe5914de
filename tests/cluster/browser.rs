//! A person's browser (cookies, no automatic redirects) that remembers which replica nginx
//! sent each request to, and the journeys' steps as a person takes them.

use std::sync::Mutex;

use reqwest::{redirect::Policy, Response};

use crate::harness::{letter_code, Cluster};

pub struct Browser {
    pub client: reqwest::Client,
    /// Each answer through nginx: the balancer's port and the replica that served it.
    pub hops: Mutex<Vec<(u16, String)>>,
}

pub const PASSWORD: &str = "Aare-Ufer-Spaziergang";

impl Browser {
    /// A browser at its own client address (`n` picks it), so that each person's abuse
    /// limits are their own, as behind a real balancer.
    pub fn new(n: u8) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            format!("10.14.0.{n}").parse().expect("a header value"),
        );
        Browser {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .default_headers(headers)
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("client"),
            hops: Mutex::default(),
        }
    }

    fn record(&self, url: &str, res: &Response) {
        let port = url::Url::parse(url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(0);
        if let Some(up) = res.headers().get("x-upstream") {
            let up = up.to_str().unwrap_or_default().to_owned();
            self.hops.lock().unwrap().push((port, up));
        }
    }

    pub async fn get(&self, url: &str) -> Response {
        let res = self.client.get(url).send().await.expect("GET");
        self.record(url, &res);
        res
    }

    pub async fn post(&self, url: &str, form: &[(String, String)]) -> Response {
        let res = self.client.post(url).form(form).send().await.expect("POST");
        self.record(url, &res);
        res
    }

    /// Opens `url`, fills its first POST form with `fields` (CSRF token and hidden flow
    /// field taken from the page) and submits it.
    pub async fn fill(&self, url: &str, fields: &[(&str, &str)]) -> Response {
        let res = self.get(url).await;
        assert_eq!(res.status(), 200, "GET {url}");
        let html = res.text().await.expect("html");
        self.submit_on(url, &html, fields).await
    }

    /// Submits the first POST form of `html`, a page loaded from `url`.
    pub async fn submit_on(&self, url: &str, html: &str, fields: &[(&str, &str)]) -> Response {
        let action = form_action(html).expect("a POST form");
        let mut form: Vec<(String, String)> =
            vec![("csrf".into(), form_value(html, "csrf").expect("csrf"))];
        if let Some(flow) = form_value(html, "flow") {
            form.push(("flow".into(), flow));
        }
        form.extend(fields.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        self.post(&absolute(url, &action), &form).await
    }

    /// Follows redirects across portal and IdP, as the browser would, until a page answers;
    /// the last URL and the answer.
    pub async fn browse(&self, url: &str) -> (String, Response) {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let res = self.get(&url).await;
            if !res.status().is_redirection() {
                return (url, res);
            }
            url = absolute(&url, &location(&res));
        }
        panic!("too many redirects from {url}");
    }

    /// The replicas that served consecutive requests through the balancer on `port`, from
    /// the `from`th answer on.
    pub fn upstreams(&self, port: u16, from: usize) -> Vec<String> {
        self.hops.lock().unwrap()[from..]
            .iter()
            .filter(|(p, _)| *p == port)
            .map(|(_, up)| up.clone())
            .collect()
    }
}

/// `to` (a Location) made absolute against the page it came from.
pub fn absolute(from: &str, to: &str) -> String {
    url::Url::parse(from)
        .and_then(|base| base.join(to))
        .map(String::from)
        .unwrap_or_else(|_| to.to_owned())
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub use crate::text::{form_value, query_param, unescape};

/// The action of the first POST form of a page.
pub fn form_action(html: &str) -> Option<String> {
    let html = &unescape(html);
    let marker = "<form method=\"post\" action=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A person of the journeys: their address, mobile number and client address.
#[derive(Clone)]
pub struct Person {
    pub n: u8,
    pub ahv: String,
    pub email: String,
    pub mobile: String,
    pub e164: String,
}

impl Person {
    pub fn new(n: u8) -> Person {
        Person {
            n,
            ahv: crate::harness::ahv(u32::from(n)),
            email: format!("person{n}@example.ch"),
            mobile: format!("079 123 45 {n:02}"),
            e164: format!("+417912345{n:02}"),
        }
    }
}

/// Step 1: the letter's code at `start`; the enrolment's base URL (`…/AK00/register/<tx>`).
pub async fn letter_step(c: &Cluster, b: &Browser, start: &str, code: &str) -> String {
    let res = b.fill(start, &[("code", code)]).await;
    assert_eq!(res.status(), 303, "step 1 accepts the code: {}", c.logs());
    let to = absolute(start, &location(&res));
    assert!(to.ends_with("/email"), "{to}");
    to.trim_end_matches("/email").to_owned()
}

/// Steps 2 and 3: the address, then the code of the mail sent to it.
pub async fn email_steps(c: &Cluster, b: &Browser, base: &str, p: &Person) {
    let before = c.mail_count(&p.email);
    let res = b
        .fill(&format!("{base}/email"), &[("email", &p.email)])
        .await;
    assert_eq!(res.status(), 303, "step 2");
    let mail = c.mail(&p.email, before).await;
    let code = letter_code(&mail).expect("a code in the mail");
    let res = b.fill(&format!("{base}/confirm"), &[("code", &code)]).await;
    assert_eq!(res.status(), 303, "step 3");
    assert!(location(&res).ends_with("/account"));
}

/// Steps 4 and 5: names, language and terms, then the password.
pub async fn account_steps(b: &Browser, base: &str) {
    let fields = [
        ("given_name", "Anna"),
        ("family_name", "Muster"),
        ("language", "fr"),
        ("terms", "accept"),
    ];
    let res = b.fill(&format!("{base}/account"), &fields).await;
    assert_eq!(res.status(), 303, "step 4");
    let res = b
        .fill(
            &format!("{base}/password"),
            &[("password", PASSWORD), ("confirm", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303, "step 5");
}

/// Step 6: the mobile number; sends the SMS code.
pub async fn phone_step(b: &Browser, base: &str, p: &Person) {
    let res = b
        .fill(&format!("{base}/phone"), &[("phone", &p.mobile)])
        .await;
    assert_eq!(res.status(), 303, "step 6");
}

/// Step 7: the SMS code; the answer.
pub async fn sms_step(c: &Cluster, b: &Browser, base: &str, p: &Person, after: usize) -> Response {
    let code = c.sms_code(&p.e164, after).await;
    b.fill(&format!("{base}/sms"), &[("code", &code)]).await
}

/// Enrolment steps 1 to 7 from `start`; the answer to step 7.
pub async fn enrol(c: &Cluster, b: &Browser, start: &str, code: &str, p: &Person) -> Response {
    let base = letter_step(c, b, start, code).await;
    email_steps(c, b, &base, p).await;
    account_steps(b, &base).await;
    let before = c.sms_count(&p.e164);
    phone_step(b, &base, p).await;
    sms_step(c, b, &base, p, before).await
}

/// The login form at `login_url` (e-mail and password); the answer, which sends to the SMS
/// step.
pub async fn password_step(b: &Browser, login_url: &str, p: &Person) -> Response {
    let res = b.get(login_url).await;
    assert_eq!(res.status(), 200, "login page");
    let html = res.text().await.expect("html");
    let mut form = vec![
        ("csrf".to_owned(), form_value(&html, "csrf").expect("csrf")),
        ("email".to_owned(), p.email.clone()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    if let Some(flow) = form_value(&html, "flow") {
        form.push(("flow".into(), flow));
    }
    b.post(&absolute(login_url, "/AK00/login"), &form).await
}

/// The SMS step of a login at `sms_url`, then the protocol's resume endpoint; where the
/// browser is sent (the client's callback).
pub async fn login_sms_step(
    c: &Cluster,
    b: &Browser,
    sms_url: &str,
    p: &Person,
    after: usize,
) -> String {
    let code = c.sms_code(&p.e164, after).await;
    let res = b.fill(sms_url, &[("code", &code)]).await;
    assert_eq!(res.status(), 303, "SMS code accepted: {}", c.logs());
    let mut to = absolute(sms_url, &location(&res));
    if to.contains("/authorize/resume/") {
        let res = b.get(&to).await;
        assert_eq!(res.status(), 303, "resume");
        to = absolute(&to, &location(&res));
    }
    to
}

/// A whole login from the login page: password, SMS code; where the browser is sent.
pub async fn log_in(c: &Cluster, b: &Browser, login_url: &str, p: &Person) -> String {
    let before = c.sms_count(&p.e164);
    let res = password_step(b, login_url, p).await;
    assert_eq!(res.status(), 303, "password accepted: {}", c.logs());
    let sms_url = absolute(login_url, &location(&res));
    assert!(sms_url.contains("/AK00/login/sms"), "{sms_url}");
    login_sms_step(c, b, &sms_url, p, before).await
}
