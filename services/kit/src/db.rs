//! The database pool: SQLite by default (embedded, one file per service), and
//! PostgreSQL by URL (one schema per service, in production).
//!
//! Both run the same SQL through sqlx's `Any` driver; each service ships its
//! migrations for both backends and they run on start, idempotently and safely
//! with several instances starting at once.

use std::time::Duration;

use anyhow::Context;
use sqlx::{AnyPool, Executor, any::AnyPoolOptions, migrate::Migrator};

/// Which database engine a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A service's migrations for both backends.
#[derive(Clone, Copy)]
pub struct Migrations {
    /// For SQLite.
    pub sqlite: &'static Migrator,
    /// For PostgreSQL.
    pub postgres: &'static Migrator,
}

/// A service's database: a pool, the backend, and the service's schema.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects to `url` (`sqlite://...` or `postgres://...`), creates the
    /// service's `schema` (PostgreSQL) and runs its migrations.
    pub async fn connect(url: &str, schema: &str, migrations: Migrations) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        anyhow::ensure!(
            !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "schema name {schema:?} must be lower-case letters and underscores"
        );
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("database URL must start with sqlite: or postgres:");
        };
        let pool = match backend {
            Backend::Sqlite => connect_sqlite(url).await?,
            Backend::Postgres => connect_postgres(url, schema).await?,
        };
        let migrator = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        // PostgreSQL: sqlx holds an advisory lock while it migrates. SQLite
        // has none: a lock file beside the database serialises instances.
        let lock = match backend {
            Backend::Sqlite => {
                let url = url.to_owned();
                tokio::task::spawn_blocking(move || sqlite_migration_lock(&url))
                    .await
                    .context("waiting for the migration lock")??
            }
            Backend::Postgres => None,
        };
        migrator
            .run(&pool)
            .await
            .with_context(|| format!("migrating schema {schema}"))?;
        drop(lock);
        Ok(Self { pool, backend })
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes an exclusive lock on `<database file>.migrate-lock` (flock), held
/// until the returned file is dropped; None for in-memory databases.
fn sqlite_migration_lock(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return Ok(None);
    }
    let lock = format!("{path}.migrate-lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .with_context(|| format!("opening {lock}"))?;
    file.lock().with_context(|| format!("locking {lock}"))?;
    Ok(Some(file))
}

async fn connect_sqlite(url: &str) -> anyhow::Result<AnyPool> {
    let url = if url.contains('?') || url.contains(":memory:") {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        // An embedded database does not drop connections; skip the ping on
        // every acquire (it is a round trip to the worker thread).
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL with synchronous=FULL: a commit is durable when it returns.
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 10000",
                    // 64 MiB page cache per connection; temporary b-trees in memory.
                    "PRAGMA cache_size = -65536",
                    "PRAGMA temp_store = MEMORY",
                ] {
                    conn.execute(pragma).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .context("opening SQLite database")
}

async fn connect_postgres(url: &str, schema: &str) -> anyhow::Result<AnyPool> {
    // Create the schema once, serialised across instances by an advisory lock
    // (CREATE SCHEMA IF NOT EXISTS alone can race on the catalog).
    {
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        let mut conn = admin.acquire().await?;
        conn.execute("SELECT pg_advisory_lock(7349120551)").await?;
        let created = conn
            .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
            .await;
        conn.execute("SELECT pg_advisory_unlock(7349120551)")
            .await?;
        created.with_context(|| format!("creating schema {schema}"))?;
        drop(conn);
        admin.close().await;
    }
    let set_path = format!("SET search_path TO {schema}");
    AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let set_path = set_path.clone();
            Box::pin(async move {
                conn.execute(set_path.as_str()).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .context("connecting to PostgreSQL")
}
