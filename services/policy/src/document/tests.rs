//! Parsing errors name the file and line.

use super::*;

fn with(f: impl FnOnce(&mut pb::PolicyDocument)) -> Result<Policy, Invalid> {
    let mut document = repository_files();
    f(&mut document);
    Policy::parse(&document)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.trim() == needle || l.trim().starts_with(needle))
        .expect("line")
        + 1
}

#[test]
fn the_repository_files_parse() {
    let policy = Policy::parse(&repository_files()).expect("parses");
    assert!(
        (30..=60).contains(&policy.fields.len()),
        "{}",
        policy.fields.len()
    );
    assert!(policy.partner_types.contains(&"ggz".to_owned()));
    assert_eq!(policy.partner_types.last().map(String::as_str), Some(ANY));
    assert!(
        policy
            .fields
            .iter()
            .any(|f| f.path == "persons.national_number" && f.per_person)
    );
}

#[test]
fn an_unknown_field_in_a_rule_names_its_line() {
    let document = repository_files();
    let target = "p, ggz, roles:case_team, class:art9_health, read, phases:active, allow";
    let err = with(|d| {
        d.policy_csv = d
            .policy_csv
            .lines()
            .map(|l| {
                if l == target {
                    "p, ggz, roles:case_team, ggz.horoscope, read, phases:active, allow"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    })
    .expect_err("unknown field");
    assert_eq!(
        err.field,
        format!("policy_csv:{}", line_of(&document.policy_csv, target))
    );
    assert!(err.message.contains("ggz.horoscope"), "{}", err.message);
}

#[test]
fn malformed_rules_name_their_line() {
    for (bad, words) in [
        (
            "p, ggz, team_member, ggz.diagnosis, read, case_building",
            "6 values",
        ),
        (
            "p, ggz, team_member, ggz.diagnosis, peek, case_building, allow",
            "not an action",
        ),
        (
            "p, ggz, team_member, ggz.diagnosis, read, holidays, allow",
            "not a phase",
        ),
        (
            "p, ggz, chef, ggz.diagnosis, read, case_building, allow",
            "not a role",
        ),
        (
            "p, ggz, team_member, ggz.diagnosis, read, case_building, maybe",
            "not an effect",
        ),
        (
            "p, ggz, team_member, ggz.diagnosis, read, case_building, allow # ok",
            "trailing comments",
        ),
        ("x, ggz, team_member", "lines start with"),
        ("g2, ggz.horoscope, cat:mental_health", "not a field"),
        ("g, politie, criminal", "not a group name"),
    ] {
        let err = with(|d| d.policy_csv.push_str(&format!("\n{bad}\n"))).expect_err(bad);
        let lines = repository_files().policy_csv.lines().count();
        assert_eq!(
            err.field,
            format!("policy_csv:{}", lines + 2),
            "{bad}: {err:?}"
        );
        assert!(err.message.contains(words), "{bad}: {}", err.message);
    }
}

#[test]
fn catalogue_errors_name_their_line() {
    let err = with(|d| {
        d.fields_csv
            .push_str("ggz.x,mental_health,secret,dossier,text,,,a,b\n")
    })
    .expect_err("class");
    let line = repository_files().fields_csv.lines().count() + 1;
    assert_eq!(err.field, format!("fields_csv:{line}"));
    assert!(err.message.contains("GDPR class"));
    let err = with(|d| {
        d.fields_csv
            .push_str("ggz.x,mental_health,ordinary,person,text,,,a,b\n")
    })
    .expect_err("level");
    assert!(err.message.contains("persons."), "{}", err.message);
    let err = with(|d| {
        d.fields_csv
            .push_str("registration.registrant,registration,ordinary,dossier,text,,,a,b\n")
    })
    .expect_err("twice");
    assert!(err.message.contains("twice"));
    let err =
        with(|d| d.fields_csv = d.fields_csv.replacen("path,", "pad,", 1)).expect_err("header");
    assert_eq!(err.field, "fields_csv:1");
    for (row, words) in [
        (
            "ggz.x,mental_health,ordinary,dossier,colour,,,a,b",
            "value_kind",
        ),
        (
            "ggz.x,mental_health,ordinary,dossier,list,,,a,b",
            "needs an item_kind",
        ),
        (
            "ggz.x,mental_health,ordinary,dossier,text,code,,a,b",
            "only for lists",
        ),
        (
            "ggz.x,mental_health,ordinary,dossier,text,,laag|hoog,a,b",
            "only for code",
        ),
        (
            "ggz.x,mental_health,ordinary,dossier,code,,laag|Hoog,a,b",
            "not a code",
        ),
    ] {
        let err = with(|d| d.fields_csv.push_str(&format!("{row}\n"))).expect_err(row);
        assert_eq!(err.field, format!("fields_csv:{line}"), "{row}");
        assert!(err.message.contains(words), "{row}: {}", err.message);
    }
    let policy = Policy::parse(&repository_files()).expect("parses");
    let forms = policy
        .fields
        .iter()
        .find(|f| f.path == "registration.violence_forms")
        .expect("contract field");
    assert_eq!(forms.value_kind, pb::FieldValueKind::List as i32);
    assert_eq!(forms.item_kind, pb::FieldValueKind::Code as i32);
    assert!(forms.allowed_codes.contains(&"partnergeweld".to_owned()));
}

#[test]
fn model_errors_name_their_line() {
    let document = repository_files();
    let err = with(|d| {
        d.model_conf = d
            .model_conf
            .replace("r = sub, role, obj, act, phase", "r = sub, obj, act")
    })
    .expect_err("request shape");
    assert_eq!(
        err.field,
        format!("model_conf:{}", line_of(&document.model_conf, "r = sub"))
    );
    let err = with(|d| d.model_conf.push_str("\n[extras]\n")).expect_err("section");
    assert!(err.message.contains("unknown section"));
    let err = with(|d| d.model_conf = d.model_conf.replace("g3 = _, _", "")).expect_err("g3");
    assert!(err.message.contains("g3 is missing"), "{}", err.message);
}

#[test]
fn groups_are_followed_through_levels() {
    let mut g = Groups::default();
    g.add("politie", "pt:criminal_justice");
    g.add("pt:criminal_justice", "pt:justice_chain");
    assert!(g.contains("politie", "pt:justice_chain"));
    assert!(!g.contains("caw", "pt:justice_chain"));
    assert!(!g.contains("pt:justice_chain", "politie"));
}

#[test]
fn the_content_hash_separates_the_files() {
    let a = pb::PolicyDocument {
        model_conf: "ab".into(),
        policy_csv: "c".into(),
        fields_csv: String::new(),
    };
    let b = pb::PolicyDocument {
        model_conf: "a".into(),
        policy_csv: "bc".into(),
        fields_csv: String::new(),
    };
    assert_ne!(content_sha256(&a), content_sha256(&b));
    assert_eq!(content_sha256(&a).len(), 32);
}
