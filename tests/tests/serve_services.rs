//! Microservices mode: `schakel bootstrap`, then `schakel serve audit` and
//! `schakel serve identity` as separate processes with mTLS between them, from
//! one config file, on PostgreSQL when `SCHAKEL_TEST_DATABASE_URL` is set and on
//! SQLite always. Identity records its changes in the audit log, which a
//! privacy officer checks with `schakel audit verify`; SIGTERM exits cleanly.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use schakel_kit::testing::{TestDatabase, TestPki};
use support::{schakel_bin, stdout_ok};

/// A port that was free a moment ago: the two services must know each
/// other's address before either starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
         [auth]\nidentity_url = \"https://127.0.0.1:{identity_port}\"\n\n\
         [server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n\n\
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

/// Starts `schakel serve <service>` on `port`; waits for its listening line.
fn serve(config: &Path, service: &str, port: u16) -> Child {
    let mut child = Command::new(schakel_bin())
        .args(["serve", service, "--config"])
        .arg(config)
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

    stdout_ok(&bootstrap(&config, "eerste.coordinator"));
    let again = bootstrap(&config, "tweede.coordinator");
    assert!(!again.status.success(), "bootstrapping twice must fail");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("FAILED_PRECONDITION"),
        "{again:?}"
    );

    let mut audit = serve(&config, "audit", audit_port);
    let mut identity = serve(&config, "identity", identity_port);
    let identity_url = format!("https://127.0.0.1:{identity_port}");
    let audit_url = format!("https://127.0.0.1:{audit_port}");

    let run = |url: &str, credentials: &[(&str, &str)], args: &[&str], stdin: Option<&str>| {
        let mut command = Command::new(schakel_bin());
        command
            .args(args)
            .env("SCHAKEL_URL", url)
            .env("SCHAKEL_CA_CERT", &pki.pki.ca);
        for (k, v) in credentials {
            command.env(k, v);
        }
        let mut child = command
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
    };
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
    let key = info
        .lines()
        .find_map(|l| l.strip_prefix("verifier_key: "))
        .unwrap()
        .to_owned();
    let verified = stdout_ok(&dpo(&[
        "audit",
        "verify",
        "--quiet",
        "--verifier-key",
        &key,
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

    // SIGTERM: health goes NOT_SERVING, in-flight calls drain, clean exit.
    for child in [&mut identity, &mut audit] {
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

#[test]
fn services_run_as_separate_processes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/{{service}}.db?mode=rwc", dir.path().display());
    serve_and_administer(&url, "sqlite");
}

#[tokio::test]
async fn services_run_as_separate_processes_on_postgres() {
    let Some(db) = TestDatabase::postgres().await.unwrap() else {
        eprintln!("SKIPPED: SCHAKEL_TEST_DATABASE_URL is not set");
        return;
    };
    let url = db.url().to_owned();
    tokio::task::spawn_blocking(move || serve_and_administer(&url, "postgres"))
        .await
        .unwrap();
    drop(db);
}
