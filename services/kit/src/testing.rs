//! Test support shared by every service's tests: fresh databases on both
//! backends, and a development PKI.
//!
//! Every storage test runs on SQLite, and also on PostgreSQL when
//! `SCHAKEL_TEST_DATABASE_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`).
//! Each test gets a database of its own, removed when the [`TestDatabase`] drops.

use anyhow::Context;
use sqlx::{Connection, Executor};

/// The environment variable naming the PostgreSQL server for tests.
pub const TEST_DATABASE_URL: &str = "SCHAKEL_TEST_DATABASE_URL";

/// A fresh, empty database for one test.
pub struct TestDatabase {
    url: String,
    label: &'static str,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`, for assertion messages.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// A fresh SQLite database in a temporary directory.
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
        Ok(Self { url, label: "sqlite", _dir: Some(dir), postgres: None })
    }

    /// A fresh PostgreSQL database on the server at `SCHAKEL_TEST_DATABASE_URL`,
    /// or `None` when it is not set.
    pub async fn postgres() -> anyhow::Result<Option<Self>> {
        let Ok(admin_url) = std::env::var(TEST_DATABASE_URL) else { return Ok(None) };
        let name = format!("schakel_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to {TEST_DATABASE_URL}"))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        conn.close().await?;
        let url = with_database(&admin_url, &name);
        Ok(Some(Self { url, label: "postgres", _dir: None, postgres: Some((admin_url, name)) }))
    }
}

/// The databases every storage test runs on: SQLite always, PostgreSQL when
/// configured.
pub async fn databases() -> Vec<TestDatabase> {
    let mut all = vec![TestDatabase::sqlite().expect("temporary SQLite database")];
    if let Some(pg) = TestDatabase::postgres().await.expect("PostgreSQL test database") {
        all.push(pg);
    }
    all
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("note: could not drop a test database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://h/test?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
