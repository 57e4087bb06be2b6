//! The README's first command, as a newcomer runs it: `schakel dev`, then the
//! CLI against it.

use std::collections::BTreeSet;

use crate::support::{DevServer, stdout_ok};

#[test]
fn dev_seeds_accounts_and_serves_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);

    // dev-accounts.json: owner-only, one entry per seeded user, all roles covered.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev-accounts.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let accounts = server.accounts();
    let mut roles = BTreeSet::new();
    let mut partner_types = BTreeSet::new();
    for account in &accounts {
        for key in [
            "username",
            "password",
            "organisation",
            "partner_type",
            "roles",
        ] {
            assert!(account.get(key).is_some(), "{key} missing in {account}");
        }
        partner_types.insert(account["partner_type"].as_str().unwrap().to_owned());
        for role in account["roles"].as_array().unwrap() {
            roles.insert(role.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        [
            "aanmelder",
            "casusregisseur",
            "coordinator",
            "privacy_officer",
            "team_member"
        ]
    );
    assert_eq!(partner_types.len(), 8);
    for file in [
        "tls/ca.pem",
        "tls/server.pem",
        "tls/client.pem",
        "identity.db",
    ] {
        assert!(data.join(file).exists(), "{file}");
    }

    let whoami = stdout_ok(&server.cli_as("team.ggz", &["whoami"]));
    assert!(whoami.contains("partner_type: ggz"), "{whoami}");
    assert!(whoami.contains("region: leuven"), "{whoami}");

    let orgs = stdout_ok(&server.cli_as("coordinator", &["org", "list"]));
    assert_eq!(orgs.lines().count(), 8, "{orgs}");
    assert!(orgs.lines().all(|l| l.contains("\tleuven\t")), "{orgs}");

    // A denial is a clear status and a non-zero exit code.
    let denied = server.cli_as("team.caw", &["user", "list"]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PERMISSION_DENIED"));

    // Coordinators administer through the CLI.
    let created = stdout_ok(&server.cli_as(
        "coordinator",
        &[
            "org",
            "create",
            "--name",
            "PZ Aarschot",
            "--partner-type",
            "politie",
            "--region",
            "leuven",
            "--kbo",
            "0207.437.468",
        ],
    ));
    assert!(
        created.contains("\tpolitie\tleuven\t0207437468\tPZ Aarschot"),
        "{created}"
    );
    let bad = server.cli_as(
        "coordinator",
        &[
            "org",
            "create",
            "--name",
            "X",
            "--partner-type",
            "politie",
            "--region",
            "leuven",
            "--kbo",
            "0207437469",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("INVALID_ARGUMENT: kbo_number"),
        "{bad:?}"
    );

    // Restarting on the same data directory is idempotent: same accounts, same CA.
    let passwords: Vec<String> = accounts
        .iter()
        .map(|a| a["password"].as_str().unwrap().to_owned())
        .collect();
    let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
    server.stop();
    let again = DevServer::start(&data);
    let again_passwords: Vec<String> = again
        .accounts()
        .iter()
        .map(|a| a["password"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(passwords, again_passwords);
    assert_eq!(ca, std::fs::read(data.join("tls/ca.pem")).unwrap());
    let orgs = stdout_ok(&again.cli_as("coordinator", &["org", "list"]));
    assert_eq!(
        orgs.lines().count(),
        9,
        "8 seeded + PZ Aarschot, no duplicates: {orgs}"
    );

    // DESIGN.md invariant 7: the server's log (stderr) holds ids and codes only:
    // no display names, user names, passwords or organisation names.
    again.stop();
    let log = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
    assert!(log.contains("token issued"), "the log is captured: {log}");
    let mut personal: Vec<String> = [
        "PZ Aarschot",
        "Teamlid",
        "Coördinator",
        // The seeded family (registered through the broker at start).
        "Wouters",
        "Claes",
        "Sofie",
        "92031412352",
        "baseballknuppel",
        "schuldbemiddeling",
    ]
    .map(String::from)
    .to_vec();
    for account in &accounts {
        personal.push(account["username"].as_str().unwrap().to_owned());
        personal.push(account["password"].as_str().unwrap().to_owned());
        personal.push(account["organisation"].as_str().unwrap().to_owned());
    }
    for value in personal {
        assert!(!log.contains(&value), "{value:?} appears in the server log");
    }
}
