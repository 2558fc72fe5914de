//! `connect admin staff …`: the support desk's staff, through `staff::StaffAccounts`. Each
//! command that changes something writes its own one audit event (with `--operator`, and
//! `--reason` where given; `remove` requires one); `list` only reads.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::{
    app::AppState,
    domain::{Email, Language, RealmId, StaffRole},
    staff::{By, Listed},
    support::Reason,
};

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Add a staff member: an account of the staff realm that waits for its enrolment, and an
    /// invitation mail with a single-use link (valid the realm's `invitation_hours`).
    Add {
        /// The staff realm (one with a [staff] section).
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
        /// `support` or `supervisor`.
        #[arg(long)]
        role: StaffRole,
        /// The caisses whose console they may open, e.g. AK00,AK01: each must name this realm
        /// as its `[console] staff_realm`.
        #[arg(long = "caisse", value_delimiter = ',', required = true)]
        caisses: Vec<RealmId>,
        /// The language of the invitation mail (default: the realm's).
        #[arg(long)]
        language: Option<Language>,
    },
    /// A new invitation; the earlier link stops working. For a member who finished the
    /// enrolment (a lost passkey), `--reason` is required: their passkeys are removed and they
    /// cannot log in until they enrol again with the new link.
    Invite {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
    },
    /// The staff of the realm: address, role, caisses, whether enrolled.
    List {
        #[arg(long)]
        realm: RealmId,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A new role or new caisses for a member (what is not given stays).
    Set {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: Option<StaffRole>,
        #[arg(long = "caisse", value_delimiter = ',')]
        caisses: Option<Vec<RealmId>>,
    },
    /// Take the staff role away (`--reason` required): no console opens for them any more and
    /// an open invitation stops working. The account stays, for the audit trail.
    Remove {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
    },
}

impl StaffCommand {
    /// The realm the command names.
    pub fn realm(&self) -> &RealmId {
        match self {
            StaffCommand::Add { realm, .. }
            | StaffCommand::Invite { realm, .. }
            | StaffCommand::List { realm, .. }
            | StaffCommand::Set { realm, .. }
            | StaffCommand::Remove { realm, .. } => realm,
        }
    }
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

pub async fn run(
    state: &AppState,
    cmd: StaffCommand,
    operator: &str,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let realm = state
        .realms
        .get(cmd.realm())
        .with_context(|| format!("no realm {}", cmd.realm()))?
        .clone();
    let email = |raw: &str| raw.parse::<Email>().context("--email");
    let by = By { operator, reason };
    match cmd {
        StaffCommand::Add {
            email: raw,
            role,
            caisses,
            language,
            ..
        } => {
            let email = email(&raw)?;
            let invited = state
                .staff
                .add(&realm, &email, role, &caisses, language, by)
                .await?;
            println!(
                "{email} added as {role}; invitation sent, valid until {}",
                time(invited.expires_at)
            );
            if !invited.mailed {
                anyhow::bail!("the invitation mail was not sent; send a new one with `connect admin staff invite`");
            }
        }
        StaffCommand::Invite { email: raw, .. } => {
            let email = email(&raw)?;
            let invited = state.staff.invite(&realm, &email, by).await?;
            println!(
                "new invitation sent to {email}, valid until {}; the earlier link no longer works",
                time(invited.expires_at)
            );
            if !invited.mailed {
                anyhow::bail!(
                    "the invitation mail was not sent; try `connect admin staff invite` again"
                );
            }
        }
        StaffCommand::List { json, .. } => {
            let listed = state.staff.list(&realm).await?;
            if json {
                let rows: Vec<_> = listed.iter().map(as_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for l in &listed {
                    println!("{}", readable(l));
                }
                if listed.is_empty() {
                    println!("no staff in {}", realm.id);
                }
            }
        }
        StaffCommand::Set {
            email: raw,
            role,
            caisses,
            ..
        } => {
            let email = email(&raw)?;
            if role.is_none() && caisses.is_none() {
                anyhow::bail!("give --role, --caisse or both");
            }
            let member = state
                .staff
                .set(&realm, &email, role, caisses.as_deref(), by)
                .await?;
            let caisses: Vec<&str> = member.caisses.iter().map(RealmId::as_str).collect();
            println!("{email}: {} of {}", member.role, caisses.join(","));
        }
        StaffCommand::Remove { email: raw, .. } => {
            let reason = Reason::parse(reason.unwrap_or_default())
                .context("--reason is required: why the staff role is taken away")?;
            let email = email(&raw)?;
            let by = By {
                operator,
                reason: Some(reason.as_str()),
            };
            state.staff.remove(&realm, &email, by).await?;
            println!("{email} is no longer staff; the account stays for the audit trail");
        }
    }
    Ok(())
}

fn as_json(l: &Listed) -> serde_json::Value {
    let m = &l.member;
    json!({
        "email": m.email,
        "account": m.account_id,
        "role": m.role.as_str(),
        "caisses": m.caisses.iter().map(RealmId::as_str).collect::<Vec<_>>(),
        "enrolled": l.enrolled,
        "invitation_expires_at": l.invitation_expires_at,
        "created_at": m.created_at,
        "created_by": m.created_by,
    })
}

fn readable(l: &Listed) -> String {
    let m = &l.member;
    let caisses: Vec<&str> = m.caisses.iter().map(RealmId::as_str).collect();
    let state = match (l.enrolled, l.invitation_expires_at) {
        (true, _) => "enrolled".to_owned(),
        (false, Some(t)) => format!("invited, link valid until {}", time(t)),
        (false, None) => "invited, link expired (staff invite sends a new one)".to_owned(),
    };
    format!(
        "{:<32} {:<10} {:<12} {state}",
        m.email,
        m.role.as_str(),
        caisses.join(",")
    )
}
