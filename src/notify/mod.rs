//! Mail and SMS to persons: through SMTP and an HTTP gateway when configured, else into the
//! outbox of `data/outbox/` (and `/_dev/outbox` in dev mode).

mod dev;
mod gateway;
pub mod messages;
mod outbox;
mod smtp;

use std::{sync::Arc, time::Duration};

use lettre::{
    message::{header::ContentType, Mailbox, MultiPart, SinglePart},
    Message,
};

pub use dev::router as dev_router;
pub use gateway::render_body as render_sms_body;

use crate::{
    config::Config,
    domain::{Email, PhoneNumber},
};

/// A mail ready to send: plain text always, HTML beside it when the message has one.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// A send that failed. The message never holds the content (codes live there), the
/// recipient, or a secret of the settings.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("mail could not be sent: {0}")]
    Mail(String),
    #[error("SMS could not be sent: {0}")]
    Sms(String),
    #[error("notification settings: {0}")]
    Config(String),
}

/// Sends mail and SMS; cheap to clone. Each channel goes to its real transport when one is
/// configured, otherwise to the outbox.
#[derive(Clone)]
pub struct Notifier {
    smtp: Option<Arc<smtp::Smtp>>,
    gateway: Option<Arc<gateway::Gateway>>,
    outbox: Arc<outbox::Outbox>,
    from: Mailbox,
}

impl Notifier {
    pub fn new(config: &Config) -> Result<Notifier, NotifyError> {
        let from = config
            .mail_from
            .parse()
            .map_err(|e| NotifyError::Config(format!("mail_from: {e}")))?;
        let smtp = match &config.smtp_url {
            Some(url) => Some(Arc::new(smtp::Smtp::new(
                url,
                config.smtp_ca_file.as_deref(),
                Duration::from_secs(config.smtp_timeout_seconds),
            )?)),
            None => None,
        };
        let gateway = match &config.sms.url {
            Some(_) => Some(Arc::new(gateway::Gateway::new(&config.sms)?)),
            None => None,
        };
        Ok(Notifier {
            smtp,
            gateway,
            outbox: Arc::new(outbox::Outbox::new(&config.outbox_dir)),
            from,
        })
    }

    pub async fn send_mail(&self, mail: Mail) -> Result<(), NotifyError> {
        let message = build_message(&self.from, &mail)?;
        let (via, result) = match &self.smtp {
            Some(smtp) => ("smtp", smtp.send(message).await),
            None => ("outbox", self.outbox.write_mail(message).await),
        };
        match &result {
            Ok(()) => metrics::counter!("connect_mail_sent_total", "via" => via).increment(1),
            Err(e) => {
                metrics::counter!("connect_mail_failed_total", "via" => via).increment(1);
                // The domain tells which provider refuses; the address stays out of the logs.
                let domain = mail.to.as_str().rsplit_once('@').map_or("", |(_, d)| d);
                tracing::warn!(via, to_domain = domain, error = %e, "mail not sent");
            }
        }
        result
    }

    pub async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), NotifyError> {
        match &self.gateway {
            Some(gateway) => gateway.send(to, text).await,
            None => {
                let result = self.outbox.write_sms(to, text).await;
                if let Err(e) = &result {
                    tracing::warn!(to = %to.masked(), error = %e, "SMS not written to the outbox");
                }
                result
            }
        }
    }
}

/// The MIME message: `multipart/alternative` with the text first when there is HTML.
fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, NotifyError> {
    let to: Mailbox = mail
        .to
        .as_str()
        .parse()
        .map_err(|e| NotifyError::Mail(format!("recipient: {e}")))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject);
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone());
    let message = match &mail.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    message.map_err(|e| NotifyError::Mail(e.to_string()))
}
