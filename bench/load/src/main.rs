//! `connect-bench`: starts connect (on SQLite, then on PostgreSQL + Redis) and node
//! oidc-provider, each pinned to core 0, drives the figures from this process (which
//! `bench/run` pins to core 1), and writes the results as a markdown table and a PNG chart.

mod http;
mod load;
mod outbox;
mod report;
mod servers;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use clap::Parser;
use futures_util::future::join_all;
use sha2::{Digest, Sha256};

use load::{Account, Figure, Kind, Measured, Target, Worker};
use servers::{free_addr, run, Launch, Server};

#[derive(Parser)]
#[command(about = "connect beside node oidc-provider: one run, both servers, one report")]
pub struct Args {
    /// The connect binary (a release build).
    #[arg(long)]
    connect: PathBuf,
    /// The bench/ directory of the repository (realm template, peer server).
    #[arg(long)]
    bench_dir: PathBuf,
    /// Seconds measured per figure (after a warm-up of a fifth of that).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// A smoke run: 2 s per figure.
    #[arg(long)]
    quick: bool,
    /// The servers to measure, in order: sqlite, postgres, peer.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,peer")]
    servers: Vec<String>,
    /// Workers of the token, userinfo and introspection figures (discovery and JWKS: 64;
    /// logins: 8 and 32).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// PostgreSQL server (trust auth); the bench creates and drops a database of its own.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Redis; the bench uses a key prefix of its own and deletes its keys afterwards.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Where the results go: <out>.md and <out>.png.
    #[arg(long)]
    out: PathBuf,
    /// The servers' data directories (default: a fresh directory under /tmp, removed after).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Keep the working directory (server logs, outbox, databases).
    #[arg(long)]
    keep: bool,
}

/// Where nothing listens: the bench client's redirect URI is never fetched.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const REALM: &str = "BENCH";
const CLIENT_ID: &str = "bench";
const PASSWORD: &str = "Kx7-Pferd-Lampe-29";
const DISCOVERY_CONCURRENCY: usize = 64;

/// One server's part of the run.
pub struct ServerRun {
    pub key: String,
    pub name: String,
    pub startup: Duration,
    pub idle_rss: u64,
    pub end_rss: u64,
    pub figures: Vec<Measured>,
    /// Set when the server could not be measured (or not to the end).
    pub failure: Option<String>,
}

/// How the timing was set up, for the report.
pub struct Plan {
    pub warmup: Duration,
    pub duration: Duration,
    pub settle: Duration,
    pub concurrency: usize,
    pub pinned: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let seconds = if args.quick { 2.0 } else { args.duration };
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let pinned = cores >= 2;
    if !pinned {
        eprintln!("connect-bench: one core only: the servers are not pinned apart from the load");
    }
    let plan = Plan {
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64((seconds / 5.0).min(2.0)),
        settle: Duration::from_millis(if args.quick { 300 } else { 1000 }),
        concurrency: args.concurrency,
        pinned,
    };
    let work = match &args.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("connect-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let mut runs = Vec::new();
    for key in &args.servers {
        eprintln!("connect-bench: {key}");
        let run = match key.as_str() {
            "sqlite" | "postgres" => connect_run(&args, &plan, &work, key).await,
            "peer" => peer_run(&args, &plan, &work).await,
            other => anyhow::bail!("unknown server `{other}` (sqlite, postgres, peer)"),
        };
        runs.push(run);
    }
    let meta = report::Meta::gather(&args, &plan).await;
    let text = report::markdown(&meta, &plan, &runs);
    println!("{text}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let md = args.out.with_extension("md");
    let png = args.out.with_extension("png");
    let chart_note = match report::chart(&png, &meta, &runs) {
        Ok(()) => format!("\n![chart]({})\n", file_name(&png)),
        Err(e) => format!("\n(no chart: {e:#})\n"),
    };
    std::fs::write(&md, format!("{text}{chart_note}"))?;
    eprintln!(
        "connect-bench: wrote {} and {}",
        md.display(),
        png.display()
    );
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("connect-bench: kept {}", work.display());
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The account of worker `i` (accounts are made for the first `n` workers).
fn account(i: usize) -> Account {
    Account {
        email: format!("bench{i}@bench.example"),
        // 079 555 xx xx: Swiss mobile numbers, one per account, so each SMS finds its worker.
        phone: format!("+4179555{i:04}"),
        password: PASSWORD.to_owned(),
    }
}

/// connect on SQLite (`sqlite`) or on PostgreSQL + Redis (`postgres`).
async fn connect_run(args: &Args, plan: &Plan, work: &Path, key: &str) -> ServerRun {
    let name = match key {
        "sqlite" => "connect (SQLite)",
        _ => "connect (PostgreSQL + Redis)",
    };
    let mut out = ServerRun {
        key: key.to_owned(),
        name: name.to_owned(),
        startup: Duration::ZERO,
        idle_rss: 0,
        end_rss: 0,
        figures: Vec::new(),
        failure: None,
    };
    let db = format!("connect_bench_{}", std::process::id());
    let prefix = format!("connect-bench-{}:", std::process::id());
    let result = connect_measure(args, plan, work, key, &db, &prefix, &mut out).await;
    if key == "postgres" {
        let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
        let url = format!("{}/postgres", args.postgres);
        if let Err(e) = run_psql(&url, &drop).await {
            eprintln!("connect-bench: could not drop {db}: {e:#}");
        }
        let script = format!(
            "redis-cli -u '{}' --scan --pattern '{prefix}*' | xargs -r -n 500 redis-cli -u '{}' DEL >/dev/null",
            args.redis, args.redis
        );
        let _ = run(Path::new("sh"), &["-c", &script], &[], None).await;
    }
    if let Err(e) = result {
        eprintln!("connect-bench: {name}: {e:#}");
        out.failure = Some(format!("{e:#}"));
    }
    out
}

async fn run_psql(url: &str, sql: &str) -> anyhow::Result<String> {
    run(
        Path::new("psql"),
        &[url, "-v", "ON_ERROR_STOP=1", "-qc", sql],
        &[],
        None,
    )
    .await
}

async fn connect_measure(
    args: &Args,
    plan: &Plan,
    work: &Path,
    key: &str,
    db: &str,
    prefix: &str,
    run_out: &mut ServerRun,
) -> anyhow::Result<()> {
    let dir = work.join(format!("connect-{key}"));
    let realms = dir.join("realms");
    std::fs::create_dir_all(&realms)?;
    let secret = hex(&random_bytes::<32>()?);
    let digest = hex(&Sha256::digest(secret.as_bytes()));
    let template = std::fs::read_to_string(args.bench_dir.join("realm/BENCH.toml"))
        .context("bench/realm/BENCH.toml")?;
    std::fs::write(
        realms.join(format!("{REALM}.toml")),
        template
            .replace("@SECRET_SHA256@", &digest)
            .replace("@REDIRECT_URI@", REDIRECT_URI),
    )?;
    use base64::Engine;
    std::fs::write(
        dir.join("master.key"),
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()?),
    )?;
    let addr = free_addr()?;
    let mut config = format!(
        "data_dir = \"{dir}\"\nrealm_dir = \"{realms}\"\npublic_url = \"http://{addr}\"\n\
         bind = \"{addr}\"\nmetrics_bind = \"127.0.0.1:0\"\nlog_level = \"warn\"\n\
         allow_outbox = true\n",
        dir = dir.display(),
        realms = realms.display(),
    );
    if key == "postgres" {
        run_psql(
            &format!("{}/postgres", args.postgres),
            &format!("CREATE DATABASE {db}"),
        )
        .await
        .context("create the bench database (is PostgreSQL running?)")?;
        config.push_str(&format!(
            "database_url = \"{}/{db}\"\nredis_url = \"{}\"\nredis_prefix = \"{prefix}\"\n",
            args.postgres, args.redis
        ));
    }
    config.push_str("\n[portal]\nrealm = \"BENCH\"\nmetrics_bind = \"127.0.0.1:0\"\n");
    let config_file = dir.join("connect.toml");
    std::fs::write(&config_file, config)?;
    let cfg = config_file.to_string_lossy().into_owned();

    let accounts = args.concurrency.max(32);
    eprintln!("connect-bench:   {accounts} accounts");
    for i in 0..accounts {
        let a = account(i);
        let family = format!("User{i}");
        run(
            &args.connect,
            &[
                "--config",
                &cfg,
                "admin",
                "--operator",
                "bench",
                "account",
                "create",
                "--realm",
                REALM,
                "--email",
                &a.email,
                "--password-stdin",
                "--given-name",
                "Bench",
                "--family-name",
                &family,
                "--phone",
                &a.phone,
            ],
            &[],
            Some(&format!("{PASSWORD}\n")),
        )
        .await?;
    }
    let launch = Launch {
        program: args.connect.clone(),
        args: vec!["--config".into(), cfg.clone(), "serve".into()],
        env: Vec::new(),
        dir: dir.clone(),
        addr,
        ready_path: "/readyz".into(),
        core: plan.pinned.then_some(0),
        log: dir.join("server.log"),
    };
    // A first start creates the signing keys; the measured start finds them.
    launch.start().await?.stop().await?;
    let server = launch.start().await?;
    run_out.startup = server.startup;
    let outbox = outbox::Outbox::follow(dir.join("outbox/sms.jsonl"));
    let target = Target::discover(
        Kind::Connect {
            realm: REALM.into(),
            outbox,
        },
        addr,
        &format!("/{REALM}/.well-known/openid-configuration"),
        CLIENT_ID,
        &secret,
        REDIRECT_URI,
    )
    .await?;
    let result = figures(plan, &server, &target, accounts, true, run_out).await;
    run_out.end_rss = server.rss();
    server.stop().await?;
    result
}

/// node oidc-provider, configured by bench/peer/server.mjs.
async fn peer_run(args: &Args, plan: &Plan, work: &Path) -> ServerRun {
    let mut out = ServerRun {
        key: "peer".into(),
        name: "node oidc-provider".into(),
        startup: Duration::ZERO,
        idle_rss: 0,
        end_rss: 0,
        figures: Vec::new(),
        failure: None,
    };
    if let Err(e) = peer_measure(args, plan, work, &mut out).await {
        eprintln!("connect-bench: peer: {e:#}");
        out.failure = Some(format!("{e:#}"));
    }
    out
}

async fn peer_measure(
    args: &Args,
    plan: &Plan,
    work: &Path,
    run_out: &mut ServerRun,
) -> anyhow::Result<()> {
    let dir = work.join("peer");
    std::fs::create_dir_all(&dir)?;
    let peer_dir = args.bench_dir.join("peer");
    let server_file = peer_dir.join("server.mjs");
    let keys = dir.join("keys.json");
    let node = PathBuf::from("node");
    run(
        &node,
        &[
            &server_file.to_string_lossy(),
            "--keys",
            &keys.to_string_lossy(),
        ],
        &[],
        None,
    )
    .await
    .context("the peer's keys (did `npm ci` run in bench/peer?)")?;
    let secret = hex(&random_bytes::<32>()?);
    let addr = free_addr()?;
    let launch = Launch {
        program: node,
        args: vec![server_file.to_string_lossy().into_owned()],
        env: vec![
            ("NODE_ENV".into(), "production".into()),
            ("PEER_PORT".into(), addr.port().to_string()),
            ("PEER_KEYS".into(), keys.to_string_lossy().into_owned()),
            ("PEER_CLIENT_ID".into(), CLIENT_ID.into()),
            ("PEER_CLIENT_SECRET".into(), secret.clone()),
            ("PEER_REDIRECT_URI".into(), REDIRECT_URI.into()),
        ],
        dir: peer_dir,
        addr,
        ready_path: "/.well-known/openid-configuration".into(),
        core: plan.pinned.then_some(0),
        log: dir.join("server.log"),
    };
    // As for connect: the measured start is the second, with warm file caches.
    launch.start().await?.stop().await?;
    let server = launch.start().await?;
    run_out.startup = server.startup;
    let target = Target::discover(
        Kind::Peer,
        addr,
        "/.well-known/openid-configuration",
        CLIENT_ID,
        &secret,
        REDIRECT_URI,
    )
    .await?;
    let result = figures(plan, &server, &target, args.concurrency, false, run_out).await;
    run_out.end_rss = server.rss();
    server.stop().await?;
    result
}

/// Every figure on one server, in order; logins only for connect.
async fn figures(
    plan: &Plan,
    server: &Server,
    target: &Target,
    accounts: usize,
    logins: bool,
    out: &mut ServerRun,
) -> anyhow::Result<()> {
    tokio::time::sleep(plan.settle).await;
    out.idle_rss = server.rss();
    let n = DISCOVERY_CONCURRENCY.max(plan.concurrency).max(accounts);
    let mut workers: Vec<Worker> = (0..n)
        .map(|i| Worker::new(target.addr, i, (i < accounts).then(|| account(i))))
        .collect();
    let c = plan.concurrency;
    let (p, s, t) = (plan, server, target);
    for figure in [Figure::Discovery, Figure::Jwks] {
        let m = run_figure(p, s, t, &mut workers[..DISCOVERY_CONCURRENCY], figure).await;
        out.figures.push(m);
    }
    let m = run_figure(p, s, t, &mut workers[..c], Figure::ClientCredentials).await;
    out.figures.push(m);
    // The SSO sessions, with an access and a refresh token each.
    let sessions = join_all(workers[..c].iter_mut().map(|w| w.open_session(target))).await;
    if let Some(e) = sessions.into_iter().find_map(Result::err) {
        return Err(e.context("a worker's first login"));
    }
    for figure in [
        Figure::CodeExchange,
        Figure::Refresh,
        Figure::Userinfo,
        Figure::Introspection,
    ] {
        let m = run_figure(p, s, t, &mut workers[..c], figure).await;
        out.figures.push(m);
    }
    if logins {
        for c in [8, 32] {
            let m = run_figure(p, s, t, &mut workers[..c.min(accounts)], Figure::Logins).await;
            out.figures.push(m);
        }
    }
    Ok(())
}

async fn run_figure(
    plan: &Plan,
    server: &Server,
    target: &Target,
    workers: &mut [Worker],
    figure: Figure,
) -> Measured {
    let m = load::measure(
        target,
        server,
        workers,
        figure,
        plan.warmup,
        plan.duration,
        plan.settle,
    )
    .await;
    eprintln!(
        "connect-bench:   {:<36} c={:<3} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  cpu server {:.0}% load {:.0}%",
        m.figure.label(),
        m.concurrency,
        m.rate(),
        m.latency.value_at_quantile(0.5) as f64 / 1000.0,
        m.latency.value_at_quantile(0.99) as f64 / 1000.0,
        m.errors,
        m.server_cpu * 100.0,
        m.load_cpu * 100.0
    );
    if let Some(e) = &m.first_error {
        eprintln!("connect-bench:     first error: {e}");
    }
    m
}
