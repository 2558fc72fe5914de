//! `connect admin`: support and operator commands, on the same data as a running server.

use std::io::Read;

use anyhow::{bail, Context};
use clap::Subcommand;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::{
    app::AppState,
    clock::Clock,
    config::Config,
    domain::{AhvNumber, Email, Language, RealmId},
    storage::{accounts, persons, StoreError},
};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Accounts of persons.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The register of insured persons.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Relying parties.
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account directly (for testing, until enrolment is used).
    Create {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        ahv: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        language: Option<Language>,
    },
}

#[derive(Subcommand)]
pub enum PersonCommand {
    /// Add an insured person to the register.
    Add {
        #[arg(long)]
        realm: RealmId,
        #[arg(long)]
        ahv: String,
        #[arg(long)]
        given_name: String,
        #[arg(long)]
        family_name: String,
        #[arg(long)]
        birth_date: chrono::NaiveDate,
        #[arg(long)]
        language: Language,
        /// "Street 1, 3000 City"
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add new signing keys; the old ones stay published until their tokens expire.
    Rotate {
        #[arg(long)]
        realm: RealmId,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Generate a client secret (256 bits): prints the secret once, then the SHA-256 for the realm file.
    Secret,
}

pub async fn run(config: Config, cmd: AdminCommand) -> anyhow::Result<()> {
    if let AdminCommand::Client(ClientCommand::Secret) = cmd {
        let secret = crate::session::random_token();
        println!("{secret}");
        println!(
            "secret_sha256 = \"{}\"",
            hex::encode(Sha256::digest(secret.as_bytes()))
        );
        return Ok(());
    }
    let state = AppState::open(config, Clock::System).await?;
    let result = dispatch(&state, cmd).await;
    state.db.close().await;
    result
}

async fn dispatch(state: &AppState, cmd: AdminCommand) -> anyhow::Result<()> {
    let now = state.clock.unix();
    match cmd {
        AdminCommand::Account(AccountCommand::Create {
            realm,
            email,
            password_stdin: _,
            given_name,
            family_name,
            ahv,
            phone,
            language,
        }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            let email: Email = email.parse().context("--email")?;
            let ahv: Option<AhvNumber> = ahv.map(|a| a.parse()).transpose().context("--ahv")?;
            let mut line = String::new();
            std::io::stdin()
                .read_to_string(&mut line)
                .context("reading the password from stdin")?;
            let password = line.lines().next().unwrap_or_default().to_owned();
            if password.chars().count() < 8 {
                bail!("the password must have at least 8 characters");
            }
            if given_name.trim().is_empty() || family_name.trim().is_empty() {
                bail!("--given-name and --family-name must not be empty");
            }
            let hash = state.passwords.hash(SecretString::from(password)).await?;
            let new = accounts::NewAccount {
                realm: &realm.id,
                email: &email,
                password_hash: &hash,
                given_name: given_name.trim(),
                family_name: family_name.trim(),
                ahv: ahv.as_ref(),
                phone: phone.as_deref(),
                language: language.unwrap_or(realm.default_language),
            };
            match accounts::create(&state.db, &new, now).await {
                Ok(id) => println!("{id}"),
                Err(StoreError::Conflict(c)) => bail!("not created: {c:?}"),
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::Person(PersonCommand::Add {
            realm,
            ahv,
            given_name,
            family_name,
            birth_date,
            language,
            address,
        }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            let person = persons::Person {
                ahv: ahv.parse().context("--ahv")?,
                given_name,
                family_name,
                birth_date,
                language,
                address: address.as_deref().map(parse_address).unwrap_or_default(),
            };
            match persons::add(&state.db, &realm.id, &person, now).await {
                Ok(()) => println!("{}", person.ahv),
                Err(StoreError::Conflict(c)) => bail!("not added: {c:?}"),
                Err(e) => return Err(e.into()),
            }
        }
        AdminCommand::Keys(KeysCommand::Rotate { realm }) => {
            let realm = state
                .realms
                .get(&realm)
                .with_context(|| format!("no realm {realm}"))?;
            for kid in state.keys.rotate(realm).await? {
                println!("{kid}");
            }
        }
        AdminCommand::Client(ClientCommand::Secret) => {
            unreachable!("handled before opening storage")
        }
    }
    Ok(())
}

/// "Rue 1, 3000 Bern" → street, postal code, locality; Swiss unless told otherwise.
pub fn parse_address(raw: &str) -> persons::PostalAddress {
    let (street, rest) = raw
        .rsplit_once(',')
        .map_or((None, raw), |(s, r)| (Some(s.trim().to_owned()), r));
    let rest = rest.trim();
    let (postal_code, locality) = match rest.split_once(' ') {
        Some((code, city)) if code.chars().all(|c| c.is_ascii_digit()) => {
            (Some(code.to_owned()), Some(city.trim().to_owned()))
        }
        _ => (None, Some(rest.to_owned()).filter(|s| !s.is_empty())),
    };
    persons::PostalAddress {
        street,
        postal_code,
        locality,
        country: Some("CH".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_street_code_and_city() {
        let a = parse_address("Rue 1, 3000 Bern");
        assert_eq!(a.street.as_deref(), Some("Rue 1"));
        assert_eq!(a.postal_code.as_deref(), Some("3000"));
        assert_eq!(a.locality.as_deref(), Some("Bern"));
    }
}
