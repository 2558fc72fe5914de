//! The outbox: each mail as an `.eml` file in `outbox/mail/`, each SMS as one JSON line in
//! `outbox/sms.jsonl`.

use std::path::{Path, PathBuf};

use lettre::{
    message::{header::ContentType, MultiPart, SinglePart},
    AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
};
use tokio::{io::AsyncWriteExt, sync::Mutex};

use super::{Mail, NotifyError};
use crate::domain::PhoneNumber;

pub struct Outbox {
    mail_dir: PathBuf,
    sms_file: PathBuf,
    // One writer at a time within the process; O_APPEND keeps lines whole across processes.
    sms_lock: Mutex<()>,
}

pub fn build_message(from: &str, mail: &Mail) -> Result<Message, NotifyError> {
    let builder = Message::builder()
        .from(
            from.parse()
                .map_err(|e| NotifyError::Config(format!("mail_from: {e}")))?,
        )
        .to(mail
            .to
            .as_str()
            .parse()
            .map_err(|e| NotifyError::Mail(format!("recipient: {e}")))?)
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

impl Outbox {
    pub fn new(dir: &Path) -> Self {
        Outbox {
            mail_dir: dir.join("mail"),
            sms_file: dir.join("sms.jsonl"),
            sms_lock: Mutex::new(()),
        }
    }

    pub async fn write_mail(&self, message: Message) -> Result<(), NotifyError> {
        tokio::fs::create_dir_all(&self.mail_dir)
            .await
            .map_err(|e| NotifyError::Mail(format!("outbox: {e}")))?;
        AsyncFileTransport::<Tokio1Executor>::new(&self.mail_dir)
            .send(message)
            .await
            .map_err(|e| NotifyError::Mail(format!("outbox: {e}")))?;
        Ok(())
    }

    pub async fn write_sms(&self, to: &PhoneNumber, text: &str) -> Result<(), NotifyError> {
        let line = serde_json::json!({
            "to": to.as_e164(),
            "text": text,
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let _guard = self.sms_lock.lock().await;
        if let Some(dir) = self.sms_file.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.sms_file)
            .await
            .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        // tokio hands writes to a blocking thread: flush, so the line is on disk on return.
        file.write_all(&bytes)
            .await
            .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        file.flush()
            .await
            .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        Ok(())
    }
}
