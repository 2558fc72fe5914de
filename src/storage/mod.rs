//! Durable state in SQL (SQLite or PostgreSQL, kept equal) and short-lived state in the
//! ephemeral store. All SQL of the project lives under this module.

pub mod accounts;
pub mod activation_codes;
pub mod audit;
pub mod documents;
pub mod ephemeral;
pub mod grants;
pub mod keys;
pub mod letter_requests;
pub mod lookup;
pub mod passkeys;
pub mod persons;
pub mod recovery_codes;
mod sql;
pub mod staff;
pub mod staff_invitations;
pub mod totp;

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

/// Whether `e` or one of its causes says a store could not be reached; each such answer is
/// counted in `connect_store_unavailable_total{store}` for the operator's alerts. Error enums
/// above the storage layer wrap [`StoreError`] as a source (or transparently, which skips it
/// and shows its cause), so the chain is searched for the driver errors too.
pub fn unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let store = outage(e);
    if let Some(store) = store {
        metrics::counter!("connect_store_unavailable_total", "store" => store).increment(1);
    }
    store.is_some()
}

fn outage(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<StoreError>() {
            match e {
                StoreError::Database(e) if sql_unavailable(e) => return Some("database"),
                StoreError::Redis(e) if redis_unavailable(e) => return Some("redis"),
                _ => {}
            }
        } else if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            if sql_unavailable(e) {
                return Some("database");
            }
        } else if let Some(e) = e.downcast_ref::<redis::RedisError>() {
            if redis_unavailable(e) {
                return Some("redis");
            }
        }
        next = e.source();
    }
    None
}

fn sql_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        // What a connection cut in the middle of the handshake reads (a balancer in front of
        // a database that is down accepts, then closes).
        | sqlx::Error::Protocol(_) => true,
        // SQLSTATE class 08 (connection exception) and 57P (the server shutting down).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

fn redis_unavailable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            redis::ErrorKind::BusyLoadingError | redis::ErrorKind::TryAgain
        )
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
    /// The passkey's credential is registered in the realm already.
    PasskeyTaken,
}

/// The unique constraints a write can run into, with their meaning: the name PostgreSQL
/// reports, and the table and columns SQLite names instead (it reports no constraint name).
const UNIQUE_RULES: [(Conflict, &str, &str); 5] = [
    (
        Conflict::IdempotencyKeyUsed,
        "documents_idempotency_key",
        "documents.realm, documents.client_id, documents.idempotency_key",
    ),
    (
        Conflict::EmailTaken,
        "accounts_realm_email_key",
        "accounts.realm, accounts.email_key",
    ),
    (
        Conflict::AhvTaken,
        "accounts_realm_ahv_key",
        "accounts.realm, accounts.ahv",
    ),
    (
        Conflict::PersonExists,
        "persons_realm_ahv_key",
        "persons.realm, persons.ahv",
    ),
    (
        Conflict::PasskeyTaken,
        "passkeys_realm_credential_key",
        "passkeys.realm, passkeys.credential_id",
    ),
];

/// What SQLite writes before the columns of the unique rule a write broke.
const SQLITE_UNIQUE_FAILED: &str = "UNIQUE constraint failed: ";

impl StoreError {
    /// Turns a unique-constraint violation into its meaning, by constraint name (PostgreSQL)
    /// or by the constraint's columns (SQLite).
    pub(crate) fn on_constraint(e: sqlx::Error) -> StoreError {
        let conflict = match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let columns = db.message().strip_prefix(SQLITE_UNIQUE_FAILED);
                UNIQUE_RULES
                    .iter()
                    .find(|(_, name, cols)| match db.constraint() {
                        Some(constraint) => constraint == *name,
                        None => columns == Some(*cols),
                    })
                    .map(|(conflict, _, _)| *conflict)
            }
            _ => None,
        };
        match conflict {
            Some(c) => StoreError::Conflict(c),
            None => StoreError::Database(e),
        }
    }
}

/// How long a request waits for a PostgreSQL connection. While the database cannot be
/// reached, every new connection fails at once and the pool keeps retrying until this runs
/// out: the request then fails (503) instead of holding its client for long.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

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
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
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

    /// The portal's own tables (`migrations/portal/`, one folder: both dialects agree), in the
    /// portal's own database.
    pub async fn migrate_portal(&self) -> Result<(), StoreError> {
        let migrator = sqlx::migrate!("./migrations/portal");
        match self {
            Db::Sqlite(pool) => migrator.run(pool).await?,
            Db::Postgres(pool) => migrator.run(pool).await?,
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
    use super::*;

    /// The migration files of a folder, by name, sorted.
    fn files(dir: &str) -> Vec<(String, String)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<(String, String)> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    /// The only lines in which the IdP's two dialects may differ: (file, SQLite, PostgreSQL).
    const DIALECT_LINES: [(&str, &str, &str); 1] = [(
        "0004_audit.sql",
        "    id           INTEGER PRIMARY KEY AUTOINCREMENT,",
        "    id           BIGSERIAL PRIMARY KEY,",
    )];

    #[test]
    fn the_two_dialects_differ_only_in_the_known_lines() {
        let (sqlite, postgres) = (files("migrations/sqlite"), files("migrations/postgres"));
        assert!(!sqlite.is_empty());
        let names = |files: &[(String, String)]| -> Vec<String> {
            files.iter().map(|(name, _)| name.clone()).collect()
        };
        assert_eq!(
            names(&sqlite),
            names(&postgres),
            "the same versions and names"
        );
        let versions: Vec<String> = names(&sqlite)
            .iter()
            .filter_map(|n| n.split('_').next().map(str::to_owned))
            .collect();
        let mut unique = versions.clone();
        unique.dedup();
        assert_eq!(versions, unique, "one file per version");
        let mut differing = Vec::new();
        for ((name, a), (_, b)) in sqlite.iter().zip(&postgres) {
            assert_eq!(a.lines().count(), b.lines().count(), "{name}: line counts");
            for (x, y) in a.lines().zip(b.lines()).filter(|(x, y)| x != y) {
                differing.push((name.as_str(), x, y));
            }
        }
        assert_eq!(differing, DIALECT_LINES, "the dialects drifted apart");
    }

    #[tokio::test]
    async fn a_portal_database_migrated_from_the_two_old_folders_still_opens() {
        // SHA-384 of `0001_documents.sql` as it was in `migrations/portal/{sqlite,postgres}`:
        // sqlx refuses to run when an applied migration's checksum changed.
        const OLD_CHECKSUM: &str = "acd3384606234ce9acfd1f227703253c589f211a1b1f402565df616b44c6021300cab71fe7977789f68f9d7a65e5d786";
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/portal.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate_portal().await.unwrap();
        let Db::Sqlite(pool) = &db else {
            unreachable!("a SQLite URL")
        };
        let (version, checksum): (i64, Vec<u8>) =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!((version, hex::encode(checksum).as_str()), (1, OLD_CHECKSUM));
    }

    /// Runs `sql` on a SQLite database and returns what the write ran into.
    async fn outcome(pool: &SqlitePool, sql: &str) -> Option<Conflict> {
        match sqlx::query(sql).execute(pool).await {
            Ok(_) => None,
            Err(e) => match StoreError::on_constraint(e) {
                StoreError::Conflict(c) => Some(c),
                other => panic!("{other}"),
            },
        }
    }

    #[tokio::test]
    async fn unique_violations_on_sqlite_are_told_by_their_columns() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| format!("sqlite://{}/{name}", dir.path().display());
        let (Db::Sqlite(idp), Db::Sqlite(portal)) = (
            Db::connect(&open("idp.db")).await.unwrap(),
            Db::connect(&open("portal.db")).await.unwrap(),
        ) else {
            unreachable!("SQLite URLs")
        };
        Db::Sqlite(idp.clone()).migrate().await.unwrap();
        Db::Sqlite(portal.clone()).migrate_portal().await.unwrap();
        let person = |id: &str| {
            format!(
                "INSERT INTO persons (id, realm, ahv, given_name, family_name, birth_date, \
                 language, created_at) VALUES ('{id}', 'AK00', '756.1', 'A', 'B', '1950-01-01', \
                 'fr', 0)"
            )
        };
        assert_eq!(outcome(&idp, &person("p1")).await, None);
        assert_eq!(
            outcome(&idp, &person("p2")).await,
            Some(Conflict::PersonExists)
        );
        let account = |id: &str, email: &str, ahv: &str| {
            format!(
                "INSERT INTO accounts (id, realm, email, email_key, password_hash, given_name, \
                 family_name, ahv, language, status, created_at, updated_at) VALUES ('{id}', \
                 'AK00', '{email}', '{email}', 'h', 'A', 'B', '{ahv}', 'fr', 'active', 0, 0)"
            )
        };
        assert_eq!(outcome(&idp, &account("a1", "a@x.ch", "756.1")).await, None);
        assert_eq!(
            outcome(&idp, &account("a2", "a@x.ch", "756.2")).await,
            Some(Conflict::EmailTaken)
        );
        assert_eq!(
            outcome(&idp, &account("a3", "b@x.ch", "756.1")).await,
            Some(Conflict::AhvTaken)
        );
        let passkey = |id: &str| {
            format!(
                "INSERT INTO passkeys (id, realm, account_id, credential_id, credential, name, \
                 created_at) VALUES ('{id}', 'AK00', 'a1', 'cred-1', '{{}}', 'Clé', 0)"
            )
        };
        assert_eq!(outcome(&idp, &passkey("k1")).await, None);
        assert_eq!(
            outcome(&idp, &passkey("k2")).await,
            Some(Conflict::PasskeyTaken)
        );
        let document = |id: &str| {
            format!(
                "INSERT INTO documents (id, realm, ahv, category, titles, issue_date, \
                 received_at, size, sha256, object_key, client_id, idempotency_key) VALUES \
                 ('{id}', 'AK00', '756.1', 'c', '{{}}', '2026-01-01', 0, 1, 's', 'k', 'caisse', \
                 'key-1')"
            )
        };
        assert_eq!(outcome(&portal, &document("d1")).await, None);
        assert_eq!(
            outcome(&portal, &document("d2")).await,
            Some(Conflict::IdempotencyKeyUsed)
        );
        let recipient = "INSERT INTO portal_recipients (realm, ahv, email, language, updated_at) \
                         VALUES ('AK00', '756.1', 'a@x.ch', 'fr', 0)";
        assert_eq!(outcome(&portal, recipient).await, None);
        let e = sqlx::query(recipient).execute(&portal).await.unwrap_err();
        assert!(
            matches!(StoreError::on_constraint(e), StoreError::Database(_)),
            "a rule with no meaning stays a database error"
        );
    }
}
