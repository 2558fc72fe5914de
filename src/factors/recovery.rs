//! Recovery codes: ten single-use codes that stand in for the second factor when the phone
//! or the app is out of reach. Shown once when made, stored only as keyed hashes bound to the
//! account, compared in constant time; a new set replaces the old one.

use subtle::ConstantTimeEq;

use crate::{
    clock::Clock,
    domain::{RealmId, RecoveryCode},
    keys::SecretHasher,
    storage::{
        recovery_codes::{self as store, CodeSet},
        Db, StoreError,
    },
};

/// How many codes a set holds.
pub const CODES_PER_SET: usize = 10;

/// What a presented recovery code did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// It was one of the account's unspent codes, and is spent now; `left` remain.
    Accepted { left: usize },
    /// Not an unspent code of this account (or another login spent it a moment ago).
    Wrong,
}

/// The recovery codes of every realm; built once, in `AppState`.
#[derive(Clone)]
pub struct RecoveryCodes {
    db: Db,
    hasher: SecretHasher,
    clock: Clock,
}

impl RecoveryCodes {
    pub fn new(db: &Db, hasher: &SecretHasher, clock: &Clock) -> Self {
        RecoveryCodes {
            db: db.clone(),
            hasher: hasher.clone(),
            clock: clock.clone(),
        }
    }

    /// The stored form of a code: a keyed hash bound to its realm and account, so a code
    /// (or a hash copied from one row to another) means nothing for anyone else.
    fn hash(&self, realm: &RealmId, account_id: &str, code: &RecoveryCode) -> String {
        self.hasher.hash(&format!(
            "recovery-code:{realm}:{account_id}:{}",
            code.as_str()
        ))
    }

    /// Makes a new set of ten codes for the account, replacing the old set (spent or not) in
    /// the same transaction, and returns them: the only time they exist in clear.
    pub async fn issue(
        &self,
        realm: &RealmId,
        account_id: &str,
    ) -> Result<Vec<RecoveryCode>, StoreError> {
        let mut codes: Vec<RecoveryCode> = Vec::with_capacity(CODES_PER_SET);
        while codes.len() < CODES_PER_SET {
            let code = RecoveryCode::generate();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| self.hash(realm, account_id, c))
            .collect();
        store::replace(&self.db, realm, account_id, &hashes, self.clock.unix()).await?;
        Ok(codes)
    }

    /// Spends `presented` if it is one of the account's unspent codes. Every unspent code is
    /// compared, in constant time, whether or not an earlier one matched.
    pub async fn redeem(
        &self,
        realm: &RealmId,
        account_id: &str,
        presented: &str,
    ) -> Result<Redeemed, StoreError> {
        let Ok(code) = presented.parse::<RecoveryCode>() else {
            return Ok(Redeemed::Wrong);
        };
        let candidate = self.hash(realm, account_id, &code);
        let unused = store::unused(&self.db, realm, account_id).await?;
        let mut found = None;
        for row in &unused {
            if bool::from(row.code_hash.as_bytes().ct_eq(candidate.as_bytes())) {
                found = Some(row.id.as_str());
            }
        }
        let Some(id) = found else {
            return Ok(Redeemed::Wrong);
        };
        let now = self.clock.unix();
        Ok(
            if store::spend(&self.db, realm, account_id, id, now).await? {
                Redeemed::Accepted {
                    left: unused.len() - 1,
                }
            } else {
                Redeemed::Wrong
            },
        )
    }

    /// The account's set (how many are left, when it was made), if it has one.
    pub async fn set_of(
        &self,
        realm: &RealmId,
        account_id: &str,
    ) -> Result<Option<CodeSet>, StoreError> {
        store::set_of(&self.db, realm, account_id).await
    }

    /// How many unspent codes the account has.
    pub async fn left(&self, realm: &RealmId, account_id: &str) -> Result<usize, StoreError> {
        Ok(self.set_of(realm, account_id).await?.map_or(0, |s| s.left))
    }

    /// Removes the account's codes (when its second factors are reset); how many there were.
    pub async fn remove_all(&self, realm: &RealmId, account_id: &str) -> Result<u64, StoreError> {
        store::remove_all(&self.db, realm, account_id).await
    }
}
