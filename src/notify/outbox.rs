//! The outbox: each mail as an `.eml` file in `outbox/mail/`, each SMS as one JSON line in
//! `outbox/sms.jsonl`; and reading them back for `/_dev/outbox`.

use std::path::{Path, PathBuf};

use lettre::Message;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt, sync::Mutex};

use super::NotifyError;
use crate::domain::PhoneNumber;

pub struct Outbox {
    mail_dir: PathBuf,
    sms_file: PathBuf,
    // One writer at a time within the process; O_APPEND keeps lines whole across processes.
    sms_lock: Mutex<()>,
}

impl Outbox {
    pub fn new(dir: &Path) -> Self {
        Outbox {
            mail_dir: dir.join("mail"),
            sms_file: dir.join("sms.jsonl"),
            sms_lock: Mutex::new(()),
        }
    }

    /// Writes the mail whole under a temporary name and renames it into place, so that a
    /// reader (the outbox page, a test, a person's script) never meets half a mail.
    pub async fn write_mail(&self, message: Message) -> Result<(), NotifyError> {
        let failed = |e: std::io::Error| NotifyError::Mail(format!("outbox: {e}"));
        tokio::fs::create_dir_all(&self.mail_dir)
            .await
            .map_err(failed)?;
        let name = uuid::Uuid::new_v4();
        let partial = self.mail_dir.join(format!(".{name}.eml.partial"));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(failed)?;
        tokio::fs::rename(&partial, self.mail_dir.join(format!("{name}.eml")))
            .await
            .map_err(failed)?;
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
        // tokio writes in the background: flush, so that the line is there when we return.
        file.write_all(&bytes)
            .await
            .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        file.flush()
            .await
            .map_err(|e| NotifyError::Sms(format!("outbox: {e}")))?;
        Ok(())
    }
}

/// A mail of the outbox as the dev page shows it, decoded.
#[derive(Debug, Serialize)]
pub struct StoredMail {
    pub file: String,
    /// RFC 3339, from the `Date:` header, else the file's time.
    pub at: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub has_html: bool,
}

/// One line of `sms.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredSms {
    pub to: String,
    pub text: String,
    pub at: String,
}

impl Outbox {
    /// The newest `limit` mails first (by file time, then name); files that do not parse
    /// as mail are skipped.
    pub async fn mails(&self, limit: usize) -> std::io::Result<Vec<StoredMail>> {
        let mut dir = match tokio::fs::read_dir(&self.mail_dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        while let Some(entry) = dir.next_entry().await? {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "eml") {
                let modified = entry.metadata().await?.modified()?;
                files.push((modified, path));
            }
        }
        files.sort_by(|a, b| b.cmp(a));
        let mut mails = Vec::new();
        for (modified, path) in files.into_iter().take(limit) {
            let raw = tokio::fs::read(&path).await?;
            if let Some(mail) = decode(&path, &raw, modified) {
                mails.push(mail);
            }
        }
        Ok(mails)
    }

    /// The newest `limit` SMS first; lines that do not parse are skipped.
    pub async fn sms(&self, limit: usize) -> std::io::Result<Vec<StoredSms>> {
        let text = match tokio::fs::read_to_string(&self.sms_file).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str(line).ok())
            .take(limit)
            .collect())
    }
}

fn decode(path: &Path, raw: &[u8], modified: std::time::SystemTime) -> Option<StoredMail> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let at = message.date().map(|d| d.to_rfc3339()).unwrap_or_else(|| {
        chrono::DateTime::<chrono::Utc>::from(modified)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    });
    let to = message
        .to()
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let has_html = message
        .html_bodies()
        .any(|part| matches!(part.body, mail_parser::PartType::Html(_)));
    Some(StoredMail {
        file: path.file_name()?.to_string_lossy().into_owned(),
        at,
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        has_html,
    })
}
