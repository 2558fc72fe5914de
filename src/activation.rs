//! Activation codes: issued by support for a person of the register, printed on the letter,
//! spent once by the enrolment that opens the person's account.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{
    audit::{Audit, Event, Kind},
    clock::Clock,
    domain::{ActivationCode, AhvNumber},
    keys::SecretHasher,
    realm::Realm,
    storage::Db,
    storage::{accounts, activation_codes, letter_requests, persons, persons::Person, StoreError},
};

/// A code just issued: the only moment it exists in clear.
pub struct IssuedCode {
    pub code: ActivationCode,
    pub expires_at: DateTime<Utc>,
    pub person: Person,
    /// The letter request (a lost phone) this code answers; `None` for an enrolment.
    pub request: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("no person with this AHV number in the register of {0}")]
    UnknownPerson(String),
    #[error("this person already has an account")]
    AlreadyEnrolled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who at the caisse's support desk asked for a code, and why: named in its audit event.
#[derive(Clone, Copy, Debug)]
pub struct By<'a> {
    pub operator: &'a str,
    pub reason: &'a str,
}

impl By<'_> {
    fn note(by: Option<By<'_>>, event: Event) -> Event {
        match by {
            Some(by) => event.operator(by.operator).reason(by.reason),
            None => event,
        }
    }
}

/// Activation codes as a service: what issuing, revoking and recognising a code needs.
#[derive(Clone)]
pub struct Activation {
    db: Db,
    secret_hasher: SecretHasher,
    clock: Clock,
    audit: Audit,
}

impl Activation {
    pub fn new(db: &Db, hasher: &SecretHasher, clock: &Clock, audit: &Audit) -> Self {
        Activation {
            db: db.clone(),
            secret_hasher: hasher.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
        }
    }

    /// Issues a new code for a person of the register; their earlier unused code stops working.
    pub async fn issue(
        &self,
        realm: &Realm,
        ahv: &AhvNumber,
    ) -> Result<IssuedCode, ActivationError> {
        self.issue_by(realm, ahv, None).await
    }

    /// As [`Activation::issue`], the audit event naming the support operator and reason.
    pub async fn issue_by(
        &self,
        realm: &Realm,
        ahv: &AhvNumber,
        by: Option<By<'_>>,
    ) -> Result<IssuedCode, ActivationError> {
        let person = persons::by_ahv(&self.db, &realm.id, ahv)
            .await?
            .ok_or_else(|| ActivationError::UnknownPerson(realm.id.to_string()))?;
        if accounts::by_ahv(&self.db, &realm.id, ahv).await?.is_some() {
            return Err(ActivationError::AlreadyEnrolled);
        }
        let code = ActivationCode::generate();
        let (now, expires_at) = self.validity(realm);
        activation_codes::issue(
            &self.db,
            &realm.id,
            ahv,
            &self.hash(&code),
            now.timestamp(),
            expires_at.timestamp(),
        )
        .await?;
        let event = Event::new(Kind::ActivationCodeIssued, &realm.id)
            .detail(json!({ "ahv": ahv.masked(), "expires_at": expires_at.timestamp() }));
        self.audit.record(By::note(by, event)).await;
        Ok(IssuedCode {
            code,
            expires_at,
            person,
            request: None,
        })
    }

    /// Issues new codes for many persons of the register in one transaction, as
    /// [`Activation::issue`] does for one: what a run of letters does. Persons who no longer
    /// wait for a code (an account was opened, or they left the register, since the list was
    /// read) get none and are left out of the answer.
    pub async fn issue_many(
        &self,
        realm: &Realm,
        persons: Vec<Person>,
    ) -> Result<Vec<IssuedCode>, StoreError> {
        let (now, expires_at) = self.validity(realm);
        let codes: Vec<ActivationCode> =
            persons.iter().map(|_| ActivationCode::generate()).collect();
        let events: Vec<Event> = persons
            .iter()
            .map(|p| {
                Event::new(Kind::ActivationCodeIssued, &realm.id)
                    .detail(json!({ "ahv": p.ahv.masked(), "expires_at": expires_at.timestamp() }))
            })
            .collect();
        let rows: Vec<activation_codes::NewCode<'_>> = persons
            .iter()
            .zip(&codes)
            .zip(&events)
            .map(|((person, code), event)| activation_codes::NewCode {
                ahv: &person.ahv,
                code_hash: self.hash(code),
                event: self.audit.row(event),
            })
            .collect();
        let stored = activation_codes::issue_many(
            &self.db,
            &realm.id,
            &rows,
            now.timestamp(),
            expires_at.timestamp(),
        )
        .await?;
        drop(rows);
        // `stored` is in order, so one pass keeps exactly the stored ones.
        let mut stored = stored.into_iter().peekable();
        Ok(persons
            .into_iter()
            .zip(codes)
            .enumerate()
            .filter(|(i, _)| stored.next_if_eq(i).is_some())
            .map(|(_, (person, code))| IssuedCode {
                code,
                expires_at,
                person,
                request: None,
            })
            .collect())
    }

    /// Issues the code of a letter a person who lost their phone asked for: their earlier
    /// unused code stops working, and the request names the new one, so that the code
    /// registers a new mobile number instead of opening an account.
    pub async fn issue_for_request(
        &self,
        realm: &Realm,
        waiting: letter_requests::WaitingLetter,
    ) -> Result<IssuedCode, StoreError> {
        self.issue_for_request_by(realm, waiting, None).await
    }

    /// As [`Activation::issue_for_request`], the audit event naming the support operator and
    /// reason.
    pub async fn issue_for_request_by(
        &self,
        realm: &Realm,
        waiting: letter_requests::WaitingLetter,
        by: Option<By<'_>>,
    ) -> Result<IssuedCode, StoreError> {
        let code = ActivationCode::generate();
        let (now, expires_at) = self.validity(realm);
        let ahv = &waiting.person.ahv;
        letter_requests::issue_code(
            &self.db,
            &realm.id,
            &waiting.id,
            ahv,
            &self.hash(&code),
            now.timestamp(),
            expires_at.timestamp(),
        )
        .await?;
        let event = Event::new(Kind::ActivationCodeIssued, &realm.id)
            .account(&waiting.account_id)
            .detail(json!({
                "ahv": ahv.masked(),
                "expires_at": expires_at.timestamp(),
                "for": "lost_phone",
            }));
        self.audit.record(By::note(by, event)).await;
        Ok(IssuedCode {
            code,
            expires_at,
            person: waiting.person,
            request: Some(waiting.id),
        })
    }

    /// Now, and when a code issued now expires.
    fn validity(&self, realm: &Realm) -> (DateTime<Utc>, DateTime<Utc>) {
        let now = self.clock.now();
        let validity = chrono::Duration::from_std(realm.enrolment.activation_code_validity)
            .unwrap_or(chrono::Duration::days(30));
        (now, now + validity)
    }

    /// Revokes the person's unused code; returns how many codes stopped working (0 or 1).
    pub async fn revoke(&self, realm: &Realm, ahv: &AhvNumber) -> Result<u64, StoreError> {
        self.revoke_by(realm, ahv, None).await
    }

    /// As [`Activation::revoke`], the audit event naming the support operator and reason.
    pub async fn revoke_by(
        &self,
        realm: &Realm,
        ahv: &AhvNumber,
        by: Option<By<'_>>,
    ) -> Result<u64, StoreError> {
        let revoked = activation_codes::revoke(&self.db, &realm.id, ahv, self.clock.unix()).await?;
        if revoked > 0 {
            let event = Event::new(Kind::ActivationCodeRevoked, &realm.id)
                .detail(json!({ "ahv": ahv.masked() }));
            self.audit.record(By::note(by, event)).await;
        }
        Ok(revoked)
    }

    /// The stored form of a code: a keyed hash, so a copy of the table gives nothing to try.
    pub fn hash(&self, code: &ActivationCode) -> String {
        self.secret_hasher
            .hash(&format!("activation:{}", code.as_str()))
    }
}
