//! What every page and endpoint shares: errors, extractors, cookies, headers, templates, and
//! the middleware stack and accept loop of both servers.

pub mod client_addr;
pub mod csrf;
pub mod drain;
pub mod error;
pub mod headers;
pub mod health;
pub mod language;
pub mod metrics;
pub mod outbound;
pub mod page;
pub mod params;
pub mod realm;
pub mod server;
pub mod stack;
pub mod templates;

pub use client_addr::ClientAddr;
pub use error::HttpError;
pub use page::{Page, PageError};
pub use realm::CurrentRealm;
pub use stack::{stack, BodyLimit, StackSettings};
