//! The binary's own contract: help, and configuration errors exiting 64.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn schakel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_schakel"))
}

#[test]
fn help_lists_the_commands() {
    let output = schakel().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "dev",
        "serve",
        "whoami",
        "org",
        "user",
        "service-account",
        "key",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn configuration_errors_are_one_line_and_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    // No TLS certificate: refused before binding.
    let output = schakel()
        .args(["serve", "identity"])
        .current_dir(dir.path())
        .env("SCHAKEL_DATABASE_URL", "sqlite://x.db")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("configuration error"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("tls.cert"), "{stderr}");

    // A malformed value.
    let output = schakel()
        .args(["serve", "identity"])
        .env("SCHAKEL_SERVER__LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
}
