//! What every page and endpoint shares: errors, extractors, cookies, headers, templates.

pub mod client_addr;
pub mod csrf;
pub mod drain;
pub mod error;
pub mod headers;
pub mod language;
pub mod outbound;
pub mod page;
pub mod params;
pub mod realm;
pub mod server;
pub mod templates;

pub use client_addr::ClientAddr;
pub use error::HttpError;
pub use page::{Page, PageError};
pub use realm::CurrentRealm;
