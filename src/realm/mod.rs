//! Realms: one per caisse, read from `realm-config/<REALM>.toml` and checked at start.

mod client;
mod file;

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

pub use client::{Client, ClientKind, ClientRegistry, GrantType};
pub use file::RealmFileError;

use crate::domain::{Language, RealmId};

/// Signature algorithms a realm signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::ES256, SigningAlg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

/// Lifetimes of what a realm issues.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    pub authorization_code: Duration,
    pub access_token: Duration,
    pub id_token: Duration,
    pub refresh_token: Duration,
    pub session: Duration,
    pub login_flow: Duration,
}

impl Lifetimes {
    /// The longest any signed token of this realm stays valid: how long a retired key must
    /// stay in the JWKS.
    pub fn longest_signed_token(&self) -> Duration {
        self.access_token.max(self.id_token)
    }
}

/// One caisse: its settings and its relying parties.
#[derive(Debug)]
pub struct Realm {
    pub id: RealmId,
    pub display_name: String,
    pub languages: Vec<Language>,
    pub default_language: Language,
    pub support_phone: String,
    pub support_hours: String,
    pub lifetimes: Lifetimes,
    pub access_token_alg: SigningAlg,
    pub clients: ClientRegistry,
}

impl Realm {
    pub fn offers(&self, lang: Language) -> bool {
        self.languages.contains(&lang)
    }
}

/// All realms, by id.
#[derive(Clone, Debug, Default)]
pub struct Realms(Arc<BTreeMap<RealmId, Arc<Realm>>>);

impl Realms {
    /// Reads every `*.toml` in `dir`; the first bad file stops the start.
    pub fn load_dir(dir: &Path) -> Result<Realms, RealmFileError> {
        let entries = std::fs::read_dir(dir).map_err(|e| RealmFileError::io(dir, e))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut realms = BTreeMap::new();
        for path in paths {
            let realm = file::load(&path)?;
            realms.insert(realm.id.clone(), Arc::new(realm));
        }
        if realms.is_empty() {
            return Err(RealmFileError::none_in(dir));
        }
        Ok(Realms(Arc::new(realms)))
    }

    pub fn get(&self, id: &RealmId) -> Option<&Arc<Realm>> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Realm>> {
        self.0.values()
    }
}
