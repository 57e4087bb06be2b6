//! `schakel dossier ...` and `schakel request ...` against `schakel dev`: the
//! seeded family is there once (also after a restart) and each partner's
//! professional sees it through the policy; a new registration from the
//! example file goes through the circle, a phase change, a contribution and
//! information requests answered and declined.

use std::collections::HashMap;

use crate::support::{DevServer, stdout_ok};

fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {output}"))
}

/// Lines `released\t<path>...` or `withheld\t<path>\t<reason>` of a show.
fn lines_for<'a>(output: &'a str, kind: &str, path: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter(|l| l.starts_with(&format!("{kind}\t{path}")))
        .collect()
}

#[test]
fn professionals_work_dossiers_and_requests_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let orgs: HashMap<String, String> = stdout_ok(&server.cli_as("coordinator", &["org", "list"]))
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[1].to_owned(), cols[0].to_owned())
        })
        .collect();

    // The seeded family, registered by the OCJ, is in the police's list.
    let listed = stdout_ok(&server.cli_as("team.politie", &["dossier", "list"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let seed_id = listed.split('\t').next().unwrap().to_owned();
    assert!(listed.contains("case_building"), "{listed}");

    // Police: interventions and national numbers, no mental-health details.
    let police = stdout_ok(&server.cli_as("team.politie", &["dossier", "show", &seed_id]));
    assert_eq!(
        lines_for(&police, "released", "police.interventions").len(),
        1
    );
    assert!(police.contains("92031412352"), "{police}");
    assert_eq!(
        lines_for(&police, "withheld", "ggz.treatment"),
        ["withheld\tggz.treatment\tpolicy_denied"]
    );
    // GGZ: its own fields, not the national register number.
    let ggz = stdout_ok(&server.cli_as("team.ggz", &["dossier", "show", &seed_id]));
    assert!(ggz.contains("traumahulp"), "{ggz}");
    assert!(!ggz.contains("92031412352"));
    assert_eq!(
        lines_for(&ggz, "withheld", "persons.national_number"),
        ["withheld\tpersons.national_number\tpolicy_denied"]
    );
    // As JSON, the released values are tagged.
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(&server.cli_as(
        "team.ggz",
        &["dossier", "show", &seed_id, "--json", "--field", "ggz."],
    )))
    .unwrap();
    let treatment = json["released"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "ggz.treatment")
        .unwrap();
    assert!(treatment["contributions"][0]["value"]["text"].is_string());
    // An unknown dossier: a gRPC error, exit code 2.
    let refused = server.cli_as("team.ocj", &["dossier", "show", "no-such-dossier"]);
    assert_eq!(refused.status.code(), Some(2));

    // A new registration by the CAW, from the example file.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy/examples/registration.json");
    let registered = stdout_ok(&server.cli_as(
        "team.caw",
        &["dossier", "register", "--file", example.to_str().unwrap()],
    ));
    let id = field(&registered, "dossier_id").to_owned();
    assert_eq!(registered.matches("person: ").count(), 2, "{registered}");
    // Outside the circle, the police learn nothing about it.
    let outside = server.cli_as("team.politie", &["dossier", "show", &id]);
    assert_eq!(outside.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&outside.stderr).contains("PERMISSION_DENIED"),
        "{outside:?}"
    );
    assert!(!stdout_ok(&server.cli_as("team.politie", &["dossier", "list"])).contains(&id));

    let caw = |args: &[&str]| stdout_ok(&server.cli_as("team.caw", args));
    caw(&[
        "dossier",
        "participant",
        "add",
        &id,
        "--organisation",
        &orgs["politie"],
    ]);
    caw(&[
        "dossier",
        "participant",
        "add",
        &id,
        "--organisation",
        &orgs["ggz"],
    ]);
    let advanced = caw(&[
        "dossier",
        "advance",
        &id,
        "--from",
        "registration",
        "--to",
        "case_building",
        "--reason",
        "Aanmelding volledig.",
    ]);
    assert!(advanced.contains("case_building"), "{advanced}");
    let contributed = caw(&[
        "dossier",
        "contribute",
        &id,
        "--field",
        "finances.debts",
        "--text",
        "Gezamenlijke lening; meneer blokkeert de rekening.",
    ]);
    assert!(contributed.contains("finances.debts"), "{contributed}");
    // A partner contributes only to its own sector's fields.
    let refused = server.cli_as(
        "team.caw",
        &[
            "dossier",
            "contribute",
            &id,
            "--field",
            "police.interventions",
            "--json",
            r#"{"list": []}"#,
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    // A bad value is refused before anything is sent.
    let bad = server.cli_as(
        "team.caw",
        &[
            "dossier",
            "contribute",
            &id,
            "--field",
            "finances.debts",
            "--json",
            r#"{"txt": "x"}"#,
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("value.txt"));

    // Information requests: the CAW asks the police and GGZ.
    let asked = caw(&[
        "request",
        "create",
        &id,
        "--to",
        &orgs["politie"],
        "--field",
        "police.",
        "--justification",
        "Veiligheidsinschatting voor het plan van aanpak.",
        "--due",
        "2099-01-31",
    ]);
    let police_request = asked.split('\t').next().unwrap().to_owned();
    assert!(asked.contains("\topen\t"), "{asked}");
    let asked = caw(&[
        "request",
        "create",
        &id,
        "--to",
        &orgs["ggz"],
        "--field",
        "ggz.treatment",
        "--justification",
        "Loopt er een behandeling?",
        "--due",
        "2099-01-31",
    ]);
    let ggz_request = asked.split('\t').next().unwrap().to_owned();
    let inbox = stdout_ok(&server.cli_as("team.politie", &["request", "list", "--box", "inbox"]));
    assert!(
        inbox.contains(&police_request) && !inbox.contains(&ggz_request),
        "{inbox}"
    );
    let answered = stdout_ok(&server.cli_as(
        "team.politie",
        &[
            "request",
            "answer",
            &police_request,
            "--field",
            "police.summary",
            "--text",
            "Twee meldingen van belaging in 2026.",
        ],
    ));
    assert!(answered.contains("\tanswered\t"), "{answered}");
    let declined = stdout_ok(&server.cli_as(
        "team.ggz",
        &[
            "request",
            "decline",
            &ggz_request,
            "--reason",
            "professional_secrecy",
            "--explanation",
            "Beroepsgeheim.",
        ],
    ));
    assert!(declined.contains("\tdeclined\t"), "{declined}");
    let outbox = caw(&["request", "list", "--box", "outbox"]);
    assert_eq!(outbox.lines().count(), 2, "{outbox}");
    // The answer is a police contribution, visible to the CAW as policy allows.
    let read = caw(&["dossier", "show", &id, "--field", "police."]);
    assert!(read.contains("belaging in 2026"), "{read}");
    assert_eq!(
        lines_for(&read, "withheld", "police.interventions"),
        ["withheld\tpolice.interventions\tpolicy_denied"]
    );

    // The chain process: the police's feed, the week's table, the figures.
    let feed = stdout_ok(&server.cli_as("team.politie", &["chain", "watch", "--count", "1"]));
    assert_eq!(feed.lines().count(), 1, "{feed}");
    assert!(
        feed.starts_with("1\t"),
        "the feed starts at cursor 1: {feed}"
    );
    let table = caw(&["chain", "table", "--district", "leuven"]);
    assert!(table.starts_with("week "), "{table}");
    let decade = [
        "chain",
        "figures",
        "--from",
        "2021-01-01",
        "--until",
        "2031-01-01",
    ];
    let by_registrant = [&decade[..], &["--by", "registering_partner_type"]].concat();
    let figures = stdout_ok(&server.cli_as("coordinator", &by_registrant));
    assert!(figures.contains("caw\t<5"), "{figures}");
    assert!(figures.ends_with("total\t<5\n"), "{figures}");
    let refused = server.cli_as("team.politie", &decade);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");

    // A restart seeds nothing twice.
    server.stop();
    let again = DevServer::start(&data);
    let listed = stdout_ok(&again.cli_as("team.politie", &["dossier", "list"]));
    assert_eq!(
        listed.lines().count(),
        2,
        "seed + the CAW's dossier: {listed}"
    );
    again.stop();
}
