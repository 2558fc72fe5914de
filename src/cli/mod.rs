//! The `connect` command line: `dev` (the default), `serve`, `portal`, `migrate`, `admin`.

pub mod admin;
mod import;
mod letters;
mod progress;
mod serve;
mod staff;

pub use admin::parse_address;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "connect",
    version,
    about = "OpenID Connect identity provider for the insured persons of Swiss compensation funds"
)]
struct Cli {
    /// Settings file (TOML); without it, ./connect.toml is read when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The IdP and the portal with embedded defaults and demo data, on loopback only (the
    /// default command).
    Dev,
    /// The IdP alone, from configuration (production): no demo data, no dev route.
    Serve,
    /// The document portal alone, from configuration.
    Portal,
    /// Apply database migrations and exit.
    Migrate,
    /// Support and operator commands.
    Admin(admin::AdminArgs),
}

/// Asks glibc's allocator to return big blocks to the system when they are freed and to keep
/// few arenas. By default a freed block raises the size under which blocks come from an arena,
/// so the 19 MiB working memory of each Argon2 hash stayed with the process after a storm of
/// logins, and every thread's arena kept its own high-water mark (docs/performance.md).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, and runs before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub fn main() -> ExitCode {
    tune_allocator();
    // Before anything signs or checks a JWT (see `keys::jwt_crypto`).
    crate::keys::install_jwt_crypto();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("connect: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Dev) {
            Command::Dev => serve::dev(config).await,
            Command::Serve => serve::serve(config).await,
            Command::Portal => serve::portal(config).await,
            Command::Migrate => serve::migrate(config).await,
            Command::Admin(cmd) => admin::run(config, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A setting that the command refuses, as a bad value would be.
        Err(e) if e.downcast_ref::<crate::config::ConfigError>().is_some() => {
            eprintln!("connect: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("connect: {e:#}");
            ExitCode::FAILURE
        }
    }
}
