//! `connect serve`, `connect portal`, `connect dev` (both) and `connect migrate`.

use anyhow::Context;

use crate::{
    app::{App, AppState},
    clock::Clock,
    config::{Config, ConfigError},
    domain::AhvNumber,
    portal::{Portal, PortalState},
    realm::Realms,
    storage::{persons, Db},
    telemetry,
};

/// Resolves on Ctrl-C or SIGTERM (what an orchestrator sends to stop a replica); every
/// server of the process then stops accepting and finishes its open requests.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: no new connections, finishing open requests");
}

/// `connect serve`: the IdP alone, as production runs it. Refuses the published development
/// secrets and, unless allowed, the outbox; never dev routes or demo data (`config.dev` stays
/// false: only [`dev`] sets it).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config);
    refuse_published_secrets(&config)?;
    check_outbox(&config, Channels::MailAndSms)?;
    let app = App::build(config, Clock::System).await?;
    tracing::info!(addr = %app.local_addr(), metrics = %app.state.config.metrics_bind, "connect is listening");
    app.run_until(stop_signal()).await.context("server")?;
    Ok(())
}

/// `connect dev` (and the bare `connect`): the IdP and, beside it, the portal, which finds the
/// IdP by discovery once both run; with demo data and `/_dev/outbox`. Loopback and http only.
pub async fn dev(mut config: Config) -> anyhow::Result<()> {
    check_dev(&config)?;
    config.dev = true;
    telemetry::init(&config);
    let portal_config = config.clone();
    let app = App::build(config, Clock::System).await?;
    let addr = app.local_addr();
    let demo = demo_person(&app.state).await?;
    let desk = demo_staff(&app.state).await?;
    let portal = Portal::build(portal_config, Clock::System).await?;
    crate::portal::demo::documents(&portal.state, &DEMO_AHV.parse()?).await?;
    print_welcome(&app.state, addr, &portal.state, demo, desk);
    let (idp, portal) = tokio::join!(
        app.run_until(stop_signal()),
        portal.run_until(stop_signal())
    );
    idp.context("IdP server")?;
    portal.context("portal server")?;
    Ok(())
}

/// `connect portal`: the portal alone.
pub async fn portal(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config);
    check_outbox(&config, Channels::Mail)?;
    let portal = Portal::build(config, Clock::System).await?;
    tracing::info!(addr = %portal.local_addr(), metrics = %portal.state.config.portal.metrics_bind, "the portal is listening");
    portal
        .run_until(stop_signal())
        .await
        .context("portal server")?;
    Ok(())
}

/// The client secrets that the README, the sample realm files and the tests publish. A realm
/// file whose client holds the digest of one of them lets anybody act as that client.
pub const PUBLISHED_DEV_SECRETS: &[&str] =
    &["bench-secret", "caisse-docs-secret", "portal-dev-secret"];

/// Every confidential client of every realm that a published secret authenticates, as one
/// line naming realm and client.
fn refuse_published_secrets(config: &Config) -> anyhow::Result<()> {
    let realms = Realms::load_dir(&config.realm_dir)?;
    let mut found: Vec<String> = realms
        .iter()
        .flat_map(|realm| {
            realm
                .clients
                .iter()
                .filter(|client| {
                    PUBLISHED_DEV_SECRETS.iter().any(|secret| {
                        realm
                            .clients
                            .authenticate(&client.id, Some(secret))
                            .is_some()
                    })
                })
                .map(move |client| format!("realm {}, client `{}`", realm.id, client.id))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    anyhow::bail!(
        "{}: its secret_sha256 is the digest of a development secret published in the README; \
         give it a new secret (`connect admin client secret`) or remove the client",
        found.join("; ")
    )
}

/// Which channels a command sends on.
enum Channels {
    Mail,
    MailAndSms,
}

/// `serve` and `portal` send to people: mail or SMS written to the outbox, where nobody reads
/// it, only where the operator said so (a staging system), and then with a warning at every
/// start.
fn check_outbox(config: &Config, channels: Channels) -> Result<(), ConfigError> {
    let mut unsent = Vec::new();
    if config.smtp_url.is_none() {
        unsent.push("mail (no smtp_url)");
    }
    if matches!(channels, Channels::MailAndSms) && config.sms.url.is_none() {
        unsent.push("SMS (no sms.url)");
    }
    if unsent.is_empty() {
        return Ok(());
    }
    let unsent = unsent.join(" and ");
    let outbox = config.outbox_dir.display();
    if !config.allow_outbox {
        return Err(ConfigError {
            key: "allow_outbox".into(),
            problem: format!(
                "{unsent} would go to the outbox {outbox}, where nobody reads it: configure \
                 them, or set allow_outbox = true on a staging system"
            ),
        });
    }
    tracing::warn!(%outbox, "{unsent} go to the outbox (allow_outbox = true): a staging system, not production");
    Ok(())
}

/// `connect dev` shows every mail and SMS code at `/_dev/outbox`, creates a demo person and
/// runs with the published secrets: on loopback only, and never behind an https URL, which
/// means a real deployment.
fn check_dev(config: &Config) -> Result<(), ConfigError> {
    for (key, addr) in [("bind", config.bind), ("portal_bind", config.portal_bind)] {
        if !addr.ip().to_canonical().is_loopback() {
            return Err(ConfigError {
                key: key.into(),
                problem: format!(
                    "{addr} is not a loopback address, and `connect dev` shows every code at \
                     /_dev/outbox: it listens on loopback only (use `connect serve` and `connect portal`)"
                ),
            });
        }
    }
    for (key, url) in [
        ("public_url", &config.public_url),
        ("portal_url", &config.portal_url),
    ] {
        if url.scheme() == "https" {
            return Err(ConfigError {
                key: key.into(),
                problem: format!(
                    "{url} is https, a real deployment, and `connect dev` has demo data, \
                     published secrets and /_dev/outbox (use `connect serve` and `connect portal`)"
                ),
            });
        }
    }
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
    match state.activation.issue(realm, &ahv).await {
        Ok(issued) => Ok(Some(Demo::Code(Box::new(issued)))),
        Err(crate::activation::ActivationError::AlreadyEnrolled) => Ok(Some(Demo::Enrolled)),
        Err(e) => Err(e.into()),
    }
}

/// The demo staff member: a supervisor of every caisse whose console logs in through the
/// first staff realm.
const DEMO_STAFF: &str = "support@caisse.example";

/// In dev mode, invites the demo staff member once (the link goes to the outbox); returns
/// the staff realm and the caisses whose consoles they open.
async fn demo_staff(state: &AppState) -> anyhow::Result<DemoDesk> {
    let Some(staff_realm) = state.realms.iter().find(|r| r.staff.is_some()).cloned() else {
        return Ok(None);
    };
    let caisses: Vec<_> = state
        .realms
        .iter()
        .filter(|r| {
            r.console
                .as_ref()
                .is_some_and(|c| c.staff_realm == staff_realm.id)
        })
        .map(|r| r.id.clone())
        .collect();
    let email: crate::domain::Email = DEMO_STAFF.parse()?;
    if crate::storage::accounts::by_email(&state.db, &staff_realm.id, &email)
        .await?
        .is_none()
    {
        let by = crate::staff::By {
            operator: "connect dev",
            reason: Some("demo staff member"),
        };
        state
            .staff
            .add(
                &staff_realm,
                &email,
                crate::domain::StaffRole::Supervisor,
                &caisses,
                None,
                by,
            )
            .await?;
    }
    Ok(Some((staff_realm, caisses)))
}

/// The staff realm and the caisses whose consoles the demo staff member opens.
type DemoDesk = Option<(
    std::sync::Arc<crate::realm::Realm>,
    Vec<crate::domain::RealmId>,
)>;

fn print_console(state: &AppState, desk: DemoDesk) {
    let Some((staff_realm, caisses)) = desk else {
        return;
    };
    let Some(first) = caisses.first() else {
        return;
    };
    println!(
        "  support console:  {}/console  (demo staff {DEMO_STAFF} of {}: the enrolment link is in the outbox;",
        state.config.issuer(first),
        staff_realm.id
    );
    println!(
        "                    passkeys need a host name: CONNECT_PUBLIC_URL=http://localhost:8080)"
    );
}

fn print_welcome(
    state: &AppState,
    addr: std::net::SocketAddr,
    portal: &PortalState,
    demo: Option<Demo>,
    desk: DemoDesk,
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
    print_console(state, desk);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_of_the_shipped_realm_files_is_on_the_published_list() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
        let realms = Realms::load_dir(&dir).unwrap();
        let mut confidential = 0;
        for realm in realms.iter() {
            for client in realm.clients.iter().filter(|c| !c.is_public()) {
                confidential += 1;
                assert!(
                    PUBLISHED_DEV_SECRETS
                        .iter()
                        .any(|s| realm.clients.authenticate(&client.id, Some(s)).is_some()),
                    "{} {}: a sample secret that `serve` would not refuse",
                    realm.id,
                    client.id
                );
            }
        }
        assert!(confidential >= 3);
    }

    fn dev_config(edit: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
        let mut config = Config::load(Some(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/connect-test.toml"),
        ))
        .unwrap();
        edit(&mut config);
        check_dev(&config)
    }

    #[test]
    fn dev_runs_on_loopback_over_http_only() {
        assert!(dev_config(|_| {}).is_ok());
        assert!(dev_config(|c| c.bind = "[::1]:8080".parse().unwrap()).is_ok());
        assert!(dev_config(|c| c.bind = "[::ffff:127.0.0.1]:8080".parse().unwrap()).is_ok());
        let e = dev_config(|c| c.bind = "10.0.0.1:8080".parse().unwrap()).unwrap_err();
        assert_eq!(e.key, "bind");
        let e = dev_config(|c| c.portal_bind = "0.0.0.0:8090".parse().unwrap()).unwrap_err();
        assert_eq!(e.key, "portal_bind");
        let e =
            dev_config(|c| c.public_url = "https://login.example.ch".parse().unwrap()).unwrap_err();
        assert_eq!(e.key, "public_url");
        let e =
            dev_config(|c| c.portal_url = "https://docs.example.ch".parse().unwrap()).unwrap_err();
        assert_eq!(e.key, "portal_url");
    }
}
