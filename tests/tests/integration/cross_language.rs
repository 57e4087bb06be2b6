//! A partner system written in another language obtains a token and verifies
//! it against the JWKS with a standard JOSE library (Python's joserfc),
//! talking gRPC-Web over HTTPS with nothing but the standard library.

use std::process::Command;

use crate::support::DevServer;

fn python_with(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_with_joserfc() -> bool {
    python_with("joserfc")
}

/// Python's grpcio-reflection speaks only grpc.reflection.v1alpha: it lists
/// the services of `schakel dev`.
#[test]
fn python_grpcio_reflection_lists_the_services() {
    if !python_with("grpc_reflection") {
        eprintln!("SKIPPED: python3 with grpcio-reflection is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/reflection_client.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&server.url)
        .arg(data.join("tls/ca.pem"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for service in [
        "schakel.v1.BrokerService",
        "schakel.v1.AuditService",
        "schakel.v1.IdentityService",
        "grpc.health.v1.Health",
    ] {
        assert!(stdout.lines().any(|l| l == service), "{service}: {stdout}");
    }
}

#[test]
fn python_client_obtains_and_verifies_a_token() {
    if !python_with_joserfc() {
        eprintln!("SKIPPED: python3 with joserfc is not installed (pip install joserfc)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/jwks_client.py");
    let run = |password: &str| {
        Command::new("python3")
            .arg(script)
            .arg(&server.url)
            .arg(data.join("tls/ca.pem"))
            .arg("team.caw")
            .env("SCHAKEL_PASSWORD", password)
            .output()
            .unwrap()
    };

    let output = run(&server.password("team.caw"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("verified sub="), "{stdout}");
    assert!(stdout.contains("alg=EdDSA"), "{stdout}");

    // Wrong credentials: the gRPC status reaches the foreign client.
    let output = run("wrong password");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("grpc-status 16"),
        "{output:?}"
    );
}
