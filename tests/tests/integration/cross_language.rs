//! A partner system written in another language obtains a token and verifies
//! it against the JWKS with a standard JOSE library (Python's joserfc),
//! talking gRPC-Web over HTTPS with nothing but the standard library.

use crate::support::{DevServer, python, python_with, stdout_ok};

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
    let stdout = stdout_ok(
        &python("reflection_client.py")
            .arg(&server.url)
            .arg(data.join("tls/ca.pem"))
            .output()
            .unwrap(),
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
    if !python_with("joserfc") {
        eprintln!("SKIPPED: python3 with joserfc is not installed (pip install joserfc)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let run = |password: &str| {
        python("jwks_client.py")
            .arg(&server.url)
            .arg(data.join("tls/ca.pem"))
            .arg("team.caw")
            .env("SCHAKEL_PASSWORD", password)
            .output()
            .unwrap()
    };

    let stdout = stdout_ok(&run(&server.password("team.caw")));
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
