//! Durable state in SQL (SQLite or PostgreSQL, kept equal) and short-lived state in the
//! ephemeral store. All SQL of the project lives under this module.

pub mod accounts;
pub mod activation_codes;
pub mod audit;
pub mod documents;
pub mod ephemeral;
pub mod grants;
pub mod keys;
pub mod persons;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

pub use ephemeral::Ephemeral;

/// The SQL database, whichever backend the configuration named.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same sqlx expression on whichever pool `db` holds.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body.await,
            $crate::storage::Db::Postgres($pool) => $body.await,
        }
    };
}
pub(crate) use on_db;

/// Runs a statement on whichever pool `db` holds and returns the number of rows it touched.
macro_rules! exec_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body.await.map(|r| r.rows_affected()),
            $crate::storage::Db::Postgres($pool) => $body.await.map(|r| r.rows_affected()),
        }
    };
}
pub(crate) use exec_db;

/// Runs a block inside one transaction on whichever backend `db` holds; the block is
/// written once and type-checked for both. Leaving it early (`?`, `return`) rolls back.
macro_rules! in_tx {
    ($db:expr, |$tx:ident| $body:block) => {
        match $db {
            $crate::storage::Db::Sqlite(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::storage::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use in_tx;

/// What can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// A uniqueness rule that a write ran into, named for what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    EmailTaken,
    AhvTaken,
    PersonExists,
    /// The activation code was used, revoked or expired in the meantime.
    CodeSpent,
    /// A document with this client's Idempotency-Key exists already.
    IdempotencyKeyUsed,
}

impl StoreError {
    /// Turns a unique-constraint violation into its meaning, by constraint name; both
    /// backends name the constraint in their message.
    pub(crate) fn on_constraint(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
                let conflict = if text.contains("idempotency_key") {
                    Some(Conflict::IdempotencyKeyUsed)
                } else if text.contains("email") {
                    Some(Conflict::EmailTaken)
                } else if text.contains("accounts") && text.contains("ahv") {
                    Some(Conflict::AhvTaken)
                } else if text.contains("persons") {
                    Some(Conflict::PersonExists)
                } else {
                    None
                };
                if let Some(c) = conflict {
                    return StoreError::Conflict(c);
                }
            }
        }
        StoreError::Database(e)
    }
}

impl Db {
    /// Opens the database the URL names; a SQLite file and its directory are created.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = Path::new(options.get_filename()).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// The portal's own tables (`migrations/portal/`), in the portal's own database.
    pub async fn migrate_portal(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::migrate!("./migrations/portal/sqlite")
                    .run(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::migrate!("./migrations/portal/postgres")
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// For `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        exec_db!(self, |pool| sqlx::query("SELECT 1").execute(pool))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The migration file names of a folder, sorted.
    fn names(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_dialects_have_the_same_migrations() {
        for (sqlite, postgres) in [
            ("migrations/sqlite", "migrations/postgres"),
            ("migrations/portal/sqlite", "migrations/portal/postgres"),
        ] {
            let (a, b) = (names(sqlite), names(postgres));
            assert!(!a.is_empty(), "{sqlite} has migrations");
            assert_eq!(a, b, "{sqlite} and {postgres} drifted apart");
            let versions: Vec<&str> = a.iter().filter_map(|n| n.split('_').next()).collect();
            let mut unique = versions.clone();
            unique.dedup();
            assert_eq!(versions, unique, "{sqlite}: one file per version");
        }
    }
}
