//! What follows when an account's access must end or its factors change: every session and
//! grant of the account ends (with back-channel logout) and the person is told by mail.

use std::sync::Arc;

use crate::{
    audit::{Audit, Event, Kind},
    notify::{
        messages::{self, AccountNotice},
        Notifier,
    },
    protocol::logout::Logouts,
    realm::Realm,
    storage::{accounts::Account, StoreError},
};

/// Ends an account's access and tells the person; built once, in `AppState`.
#[derive(Clone)]
pub struct Guard {
    logouts: Logouts,
    audit: Audit,
    notifier: Notifier,
}

impl Guard {
    pub fn new(logouts: &Logouts, audit: &Audit, notifier: &Notifier) -> Self {
        Guard {
            logouts: logouts.clone(),
            audit: audit.clone(),
            notifier: notifier.clone(),
        }
    }

    /// Ends everything of `account` and tells the person why. Returns how many sessions
    /// ended.
    pub async fn restrict(
        &self,
        realm: &Arc<Realm>,
        account: &Account,
        notice: AccountNotice<'_>,
    ) -> Result<usize, StoreError> {
        let ended = self.logouts.end_all(realm, &account.id).await?;
        tracing::info!(realm = %realm.id, account = %account.id, sessions = ended, "account sessions and grants ended");
        self.audit
            .record(
                Event::new(Kind::SessionsEnded, &realm.id)
                    .account(&account.id)
                    .detail(serde_json::json!({ "why": notice.why(), "sessions": ended })),
            )
            .await;
        self.tell(realm, account, notice).await;
        Ok(ended)
    }

    /// As [`Guard::restrict`], but from the person's own session `keep` (a `sid`), which
    /// stays with its grants: every other session and grant ends. For the changes a person
    /// makes on their account page after proving who they are.
    pub async fn restrict_others(
        &self,
        realm: &Arc<Realm>,
        account: &Account,
        keep: &str,
        notice: AccountNotice<'_>,
    ) -> Result<usize, StoreError> {
        let ended = self.logouts.end_others(realm, &account.id, keep).await?;
        tracing::info!(realm = %realm.id, account = %account.id, sessions = ended, "other sessions and grants of the account ended");
        self.audit
            .record(
                Event::new(Kind::SessionsEnded, &realm.id)
                    .account(&account.id)
                    .detail(serde_json::json!({ "why": notice.why(), "sessions": ended, "kept": "current" })),
            )
            .await;
        self.tell(realm, account, notice).await;
        Ok(ended)
    }

    /// Mails the notice to the account's address in its language. A mail that cannot be sent
    /// is logged and does not undo what happened: the restriction matters more than the news.
    pub async fn tell(&self, realm: &Realm, account: &Account, notice: AccountNotice<'_>) {
        let mail = messages::account_notice(account.language, realm, &account.email, notice);
        if let Err(e) = self.notifier.send_mail(mail).await {
            tracing::error!(realm = %realm.id, account = %account.id, error = %e, "account notice not sent");
        }
    }
}
