//! Microservices mode for identity: `schakel bootstrap` then `schakel serve
//! identity` from a config file, on PostgreSQL when `SCHAKEL_TEST_DATABASE_URL`
//! is set and on SQLite always; graceful exit on SIGTERM.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

use schakel_kit::testing::{TestDatabase, TestPki};
use support::{schakel_bin, stdout_ok};

fn serve_and_administer(database_url: &str, label: &str) {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    // 32 random bytes, base64: any operator's `openssl rand -base64 32`.
    std::fs::write(&master, "q3Zb5TfE0x8b3M2Gm6Yx7n0u0m1j4D9Q8F7v6W5e4R0=").unwrap();
    let config = dir.path().join("identity.toml");
    std::fs::write(
        &config,
        format!(
            r#"database_url = "{database_url}"

[server]
listen = "127.0.0.1:0"

[server.tls]
cert = "{cert}"
key = "{key}"
ca = "{ca}"

[identity]
master_key_file = "{master}"
"#,
            cert = pki.pki.server_cert.display(),
            key = pki.pki.server_key.display(),
            ca = pki.pki.ca.display(),
            master = master.display(),
        ),
    )
    .unwrap();

    let bootstrap = |username: &str| {
        let mut child = Command::new(schakel_bin())
            .args(["bootstrap", "--config"])
            .arg(&config)
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
    };
    stdout_ok(&bootstrap("eerste.coordinator"));
    let again = bootstrap("tweede.coordinator");
    assert!(!again.status.success(), "bootstrapping twice must fail");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("FAILED_PRECONDITION"),
        "{again:?}"
    );

    let mut server = Command::new(schakel_bin())
        .args(["serve", "identity", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("schakel identity listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();

    let cli = |args: &[&str]| {
        Command::new(schakel_bin())
            .args(args)
            .env("SCHAKEL_URL", &url)
            .env("SCHAKEL_CA_CERT", &pki.pki.ca)
            .env("SCHAKEL_USERNAME", "eerste.coordinator")
            .env("SCHAKEL_PASSWORD", "een sterk wachtwoord")
            .output()
            .unwrap()
    };
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

    // SIGTERM: health goes NOT_SERVING, in-flight calls drain, clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(
        exit.success(),
        "{label}: graceful shutdown exits 0, got {exit}"
    );
}

#[test]
fn identity_runs_as_its_own_service_on_sqlite() {
    let db = TestDatabase::sqlite().unwrap();
    serve_and_administer(db.url(), "sqlite");
}

#[tokio::test]
async fn identity_runs_as_its_own_service_on_postgres() {
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
