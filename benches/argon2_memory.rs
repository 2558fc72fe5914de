//! The memory a burst of password hashes leaves behind: `HASHES` Argon2id hashes with the
//! OWASP parameters (19 MiB, t=2, p=1) at concurrency 8, then VmRSS and VmHWM of this
//! process. `cargo bench --bench argon2_memory -- pooled` hashes through
//! `connect::passwords::Passwords` (working memory reused); `-- fresh` as it did before,
//! `hash_password` on a blocking thread behind the same semaphore, a new block each time.

use std::sync::Arc;

use argon2::{password_hash::SaltString, PasswordHasher};
use connect::{config::PasswordHashing, passwords::Passwords};
use tokio::sync::Semaphore;

const HASHES: usize = 300;
const CONCURRENCY: usize = 8;

fn status(label: &str) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "{label:<26} VmRSS {:>12}  VmHWM {:>12}",
        field("VmRSS:"),
        field("VmHWM:")
    );
}

#[tokio::main]
async fn main() {
    let mode = std::env::args()
        .skip(1)
        .find(|a| a == "pooled" || a == "fresh")
        .unwrap_or_else(|| "pooled".into());
    let cfg = PasswordHashing {
        concurrency: CONCURRENCY,
        queue: HASHES,
        ..PasswordHashing::default()
    };
    status("start");
    let started = std::time::Instant::now();
    let tasks: Vec<_> = if mode == "pooled" {
        let passwords = Passwords::new(&cfg).expect("parameters");
        (0..HASHES)
            .map(|i| {
                let p = passwords.clone();
                tokio::spawn(async move {
                    p.hash(format!("password {i}").into()).await.expect("hash");
                })
            })
            .collect()
    } else {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        (0..HASHES)
            .map(|i| {
                let permits = permits.clone();
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("semaphore");
                    tokio::task::spawn_blocking(move || {
                        let salt = SaltString::generate(&mut rand::rngs::OsRng);
                        argon2::Argon2::default()
                            .hash_password(format!("password {i}").as_bytes(), &salt)
                            .expect("hash")
                            .to_string()
                    })
                    .await
                    .expect("task");
                })
            })
            .collect()
    };
    for t in tasks {
        t.await.expect("task");
    }
    println!(
        "{mode}: {HASHES} hashes at concurrency {CONCURRENCY} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    status("after the burst");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    status("2 s later");
}
