//! Mail and SMS to persons: through SMTP and an HTTP gateway when configured, else into the
//! outbox of `data/outbox/` (and `/_dev/outbox` in dev mode).

pub mod messages;
mod outbox;

use std::sync::Arc;

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

/// A send that failed. The message never holds the content (codes live there).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("mail could not be sent: {0}")]
    Mail(String),
    #[error("SMS could not be sent: {0}")]
    Sms(String),
    #[error("notification settings: {0}")]
    Config(String),
}

/// Sends mail and SMS; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    outbox: Arc<outbox::Outbox>,
    from: String,
}

impl Notifier {
    pub fn new(config: &Config) -> Result<Notifier, NotifyError> {
        Ok(Notifier {
            outbox: Arc::new(outbox::Outbox::new(&config.outbox_dir)),
            from: config.mail_from.clone(),
        })
    }

    pub async fn send_mail(&self, mail: Mail) -> Result<(), NotifyError> {
        let message = outbox::build_message(&self.from, &mail)?;
        self.outbox.write_mail(message).await
    }

    pub async fn send_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), NotifyError> {
        self.outbox.write_sms(to, text).await
    }
}
