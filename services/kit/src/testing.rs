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
        Ok(Self {
            url,
            label: "sqlite",
            _dir: Some(dir),
            postgres: None,
        })
    }

    /// A fresh PostgreSQL database on the server at `SCHAKEL_TEST_DATABASE_URL`,
    /// or `None` when it is not set.
    pub async fn postgres() -> anyhow::Result<Option<Self>> {
        let admin_url = match std::env::var(TEST_DATABASE_URL) {
            Ok(url) if !url.is_empty() => url,
            _ => return Ok(None),
        };
        let name = format!("schakel_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to {TEST_DATABASE_URL}"))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        conn.close().await?;
        let url = with_database(&admin_url, &name);
        Ok(Some(Self {
            url,
            label: "postgres",
            _dir: None,
            postgres: Some((admin_url, name)),
        }))
    }
}

/// The databases every storage test runs on: SQLite always, PostgreSQL when
/// configured.
pub async fn databases() -> Vec<TestDatabase> {
    let mut all = vec![TestDatabase::sqlite().expect("temporary SQLite database")];
    if let Some(pg) = TestDatabase::postgres()
        .await
        .expect("PostgreSQL test database")
    {
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
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
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

/// A development PKI in a temporary directory, for servers and clients in tests.
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The files.
    pub pki: crate::devca::DevPki,
}

impl TestPki {
    /// Generates a CA, a server certificate and a client certificate.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pki = crate::devca::ensure_dev_pki(dir.path()).expect("dev PKI");
        Self { dir, pki }
    }

    /// Server settings: 127.0.0.1 port 0, this PKI, client certificates optional.
    pub fn server_config(&self) -> crate::config::ServerConfig {
        crate::config::ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: crate::config::TlsFiles {
                cert: Some(self.pki.server_cert.clone()),
                key: Some(self.pki.server_key.clone()),
                ca: Some(self.pki.ca.clone()),
                require_client_cert: false,
            },
            ..Default::default()
        }
    }

    /// Client TLS trusting this CA, without a client certificate.
    pub fn client_tls(&self) -> tonic::transport::ClientTlsConfig {
        crate::tls::client_config(&self.pki.ca, None).expect("client TLS")
    }

    /// Client TLS presenting a new certificate with subject `common_name`,
    /// issued by this CA.
    pub fn client_tls_as(&self, common_name: &str) -> tonic::transport::ClientTlsConfig {
        let issued = self
            .ca()
            .issue_client(common_name)
            .expect("client certificate");
        let cert = self.dir.path().join(format!("{common_name}.pem"));
        let key = self.dir.path().join(format!("{common_name}.key"));
        std::fs::write(&cert, issued.cert_pem).expect("write");
        std::fs::write(&key, issued.key_pem).expect("write");
        crate::tls::client_config(&self.pki.ca, Some((&cert, &key))).expect("client TLS")
    }

    /// Client TLS presenting a new certificate of Schakel's service
    /// `service` (common name `service`), and that certificate's RFC 8705
    /// confirmation, for [`TestIssuer::service_token`].
    pub fn service_client(&self, service: &str) -> ServiceClient {
        let (cert, key) = self.service_cert(service);
        let pem = std::fs::read_to_string(&cert).expect("certificate");
        ServiceClient {
            tls: crate::tls::client_config(&self.pki.ca, Some((&cert, &key))).expect("client TLS"),
            confirmation: crate::auth::Confirmation::of_pem(&pem).expect("confirmation"),
        }
    }

    /// A certificate and key for one of Schakel's services (subject common
    /// name `name`, valid for the names `name`, localhost and 127.0.0.1),
    /// usable as server and mTLS client.
    pub fn service_cert(&self, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let issued = self
            .ca()
            .issue_server(name, &[name, "localhost", "127.0.0.1"])
            .expect("service certificate");
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, issued.cert_pem).expect("write");
        std::fs::write(&key, issued.key_pem).expect("write");
        (cert, key)
    }

    fn ca(&self) -> crate::devca::DevCa {
        crate::devca::DevCa::from_pem(
            &std::fs::read_to_string(&self.pki.ca).expect("CA certificate"),
            &std::fs::read_to_string(self.dir.path().join("ca.key")).expect("CA key"),
        )
        .expect("CA")
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// What a test needs to call as one of Schakel's services: its mTLS client
/// configuration and the confirmation its tokens are bound to.
pub struct ServiceClient {
    /// Client TLS presenting the service's certificate.
    pub tls: tonic::transport::ClientTlsConfig,
    /// The certificate's `cnf` (`x5t#S256`).
    pub confirmation: crate::auth::Confirmation,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A server running in the background of a test; stops when dropped.
pub struct RunningServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningServer {
    /// Starts `app`. Its listener is already bound, so clients can connect at once.
    pub fn start(app: crate::server::App) -> Self {
        let addr = app.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves one service's routes (built with the server's limits) over
    /// TLS with `pki`'s server certificate on a free port, trusting tokens
    /// `verifier` accepts, and starts it.
    pub async fn serve(
        pki: &TestPki,
        verifier: std::sync::Arc<crate::auth::TokenVerifier>,
        service_name: &str,
        routes: impl FnOnce(&crate::config::Limits) -> tonic::service::Routes,
    ) -> Self {
        let config = pki.server_config();
        let routes = routes(&config.limits);
        let app = crate::server::App::build(config, routes, vec![service_name.into()], verifier)
            .await
            .expect("test server");
        Self::start(app)
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A channel to the server.
    pub fn channel(&self, tls: tonic::transport::ClientTlsConfig) -> tonic::transport::Channel {
        crate::client::channel(&self.url(), tls).expect("channel")
    }

    /// Signals shutdown and waits for the server to finish draining.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts a call failed with `code`; returns the status.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
) -> tonic::Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The field named by an `INVALID_ARGUMENT`'s `BadRequest` details.
#[track_caller]
pub fn bad_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_else(|| panic!("no BadRequest details in {status:?}"))
}

/// The `ErrorInfo` reason code of a status.
#[track_caller]
pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_else(|| panic!("no ErrorInfo details in {status:?}"))
}

/// An audit sink that can be switched off, to show that callers fail closed:
/// while it is down every append fails as if the log were unreachable.
pub struct SwitchableSink {
    inner: std::sync::Arc<dyn crate::audit::AuditSink>,
    down: std::sync::atomic::AtomicBool,
}

impl SwitchableSink {
    /// A sink passing appends on to `inner` while up.
    pub fn new(inner: std::sync::Arc<dyn crate::audit::AuditSink>) -> Self {
        Self {
            inner,
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Takes the log down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

impl crate::audit::AuditSink for SwitchableSink {
    fn append(
        &self,
        entry: schakel_proto::v1::AuditEntry,
        append_id: String,
    ) -> crate::audit::AppendFuture<'_> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async {
                Err(crate::audit::AuditError::Unavailable(
                    "switched off by the test".into(),
                ))
            });
        }
        self.inner.append(entry, append_id)
    }

    fn probe(&self) -> crate::audit::ProbeFuture<'_> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async {
                Err(crate::audit::AuditError::Unavailable(
                    "switched off by the test".into(),
                ))
            });
        }
        self.inner.probe()
    }
}

/// An audit sink whose first `lost` appends reach the log but answer as
/// if they had timed out: what a caller sees when the log committed and
/// the reply was lost.
pub struct LostReplySink {
    inner: std::sync::Arc<dyn crate::audit::AuditSink>,
    lost: std::sync::atomic::AtomicUsize,
}

impl LostReplySink {
    /// A sink that loses the replies of the first `lost` appends to `inner`.
    pub fn new(inner: std::sync::Arc<dyn crate::audit::AuditSink>, lost: usize) -> Self {
        Self {
            inner,
            lost: std::sync::atomic::AtomicUsize::new(lost),
        }
    }
}

impl crate::audit::AuditSink for LostReplySink {
    fn append(
        &self,
        entry: schakel_proto::v1::AuditEntry,
        append_id: String,
    ) -> crate::audit::AppendFuture<'_> {
        Box::pin(async move {
            let receipt = self.inner.append(entry, append_id).await?;
            let lose = self
                .lost
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok();
            if lose {
                Err(crate::audit::AuditError::Unavailable(
                    "reply lost by the test".into(),
                ))
            } else {
                Ok(receipt)
            }
        })
    }

    fn probe(&self) -> crate::audit::ProbeFuture<'_> {
        self.inner.probe()
    }
}

/// An audit sink that holds every append until the test opens it: what a
/// caller sees while the network to the log hangs.
pub struct GatedSink {
    inner: std::sync::Arc<dyn crate::audit::AuditSink>,
    open: tokio::sync::watch::Sender<bool>,
    arrivals: tokio::sync::watch::Sender<usize>,
}

impl GatedSink {
    /// A closed gate in front of `inner`.
    pub fn new(inner: std::sync::Arc<dyn crate::audit::AuditSink>) -> Self {
        Self {
            inner,
            open: tokio::sync::watch::channel(false).0,
            arrivals: tokio::sync::watch::channel(0).0,
        }
    }

    /// Resolves once `n` appends have reached the gate while it was closed.
    pub async fn arrived(&self, n: usize) {
        let _ = self.arrivals.subscribe().wait_for(|a| *a >= n).await;
    }

    /// Opens (`true`) or closes the gate.
    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
}

impl crate::audit::AuditSink for GatedSink {
    fn append(
        &self,
        entry: schakel_proto::v1::AuditEntry,
        append_id: String,
    ) -> crate::audit::AppendFuture<'_> {
        let mut open = self.open.subscribe();
        Box::pin(async move {
            if !*open.borrow() {
                self.arrivals.send_modify(|a| *a += 1);
            }
            let _ = open.wait_for(|o| *o).await;
            self.inner.append(entry, append_id).await
        })
    }

    fn probe(&self) -> crate::audit::ProbeFuture<'_> {
        self.inner.probe()
    }
}

/// Makes every transaction that writes a row of `table` fail at COMMIT (a
/// deferred constraint that can never hold): the statements succeed, the
/// commit does not, as with a serialisation failure or a lost connection.
pub async fn fail_commits_writing(db: &crate::db::Database, table: &str) -> anyhow::Result<()> {
    let pool = db.pool();
    let statements: Vec<String> = match db.backend() {
        crate::db::Backend::Sqlite => vec![
            "CREATE TABLE IF NOT EXISTS injected_parent (id INTEGER PRIMARY KEY)".into(),
            "CREATE TABLE IF NOT EXISTS injected_failure (parent INTEGER \
             REFERENCES injected_parent (id) DEFERRABLE INITIALLY DEFERRED)"
                .into(),
            format!(
                "CREATE TRIGGER injected_insert_{table} AFTER INSERT ON {table} \
                 BEGIN INSERT INTO injected_failure VALUES (1); END"
            ),
            format!(
                "CREATE TRIGGER injected_update_{table} AFTER UPDATE ON {table} \
                 BEGIN INSERT INTO injected_failure VALUES (1); END"
            ),
        ],
        crate::db::Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected commit failure'; END $$ LANGUAGE plpgsql"
                .into(),
            format!(
                "CREATE CONSTRAINT TRIGGER injected_{table} AFTER INSERT OR UPDATE ON {table} \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION injected_failure()"
            ),
        ],
    };
    for statement in statements {
        sqlx::query(&statement).execute(pool).await?;
    }
    Ok(())
}

/// Mints tokens for any principal, signed by a test key, with a verifier
/// that trusts exactly that key: for services tested without identity.
pub struct TestIssuer {
    key: ed25519_dalek::SigningKey,
    kid: String,
    config: crate::config::AuthConfig,
}

impl TestIssuer {
    /// A fresh random key.
    pub fn new() -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self {
            key,
            kid: format!("test-{}", uuid::Uuid::new_v4().simple()),
            config: crate::config::AuthConfig::default(),
        }
    }

    /// A verifier trusting this issuer's key.
    pub fn verifier(&self) -> std::sync::Arc<crate::auth::TokenVerifier> {
        let jwks = crate::auth::JwkSet {
            keys: vec![crate::auth::Jwk::ed25519(
                &self.kid,
                &self.key.verifying_key().to_bytes(),
            )],
            revoked: vec![],
        };
        let json = serde_json::to_string(&jwks).expect("jwks");
        let fetch: crate::auth::JwksFetcher = std::sync::Arc::new(move || {
            let json = json.clone();
            Box::pin(async move { Ok(json) })
        });
        std::sync::Arc::new(crate::auth::TokenVerifier::new(self.config.clone(), fetch))
    }

    /// A token for `subject` of kind `kind` in organisation `org` of partner
    /// type `partner_type`, holding `roles`.
    pub fn token(
        &self,
        kind: crate::auth::PrincipalKind,
        subject: &str,
        org: &str,
        partner_type: &str,
        roles: &[crate::auth::Role],
    ) -> String {
        self.sign(kind, subject, org, partner_type, roles, None)
    }

    /// The token of Schakel's service `service` (subject `svc-<service>`),
    /// bound (RFC 8705) to the client certificate `client` presents: see
    /// [`TestPki::service_client`].
    pub fn service_token(&self, service: &str, client: &ServiceClient) -> String {
        self.sign(
            crate::auth::PrincipalKind::InternalService,
            &format!("{}{service}", crate::auth::INTERNAL_SUBJECT_PREFIX),
            "",
            "",
            &[],
            Some(client.confirmation.clone()),
        )
    }

    fn sign(
        &self,
        kind: crate::auth::PrincipalKind,
        subject: &str,
        org: &str,
        partner_type: &str,
        roles: &[crate::auth::Role],
        cnf: Option<crate::auth::Confirmation>,
    ) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let now = crate::time::Clock::System.now();
        let claims = crate::auth::Claims {
            iss: self.config.issuer.clone(),
            sub: subject.into(),
            aud: self.config.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: uuid::Uuid::new_v4().to_string(),
            org: org.into(),
            ptype: partner_type.into(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            region: "leuven".into(),
            knd: kind.as_str().into(),
            cnf,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let der = self.key.to_pkcs8_der().expect("pkcs8");
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("token")
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
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
        assert_eq!(
            with_database("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
