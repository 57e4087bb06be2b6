//! `schakel policy ...`: the offline check CI runs on `policies/`, and a
//! policy change from proposal to four-eyes approval against `schakel dev`,
//! read back with diff, explain and matrix.

use std::{path::Path, process::Command};

use crate::support::{DevServer, schakel_bin, stdout_ok};

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");

fn copy_policies(to: &Path) {
    std::fs::create_dir_all(to.join("tests")).unwrap();
    for name in ["model.conf", "policy.csv", "fields.csv"] {
        std::fs::copy(Path::new(POLICIES).join(name), to.join(name)).unwrap();
    }
    for entry in std::fs::read_dir(Path::new(POLICIES).join("tests")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join("tests").join(path.file_name().unwrap())).unwrap();
    }
}

fn policy_test(dir: &Path) -> std::process::Output {
    Command::new(schakel_bin())
        .args(["policy", "test"])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn policy_test_passes_on_the_repository_and_names_what_fails() {
    let ok = stdout_ok(&policy_test(Path::new(POLICIES)));
    assert!(ok.starts_with("ok: "), "{ok}");
    assert!(ok.contains("decisions proven equal to casbin"), "{ok}");

    let dir = tempfile::tempdir().unwrap();
    // A rule naming a field that does not exist: refused with its line.
    copy_policies(dir.path());
    let policy = dir.path().join("policy.csv");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("p, caw, roles:case_team, ggz.horoscope, read, phases:active, allow\n");
    let line = text.lines().count();
    std::fs::write(&policy, text).unwrap();
    let failed = policy_test(dir.path());
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(out.contains(&format!("FAIL: policy_csv:{line}: ")), "{out}");

    // A valid rule that breaks an expectation: the failing rows are named.
    copy_policies(dir.path());
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("p, caw, roles:case_team, class:art10_criminal, read, phases:active, allow\n");
    std::fs::write(&policy, text).unwrap();
    let failed = policy_test(dir.path());
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(out.contains("FAIL: criminal.csv:"), "{out}");
    assert!(out.contains("expected deny, got allow"), "{out}");
}

#[test]
fn a_policy_change_needs_a_second_coordinator() {
    let _alone = crate::support::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let proposal = dir.path().join("proposal");
    copy_policies(&proposal);
    let policy = proposal.join("policy.csv");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("p, caw, roles:case_team, police.interventions, read, phases:active, allow\n");
    std::fs::write(&policy, text).unwrap();
    let dir_arg = proposal.to_str().unwrap();

    let diff = stdout_ok(&server.cli_as("coordinator", &["policy", "diff", dir_arg]));
    assert!(
        diff.starts_with("changes from version 1: 4 decision(s)"),
        "{diff}"
    );
    let denied = server.cli_as(
        "team.caw",
        &["policy", "propose", dir_arg, "--description", "x"],
    );
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"));
    let proposed = stdout_ok(&server.cli_as(
        "coordinator",
        &[
            "policy",
            "propose",
            dir_arg,
            "--description",
            "CAW leest politie-interventies",
        ],
    ));
    assert!(
        proposed.starts_with("proposed: version 2 (against 1)"),
        "{proposed}"
    );
    let same = server.cli_as("coordinator", &["policy", "approve", "2"]);
    assert_eq!(same.status.code(), Some(2), "{same:?}");
    assert!(
        String::from_utf8_lossy(&same.stderr).contains("PERMISSION_DENIED"),
        "{same:?}"
    );
    let approved = stdout_ok(&server.cli_as("coordinator2", &["policy", "approve", "2"]));
    assert_eq!(approved.trim(), "active: version 2");

    let explained = stdout_ok(&server.cli_as(
        "team.caw",
        &[
            "policy",
            "explain",
            "caw",
            "team_member",
            "police.interventions",
            "read",
            "case_building",
        ],
    ));
    assert!(
        explained.starts_with("allowed: caw team_member"),
        "{explained}"
    );
    assert!(explained.contains("(version 2)"), "{explained}");
    let matrix = stdout_ok(&server.cli_as(
        "team.caw",
        &["policy", "matrix", "--phase", "case_building"],
    ));
    assert!(matrix.contains("\nggz/team_member "), "{matrix}");
    assert!(matrix.contains("  1 registration.registrant"), "{matrix}");
    let listed = stdout_ok(&server.cli_as("coordinator", &["policy", "list"]));
    assert!(listed.starts_with("2\tactive\tbase 1"), "{listed}");
    // Back to the repository's files: the diff is the same change, reversed.
    let back = stdout_ok(&server.cli_as("coordinator", &["policy", "diff", POLICIES]));
    assert!(
        back.starts_with("changes from version 2: 4 decision(s)"),
        "{back}"
    );
    assert!(back.contains("allow -> deny"), "{back}");
    let logged = stdout_ok(&server.cli_as("privacy.officer", &["audit", "query"]));
    assert!(logged.contains("POLICY_PROPOSE") && logged.contains("POLICY_APPROVE"));
    server.stop();
}
