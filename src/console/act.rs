//! The console's actions on a person's account: each asks for a reason, goes through
//! `support::Support` (one audit event with the staff member and the reason, a mail to the
//! person) and comes back to the person's page saying what was done.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use minijinja::context;
use serde::Deserialize;

use super::{
    pages::{chrome, Dossier},
    Desk,
};
use crate::{
    app::AppState,
    domain::StaffRole,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection, Query},
        Page, PageError,
    },
    letter::{swiss_date, ActivationLetter},
    storage::accounts::{Account, AccountStatus},
    support::{Action, Actor, Delivery, Factor, Letter, Reason, SupportError},
};

/// What the console can do: an action on the account, or a new activation letter.
#[derive(Clone, Debug)]
enum Step {
    Account(Action),
    Letter,
}

impl Step {
    /// The step named in the path (`passkey` names the passkey to remove).
    fn parse(name: &str, passkey: Option<&str>) -> Option<Step> {
        Some(Step::Account(match name {
            "letter" => return Some(Step::Letter),
            "lock" => Action::Lock,
            "unlock" => Action::Unlock,
            "disable" => Action::Disable,
            "enable" => Action::Enable,
            "reset-phone" => Action::ResetPhone,
            "end-sessions" => Action::EndSessions,
            "close" => Action::Close,
            "remove-app" => Action::RemoveFactor(Factor::App),
            "remove-recovery-codes" => Action::RemoveFactor(Factor::RecoveryCodes),
            "remove-passkey" => {
                let id = passkey.filter(|p| (1..=200).contains(&p.len()))?;
                Action::RemoveFactor(Factor::Passkey(id.to_owned()))
            }
            _ => return None,
        }))
    }
}

/// The locale key of a step's title, for the notice of a step done (`?done=`).
pub fn done_label(name: &str) -> Option<&'static str> {
    Step::parse(name, Some("-")).map(|s| s.label())
}

impl Step {
    /// The locale key of its title; its explanation is the same key with `-what`.
    fn label(&self) -> &'static str {
        match self {
            Step::Letter => "console-do-letter",
            Step::Account(action) => match action {
                Action::Lock => "console-do-lock",
                Action::Unlock => "console-do-unlock",
                Action::Disable => "console-do-disable",
                Action::Enable => "console-do-enable",
                Action::ResetPhone => "console-do-reset-phone",
                Action::EndSessions => "console-do-end-sessions",
                Action::Close => "console-do-close",
                Action::RemoveFactor(Factor::App) => "console-do-remove-app",
                Action::RemoveFactor(Factor::RecoveryCodes) => "console-do-remove-recovery-codes",
                Action::RemoveFactor(Factor::Passkey(_)) => "console-do-remove-passkey",
            },
        }
    }

    /// The role it needs: closing, lifting a disable, and lifting a lock that support put
    /// (a suspected fraud) are the supervisor's; a lock after wrong passwords support lifts.
    fn needs(&self, account: Option<&Account>) -> StaffRole {
        match self {
            Step::Account(Action::Close | Action::Enable) => StaffRole::Supervisor,
            Step::Account(Action::Unlock)
                if account.is_some_and(|a| {
                    a.status == AccountStatus::Locked && a.locked_until.is_none()
                }) =>
            {
                StaffRole::Supervisor
            }
            _ => StaffRole::Support,
        }
    }
}

/// The actions the person's page offers this staff member, as (path, label, the passkey's
/// name): only those
/// that apply to the account as it is and that the role allows.
pub fn offers(
    desk: &Desk,
    dossier: &Dossier,
    summary: Option<&crate::support::Summary>,
) -> Vec<(String, &'static str, Option<String>)> {
    let account = dossier.account.as_ref();
    let mut steps: Vec<(String, Step)> = Vec::new();
    let mut add = |path: &str, step: Step| steps.push((path.to_owned(), step));
    match account {
        None => {
            if dossier.person.is_some() {
                add("letter", Step::Letter);
            }
        }
        Some(a) => {
            match a.status {
                AccountStatus::Active => add("lock", Step::Account(Action::Lock)),
                AccountStatus::Locked => add("unlock", Step::Account(Action::Unlock)),
                AccountStatus::Disabled => add("enable", Step::Account(Action::Enable)),
                AccountStatus::Invited => {}
            }
            if a.status != AccountStatus::Disabled {
                add("disable", Step::Account(Action::Disable));
            }
            add("reset-phone", Step::Account(Action::ResetPhone));
            if summary.is_some_and(|s| s.app) {
                add(
                    "remove-app",
                    Step::Account(Action::RemoveFactor(Factor::App)),
                );
            }
            if summary.is_some_and(|s| s.recovery_codes_left > 0) {
                add(
                    "remove-recovery-codes",
                    Step::Account(Action::RemoveFactor(Factor::RecoveryCodes)),
                );
            }
            add("end-sessions", Step::Account(Action::EndSessions));
            if dossier.person.is_some() && a.ahv.is_some() {
                add("letter", Step::Letter);
            }
            add("close", Step::Account(Action::Close));
        }
    }
    let mut out: Vec<(String, &'static str, Option<String>)> = steps
        .into_iter()
        .filter(|(_, step)| desk.member.role >= step.needs(account))
        .map(|(path, step)| (path, step.label(), None))
        .collect();
    for key in summary.map_or(&[][..], |s| &s.passkeys[..]) {
        let id = &key.id;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("passkey", id)
            .finish();
        let path = format!("remove-passkey?{query}");
        out.push((path, "console-do-remove-passkey", Some(key.name.clone())));
    }
    out
}

csrf_forms! {
    pub struct ActForm {
        reason: String,
        #[serde(default)]
        passkey: Option<String>,
        /// For a letter: `queue` (the mailroom) or `now` (a PDF to print here).
        #[serde(default)]
        delivery: Option<String>,
    }
}

#[derive(Deserialize)]
pub struct ActQuery {
    passkey: Option<String>,
}

/// The step of the path, allowed for this staff member on this person; 404 for a step
/// that does not exist, 403 for one the role does not allow.
async fn allowed(
    state: &AppState,
    page: &Page,
    handle: &str,
    action: &str,
    passkey: Option<&str>,
) -> Result<(Desk, Dossier, Step), PageError> {
    let desk = Desk::of(state, page).await?;
    let step = Step::parse(action, passkey)
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "error-not-found"))?;
    let dossier = Dossier::find(state, page, handle).await?;
    desk.require(step.needs(dossier.account.as_ref()))?;
    Ok((desk, dossier, step))
}

fn form_page(
    mut page: Page,
    handle: &str,
    desk: &Desk,
    step: &Step,
    passkey: Option<&str>,
    error: Option<&'static str>,
    reason: &str,
) -> Result<Response, PageError> {
    let csrf = page.csrf();
    let console = chrome(desk, &page.realm.id, csrf);
    let back = format!("{}/people/{handle}", console.base);
    page.render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "console/act.html",
        context! {
            console,
            label => step.label(),
            letter => matches!(step, Step::Letter),
            passkey,
            error,
            reason,
            max_reason => crate::support::MAX_REASON,
            back,
        },
    )
}

/// The action's page: what it does, and the reason to give.
pub async fn show(
    State(state): State<AppState>,
    page: Page,
    Path((_, handle, action)): Path<(String, String, String)>,
    q: Result<Query<ActQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let Query(q) = q.map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "error-bad-request"))?;
    let (desk, _, step) = allowed(&state, &page, &handle, &action, q.passkey.as_deref()).await?;
    form_page(page, &handle, &desk, &step, q.passkey.as_deref(), None, "")
}

/// Does the action with the reason given; back to the person's page, or the letter's PDF.
pub async fn submit(
    State(state): State<AppState>,
    page: Page,
    Path((_, handle, action)): Path<(String, String, String)>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = page.read(form)?;
    let (desk, dossier, step) =
        allowed(&state, &page, &handle, &action, form.passkey.as_deref()).await?;
    let reason = match Reason::parse(&form.reason) {
        Ok(reason) => reason,
        Err(e) => {
            let key = match e {
                SupportError::ReasonTooLong => "console-reason-long",
                _ => "console-reason-empty",
            };
            return form_page(
                page,
                &handle,
                &desk,
                &step,
                form.passkey.as_deref(),
                Some(key),
                &form.reason,
            );
        }
    };
    let who = dossier
        .who()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "console-no-person"))?;
    let actor = Actor {
        operator: desk.operator(),
        reason: &reason,
    };
    let realm = page.realm.clone();
    let done = match step {
        Step::Account(action) => {
            let name = action.name();
            state
                .support
                .act(&realm, &who, actor, action)
                .await
                .map_err(refusal)?;
            name
        }
        Step::Letter => {
            let delivery = match form.delivery.as_deref() {
                Some("now") => Delivery::Now,
                _ => Delivery::Queue,
            };
            let letter = state
                .support
                .new_letter(&realm, &who, actor, delivery)
                .await
                .map_err(refusal)?;
            if let Letter::Issued(issued) = letter {
                return letter_pdf(&state, &realm, &issued).await;
            }
            "letter"
        }
    };
    let to = format!(
        "/{}/console/people/{}?done={done}",
        realm.id, dossier.handle
    );
    Ok(page.redirect(&to))
}

/// The letter of a code issued now, as a PDF download; if it cannot be written, the code is
/// revoked, as the command line does.
async fn letter_pdf(
    state: &AppState,
    realm: &crate::realm::Realm,
    issued: &crate::activation::IssuedCode,
) -> Result<Response, PageError> {
    let link = format!("{}/register", state.config.issuer(&realm.id));
    let today = swiss_date(state.clock.now());
    let letter = ActivationLetter::for_issued(realm, issued, &link, today);
    let pdf = match letter.pdf() {
        Ok(pdf) => pdf,
        Err(e) => {
            state.activation.revoke(realm, &issued.person.ahv).await?;
            return Err(e.into());
        }
    };
    let name = format!(
        "attachment; filename=\"letter-{}.pdf\"",
        issued.person.ahv.as_str().replace('.', "")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        pdf,
    )
        .into_response())
}

/// What the support service refused, as the console's page says it.
fn refusal(e: SupportError) -> PageError {
    match e {
        SupportError::NoAccount(..) | SupportError::NoPerson(_) => {
            PageError::new(StatusCode::NOT_FOUND, "console-no-person")
        }
        SupportError::NotApplicable(why) => {
            tracing::info!(why, "console action does not apply");
            PageError::new(StatusCode::CONFLICT, "console-not-applicable")
        }
        SupportError::EmptyReason | SupportError::EmptyOperator => {
            PageError::new(StatusCode::BAD_REQUEST, "console-reason-empty")
        }
        SupportError::ReasonTooLong => {
            PageError::new(StatusCode::BAD_REQUEST, "console-reason-long")
        }
        SupportError::Store(e) => e.into(),
    }
}
