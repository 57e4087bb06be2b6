//! A partner system written in another language obtains a token and verifies
//! it against the JWKS with a standard JOSE library (Python's joserfc),
//! talking gRPC-Web over HTTPS with nothing but the standard library.

use std::process::Command;

use crate::support::DevServer;

fn python_with_joserfc() -> bool {
    Command::new("python3")
        .args(["-c", "import joserfc"])
        .output()
        .is_ok_and(|o| o.status.success())
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
