//! What follows when an account's access must end or its factors change: every session and
//! grant of the account ends (with back-channel logout) and the person is told by mail.

use std::sync::Arc;

use crate::{
    app::AppState,
    audit::{Event, Kind},
    notify::messages::{self, AccountNotice},
    realm::Realm,
    session,
    storage::{accounts::Account, StoreError},
};

/// Ends everything of `account` and tells the person why. Returns how many sessions ended.
pub async fn restrict(
    state: &AppState,
    realm: &Arc<Realm>,
    account: &Account,
    notice: AccountNotice<'_>,
) -> Result<usize, StoreError> {
    let ended = session::end_all(state, realm, &account.id).await?;
    tracing::info!(realm = %realm.id, account = %account.id, sessions = ended, "account sessions and grants ended");
    state
        .audit
        .record(
            Event::new(Kind::SessionsEnded, &realm.id)
                .account(&account.id)
                .detail(serde_json::json!({ "why": notice.why(), "sessions": ended })),
        )
        .await;
    tell(state, realm, account, notice).await;
    Ok(ended)
}

/// Mails the notice to the account's address in its language. A mail that cannot be sent
/// is logged and does not undo what happened: the restriction matters more than the news.
pub async fn tell(state: &AppState, realm: &Realm, account: &Account, notice: AccountNotice<'_>) {
    let mail = messages::account_notice(account.language, realm, &account.email, notice);
    if let Err(e) = state.notifier.send_mail(mail).await {
        tracing::error!(realm = %realm.id, account = %account.id, error = %e, "account notice not sent");
    }
}
