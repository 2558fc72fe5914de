//! The console's pages: the search, a person's page and the staff's actions.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::Desk;
use crate::{
    app::AppState,
    domain::{AhvNumber, Email, StaffRole},
    flows::account::swiss_time,
    http::{
        page::csrf_forms,
        params::{Form, FormRejection, Query},
        Page, PageError,
    },
    storage::{
        accounts::{self, Account, AccountStatus},
        activation_codes,
        audit::{self, StoredEvent},
        lookup::{self, Found, Lookup, MAX_FOUND},
    },
    support::{Summary, Who},
};

/// The events a person's page and the staff's action list show.
const EVENTS_SHOWN: i64 = 30;

/// What the search field may hold, read once: an AHV number in any formatting, an e-mail
/// address, a birth date (`14.03.1952` or `1952-03-14`), or up to three words of a name.
pub fn parse_lookup(raw: &str) -> Option<Lookup> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return None;
    }
    if text.contains('@') {
        return text.parse::<Email>().ok().map(Lookup::Email);
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if digits >= 10
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ' ' | '-'))
    {
        let plain: String = text.chars().filter(|c| *c != '-').collect();
        return plain.parse::<AhvNumber>().ok().map(Lookup::Ahv);
    }
    for format in ["%d.%m.%Y", "%Y-%m-%d"] {
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, format) {
            return Some(Lookup::BirthDate(date));
        }
    }
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .take(3)
        .map(str::to_lowercase)
        .collect();
    (!words.is_empty() && digits == 0).then_some(Lookup::Name(words))
}

/// The opaque name of a person's page: `p-<register id>`, or `a-<account id>` for an account
/// whose person left the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handle {
    Person(String),
    Account(String),
}

impl Handle {
    pub fn parse(raw: &str) -> Option<Handle> {
        let ok = |id: &str| {
            (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        match raw.split_once('-')? {
            ("p", id) if ok(id) => Some(Handle::Person(id.to_owned())),
            ("a", id) if ok(id) => Some(Handle::Account(id.to_owned())),
            _ => None,
        }
    }

    fn of(found: &Found) -> Option<String> {
        match (&found.person_id, &found.account_id) {
            (Some(p), _) => Some(format!("p-{p}")),
            (None, Some(a)) => Some(format!("a-{a}")),
            _ => None,
        }
    }
}

/// A person as the console finds them: their register entry, their account, or both.
pub struct Dossier {
    pub handle: String,
    pub person: Option<crate::storage::persons::Person>,
    pub account: Option<Account>,
}

impl Dossier {
    /// Whom support acts on: the AHV number, or the address of an account without one.
    pub fn who(&self) -> Option<Who> {
        if let Some(p) = &self.person {
            return Some(Who::Ahv(p.ahv.clone()));
        }
        let account = self.account.as_ref()?;
        match &account.ahv {
            Some(ahv) => Some(Who::Ahv(ahv.clone())),
            None => Some(Who::Email(account.email.clone())),
        }
    }

    pub async fn find(state: &AppState, page: &Page, raw: &str) -> Result<Dossier, PageError> {
        let missing = || PageError::new(StatusCode::NOT_FOUND, "console-no-person");
        let realm = &page.realm.id;
        let (person, account) = match Handle::parse(raw).ok_or_else(missing)? {
            Handle::Person(id) => {
                let person = lookup::person_by_id(&state.db, realm, &id)
                    .await?
                    .ok_or_else(missing)?;
                let account = accounts::by_ahv(&state.db, realm, &person.ahv).await?;
                (Some(person), account)
            }
            Handle::Account(id) => {
                let account = accounts::by_id(&state.db, realm, &id)
                    .await?
                    .ok_or_else(missing)?;
                (None, Some(account))
            }
        };
        Ok(Dossier {
            handle: raw.to_owned(),
            person,
            account,
        })
    }
}

#[derive(Serialize)]
struct ResultLine {
    href: String,
    name: String,
    ahv: String,
    birth_date: String,
    email: String,
    state: &'static str,
}

fn state_key(status: Option<&str>) -> &'static str {
    match status {
        None => "console-state-none",
        Some("active") => "console-state-active",
        Some("locked") => "console-state-locked",
        Some("disabled") => "console-state-disabled",
        Some(_) => "console-state-other",
    }
}

fn swiss_date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d")
        .map(crate::letter::swiss_format)
        .unwrap_or_default()
}

/// The search field.
pub async fn home(State(state): State<AppState>, page: Page) -> Result<Response, PageError> {
    let desk = Desk::of(&state, &page).await?;
    results_page(&state, page, &desk, String::new()).await
}

csrf_forms! {
    pub struct SearchForm {
        #[serde(default)]
        q: String,
    }
}

/// The search's results. Posted, so that what was typed (an AHV number) stays out of
/// addresses, access logs and the browser's history.
pub async fn search(
    State(state): State<AppState>,
    page: Page,
    form: Result<Form<SearchForm>, FormRejection>,
) -> Result<Response, PageError> {
    let desk = Desk::of(&state, &page).await?;
    let form = page.read(form)?;
    results_page(&state, page, &desk, form.q).await
}

async fn results_page(
    state: &AppState,
    mut page: Page,
    desk: &Desk,
    query: String,
) -> Result<Response, PageError> {
    let base = format!("/{}/console", page.realm.id);
    let (results, more, unreadable) = match parse_lookup(&query) {
        Some(lookup) => {
            let mut found = lookup::search(&state.db, &page.realm.id, &lookup).await?;
            let more = found.len() > MAX_FOUND;
            found.truncate(MAX_FOUND);
            let lines: Vec<ResultLine> = found
                .iter()
                .filter_map(|f| {
                    Some(ResultLine {
                        href: format!("{base}/people/{}", Handle::of(f)?),
                        name: format!("{} {}", f.family_name, f.given_name),
                        ahv: f.ahv.clone().unwrap_or_default(),
                        birth_date: f.birth_date.as_deref().map(swiss_date).unwrap_or_default(),
                        email: f.email.clone().unwrap_or_default(),
                        state: state_key(f.status.as_deref()),
                    })
                })
                .collect();
            (Some(lines), more, false)
        }
        None => (None, false, !query.trim().is_empty()),
    };
    let csrf = page.csrf();
    let console = chrome(desk, &page.realm.id, csrf);
    page.at(base.clone());
    page.render(
        if unreadable {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "console/home.html",
        context! {
            console,
            query,
            results,
            more,
            max_found => MAX_FOUND,
            unreadable,
        },
    )
}

/// What every console page shows around its content: who is logged in, the links, logout.
#[derive(Serialize)]
pub struct Chrome {
    pub base: String,
    pub email: String,
    pub role: &'static str,
    pub supervisor: bool,
    pub csrf: String,
}

pub fn chrome(desk: &Desk, caisse: &crate::domain::RealmId, csrf: String) -> Chrome {
    Chrome {
        base: format!("/{caisse}/console"),
        email: desk.member.email.clone(),
        role: desk.member.role.as_str(),
        supervisor: desk.member.role >= StaffRole::Supervisor,
        csrf,
    }
}

#[derive(Serialize)]
pub struct EventLine {
    at: String,
    kind: String,
    /// The event in plain words (a locale key), as the person's own page says it.
    sentence: &'static str,
    operator: String,
    reason: String,
    person: Option<String>,
}

fn event_lines(events: Vec<StoredEvent>, base: &str) -> Vec<EventLine> {
    events
        .into_iter()
        .map(|e| EventLine {
            sentence: serde_json::from_str(&e.detail)
                .ok()
                .and_then(|d| crate::flows::account::events::sentence_of(&e.kind, &d))
                .unwrap_or("event-other"),
            at: swiss_time(e.at),
            person: e.account_id.map(|a| format!("{base}/people/a-{a}")),
            kind: e.kind,
            operator: e.operator.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    all: Option<String>,
}

/// The staff member's own recent actions; with `?all=1`, a supervisor's view of every
/// staff member's.
pub async fn audit(
    State(state): State<AppState>,
    mut page: Page,
    q: Result<Query<AuditQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let desk = Desk::of(&state, &page).await?;
    let Query(q) = q.map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "error-bad-request"))?;
    let all = q.all.is_some();
    if all {
        desk.require(StaffRole::Supervisor)?;
    }
    let operator = (!all).then(|| desk.operator().to_owned());
    let events =
        audit::recent_by_operator(&state.db, &page.realm.id, operator.as_deref(), 100).await?;
    let csrf = page.csrf();
    let console = chrome(&desk, &page.realm.id, csrf);
    let events = event_lines(events, &console.base);
    page.render(
        StatusCode::OK,
        "console/audit.html",
        context! { console, events, all },
    )
}

/// An action the person's page offers, by the role of the staff member and the account's
/// state.
#[derive(Serialize)]
struct Offer {
    href: String,
    label: &'static str,
    name: Option<String>,
}

/// A person's page: register data, account state, factors, codes and letters, sessions,
/// applications, logins and the account's events; never a hash, code or token.
pub async fn person(
    State(state): State<AppState>,
    mut page: Page,
    Path((_, handle)): Path<(String, String)>,
    q: Result<Query<DoneQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let desk = Desk::of(&state, &page).await?;
    let done = q
        .ok()
        .and_then(|Query(q)| q.done)
        .and_then(|d| super::act::done_label(&d));
    let dossier = Dossier::find(&state, &page, &handle).await?;
    let realm = page.realm.clone();
    let summary: Option<Summary> = match (&dossier.account, dossier.who()) {
        (Some(_), Some(who)) => Some(state.support.show(&realm, &who).await?),
        _ => None,
    };
    let open_code = match &dossier.person {
        Some(p) if dossier.account.is_none() => {
            activation_codes::open_code_expiry(&state.db, &realm.id, &p.ahv, state.clock.unix())
                .await?
        }
        _ => summary.as_ref().and_then(|s| s.open_code_expires_at),
    };
    let events = match &dossier.account {
        Some(a) => audit::recent_of_account(&state.db, &realm.id, &a.id, EVENTS_SHOWN).await?,
        None => Vec::new(),
    };
    let csrf = page.csrf();
    let console = chrome(&desk, &realm.id, csrf);
    let here = format!("{}/people/{}", console.base, dossier.handle);
    let offers = super::act::offers(&desk, &dossier, summary.as_ref())
        .into_iter()
        .map(|(action, label, name)| Offer {
            href: format!("{here}/{action}"),
            label,
            name,
        })
        .collect::<Vec<_>>();
    let register = dossier.person.as_ref().map(|p| {
        context! {
            ahv => p.ahv.as_str(),
            given_name => p.given_name,
            family_name => p.family_name,
            birth_date => crate::letter::swiss_format(p.birth_date),
            language => p.language.code(),
            address => [
                p.address.street.clone(),
                p.address.postal_code.clone().map(|c| format!("{c} {}", p.address.locality.clone().unwrap_or_default())),
                p.address.country.clone(),
            ].into_iter().flatten().collect::<Vec<_>>(),
        }
    });
    let time = |t: Option<i64>| t.map(swiss_time);
    let account = summary.as_ref().map(|s| {
        let status = dossier.account.as_ref().map(|a| a.status);
        context! {
            state => match status {
                Some(AccountStatus::Active) => "console-state-active",
                Some(AccountStatus::Locked) => "console-state-locked",
                Some(AccountStatus::Disabled) => "console-state-disabled",
                // Only staff accounts wait for their enrolment; never one of a caisse.
                Some(AccountStatus::Invited) => "console-state-other",
                None => "console-state-none",
            },
            lock_reason => s.lock_reason.map(|r| if r == "by support" { "console-lock-by-support" } else { "console-lock-passwords" }),
            locked_until => time(s.locked_until),
            may_log_in => s.may_log_in,
            given_name => s.given_name,
            family_name => s.family_name,
            language => s.language,
            email => s.email,
            email_verified_at => time(s.email_verified_at),
            phone => s.phone,
            phone_verified_at => time(s.phone_verified_at),
            phone_reset_at => time(s.phone_reset_at),
            app => s.app,
            passkeys => s.passkeys.iter().map(|k| context! {
                name => k.name, created => swiss_time(k.created_at), last_used => time(k.last_used_at),
            }).collect::<Vec<_>>(),
            recovery_codes_left => s.recovery_codes_left,
            letters_waiting => s.letters_waiting.iter().map(|t| swiss_time(*t)).collect::<Vec<_>>(),
            sessions => s.sessions,
            applications => s.applications.iter().map(|a| context! {
                client => a.client, first => swiss_time(a.first_at), last => swiss_time(a.last_at),
            }).collect::<Vec<_>>(),
            last_logins => s.last_logins.iter().map(|l| context! {
                at => swiss_time(l.at), client => l.client, address => l.address,
            }).collect::<Vec<_>>(),
            last_failures => s.last_failures.iter().map(|l| context! {
                at => swiss_time(l.at), address => l.address,
            }).collect::<Vec<_>>(),
            created => swiss_time(s.created_at),
        }
    });
    page.render(
        StatusCode::OK,
        "console/person.html",
        context! {
            console,
            register,
            account,
            open_code => time(open_code),
            events => event_lines(events, &format!("/{}/console", realm.id)),
            offers,
            done,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_field_reads_what_a_caller_says() {
        for ahv in [
            "756.1234.5678.97",
            "7561234567897",
            "756 1234 5678 97",
            "756-1234-5678-97",
        ] {
            assert!(matches!(parse_lookup(ahv), Some(Lookup::Ahv(_))), "{ahv}");
        }
        // Thirteen digits with a wrong check digit: no AHV number, and no name either.
        assert!(parse_lookup("756.1234.5678.98").is_none());
        assert!(matches!(
            parse_lookup(" Anna@Example.ch "),
            Some(Lookup::Email(_))
        ));
        for date in ["14.03.1952", "1952-03-14"] {
            let Some(Lookup::BirthDate(d)) = parse_lookup(date) else {
                panic!("{date}");
            };
            assert_eq!(d.to_string(), "1952-03-14");
        }
        let Some(Lookup::Name(words)) = parse_lookup("Müller,  Anna Maria Luisa") else {
            panic!("a name");
        };
        assert_eq!(words, ["müller", "anna", "maria"]);
        for nothing in ["", "   ", "12", "31.02.1952x"] {
            assert!(parse_lookup(nothing).is_none(), "{nothing:?}");
        }
    }

    #[test]
    fn page_handles_are_opaque_ids_and_nothing_else() {
        assert_eq!(
            Handle::parse("p-2f0c9a7e-1b"),
            Some(Handle::Person("2f0c9a7e-1b".into()))
        );
        assert_eq!(Handle::parse("a-x1"), Some(Handle::Account("x1".into())));
        for bad in ["", "p-", "x-1", "p-../x", "p-a b", "756.9217.0769.85"] {
            assert_eq!(Handle::parse(bad), None, "{bad:?}");
        }
    }
}
