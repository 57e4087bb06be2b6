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

/// Copies the audit database with its WAL and shared-memory files from
/// directory `from` to `to` (a file absent in `from` is removed in `to`).
fn keep(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        let (source, target) = (from.join(name), to.join(name));
        if source.exists() {
            std::fs::copy(&source, &target).unwrap();
        } else if target.exists() {
            std::fs::remove_file(&target).unwrap();
        }
    }
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

    // Not without a pinned key.
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let unpinned = server.cli_as("privacy.officer", &["audit", "verify", "--quiet"]);
    assert_eq!(unpinned.status.code(), Some(1), "{unpinned:?}");
    assert!(
        String::from_utf8_lossy(&unpinned.stderr).contains("no verifier key pinned"),
        "{unpinned:?}"
    );
    // The key as the operator would pin it (here read from the server).
    let info = stdout_ok(&server.cli_as("privacy.officer", &["audit", "info"]));
    let key = info
        .lines()
        .find_map(|l| l.strip_prefix("verifier_key: "))
        .unwrap()
        .to_owned();
    let verify = |server: &DevServer, extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--quiet", "--verifier-key", &key];
        args.extend(["--state-dir", state]);
        args.extend(extra);
        server.cli_as("privacy.officer", &args)
    };
    let save = data.join("checkpoint.txt");
    let verified = stdout_ok(&verify(&server, &["--save", save.to_str().unwrap()]));
    assert!(verified.starts_with("OK: "), "{verified}");
    // The Veilig Huis's officer checks every body and the query index.
    assert!(
        verified.contains("bodies in scope (every entry)"),
        "{verified}"
    );
    assert!(verified.contains("query index: rebuilt"), "{verified}");
    // A professional verifies the tree from its tiles, reading no entry.
    let tree = stdout_ok(&server.cli_as(
        "team.caw",
        &[
            "audit",
            "verify",
            "--quiet",
            "--verifier-key",
            &key,
            "--state-dir",
            state,
        ],
    ));
    assert!(tree.contains("none (tree hashes only)"), "{tree}");
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

    // A rollback: the audit database as it was at the first verification
    // is put back after the log grew and was verified again. The kept
    // checkpoint catches it without --since.
    server.stop();
    let copy = dir.path().join("copy");
    keep(&data, &copy);
    let server = DevServer::start(&data);
    stdout_ok(&server.cli_as("team.caw", &["whoami"]));
    assert!(stdout_ok(&verify(&server, &[])).starts_with("OK: "));
    server.stop();
    let grown = dir.path().join("grown");
    keep(&data, &grown);
    keep(&copy, &data);
    let rolled_back = DevServer::start(&data);
    let caught = verify(&rolled_back, &[]);
    assert_eq!(caught.status.code(), Some(1), "{caught:?}");
    rolled_back.stop();
    keep(&grown, &data);
    let server = DevServer::start(&data);

    // Someone with database access rewrites entry 1.
    server.stop();
    python_sqlite(
        &data.join("audit.db"),
        "UPDATE entries SET body = X'0801' WHERE idx = 1",
    );
    let again = DevServer::start(&data);
    let since = data.join("checkpoint.txt");
    let failed = verify(&again, &["--since", since.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("verification FAILED") && stderr.contains("first bad index: 1"),
        "{stderr}"
    );
}
