//! Several replicas, one truth: the release binary started as three IdP and two portal
//! replicas on one PostgreSQL database and one Redis, behind nginx doing plain round-robin,
//! driven through whole journeys and through faults (a replica killed, Redis restarted,
//! PostgreSQL unreachable, SIGTERM) and load. Needs PostgreSQL (`CONNECT_TEST_DATABASE_URL`),
//! nginx and redis-server; without PostgreSQL every test says so on stderr and passes.
//! The tests run one at a time: each starts up to five servers on a 2-core machine.

mod browser;
mod faults;
mod harness;
mod journeys;
#[allow(dead_code)]
#[path = "../it/receivers.rs"]
mod receivers;
#[path = "../it/text.rs"]
mod text;

/// One cluster at a time (each test holds it while it runs).
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
