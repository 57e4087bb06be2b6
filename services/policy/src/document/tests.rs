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

/// The model with its matcher line replaced by `m`.
fn with_matcher(m: &str) -> Result<Policy, Invalid> {
    with(|d| {
        let line = d
            .model_conf
            .lines()
            .find(|l| l.starts_with("m = "))
            .expect("matcher")
            .to_owned();
        d.model_conf = d.model_conf.replace(&line, &format!("m = {m}"));
    })
}

#[test]
fn hostile_matchers_and_effects_are_refused_before_casbin_sees_them() {
    let document = repository_files();
    let matcher_line = format!("model_conf:{}", line_of(&document.model_conf, "m = "));
    // 2,000 nested brackets (about 5 KB) overflowed casbin's stack and
    // aborted the process; 1,000 were accepted.
    for depth in [1_000, 2_000] {
        let nested = format!("{}r.act == p.act{}", "(".repeat(depth), ")".repeat(depth));
        let err = with_matcher(&nested).expect_err("nested");
        assert_eq!(err.field, matcher_line);
    }
    let nested = format!("{}r.act == p.act{}", "(".repeat(9), ")".repeat(9));
    let err = with_matcher(&nested).expect_err("nine levels");
    assert!(err.message.contains("deeper than 8"), "{}", err.message);
    let negations = format!("{}(r.act == p.act)", "!".repeat(5_000));
    assert!(with_matcher(&negations).is_err());
    let negations = format!("{}(r.act == p.act)", "!".repeat(17));
    let err = with_matcher(&negations).expect_err("17 negations");
    assert!(err.message.contains("negations"), "{}", err.message);
    let terms = format!("{}r.act == p.act", "true && ".repeat(65));
    let err = with_matcher(&terms).expect_err("65 operators");
    assert!(err.message.contains("operators"), "{}", err.message);
    let unbalanced = with_matcher("(r.act == p.act").expect_err("open bracket");
    assert!(
        unbalanced.message.contains("open"),
        "{}",
        unbalanced.message
    );
    // The effect is an expression too.
    let effect = format!(
        "e = {}some(where (p.eft == allow)){}",
        "(".repeat(2_000),
        ")".repeat(2_000)
    );
    let err = with(|d| {
        d.model_conf = d.model_conf.replace(
            "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
            &effect,
        )
    })
    .expect_err("nested effect");
    assert!(err.field.starts_with("model_conf:"), "{err:?}");
    // The repository's own model stays within every bound.
    Policy::parse(&document).expect("the repository's model");
}

#[test]
fn a_catalogue_or_a_policy_too_large_to_prove_is_refused_naming_its_line() {
    let err = with(|d| {
        for i in 0..500 {
            d.fields_csv.push_str(&format!(
                "extra.f{i},extra,ordinary,dossier,text,,,Extra veld {i},Extra field {i}\n"
            ));
        }
    })
    .expect_err("700 fields");
    assert!(err.field.starts_with("fields_csv:"), "{err:?}");
    assert!(
        err.message.contains("at most 200 fields"),
        "{}",
        err.message
    );
    let err = with(|d| {
        for i in 0..MAX_RULE_LINES {
            d.policy_csv.push_str(&format!("\ng, role_{i}, roles:many"));
        }
    })
    .expect_err("too many lines");
    assert!(
        err.message.contains("at most 4000 rule lines"),
        "{}",
        err.message
    );
}

#[test]
fn group_lookups_stay_linear_in_a_dense_cycle() {
    // 100 groups each the member of every other: without visiting each name
    // once, ten levels of expansion take 100^10 steps.
    let mut g = Groups::default();
    let names: Vec<String> = (0..100).map(|i| format!("pt:g{i}")).collect();
    for a in &names {
        for b in &names {
            if a != b {
                g.add(a, b);
            }
        }
    }
    g.add("politie", "pt:g0");
    assert!(g.contains("politie", "pt:g99"));
    assert!(!g.contains("politie", "pt:elsewhere"));
    assert!(!g.contains("caw", "pt:g1"));
    // Still at most ten links deep, as casbin.
    let mut chain = Groups::default();
    for i in 0..12 {
        chain.add(&format!("pt:c{i}"), &format!("pt:c{}", i + 1));
    }
    assert!(chain.contains("pt:c0", "pt:c10"));
    assert!(!chain.contains("pt:c0", "pt:c11"));
}
