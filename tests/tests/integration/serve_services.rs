//! Microservices mode: `schakel bootstrap`, then `schakel serve` of audit,
//! identity, legal-basis, policy and broker as separate processes with mTLS
//! between them, from one config file, on PostgreSQL when
//! `SCHAKEL_TEST_DATABASE_URL` is set and on SQLite always. The seed scenario
//! runs through them (register, circle, phase, contribute, an information
//! request answered, need-to-know reads), one trace spans the services, the
//! audit process is killed and restarted, a privacy officer verifies the log
//! with `schakel audit verify`, SIGTERM exits cleanly. `schakel serve all` runs
//! the same services in one process.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use crate::support::{schakel_bin, stdout_ok};
use schakel_kit::testing::{TestDatabase, TestPki};

/// A port that was free a moment ago: the two services must know each
/// other's address before either starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `auth.jwks_max_age` of these tests (seconds): the bound within which a
/// retired key or a disabled user stops working in every process.
const JWKS_MAX_AGE: u64 = 4;

fn write_config(
    dir: &Path,
    pki: &TestPki,
    database_url: &str,
    identity_port: u16,
    audit_port: u16,
) -> std::path::PathBuf {
    let master = dir.join("master.key");
    // 32 random bytes, base64: any operator's `openssl rand -base64 32`.
    std::fs::write(&master, "q3Zb5TfE0x8b3M2Gm6Yx7n0u0m1j4D9Q8F7v6W5e4R0=").unwrap();
    let audit_key = dir.join("audit.key");
    std::fs::write(&audit_key, "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").unwrap();
    let config = dir.join("schakel.toml");
    let text = format!(
        "database_url = \"{database_url}\"\n\n\
         [services]\naudit_url = \"https://127.0.0.1:{audit_port}\"\n\n\
         [auth]\nidentity_url = \"https://127.0.0.1:{identity_port}\"\n\
         jwks_max_age = {JWKS_MAX_AGE}\njwks_refresh_interval = 1\n\n\
         [server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n\
         require_client_cert = true\n\n\
         [identity]\nmaster_key_file = \"{master}\"\n\n\
         [audit]\nsigning_key_file = \"{audit_key}\"\norigin = \"e2e.schakel/audit\"\n",
        cert = pki.pki.server_cert.display(),
        key = pki.pki.server_key.display(),
        ca = pki.pki.ca.display(),
        master = master.display(),
        audit_key = audit_key.display(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn bootstrap(config: &Path, username: &str) -> Output {
    let mut child = Command::new(schakel_bin())
        .args(["bootstrap", "--config"])
        .arg(config)
        .args([
            "--organisation-name",
            "Justitiehuis Leuven",
            "--region",
            "leuven",
            "--kbo",
            "0308.357.159",
        ])
        .args([
            "--username",
            username,
            "--display-name",
            "Eerste coördinator",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"een sterk wachtwoord\n")
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Spans received over OTLP: (service.name, span).
type Received = Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)>;

/// An in-process OTLP trace receiver (the collector's gRPC service), shared
/// by the tests of this file; each test looks for its own trace id.
struct Collector {
    endpoint: String,
    spans: std::sync::Arc<std::sync::Mutex<Received>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
    runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Receiver {
    spans: std::sync::Arc<std::sync::Mutex<Received>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Receiver
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let mut received = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref().and_then(|v| v.value.clone()) {
                    Some(Value::StringValue(s)) => Some(s),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    received.push((service.clone(), span));
                }
            }
        }
        drop(received);
        self.arrived.notify_waiters();
        Ok(tonic::Response::new(Default::default()))
    }
}

fn collector() -> &'static Collector {
    static COLLECTOR: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let receiver = Receiver {
            spans: Default::default(),
            arrived: Default::default(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer::new(receiver.clone());
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Collector {
            endpoint,
            spans: receiver.spans,
            arrived: receiver.arrived,
            runtime,
        }
    })
}

/// Waits until spans of `trace_id` from every one of `services` arrived;
/// returns every span of that trace. Bounded, so that a broken export fails
/// the test instead of hanging it.
fn spans_of(trace_id: &[u8], services: &[&str]) -> Received {
    let c = collector();
    c.runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let arrived = c.arrived.notified();
            let spans: Received = c
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s)| s.trace_id == trace_id)
                .cloned()
                .collect();
            if services
                .iter()
                .all(|svc| spans.iter().any(|(s, _)| s == svc))
            {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "spans of {services:?} did not all arrive; got {:?}",
                    spans
                        .iter()
                        .map(|(s, sp)| (s, &sp.name))
                        .collect::<Vec<_>>()
                );
            }
        }
    })
}

/// Runs `schakel <args>` against `url` with `credentials` in its environment
/// and `stdin` as its input.
fn run_cli(
    url: &str,
    ca: &Path,
    credentials: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(schakel_bin())
        .args(args)
        .env("SCHAKEL_URL", url)
        .env("SCHAKEL_CA_CERT", ca)
        // Every port requires a client certificate (mTLS), people's too.
        .env("SCHAKEL_CLIENT_CERT", ca.with_file_name("client.pem"))
        .env("SCHAKEL_CLIENT_KEY", ca.with_file_name("client.key"))
        // `audit verify` keeps what it verified beside this run's PKI, not
        // in the home directory.
        .env(
            "SCHAKEL_AUDIT_STATE_DIR",
            ca.parent().unwrap_or(ca).join("verify-state"),
        )
        .envs(credentials.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The second coordinator of these tests (bootstrapped too): approves
/// the first's oversight accounts and agreements (four-eyes).
const SECOND: [(&str, &str); 2] = [
    ("SCHAKEL_USERNAME", "tweede.coordinator"),
    ("SCHAKEL_PASSWORD", "een sterk wachtwoord"),
];

/// The coordinator creates a user (`username`, organisation id, role) at
/// identity (`url`), whom the second coordinator approves when the role is
/// an oversight role, and who then logs in: the user's access token.
fn user_token(
    url: &str,
    ca: &Path,
    coordinator: &[(&str, &str)],
    (username, organisation, role): (&str, &str, &str),
) -> String {
    let args = [
        "user",
        "create",
        "--username",
        username,
        "--display-name",
        "Gebruiker",
        "--organisation",
        organisation,
        "--role",
        role,
        "--password-stdin",
    ];
    let created = stdout_ok(&run_cli(
        url,
        ca,
        coordinator,
        &args,
        Some("een lang wachtwoord\n"),
    ));
    if ["privacy_officer", "coordinator"].contains(&role) {
        approve_user(url, ca, &created);
    }
    let login = [
        ("SCHAKEL_USERNAME", username),
        ("SCHAKEL_PASSWORD", "een lang wachtwoord"),
    ];
    stdout_ok(&run_cli(url, ca, &login, &["login"], None))
        .trim()
        .to_owned()
}

/// The second coordinator approves the user whose line `user create` printed.
fn approve_user(url: &str, ca: &Path, created: &str) {
    assert!(created.contains("pending-approval"), "{created}");
    let id = created.split('\t').next().unwrap();
    let approved = stdout_ok(&run_cli(url, ca, &SECOND, &["user", "approve", id], None));
    assert!(approved.contains("\tactive\t"), "{approved}");
}

/// A coordinator (`token`) creates an agreement for district leuven between
/// `parties` (purposes triage and case_building, valid 2026-2099, signed
/// `document`) at legal-basis (`url`) and a second coordinator
/// (`approver`'s token) records its approval (four-eyes): the agreement id
/// and what `agreement create` printed.
fn agreement_in_force(
    url: &str,
    ca: &Path,
    (token, approver): (&str, &str),
    parties: &[&str],
    document: &Path,
) -> (String, String) {
    let credentials = [("SCHAKEL_TOKEN", token)];
    let mut args = vec!["agreement", "create", "--title", "Ketenaanpak Leuven"];
    args.extend(["--district", "leuven"]);
    for party in parties {
        args.extend(["--party", party]);
    }
    args.extend(["--purpose", "triage", "--purpose", "case_building"]);
    args.extend(["--valid-from", "2026-01-01", "--valid-until", "2099-01-01"]);
    args.extend(["--document", document.to_str().unwrap()]);
    let created = stdout_ok(&run_cli(url, ca, &credentials, &args, None));
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("agreement_id: "))
        .unwrap()
        .to_owned();
    let approve = [
        "agreement",
        "approve",
        &id,
        "--agreement-version",
        "1",
        "--office",
        "Parket Leuven",
        "--prosecutor",
        "Procureur",
        "--decided",
        "2026-01-01",
        "--reference",
        "LE/1",
        "--reasons",
        "Integriteit van personen.",
    ];
    let refused = run_cli(url, ca, &credentials, &approve, None);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PERMISSION_DENIED"),
        "the coordinator who wrote it cannot approve it: {refused:?}"
    );
    stdout_ok(&run_cli(
        url,
        ca,
        &[("SCHAKEL_TOKEN", approver)],
        &approve,
        None,
    ));
    (id, created)
}

/// The environment that gives a service its own certificate and key.
fn own_cert(
    (cert, key): &(std::path::PathBuf, std::path::PathBuf),
) -> [(&'static str, &std::ffi::OsStr); 2] {
    [
        ("SCHAKEL_SERVER__TLS__CERT", cert.as_os_str()),
        ("SCHAKEL_SERVER__TLS__KEY", key.as_os_str()),
    ]
}

/// Starts `schakel serve <service>` on `port` with extra environment.
fn serve_with(config: &Path, service: &str, port: u16, env: &[(&str, &std::ffi::OsStr)]) -> Child {
    let mut child = Command::new(schakel_bin())
        .args(["serve", service, "--config"])
        .arg(config)
        .envs(env.iter().copied())
        // Spans go to this test's OTLP receiver, exported every 100 ms.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector().endpoint.as_str())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("SCHAKEL_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(config.with_extension(format!("{service}.log"))).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    assert_eq!(
        line.trim(),
        format!("schakel {service} listening on https://127.0.0.1:{port}")
    );
    child
}

fn serve_and_administer(database_url: &str, label: &str) {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let (identity_port, audit_port) = (free_port(), free_port());
    let config = write_config(dir.path(), &pki, database_url, identity_port, audit_port);

    // Two coordinators (two people), so that the first four-eyes approval
    // can happen; a third is refused.
    stdout_ok(&bootstrap(&config, "eerste.coordinator"));
    stdout_ok(&bootstrap(&config, "tweede.coordinator"));
    let again = bootstrap(&config, "derde.coordinator");
    assert!(!again.status.success(), "bootstrapping a third must fail");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("FAILED_PRECONDITION"),
        "{again:?}"
    );

    // Every service with its own certificate (common name and DNS name the
    // service's name): a peer accepts only the certificate of the service it
    // calls.
    let audit_cert = pki.service_cert("audit");
    let identity_cert = pki.service_cert("identity");
    let mut audit = serve_with(&config, "audit", audit_port, &own_cert(&audit_cert));
    let mut identity = serve_with(
        &config,
        "identity",
        identity_port,
        &own_cert(&identity_cert),
    );
    let identity_url = format!("https://127.0.0.1:{identity_port}");
    let audit_url = format!("https://127.0.0.1:{audit_port}");

    let run = |url: &str, credentials: &[(&str, &str)], args: &[&str], stdin: Option<&str>| {
        run_cli(url, &pki.pki.ca, credentials, args, stdin)
    };
    // The readiness probe's command: gRPC health over TLS.
    let health = stdout_ok(&run(&audit_url, &[], &["health"], None));
    assert_eq!(health.trim(), "SERVING", "{label}");
    let health = stdout_ok(&run(
        &identity_url,
        &[],
        &["health", "--service", "schakel.v1.IdentityService"],
        None,
    ));
    assert_eq!(health.trim(), "SERVING", "{label}");
    let coordinator = [
        ("SCHAKEL_USERNAME", "eerste.coordinator"),
        ("SCHAKEL_PASSWORD", "een sterk wachtwoord"),
    ];
    let cli = |args: &[&str]| run(&identity_url, &coordinator, args, None);

    let who = stdout_ok(&cli(&["whoami"]));
    assert!(who.contains("roles: coordinator"), "{label}: {who}");
    stdout_ok(&cli(&[
        "org",
        "create",
        "--name",
        "CAW Oost-Brabant",
        "--partner-type",
        "caw",
        "--region",
        "leuven",
        "--kbo",
        "0207437468",
    ]));
    let orgs = stdout_ok(&cli(&["org", "list"]));
    assert_eq!(orgs.lines().count(), 2, "{label}: {orgs}");
    let rotated = stdout_ok(&cli(&["key", "rotate"]));
    assert!(rotated.contains("published: "), "{rotated}");

    // The Veilig Huis's privacy officer (who sees the whole log) verifies the
    // audit log these changes went into.
    let veilig_huis = stdout_ok(&cli(&[
        "org",
        "create",
        "--name",
        "Veilig Huis Leuven",
        "--partner-type",
        "veilig_huis",
        "--region",
        "leuven",
        "--kbo",
        "1000000813",
    ]));
    let org = veilig_huis.split('\t').next().unwrap().to_owned();
    let create = [
        "user",
        "create",
        "--username",
        "dpo.vh",
        "--display-name",
        "DPO",
        "--organisation",
        &org,
    ];
    let mut args = create.to_vec();
    args.extend(["--role", "privacy_officer", "--password-stdin"]);
    let created = run(
        &identity_url,
        &coordinator,
        &args,
        Some("nog een sterk wachtwoord\n"),
    );
    if !created.status.success() {
        let log =
            std::fs::read_to_string(config.with_extension("identity.log")).unwrap_or_default();
        panic!("{created:?}\n{log}");
    }
    // A privacy officer waits for the second coordinator.
    approve_user(
        &identity_url,
        &pki.pki.ca,
        &String::from_utf8_lossy(&created.stdout),
    );
    let token = stdout_ok(&run(
        &identity_url,
        &[
            ("SCHAKEL_USERNAME", "dpo.vh"),
            ("SCHAKEL_PASSWORD", "nog een sterk wachtwoord"),
        ],
        &["login"],
        None,
    ));
    let dpo = |args: &[&str]| run(&audit_url, &[("SCHAKEL_TOKEN", token.trim())], args, None);
    let info = stdout_ok(&dpo(&["audit", "info"]));
    let key_text = info
        .lines()
        .find_map(|l| l.strip_prefix("verifier_key: "))
        .unwrap()
        .to_owned();
    let verified = stdout_ok(&dpo(&[
        "audit",
        "verify",
        "--quiet",
        "--verifier-key",
        &key_text,
    ]));
    assert!(verified.starts_with("OK: "), "{label}: {verified}");
    let logged = stdout_ok(&dpo(&["audit", "query"]));
    for action in [
        "ORGANISATION_CREATE",
        "SIGNING_KEY_ROTATE",
        "USER_CREATE",
        "TOKEN_ISSUE",
    ] {
        assert!(
            logged.contains(action),
            "{label}: {action} missing from\n{logged}"
        );
    }

    // Legal basis as its own process, with its own certificate: it gets its
    // service token from identity for that certificate, looks the parties up
    // at identity and records every change in the audit log.
    let legal_basis_port = free_port();
    let (cert, key) = pki.service_cert("legal-basis");
    let mut legal_basis = serve_with(
        &config,
        "legal-basis",
        legal_basis_port,
        &[
            ("SCHAKEL_SERVER__TLS__CERT", cert.as_os_str()),
            ("SCHAKEL_SERVER__TLS__KEY", key.as_os_str()),
        ],
    );
    let legal_basis_url = format!("https://127.0.0.1:{legal_basis_port}");
    let coordinator_token = stdout_ok(&cli(&["login"]));
    let lb = |args: &[&str]| {
        run(
            &legal_basis_url,
            &[("SCHAKEL_TOKEN", coordinator_token.trim())],
            args,
            None,
        )
    };
    let caw = orgs
        .lines()
        .find(|l| l.contains("\tcaw\t"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    let second_token = stdout_ok(&run(&identity_url, &SECOND, &["login"], None));
    let (_, created) = agreement_in_force(
        &legal_basis_url,
        &pki.pki.ca,
        (coordinator_token.trim(), second_token.trim()),
        &[&caw, &org],
        &config,
    );
    assert!(created.contains("\tveilig_huis\n"), "{label}: {created}");
    let check = stdout_ok(&lb(&[
        "agreement",
        "check",
        "--organisation",
        &caw,
        "--purpose",
        "triage",
        "--district",
        "leuven",
    ]));
    assert!(check.starts_with("allowed: "), "{label}: {check}");
    let logged = stdout_ok(&dpo(&["audit", "query"]));
    assert!(logged.contains("AGREEMENT_APPROVE"), "{label}: {logged}");
    let verified = stdout_ok(&dpo(&[
        "audit",
        "verify",
        "--quiet",
        "--verifier-key",
        &key_text,
    ]));
    assert!(verified.starts_with("OK: "), "{label}: {verified}");

    // Policy as its own process: version 1 from the repository's files on
    // first start, recorded in the audit log through its service token.
    let policy_port = free_port();
    let (cert, key) = pki.service_cert("policy");
    let mut policy = serve_with(
        &config,
        "policy",
        policy_port,
        &[
            ("SCHAKEL_SERVER__TLS__CERT", cert.as_os_str()),
            ("SCHAKEL_SERVER__TLS__KEY", key.as_os_str()),
        ],
    );
    let listed = stdout_ok(&run(
        &format!("https://127.0.0.1:{policy_port}"),
        &[("SCHAKEL_TOKEN", coordinator_token.trim())],
        &["policy", "list"],
        None,
    ));
    assert!(listed.starts_with("1\tactive\tbase 0"), "{label}: {listed}");
    let logged = stdout_ok(&dpo(&["audit", "query"]));
    assert!(logged.contains("POLICY_APPROVE"), "{label}: {logged}");

    // The broker as its own process: it follows the policy service, asks
    // legal-basis for the basis of every decision and appends to audit.
    let broker_port = free_port();
    let (cert, key) = pki.service_cert("broker");
    let broker_key = dir.path().join("broker-master.key");
    std::fs::write(&broker_key, "Kx8w1cQyXb2m0W4u7oZt9yRr3eVn5pLs6dHgJf0aAqI=").unwrap();
    let legal_basis_url_env = std::ffi::OsString::from(&legal_basis_url);
    let policy_url_env = std::ffi::OsString::from(format!("https://127.0.0.1:{policy_port}"));
    let mut broker = serve_with(
        &config,
        "broker",
        broker_port,
        &[
            ("SCHAKEL_SERVER__TLS__CERT", cert.as_os_str()),
            ("SCHAKEL_SERVER__TLS__KEY", key.as_os_str()),
            ("SCHAKEL_BROKER__MASTER_KEY_FILE", broker_key.as_os_str()),
            ("SCHAKEL_SERVICES__LEGAL_BASIS_URL", &legal_basis_url_env),
            ("SCHAKEL_SERVICES__POLICY_URL", &policy_url_env),
        ],
    );
    // An aanmelder of the CAW registers a family and reads it back.
    let aanmelder = user_token(
        &identity_url,
        &pki.pki.ca,
        &coordinator,
        ("aanmelder.caw", &caw, "aanmelder"),
    );
    let broker_url = format!("https://127.0.0.1:{broker_port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Channels spawn their connection task on the runtime.
    let _inside = runtime.enter();
    let mut client = broker_client(&broker_url, &pki.pki.ca, aanmelder);
    let (dossier_id, released) = runtime.block_on(register_and_read(&mut client));
    assert!(
        released.contains(&"registration.situation_description".to_owned()),
        "{label}: {released:?}"
    );
    // The seed scenario goes on: the CAW's team member brings the Veilig Huis
    // into the circle, moves the dossier to case building and contributes;
    // asks the Veilig Huis for its risk assessment, which it answers; each
    // then reads what the policy releases to it.
    let team_user = |username: &str, organisation: &str| {
        let token = user_token(
            &identity_url,
            &pki.pki.ca,
            &coordinator,
            (username, organisation, "team_member"),
        );
        broker_client(&broker_url, &pki.pki.ca, token)
    };
    let mut team_caw = team_user("team.caw", &caw);
    let mut team_vh = team_user("team.vh", &org);
    runtime.block_on(case_building(
        &mut team_caw,
        &mut team_vh,
        &dossier_id,
        &org,
        label,
    ));
    let logged = stdout_ok(&dpo(&["audit", "query"]));
    for action in [
        "DOSSIER_REGISTER",
        "DOSSIER_READ",
        "PARTICIPANT_ADD",
        "PHASE_ADVANCE",
        "CONTRIBUTE",
        "INFORMATION_REQUEST_ANSWER",
    ] {
        assert!(
            logged.contains(action),
            "{label}: {action} missing:\n{logged}"
        );
    }

    // One trace per request across the services: a read in a trace the
    // partner system started reaches broker, legal-basis and audit, and no
    // span carries a name, a national register number or a field value.
    let trace_id: [u8; 16] =
        std::array::from_fn(|i| (i as u8).wrapping_mul(17) ^ broker_port as u8);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut traced = tonic::Request::new(schakel_proto::v1::GetDossierRequest {
        dossier_id: dossier_id.clone(),
        purpose: "case_building".into(),
        ..Default::default()
    });
    traced.metadata_mut().insert(
        "traceparent",
        format!("00-{}-00f067aa0ba902b7-01", hex(&trace_id))
            .parse()
            .unwrap(),
    );
    runtime.block_on(client.get_dossier(traced)).unwrap();
    let spans = spans_of(
        &trace_id,
        &["schakel-broker", "schakel-legal-basis", "schakel-audit"],
    );
    let text = format!("{spans:?}");
    for secret in ["Ilse", "Spanningen", "85073003328", "85.07.30"] {
        assert!(
            !text.contains(secret),
            "{label}: {secret} in a span: {text}"
        );
    }

    // The audit process dies: reads fail UNAVAILABLE and release nothing.
    let released = runtime
        .block_on(read(&mut client, &dossier_id, "case_building"))
        .unwrap();
    audit.kill().unwrap();
    audit.wait().unwrap();
    let refused = runtime
        .block_on(read(&mut client, &dossier_id, "case_building"))
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unavailable,
        "{label}: {refused:?}"
    );
    // Restarted, it carries on the same tree: reads work again, and the
    // privacy officer's verification finds no gap.
    let mut audit = serve_with(&config, "audit", audit_port, &own_cert(&audit_cert));
    runtime.block_on(wait_serving(&audit_url, &pki.pki.ca));
    let again = runtime
        .block_on(read(&mut client, &dossier_id, "case_building"))
        .unwrap();
    assert_eq!(again, released, "{label}");
    let verified = stdout_ok(&dpo(&[
        "audit",
        "verify",
        "--quiet",
        "--verifier-key",
        &key_text,
    ]));
    assert!(verified.starts_with("OK: "), "{label}: {verified}");

    // A disabled user's token stops working in another process (the
    // broker) within auth.jwks_max_age.
    let users = stdout_ok(&cli(&["user", "list"]));
    let team_vh_id = users
        .lines()
        .find(|l| l.split('\t').nth(1) == Some("team.vh"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    stdout_ok(&cli(&["user", "disable", &team_vh_id]));
    let refused =
        within_bound(
            || match runtime.block_on(read(&mut team_vh, &dossier_id, "case_building")) {
                Err(status) if status.code() == tonic::Code::Unauthenticated => Some(status),
                _ => None,
            },
        );
    assert_eq!(
        schakel_kit::testing::error_reason(&refused),
        "TOKEN_REVOKED",
        "{label}"
    );
    // A key rotation: the coordinator's token signed by the old key stops
    // working at legal-basis (another process) within the bound, and the
    // services renew their own tokens, so that reads go on.
    let old = stdout_ok(&cli(&["login"]));
    let old = old.trim();
    stdout_ok(&run(
        &legal_basis_url,
        &[("SCHAKEL_TOKEN", old)],
        &["agreement", "list"],
        None,
    ));
    stdout_ok(&cli(&["key", "rotate"]));
    let refused = within_bound(|| {
        let out = run(
            &legal_basis_url,
            &[("SCHAKEL_TOKEN", old)],
            &["agreement", "list"],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success()).then_some(stderr)
    });
    assert!(refused.contains("UNAUTHENTICATED"), "{label}: {refused}");
    let login = [
        ("SCHAKEL_USERNAME", "team.caw"),
        ("SCHAKEL_PASSWORD", "een lang wachtwoord"),
    ];
    let fresh = stdout_ok(&run(&identity_url, &login, &["login"], None));
    let mut team_caw = broker_client(&broker_url, &pki.pki.ca, fresh.trim().to_owned());
    let after = within_bound(|| {
        runtime
            .block_on(read(&mut team_caw, &dossier_id, "case_building"))
            .ok()
    });
    assert!(!after.is_empty(), "{label}");

    // SIGTERM: health goes NOT_SERVING, in-flight calls drain, clean exit.
    for child in [
        &mut broker,
        &mut policy,
        &mut legal_basis,
        &mut identity,
        &mut audit,
    ] {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(
            exit.success(),
            "{label}: graceful shutdown exits 0, got {exit}"
        );
    }
}

type Broker = schakel_proto::v1::broker_service_client::BrokerServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        schakel_kit::client::CallContext,
    >,
>;

/// Polls `probe` until it gives a value, which must happen within three
/// times `auth.jwks_max_age` (the bound, with a margin for a slow machine).
fn within_bound<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3 * JWKS_MAX_AGE + 5);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within the bound of {JWKS_MAX_AGE} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Client TLS trusting the test CA and presenting the test client
/// certificate beside it (every port requires one).
fn mtls(ca: &Path) -> tonic::transport::ClientTlsConfig {
    let client = (
        ca.with_file_name("client.pem"),
        ca.with_file_name("client.key"),
    );
    schakel_kit::tls::client_config(ca, Some((&client.0, &client.1))).unwrap()
}

fn broker_client(url: &str, ca: &Path, token: String) -> Broker {
    let tls = mtls(ca);
    let channel = schakel_kit::client::channel(url, tls).unwrap();
    schakel_proto::v1::broker_service_client::BrokerServiceClient::with_interceptor(
        channel,
        schakel_kit::client::CallContext::with_token(Some(token)),
    )
}

/// Reads a dossier under `purpose` (one its phase allows): the released
/// paths, or the refusal.
async fn read(
    client: &mut Broker,
    dossier_id: &str,
    purpose: &str,
) -> Result<Vec<String>, tonic::Status> {
    let read = client
        .get_dossier(schakel_proto::v1::GetDossierRequest {
            dossier_id: dossier_id.into(),
            purpose: purpose.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(read.released.into_iter().map(|f| f.path).collect())
}

/// Waits (on the health Watch stream, no polling) until `url` is SERVING.
async fn wait_serving(url: &str, ca: &Path) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let tls = mtls(ca);
    let mut health = HealthClient::new(schakel_kit::client::channel(url, tls).unwrap());
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(message) = stream.message().await.unwrap() {
        if message.status == ServingStatus::Serving as i32 {
            return;
        }
    }
    panic!("{url} closed its health stream before serving");
}

/// Case building between two partners over the broker: circle, phase,
/// contribution, an information request answered, and need-to-know reads.
async fn case_building(
    caw: &mut Broker,
    veilig_huis: &mut Broker,
    dossier_id: &str,
    veilig_huis_org: &str,
    label: &str,
) {
    use schakel_proto::v1 as pb;
    let text = |t: &str| pb::FieldValue {
        kind: Some(pb::field_value::Kind::Text(t.into())),
    };
    caw.add_participant(pb::AddParticipantRequest {
        dossier_id: dossier_id.into(),
        organisation_id: veilig_huis_org.into(),
    })
    .await
    .unwrap();
    caw.advance_phase(pb::AdvancePhaseRequest {
        dossier_id: dossier_id.into(),
        expected_phase: pb::Phase::Registration as i32,
        target_phase: pb::Phase::CaseBuilding as i32,
        track: 0,
        reason: "Aanmelding volledig.".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    caw.contribute(pb::ContributeRequest {
        dossier_id: dossier_id.into(),
        purpose: "case_building".into(),
        contributions: vec![pb::ContributionInput {
            path: "finances.debts".into(),
            value: Some(text("Schuldbemiddeling loopt.")),
            ..Default::default()
        }],
        idempotency_key: "serve-e2e-contribution".into(),
    })
    .await
    .unwrap();
    let asked = caw
        .request_information(pb::RequestInformationRequest {
            dossier_id: dossier_id.into(),
            to_organisation_id: veilig_huis_org.into(),
            fields: vec!["risk.".into()],
            person_ids: vec![],
            purpose: "case_building".into(),
            justification: "Risico-inschatting voor het plan.".into(),
            due_at: Some(schakel_kit::time::to_timestamp(4_102_444_800)),
            idempotency_key: "serve-e2e-request".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .information_request
        .unwrap();
    let inbox = veilig_huis
        .list_information_requests(pb::ListInformationRequestsRequest {
            r#box: pb::InformationRequestBox::Inbox as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .information_requests;
    assert_eq!(inbox.len(), 1, "{label}");
    veilig_huis
        .answer_information_request(pb::AnswerInformationRequestRequest {
            information_request_id: asked.information_request_id,
            contributions: vec![pb::ContributionInput {
                path: "risk.rti_level".into(),
                value: Some(pb::FieldValue {
                    kind: Some(pb::field_value::Kind::Code("hoog".into())),
                }),
                ..Default::default()
            }],
            declined_fields: vec![],
            note: String::new(),
            idempotency_key: "serve-e2e-answer".into(),
        })
        .await
        .unwrap();
    let read = |client: &mut Broker| {
        let mut client = client.clone();
        async move {
            client
                .get_dossier(pb::GetDossierRequest {
                    dossier_id: dossier_id.into(),
                    purpose: "case_building".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let sees = |r: &pb::GetDossierResponse, path: &str| {
        r.released
            .iter()
            .any(|f| f.path == path && !f.contributions.is_empty())
    };
    let withheld =
        |r: &pb::GetDossierResponse, path: &str| r.withheld.iter().any(|w| w.path == path);
    let by_caw = read(caw).await;
    assert!(
        sees(&by_caw, "risk.rti_level"),
        "{label}: the answer reaches the CAW"
    );
    assert!(withheld(&by_caw, "persons.national_number"), "{label}");
    let by_vh = read(veilig_huis).await;
    assert!(sees(&by_vh, "finances.debts"), "{label}");
    assert!(withheld(&by_vh, "persons.national_number"), "{label}");
}

/// Registers a family at the broker and reads it back: the dossier id and
/// the released paths.
async fn register_and_read(client: &mut Broker) -> (String, Vec<String>) {
    use schakel_proto::v1 as pb;
    let person = |r: &str, role: pb::PersonRole| pb::ClientPersonInput {
        client_ref: r.into(),
        roles: vec![role as i32],
        given_name: "Ilse".into(),
        ..Default::default()
    };
    let registered = client
        .register_dossier(pb::RegisterDossierRequest {
            district: "leuven".into(),
            requested_track: pb::Track::CaseSupport as i32,
            form: Some(pb::RegistrationForm {
                violence_forms: vec!["partnergeweld".into()],
                situation_description: "Spanningen thuis.".into(),
                persons: vec![
                    pb::ClientPersonInput {
                        informing: Some(pb::InformingDetails {
                            state: pb::InformingState::Informed as i32,
                            method: pb::InformingMethod::InPerson as i32,
                            informed_at: Some(schakel_kit::time::to_timestamp(1_767_225_600)),
                            ..Default::default()
                        }),
                        ..person("v", pb::PersonRole::Slachtoffer)
                    },
                    pb::ClientPersonInput {
                        national_number: "85.07.30-033.28".into(),
                        informing: Some(pb::InformingDetails {
                            state: pb::InformingState::Deferred as i32,
                            deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
                            review_at: Some(schakel_kit::time::to_timestamp(4_102_444_800)),
                            ..Default::default()
                        }),
                        ..person("p", pb::PersonRole::Pleger)
                    },
                ],
                ..Default::default()
            }),
            idempotency_key: "serve-e2e".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let id = registered.dossier.unwrap().dossier_id;
    let released = read(client, &id, "triage").await.unwrap();
    (id, released)
}

/// Runs a scenario on SQLite files (one per service) in a fresh directory.
fn on_sqlite(scenario: fn(&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/{{service}}.db?mode=rwc", dir.path().display());
    scenario(&url, "sqlite");
}

/// Runs a scenario on a fresh PostgreSQL database, or says it is skipped.
async fn on_postgres(scenario: fn(&str, &str)) {
    let Some(db) = TestDatabase::postgres().await.unwrap() else {
        eprintln!("SKIPPED: SCHAKEL_TEST_DATABASE_URL is not set");
        return;
    };
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || scenario(&url, "postgres"))
        .await
        .unwrap();
    drop(db);
}

#[test]
fn services_run_as_separate_processes_on_sqlite() {
    on_sqlite(serve_and_administer);
}

#[tokio::test]
async fn services_run_as_separate_processes_on_postgres() {
    on_postgres(serve_and_administer).await;
}

/// `schakel serve all`: the five services in one process from the same
/// configuration file, each in its own schema (or SQLite file).
fn serve_everything_in_one_process(database_url: &str, label: &str) {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Every service address is this process; none is called over the network.
    let config = write_config(dir.path(), &pki, database_url, port, port);
    let broker_key = dir.path().join("broker-master.key");
    std::fs::write(&broker_key, "Kx8w1cQyXb2m0W4u7oZt9yRr3eVn5pLs6dHgJf0aAqI=").unwrap();
    stdout_ok(&bootstrap(&config, "eerste.coordinator"));
    stdout_ok(&bootstrap(&config, "tweede.coordinator"));
    let mut all = serve_with(
        &config,
        "all",
        port,
        &[("SCHAKEL_BROKER__MASTER_KEY_FILE", broker_key.as_os_str())],
    );
    let url = format!("https://127.0.0.1:{port}");
    let run = |credentials: &[(&str, &str)], args: &[&str], stdin: Option<&str>| {
        run_cli(&url, &pki.pki.ca, credentials, args, stdin)
    };
    for service in [
        "schakel.v1.IdentityService",
        "schakel.v1.AuditService",
        "schakel.v1.LegalBasisService",
        "schakel.v1.PolicyService",
        "schakel.v1.BrokerService",
    ] {
        let health = stdout_ok(&run(&[], &["health", "--service", service], None));
        assert_eq!(health.trim(), "SERVING", "{label}: {service}");
    }
    let coordinator = [
        ("SCHAKEL_USERNAME", "eerste.coordinator"),
        ("SCHAKEL_PASSWORD", "een sterk wachtwoord"),
    ];
    let cli = |args: &[&str]| stdout_ok(&run(&coordinator, args, None));
    let org = |name: &str, ptype: &str, kbo: &str| {
        let created = cli(&[
            "org",
            "create",
            "--name",
            name,
            "--partner-type",
            ptype,
            "--region",
            "leuven",
            "--kbo",
            kbo,
        ]);
        created.split('\t').next().unwrap().to_owned()
    };
    let caw = org("CAW Oost-Brabant", "caw", "0207437468");
    let veilig_huis = org("Veilig Huis Leuven", "veilig_huis", "1000000813");
    let user = |username: &str, organisation: &str, role: &str| {
        user_token(
            &url,
            &pki.pki.ca,
            &coordinator,
            (username, organisation, role),
        )
    };
    let coordinator_token = cli(&["login"]);
    let second_token = stdout_ok(&run(&SECOND, &["login"], None));
    agreement_in_force(
        &url,
        &pki.pki.ca,
        (coordinator_token.trim(), second_token.trim()),
        &[&caw, &veilig_huis],
        &config,
    );
    assert!(
        cli(&["policy", "list"]).starts_with("1\tactive\tbase 0"),
        "{label}"
    );

    let aanmelder = user("aanmelder.caw", &caw, "aanmelder");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let mut client = broker_client(&url, &pki.pki.ca, aanmelder);
    let (_, released) = runtime.block_on(register_and_read(&mut client));
    assert!(
        released.contains(&"registration.situation_description".to_owned()),
        "{label}: {released:?}"
    );
    let dpo = user("dpo.vh", &veilig_huis, "privacy_officer");
    let audit = |args: &[&str]| stdout_ok(&run(&[("SCHAKEL_TOKEN", dpo.as_str())], args, None));
    let logged = audit(&["audit", "query"]);
    for action in [
        "AGREEMENT_APPROVE",
        "POLICY_APPROVE",
        "DOSSIER_REGISTER",
        "DOSSIER_READ",
    ] {
        assert!(
            logged.contains(action),
            "{label}: {action} missing:\n{logged}"
        );
    }
    let info = audit(&["audit", "info"]);
    let key = info
        .lines()
        .find_map(|l| l.strip_prefix("verifier_key: "))
        .unwrap()
        .to_owned();
    let verified = audit(&["audit", "verify", "--quiet", "--verifier-key", &key]);
    assert!(verified.starts_with("OK: "), "{label}: {verified}");

    let status = Command::new("kill")
        .args(["-TERM", &all.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(all.wait().unwrap().success(), "{label}: graceful shutdown");
}

#[test]
fn all_services_run_in_one_process_on_sqlite() {
    on_sqlite(serve_everything_in_one_process);
}

#[tokio::test]
async fn all_services_run_in_one_process_on_postgres() {
    on_postgres(serve_everything_in_one_process).await;
}
