//! connect: an OpenID Connect identity provider for the insured persons of Swiss
//! compensation funds. See `docs/ARCHITECTURE.md` for the map of modules.

pub mod activation;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod factors;
pub mod flows;
pub mod guard;
pub mod http;
pub mod keys;
pub mod letter;
pub mod limits;
pub mod notify;
pub mod otp;
pub mod passkeys;
pub mod passwords;
pub mod portal;
pub mod protocol;
pub mod realm;
pub mod rp;
pub mod session;
pub mod staff;
pub mod storage;
pub mod support;
pub mod telemetry;
