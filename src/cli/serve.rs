//! `connect serve`, `connect portal`, `connect dev` (both) and `connect migrate`.

use anyhow::Context;

use crate::{
    app::{App, AppState},
    clock::Clock,
    config::Config,
    domain::AhvNumber,
    portal::{Portal, PortalState},
    storage::{persons, Db},
    telemetry,
};

/// Resolves on Ctrl-C; every server of the process stops on it.
async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config);
    let dev = config.dev;
    let portal_config = config.clone();
    let app = App::build(config, Clock::System).await?;
    let addr = app.local_addr();
    if !dev {
        tracing::info!(%addr, "connect is listening");
        app.run_until(ctrl_c()).await.context("server")?;
        return Ok(());
    }
    // Dev: the IdP and, beside it, the portal, which finds the IdP by discovery once both run.
    let demo = demo_person(&app.state).await?;
    let portal = Portal::build(portal_config, Clock::System).await?;
    crate::portal::demo::documents(&portal.state, &DEMO_AHV.parse()?).await?;
    print_welcome(&app.state, addr, &portal.state, demo);
    let (idp, portal) = tokio::join!(app.run_until(ctrl_c()), portal.run_until(ctrl_c()));
    idp.context("IdP server")?;
    portal.context("portal server")?;
    Ok(())
}

/// `connect portal`: the portal alone.
pub async fn portal(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config);
    let portal = Portal::build(config, Clock::System).await?;
    tracing::info!(addr = %portal.local_addr(), "the portal is listening");
    portal.run_until(ctrl_c()).await.context("portal server")?;
    Ok(())
}

pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    println!("migrations applied to {}", redact(&config.database_url));
    Ok(())
}

/// The database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The demo insured person of the first realm (a valid AHV number, check digit included).
const DEMO_AHV: &str = "756.1234.5678.97";

/// What the welcome text says about the demo person.
enum Demo {
    /// A fresh activation code: the only moment it exists in clear.
    Code(Box<crate::activation::IssuedCode>),
    /// The demo person has enrolled already.
    Enrolled,
}

/// In dev mode, puts the demo person in the register of the first realm and, while they
/// have no account, issues a new activation code at each start (the previous one stops
/// working), so the newcomer always has a code to enrol with.
async fn demo_person(state: &AppState) -> anyhow::Result<Option<Demo>> {
    let Some(realm) = state.realms.iter().next() else {
        return Ok(None);
    };
    let ahv: AhvNumber = DEMO_AHV.parse()?;
    if persons::by_ahv(&state.db, &realm.id, &ahv).await?.is_none() {
        let person = persons::Person {
            ahv: ahv.clone(),
            given_name: "Anna".into(),
            family_name: "Muster".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(1950, 3, 14).context("demo birth date")?,
            language: realm.default_language,
            address: persons::PostalAddress {
                street: Some("Rue de l'Exemple 1".into()),
                postal_code: Some("3000".into()),
                locality: Some("Bern".into()),
                country: Some("CH".into()),
            },
        };
        persons::add(&state.db, &realm.id, &person, state.clock.unix()).await?;
    }
    match crate::activation::issue(state, realm, &ahv).await {
        Ok(issued) => Ok(Some(Demo::Code(Box::new(issued)))),
        Err(crate::activation::ActivationError::AlreadyEnrolled) => Ok(Some(Demo::Enrolled)),
        Err(e) => Err(e.into()),
    }
}

fn print_welcome(
    state: &AppState,
    addr: std::net::SocketAddr,
    portal: &PortalState,
    demo: Option<Demo>,
) {
    println!();
    println!("  connect is running: the IdP on http://{addr}, the portal beside it.");
    println!();
    println!("  open the portal:  {}", portal.config.portal_url);
    if let Some(realm) = state.realms.iter().next() {
        let issuer = state.config.issuer(&realm.id);
        match demo {
            Some(Demo::Code(issued)) => {
                println!(
                    "  activation code:  {}  (demo person {} {}, valid until {})",
                    issued.code,
                    issued.person.given_name,
                    issued.person.family_name,
                    issued.expires_at.format("%d.%m.%Y")
                );
                println!("  or register at:   {issuer}/register");
            }
            Some(Demo::Enrolled) => {
                println!("  the demo person has enrolled; log in at the portal");
            }
            None => {}
        }
        println!(
            "  mail and SMS:     {}/_dev/outbox",
            state.config.public_url.as_str().trim_end_matches('/')
        );
    }
    println!();
    for realm in state.realms.iter() {
        println!(
            "  {:<6} discovery: {}/.well-known/openid-configuration",
            realm.id,
            state.config.issuer(&realm.id)
        );
    }
    println!("  stop with Ctrl-C");
    println!();
}
