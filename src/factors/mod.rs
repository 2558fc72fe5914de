//! Second factors besides SMS (issue 12, « Stronger factors »): the authenticator app
//! ([`totp::Totp`]) and recovery codes ([`recovery::RecoveryCodes`]). Services that hold what
//! they use; the pages that enrol them are in `flows::account`, the login steps in
//! `flows::login`.
//!
//! Both are guessable codes, so the login counts them as it counts SMS codes: per login
//! (`sms.code_attempts` wrong codes of any kind end it) and per account across logins, with
//! the budget an attacker would get from SMS: `sms.per_account_per_hour` (and `_per_day`)
//! logins of `sms.code_attempts` tries each ([`guess_limits`]).

pub mod qr;
pub mod recovery;
pub mod totp;

use crate::{
    limits::{Limit, Limits},
    realm::Realm,
    storage::StoreError,
};

/// The per-account limits on app and recovery codes tried (right or wrong), whatever the
/// login: the same number of guesses the SMS limits allow.
pub fn guess_limits(realm: &Realm) -> [Limit; 2] {
    let sms = &realm.sms;
    [
        Limit::per_hour(
            "factor-codes-per-account-hour",
            sms.per_account_per_hour.saturating_mul(sms.code_attempts),
        ),
        Limit::per_day(
            "factor-codes-per-account-day",
            sms.per_account_per_day.saturating_mul(sms.code_attempts),
        ),
    ]
}

/// The subject of [`guess_limits`] for an account.
pub fn guess_subject(account_id: &str) -> String {
    format!("account:{account_id}")
}

/// A second factor proved by typing a code the person holds (not one sent to them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldCode {
    /// A code of the account's authenticator app.
    App,
    /// One of the account's recovery codes.
    RecoveryCode,
}

/// What a typed [`HeldCode`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldChecked {
    /// Right, and spent: it cannot prove anything again.
    Right,
    Wrong,
    /// The account's budget of guesses ([`guess_limits`]) is spent for now: minutes to wait.
    Limited(u64),
}

/// What checking a held code needs.
pub struct HeldCodes<'a> {
    pub totp: &'a totp::Totp,
    pub recovery_codes: &'a recovery::RecoveryCodes,
    pub limits: &'a Limits,
}

impl HeldCodes<'_> {
    /// Counts the attempt against the account's budget, then checks `code` and spends it when
    /// right. For the step-up gate and the forgotten password; the login's steps say more
    /// (codes left, the mail) and keep their own.
    pub async fn check(
        &self,
        realm: &Realm,
        account_id: &str,
        kind: HeldCode,
        code: &str,
    ) -> Result<HeldChecked, StoreError> {
        let subject = guess_subject(account_id);
        let [hour, day] = guess_limits(realm);
        let checks = [(hour, subject.as_str()), (day, subject.as_str())];
        if let Err(e) = self.limits.charge(realm.id.as_str(), &checks).await? {
            return Ok(HeldChecked::Limited(e.retry_after.as_secs().div_ceil(60)));
        }
        let right = match kind {
            HeldCode::App => {
                self.totp.verify(&realm.id, account_id, code.trim()).await?
                    == totp::Checked::Accepted
            }
            HeldCode::RecoveryCode => matches!(
                self.recovery_codes
                    .redeem(&realm.id, account_id, code)
                    .await?,
                recovery::Redeemed::Accepted { .. }
            ),
        };
        Ok(if right {
            HeldChecked::Right
        } else {
            HeldChecked::Wrong
        })
    }
}
