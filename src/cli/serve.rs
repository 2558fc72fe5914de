//! `connect serve`, `connect dev` and `connect migrate`.

use anyhow::Context;

use crate::{
    app::{App, AppState},
    clock::Clock,
    config::Config,
    domain::Email,
    storage::{accounts, Db},
    telemetry,
};

pub async fn run(config: Config) -> anyhow::Result<()> {
    telemetry::init(&config);
    let dev = config.dev;
    let app = App::build(config, Clock::System).await?;
    let addr = app.local_addr();
    if dev {
        let demo = demo_account(&app.state).await?;
        print_welcome(&app.state, addr, demo);
    } else {
        tracing::info!(%addr, "connect is listening");
    }
    app.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("server")?;
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

const DEMO_EMAIL: &str = "demo@connect.test";

/// In dev mode, a first start creates a demo account in the first realm and tells its
/// password once. Returns the password when it was just created.
async fn demo_account(state: &AppState) -> anyhow::Result<Option<String>> {
    let Some(realm) = state.realms.iter().next() else {
        return Ok(None);
    };
    let email: Email = DEMO_EMAIL.parse()?;
    if accounts::by_email(&state.db, &realm.id, &email)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let password = crate::session::random_token()[..16].to_owned();
    let hash = state.passwords.hash(password.clone().into()).await?;
    let new = accounts::NewAccount {
        realm: &realm.id,
        email: &email,
        password_hash: &hash,
        given_name: "Anna",
        family_name: "Muster",
        ahv: None,
        phone: None,
        language: realm.default_language,
    };
    accounts::create(&state.db, &new, state.clock.unix()).await?;
    Ok(Some(password))
}

fn print_welcome(state: &AppState, addr: std::net::SocketAddr, demo_password: Option<String>) {
    println!();
    println!("  connect is running on http://{addr}");
    for realm in state.realms.iter() {
        println!(
            "  {:<6} discovery: {}/.well-known/openid-configuration",
            realm.id,
            state.config.issuer(&realm.id)
        );
    }
    if let Some(realm) = state.realms.iter().next() {
        println!("  log in:  {}/login", state.config.issuer(&realm.id));
        match demo_password {
            Some(p) => println!(
                "  demo account: {DEMO_EMAIL} / {p}  (shown once; data in {})",
                state.config.data_dir.display()
            ),
            None => println!("  demo account: {DEMO_EMAIL} (password shown at its creation)"),
        }
    }
    println!("  stop with Ctrl-C");
    println!();
}
