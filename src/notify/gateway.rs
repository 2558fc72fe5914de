//! SMS through a generic HTTP gateway: one JSON POST per message, retried with exponential
//! backoff while the gateway is down or answers 5xx, never after a 4xx.

use std::time::Duration;

use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE},
    redirect::Policy,
};
use secrecy::ExposeSecret;

use super::NotifyError;
use crate::{config::SmsGateway, domain::PhoneNumber, http::outbound::Attempt};

/// The wait before the second attempt; it doubles before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub struct Gateway {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Option<HeaderValue>,
    settings: SmsGateway,
}

impl Gateway {
    /// `config` has checked URL, header and template.
    pub fn new(settings: &SmsGateway) -> Result<Gateway, NotifyError> {
        let url = settings
            .url
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| NotifyError::Config("sms.url: not a URL".into()))?;
        let auth = match &settings.auth_header {
            Some(secret) => {
                let mut value = HeaderValue::from_str(secret.expose_secret()).map_err(|_| {
                    NotifyError::Config("sms.auth_header: not a header value".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let timeout = Duration::from_secs(settings.timeout_seconds);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirected POST would become a GET without body; better to fail loudly.
            .redirect(Policy::none())
            .build()
            .map_err(|e| NotifyError::Config(format!("sms: HTTP client: {e}")))?;
        Ok(Gateway {
            client,
            url,
            auth,
            settings: settings.clone(),
        })
    }

    /// Logs and counts each outcome with the masked number only: the text holds a code.
    pub async fn send(&self, to: &PhoneNumber, text: &str) -> Result<(), NotifyError> {
        let body = render_body(
            &self.settings.body_template,
            &self.settings.sender,
            to.as_e164(),
            text,
        );
        let attempts = self.settings.max_attempts.max(1);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.post(body.clone()).await {
                Attempt::Delivered => {
                    count("delivered");
                    if attempt > 1 {
                        tracing::info!(to = %to.masked(), attempt, "SMS delivered to the gateway after retries");
                    }
                    return Ok(());
                }
                Attempt::Refused(status) => {
                    count("refused");
                    tracing::warn!(to = %to.masked(), attempt, status = status.as_u16(), "SMS gateway refused the message");
                    return Err(NotifyError::Sms(format!("the gateway answered {status}")));
                }
                Attempt::Transient(reason) if attempt >= attempts => {
                    count("failed");
                    tracing::warn!(to = %to.masked(), attempt, reason = %reason, "SMS gateway failed; giving up");
                    return Err(NotifyError::Sms(format!(
                        "the gateway failed {attempts} times, last: {reason}"
                    )));
                }
                Attempt::Transient(reason) => {
                    count("retried");
                    tracing::warn!(to = %to.masked(), attempt, reason = %reason, retry_in_ms = backoff.as_millis() as u64, "SMS gateway failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }

    async fn post(&self, body: String) -> Attempt {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        Attempt::of(request.send().await, |status| status.is_success())
    }
}

/// The request body for one message: `{to}`, `{text}` and `{sender}` of `template` replaced
/// in one pass (a text that contains `{to}` stays as it is) by the values escaped for use
/// between the quotes of a JSON string. `config` checks a template with it.
pub fn render_body(template: &str, sender: &str, to: &str, text: &str) -> String {
    let mut out = String::with_capacity(template.len() + text.len() + 32);
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let found = [("{to}", to), ("{text}", text), ("{sender}", sender)]
            .into_iter()
            .find(|(placeholder, _)| rest.starts_with(placeholder));
        match found {
            Some((placeholder, value)) => {
                let quoted = serde_json::Value::from(value).to_string();
                out.push_str(&quoted[1..quoted.len() - 1]);
                rest = &rest[placeholder.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `outcome` is one of `delivered`, `refused`, `failed` (per message) and `retried` (per
/// extra attempt).
fn count(outcome: &'static str) {
    metrics::counter!("connect_sms_gateway_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_body_escapes_values_in_one_pass() {
        let body = render_body(
            r#"{"to":"{to}","text":"{text}","from":"{sender}"}"#,
            "AK \"00\"",
            "+41791234567",
            "say \"{to}\"\n\\ é",
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["to"], "+41791234567");
        assert_eq!(json["text"], "say \"{to}\"\n\\ é");
        assert_eq!(json["from"], "AK \"00\"");
    }
}
