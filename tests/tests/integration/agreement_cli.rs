//! `schakel agreement ...` against `schakel dev`: the seeded agreement covers
//! every seeded organisation in leuven; a coordinator creates, approves and
//! revokes an agreement from the command line; a professional may read but
//! not manage; a restart keeps one seeded agreement.

use crate::support::{DevServer, stdout_ok};

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn coordinators_manage_agreements_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);

    // The dev seed: one approved agreement in force for leuven, all eight
    // kernpartners as parties.
    let listed = stdout_ok(&server.cli_as("team.politie", &["agreement", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].contains("\tapproved\tin-force\t"), "{listed}");
    assert!(lines[0].contains("\tleuven\t8 parties\t"), "{listed}");
    let seeded = lines[0].split('\t').next().unwrap().to_owned();
    let shown = stdout_ok(&server.cli_as("team.caw", &["agreement", "show", &seeded]));
    assert_eq!(field(&shown, "status"), "approved");
    assert_eq!(shown.matches("\nparty: ").count(), 8, "{shown}");
    assert!(shown.contains("\tveilig_huis\n"), "{shown}");
    assert_eq!(
        field(&shown, "purposes"),
        "triage,case_building,case_direction,follow_up"
    );

    // Two parties of the seeded organisations.
    let orgs = stdout_ok(&server.cli_as("coordinator", &["org", "list"]));
    let org = |ptype: &str| {
        orgs.lines()
            .find(|l| l.split('\t').nth(1) == Some(ptype))
            .and_then(|l| l.split('\t').next())
            .unwrap()
            .to_owned()
    };
    let (politie, caw) = (org("politie"), org("caw"));
    let check = stdout_ok(&server.cli_as(
        "coordinator",
        &[
            "agreement",
            "check",
            "--organisation",
            &caw,
            "--purpose",
            "triage",
            "--district",
            "leuven",
        ],
    ));
    assert!(
        check.starts_with(&format!("allowed: agreement {seeded} v1")),
        "{check}"
    );

    let document = data.join("akkoord.pdf");
    std::fs::write(&document, b"%PDF-1.7 signed agreement").unwrap();
    let create_args = [
        "agreement",
        "create",
        "--title",
        "Pilot Brugge",
        "--district",
        "brugge",
        "--party",
        &politie,
        "--party",
        &caw,
        "--purpose",
        "triage",
        "--valid-from",
        "2026-01-01",
        "--valid-until",
        "2099-01-01",
        "--max-dossiers",
        "20",
        "--violence-form",
        "partnergeweld",
        "--document",
        document.to_str().unwrap(),
    ];
    // A professional may not.
    let denied = server.cli_as("team.caw", &create_args);
    assert_eq!(denied.status.code(), Some(2), "{denied:?}");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"));

    let created = stdout_ok(&server.cli_as("coordinator", &create_args));
    let id = field(&created, "agreement_id").to_owned();
    assert_eq!(field(&created, "status"), "draft");
    assert_eq!(field(&created, "max_dossiers"), "20");
    assert!(field(&created, "signed_document").starts_with("sha256:"));

    let approved = stdout_ok(&server.cli_as(
        "coordinator2",
        &[
            "agreement",
            "approve",
            &id,
            "--agreement-version",
            "1",
            "--office",
            "Parket West-Vlaanderen",
            "--prosecutor",
            "Procureur Demo",
            "--decided",
            "2026-01-01",
            "--reference",
            "BR/458ter/1",
            "--reasons",
            "Bescherming van de integriteit van personen.",
        ],
    ));
    assert_eq!(field(&approved, "status"), "approved");
    assert_eq!(field(&approved, "in_force"), "true");

    // Bad input: a clear message, exit 2, nothing changed.
    let bad = server.cli_as(
        "coordinator",
        &[
            "agreement",
            "revoke",
            &id,
            "--expected-version",
            "2",
            "--reason",
            "parties-ended",
            "--explanation",
            "Einde pilot",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("FAILED_PRECONDITION"));
    let revoked = stdout_ok(&server.cli_as(
        "coordinator",
        &[
            "agreement",
            "revoke",
            &id,
            "--expected-version",
            "1",
            "--reason",
            "parties-ended",
            "--explanation",
            "Einde pilot",
        ],
    ));
    assert_eq!(field(&revoked, "status"), "revoked");
    let check = stdout_ok(&server.cli_as(
        "coordinator",
        &[
            "agreement",
            "check",
            "--organisation",
            &caw,
            "--purpose",
            "triage",
            "--district",
            "brugge",
        ],
    ));
    assert_eq!(check.trim(), format!("denied: REVOKED (agreement {id} v1)"));

    // Every change is in the audit log.
    let query = stdout_ok(&server.cli_as("privacy.officer", &["audit", "query"]));
    for action in ["AGREEMENT_CREATE", "AGREEMENT_APPROVE", "AGREEMENT_REVOKE"] {
        assert!(query.contains(action), "{action} missing from {query}");
    }
    server.stop();

    // A restart does not seed a second agreement.
    let server = DevServer::start(&data);
    let listed = stdout_ok(&server.cli_as("coordinator", &["agreement", "list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(listed.matches(&seeded).count(), 1);
    server.stop();
}
