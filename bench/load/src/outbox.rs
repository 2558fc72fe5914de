//! Reads the SMS codes that connect writes to `<data_dir>/outbox/sms.jsonl` (one JSON line
//! `{"to","text","at"}` per SMS), as a person reads their phone: one reader follows the file
//! and wakes the workers whose number got a new message.

use std::{cell::RefCell, collections::HashMap, path::PathBuf, rc::Rc, time::Duration};

use anyhow::{anyhow, Context};
use std::io::Read;

use tokio::sync::watch;

/// Per number: how many SMS it got, and the code of the last.
#[derive(Default)]
struct Seen {
    count: u64,
    code: String,
}

#[derive(Clone)]
pub struct Outbox {
    seen: Rc<RefCell<HashMap<String, Seen>>>,
    changed: watch::Receiver<u64>,
}

impl Outbox {
    /// Starts following `file` (which may not exist yet) on the current thread's runtime.
    pub fn follow(file_path: PathBuf) -> Outbox {
        let seen: Rc<RefCell<HashMap<String, Seen>>> = Rc::default();
        let (tx, rx) = watch::channel(0u64);
        let map = seen.clone();
        tokio::task::spawn_local(async move {
            // Plain blocking reads of a local file: a few microseconds a tick, where tokio::fs
            // would hand each call to another thread.
            let mut file: Option<std::fs::File> = None;
            let mut partial = String::new();
            let mut generation = 0u64;
            // Ends when every Outbox handle is gone (its server measured).
            while !tx.is_closed() {
                if file.is_none() {
                    file = std::fs::File::open(&file_path).ok();
                }
                if let Some(f) = &mut file {
                    let mut buf = Vec::new();
                    if f.read_to_end(&mut buf).is_ok() {
                        partial.push_str(&String::from_utf8_lossy(&buf));
                    }
                }
                let mut any = false;
                while let Some(end) = partial.find('\n') {
                    let line: String = partial.drain(..=end).collect();
                    if let Some((to, code)) = parse(&line) {
                        let mut m = map.borrow_mut();
                        let s = m.entry(to).or_default();
                        s.count += 1;
                        s.code = code;
                        any = true;
                    }
                }
                if any {
                    generation += 1;
                    let _ = tx.send(generation);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        Outbox { seen, changed: rx }
    }

    /// How many SMS `to` has had so far.
    pub fn count(&self, to: &str) -> u64 {
        self.seen.borrow().get(to).map_or(0, |s| s.count)
    }

    /// The code of the first SMS to `to` after the first `before` ones.
    pub async fn code_after(&self, to: &str, before: u64) -> anyhow::Result<String> {
        let mut changed = self.changed.clone();
        let wait = async {
            loop {
                if let Some(s) = self.seen.borrow().get(to) {
                    if s.count > before {
                        return Ok(s.code.clone());
                    }
                }
                changed
                    .changed()
                    .await
                    .map_err(|_| anyhow!("the outbox reader stopped"))?;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .with_context(|| format!("no SMS to {to} within 10 s"))?
    }
}

/// (number, six-digit code) of one outbox line.
fn parse(line: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let to = v["to"].as_str()?.to_owned();
    let text = v["text"].as_str()?;
    Some((to, six_digits(text)?))
}

/// The first run of exactly six digits.
fn six_digits(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_of_a_line() {
        let line =
            r#"{"to":"+41795550001","text":"Votre code: 123456 (valable 5 min, 2026)","at":"x"}"#;
        assert_eq!(parse(line), Some(("+41795550001".into(), "123456".into())));
        assert_eq!(six_digits("1234567 12345 654321"), Some("654321".into()));
        assert_eq!(parse("not json"), None);
    }
}
