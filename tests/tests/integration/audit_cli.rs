//! `schakel audit verify` as a privacy officer runs it against `schakel dev`:
//! it passes on an intact log, and after someone edits the audit database
//! directly it exits non-zero naming the first bad index.

use std::process::Command;

use crate::support::{DevServer, stdout_ok};

fn python_sqlite(db: &std::path::Path, sql: &str) {
    let script = format!(
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute({sql:?}); c.commit()"
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .arg(db)
        .status()
        .unwrap();
    assert!(status.success(), "editing {}", db.display());
}

#[test]
fn verify_passes_then_names_the_first_altered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    // Some activity: logins and an administrative change, all audited.
    stdout_ok(&server.cli_as("coordinator", &["key", "rotate"]));
    stdout_ok(&server.cli_as("team.caw", &["whoami"]));

    let save = data.join("checkpoint.txt");
    let verified = stdout_ok(&server.cli_as(
        "privacy.officer",
        &[
            "audit",
            "verify",
            "--quiet",
            "--save",
            save.to_str().unwrap(),
        ],
    ));
    assert!(verified.starts_with("OK: "), "{verified}");
    let saved = std::fs::read_to_string(data.join("checkpoint.txt")).unwrap();
    assert!(saved.lines().next().unwrap().ends_with("/audit"), "{saved}");
    let query = stdout_ok(&server.cli_as("privacy.officer", &["audit", "query"]));
    assert!(query.contains("SIGNING_KEY_ROTATE"), "{query}");
    // Filtered by action (as printed, any case) and decision.
    let rotations = stdout_ok(&server.cli_as(
        "privacy.officer",
        &[
            "audit",
            "query",
            "--action",
            "signing-key-rotate",
            "--decision",
            "granted",
        ],
    ));
    let lines: Vec<&str> = rotations.lines().collect();
    assert_eq!(lines.len(), 1, "{rotations}");
    assert!(
        lines[0].contains("\tSIGNING_KEY_ROTATE\tGRANTED\t"),
        "{rotations}"
    );
    let none = stdout_ok(&server.cli_as(
        "privacy.officer",
        &[
            "audit",
            "query",
            "--action",
            "SIGNING_KEY_ROTATE",
            "--decision",
            "DENIED",
        ],
    ));
    assert!(none.trim().is_empty(), "{none}");
    let unknown = server.cli_as(
        "privacy.officer",
        &["audit", "query", "--action", "nonsense"],
    );
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("DOSSIER_ERASE"),
        "the error lists the actions: {unknown:?}"
    );

    // A team member may not read the log.
    let denied = server.cli_as("team.caw", &["audit", "query"]);
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"),
        "{denied:?}"
    );

    // Someone with database access rewrites entry 1.
    server.stop();
    python_sqlite(
        &data.join("audit.db"),
        "UPDATE entries SET body = X'0801' WHERE idx = 1",
    );
    let again = DevServer::start(&data);
    let since = data.join("checkpoint.txt");
    let failed = again.cli_as(
        "privacy.officer",
        &[
            "audit",
            "verify",
            "--quiet",
            "--since",
            since.to_str().unwrap(),
        ],
    );
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("verification FAILED") && stderr.contains("first bad index: 1"),
        "{stderr}"
    );
}
