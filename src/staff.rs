//! The support desk's staff as a service: members of a staff realm added, changed and removed
//! for the command line (and the console later), invited by a single-use link, enrolled by
//! that link's pages (`flows::staff`).
//!
//! A staff member is an account of the staff realm, without AHV number or phone, that waits
//! (status `invited`, no login) until its enrolment has registered a passkey. The link's token
//! is 256 random bits that exist in clear only in the mail; storage keeps its keyed hash.
//! Every command writes exactly one audit event, the command's own, with its operator (and
//! reason, where one is given).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use crate::{
    audit::{Audit, Event, Kind},
    clock::Clock,
    domain::{Email, Language, RealmId, StaffRole},
    keys::SecretHasher,
    notify::{messages, Notifier},
    passwords::{PasswordError, Passwords},
    realm::{Realm, Realms},
    session::random_token,
    storage::{
        accounts,
        staff::{self, StaffMember},
        staff_invitations::{self, Enrolled, Invitation, NewInvitation, NewMember},
        Conflict, Db, StoreError,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("{0} is not a staff realm (it has no [staff] section)")]
    NotStaffRealm(RealmId),
    #[error("{caisse} is not a caisse whose console names {realm} as its staff realm")]
    NotServed { caisse: RealmId, realm: RealmId },
    #[error("give at least one caisse")]
    NoCaisse,
    #[error("{0} is staff already; nothing written")]
    AlreadyStaff(Email),
    #[error("{0} has an account in this realm that is not staff; nothing written")]
    EmailTaken(Email),
    #[error("no staff member {0} in this realm")]
    Unknown(Email),
    #[error(
        "{0} has finished the enrolment; a new invitation (a lost passkey) removes their \
         passkeys and needs a --reason"
    )]
    Enrolled(Email),
    #[error("password hashing: {0}")]
    Hashing(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who runs a command, and why when they said so.
#[derive(Clone, Copy, Debug)]
pub struct By<'a> {
    pub operator: &'a str,
    pub reason: Option<&'a str>,
}

impl By<'_> {
    fn note(self, event: Event) -> Event {
        let event = event.operator(self.operator);
        match self.reason {
            Some(reason) => event.reason(reason),
            None => event,
        }
    }
}

/// An invitation just sent: where its link leads and until when.
#[derive(Debug)]
pub struct Invited {
    pub account_id: String,
    pub expires_at: i64,
    /// Whether the mail went out (else it is logged, and `staff invite` sends a new one).
    pub mailed: bool,
}

/// A staff member with what `staff list` shows besides: whether the enrolment is finished,
/// and the end of the open invitation.
#[derive(Debug)]
pub struct Listed {
    pub member: StaffMember,
    pub enrolled: bool,
    pub invitation_expires_at: Option<i64>,
}

/// The staff of every staff realm; built once, in `AppState`.
#[derive(Clone)]
pub struct StaffAccounts {
    db: Db,
    hasher: SecretHasher,
    clock: Clock,
    audit: Audit,
    notifier: Notifier,
    passwords: Passwords,
    realms: Realms,
    public_url: String,
}

/// What [`StaffAccounts`] is built from.
pub struct Parts<'a> {
    pub db: &'a Db,
    pub hasher: &'a SecretHasher,
    pub clock: &'a Clock,
    pub audit: &'a Audit,
    pub notifier: &'a Notifier,
    pub passwords: &'a Passwords,
    pub realms: &'a Realms,
    pub public_url: &'a url::Url,
}

/// The keyed hash of an invitation's token, as storage keeps it.
pub fn token_hash(hasher: &SecretHasher, token: &str) -> String {
    hasher.hash(&format!("staff-invitation:{token}"))
}

impl StaffAccounts {
    pub fn new(p: Parts<'_>) -> Self {
        StaffAccounts {
            db: p.db.clone(),
            hasher: p.hasher.clone(),
            clock: p.clock.clone(),
            audit: p.audit.clone(),
            notifier: p.notifier.clone(),
            passwords: p.passwords.clone(),
            realms: p.realms.clone(),
            public_url: p.public_url.as_str().trim_end_matches('/').to_owned(),
        }
    }

    /// The staff realm's rules, or the error that says it is none.
    fn staff_realm<'r>(
        &self,
        realm: &'r Realm,
    ) -> Result<&'r crate::realm::StaffRules, StaffError> {
        realm
            .staff
            .as_ref()
            .ok_or_else(|| StaffError::NotStaffRealm(realm.id.clone()))
    }

    /// Each caisse must be loaded and name this realm as its console's staff realm; sorted,
    /// each once.
    fn caisses(&self, realm: &Realm, caisses: &[RealmId]) -> Result<Vec<RealmId>, StaffError> {
        if caisses.is_empty() {
            return Err(StaffError::NoCaisse);
        }
        let mut checked = Vec::with_capacity(caisses.len());
        for caisse in caisses {
            let served = self
                .realms
                .get(caisse)
                .and_then(|c| c.console.as_ref())
                .is_some_and(|c| c.staff_realm == realm.id);
            if !served {
                return Err(StaffError::NotServed {
                    caisse: caisse.clone(),
                    realm: realm.id.clone(),
                });
            }
            checked.push(caisse.clone());
        }
        checked.sort();
        checked.dedup();
        Ok(checked)
    }

    /// A new staff member: the waiting account, its role and caisses, and the invitation
    /// mail, in `language` (the realm's default when it offers no such language).
    pub async fn add(
        &self,
        realm: &Realm,
        email: &Email,
        role: StaffRole,
        caisses: &[RealmId],
        language: Option<Language>,
        by: By<'_>,
    ) -> Result<Invited, StaffError> {
        let rules = self.staff_realm(realm)?;
        let caisses = self.caisses(realm, caisses)?;
        if let Some(account) = accounts::by_email(&self.db, &realm.id, email).await? {
            return Err(
                match staff::by_account(&self.db, &realm.id, &account.id).await? {
                    Some(_) => StaffError::AlreadyStaff(email.clone()),
                    None => StaffError::EmailTaken(email.clone()),
                },
            );
        }
        let language = language
            .filter(|l| realm.offers(*l))
            .unwrap_or(realm.default_language);
        // Nobody knows this password: the account's own is chosen at enrolment.
        let unknown = self
            .passwords
            .hash(SecretString::from(random_token()))
            .await?;
        let (token, invitation_id, now, expires_at) = self.new_token(rules.invitation);
        let hash = token_hash(&self.hasher, &token);
        let new = NewMember {
            realm: &realm.id,
            email,
            language,
            password_hash: &unknown,
            role,
            caisses: &caisses,
            by: by.operator,
        };
        let invitation = NewInvitation {
            id: &invitation_id,
            token_hash: &hash,
            expires_at,
        };
        let account_id = match staff_invitations::add_member(&self.db, &new, &invitation, now).await
        {
            Ok(id) => id,
            // Added meanwhile by another command.
            Err(StoreError::Conflict(Conflict::EmailTaken)) => {
                return Err(StaffError::AlreadyStaff(email.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let event = Event::new(Kind::StaffAdded, &realm.id)
            .account(&account_id)
            .detail(json!({
                "role": role.as_str(),
                "caisses": caisses.iter().map(RealmId::as_str).collect::<Vec<_>>(),
                "invitation_expires_at": expires_at,
            }));
        self.audit.record(by.note(event)).await;
        let mailed = self
            .send(realm, email, language, &token, rules.invitation)
            .await;
        Ok(Invited {
            account_id,
            expires_at,
            mailed,
        })
    }

    /// A new link for a member who has not finished the enrolment; the earlier one stops
    /// working.
    pub async fn invite(
        &self,
        realm: &Realm,
        email: &Email,
        by: By<'_>,
    ) -> Result<Invited, StaffError> {
        let rules = self.staff_realm(realm)?;
        let (account, _) = self.member(realm, email).await?;
        // A member who finished starts again only for a reason (a lost passkey): their
        // passkeys go and they cannot log in until they enrol anew.
        let again = account.status != accounts::AccountStatus::Invited;
        if again && by.reason.is_none() {
            return Err(StaffError::Enrolled(email.clone()));
        }
        let (token, invitation_id, now, expires_at) = self.new_token(rules.invitation);
        let hash = token_hash(&self.hasher, &token);
        let invitation = NewInvitation {
            id: &invitation_id,
            token_hash: &hash,
            expires_at,
        };
        let detail = if again {
            let removed =
                staff_invitations::reinvite(&self.db, &realm.id, &account.id, &invitation, now)
                    .await?;
            json!({ "invitation_expires_at": expires_at, "enrolment_again": true, "passkeys_removed": removed })
        } else {
            staff_invitations::invite(&self.db, &realm.id, &account.id, &invitation, now).await?;
            json!({ "invitation_expires_at": expires_at })
        };
        let event = Event::new(Kind::StaffInvited, &realm.id)
            .account(&account.id)
            .detail(detail);
        self.audit.record(by.note(event)).await;
        let mailed = self
            .send(realm, email, account.language, &token, rules.invitation)
            .await;
        Ok(Invited {
            account_id: account.id,
            expires_at,
            mailed,
        })
    }

    /// A new role or new caisses (or both) for a member; what is not given stays.
    pub async fn set(
        &self,
        realm: &Realm,
        email: &Email,
        role: Option<StaffRole>,
        caisses: Option<&[RealmId]>,
        by: By<'_>,
    ) -> Result<StaffMember, StaffError> {
        self.staff_realm(realm)?;
        let caisses = caisses.map(|c| self.caisses(realm, c)).transpose()?;
        let (account, member) = self.member(realm, email).await?;
        let role = role.unwrap_or(member.role);
        let caisses = caisses.unwrap_or_else(|| member.caisses.clone());
        let now = self.clock.unix();
        staff::set(
            &self.db,
            &realm.id,
            &account.id,
            role,
            &caisses,
            by.operator,
            now,
        )
        .await?;
        let names = |c: &[RealmId]| c.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>();
        let event = Event::new(Kind::StaffChanged, &realm.id)
            .account(&account.id)
            .detail(json!({
                "role": { "from": member.role.as_str(), "to": role.as_str() },
                "caisses": { "from": names(&member.caisses), "to": names(&caisses) },
            }));
        self.audit.record(by.note(event)).await;
        staff::by_account(&self.db, &realm.id, &account.id)
            .await?
            .ok_or_else(|| StaffError::Unknown(email.clone()))
    }

    /// Takes the staff role away: no console opens for the account any more, and its open
    /// invitation stops working. The account stays (its passkey login still works, to no
    /// console), for the audit trail.
    pub async fn remove(&self, realm: &Realm, email: &Email, by: By<'_>) -> Result<(), StaffError> {
        self.staff_realm(realm)?;
        let (account, member) = self.member(realm, email).await?;
        let now = self.clock.unix();
        let revoked = staff_invitations::revoke(&self.db, &realm.id, &account.id, now).await?;
        staff::remove(&self.db, &realm.id, &account.id).await?;
        let caisses: Vec<&str> = member.caisses.iter().map(RealmId::as_str).collect();
        let event = Event::new(Kind::StaffRemoved, &realm.id)
            .account(&account.id)
            .detail(json!({
                "role": member.role.as_str(),
                "caisses": caisses,
                "invitations_revoked": revoked,
            }));
        self.audit.record(by.note(event)).await;
        Ok(())
    }

    /// Every staff member of the realm, by address.
    pub async fn list(&self, realm: &Realm) -> Result<Vec<Listed>, StaffError> {
        self.staff_realm(realm)?;
        let now = self.clock.unix();
        let mut listed = Vec::new();
        for member in staff::list(&self.db, &realm.id).await? {
            let account = accounts::by_id(&self.db, &realm.id, &member.account_id).await?;
            let enrolled = account.is_some_and(|a| a.status != accounts::AccountStatus::Invited);
            let open =
                staff_invitations::open_of(&self.db, &realm.id, &member.account_id, now).await?;
            listed.push(Listed {
                member,
                enrolled,
                invitation_expires_at: open.map(|i| i.expires_at),
            });
        }
        Ok(listed)
    }

    /// The invitation whose link carries `token`, while it works.
    pub async fn invitation(
        &self,
        realm: &Realm,
        token: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        // Real tokens are 43 characters; anything else is looked up by nobody.
        if realm.staff.is_none() || token.is_empty() || token.len() > 64 {
            return Ok(None);
        }
        let hash = token_hash(&self.hasher, token);
        staff_invitations::usable(&self.db, &realm.id, &hash, self.clock.unix()).await
    }

    /// The end of an enrolment whose passkey is registered: the invitation spent, the
    /// account active, one audit event. [`Conflict::CodeSpent`] when the link stopped
    /// working meanwhile.
    pub async fn enrolled(
        &self,
        realm: &Realm,
        invitation: &Invitation,
        enrolled: &Enrolled<'_>,
        passkey: &str,
        event: Event,
    ) -> Result<(), StoreError> {
        let now = self.clock.unix();
        staff_invitations::enrol(
            &self.db,
            &realm.id,
            &invitation.id,
            &invitation.account_id,
            enrolled,
            now,
        )
        .await?;
        let event = event
            .account(&invitation.account_id)
            .detail(json!({ "passkey": passkey }));
        self.audit.record(event).await;
        Ok(())
    }

    /// The account and staff member behind an address of the staff realm.
    async fn member(
        &self,
        realm: &Realm,
        email: &Email,
    ) -> Result<(accounts::Account, StaffMember), StaffError> {
        let unknown = || StaffError::Unknown(email.clone());
        let account = accounts::by_email(&self.db, &realm.id, email)
            .await?
            .ok_or_else(unknown)?;
        let member = staff::by_account(&self.db, &realm.id, &account.id)
            .await?
            .ok_or_else(unknown)?;
        Ok((account, member))
    }

    /// A fresh token (256 random bits), an invitation id, now and the invitation's end.
    fn new_token(&self, valid: Duration) -> (String, String, i64, i64) {
        let now = self.clock.unix();
        let seconds = i64::try_from(valid.as_secs()).unwrap_or(i64::MAX);
        (
            random_token(),
            uuid::Uuid::new_v4().to_string(),
            now,
            now.saturating_add(seconds),
        )
    }

    /// Sends the invitation mail; false when it could not (logged without the link, which
    /// holds the token; `staff invite` sends a new one).
    async fn send(
        &self,
        realm: &Realm,
        to: &Email,
        lang: Language,
        token: &str,
        valid: Duration,
    ) -> bool {
        let link = format!("{}/{}/staff/enrol/{token}", self.public_url, realm.id);
        let hours = valid.as_secs() / 3600;
        let mail = messages::staff_invitation(lang, realm, to, &link, hours);
        match self.notifier.send_mail(mail).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(realm = %realm.id, error = %e, "the staff invitation mail was not sent");
                false
            }
        }
    }
}
