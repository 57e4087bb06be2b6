//! The compiled table against casbin and the expectation tables.

use schakel_proto::v1 as pb;

use super::*;
use crate::{compile, document::repository_files, expectations};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The repository's policy, compiled and proven once for all tests here.
fn repository() -> crate::Compiled {
    static COMPILED: std::sync::OnceLock<crate::Compiled> = std::sync::OnceLock::new();
    COMPILED
        .get_or_init(|| {
            block_on(compile(1, repository_files())).expect("the repository's policy compiles")
        })
        .clone()
}

#[test]
fn the_repository_policy_equals_casbin_over_every_combination() {
    let compiled = repository();
    // Every named partner type and *, 5 roles, 7 phases, 2 actions, every field.
    let expected = compiled.policy.partner_types.len() * 5 * 7 * 2 * compiled.table.fields().len();
    assert_eq!(compiled.proven, expected);
    assert!(compiled.proven > 30_000, "{}", compiled.proven);
}

#[test]
fn every_expectation_table_holds() {
    let compiled = repository();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/tests");
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).expect("policies/tests") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        rows.extend(expectations::parse(&name, &text).expect("parses"));
    }
    assert!(rows.len() > 400, "{}", rows.len());
    let failures = expectations::failures(&compiled.table, &rows);
    assert!(failures.is_empty(), "{failures:#?}");
}

fn read(
    table: &DecisionTable,
    pt: &str,
    roles: &[pb::Role],
    phase: pb::Phase,
    field: &str,
) -> bool {
    let roles: Vec<i32> = roles.iter().map(|r| *r as i32).collect();
    table
        .allowed(pt, &roles, phase as i32, pb::FieldAction::Read as i32)
        .contains(table.field(field).expect("field"))
}

#[test]
fn a_deny_of_one_role_overrides_the_allow_of_another() {
    let table = repository().table;
    use pb::Role::*;
    // A team member of the justitiehuis reads the national register number...
    assert!(read(
        &table,
        "justitiehuis",
        &[TeamMember],
        pb::Phase::CaseBuilding,
        "persons.national_number"
    ));
    // ...but not while also holding the coordinator role (denied to coordinators).
    assert!(!read(
        &table,
        "justitiehuis",
        &[TeamMember, Coordinator],
        pb::Phase::CaseBuilding,
        "persons.national_number"
    ));
    // Roles add up: a casusregisseur who is also a team member keeps both views.
    assert!(read(
        &table,
        "caw",
        &[TeamMember, Casusregisseur],
        pb::Phase::FollowUp,
        "police.interventions"
    ));
    // No roles, nothing.
    assert!(!read(
        &table,
        "politie",
        &[],
        pb::Phase::CaseBuilding,
        "registration.situation_description"
    ));
}

#[test]
fn an_unnamed_partner_type_gets_the_star_rows_and_unknown_inputs_get_nothing() {
    let table = repository().table;
    let team = [pb::Role::TeamMember as i32];
    let read = pb::FieldAction::Read as i32;
    let star = table.decide("*", &team, pb::Phase::Assessment as i32, read);
    let unnamed = table.decide("ocmw", &team, pb::Phase::Assessment as i32, read);
    assert_eq!(star, unnamed);
    assert!(
        star.allowed.contains(
            table
                .field("registration.situation_description")
                .expect("field")
        )
    );
    let nothing = table.decide("politie", &team, 0, read);
    assert!((0..table.fields().len()).all(|i| !nothing.allowed.contains(i)));
    let nothing = table.decide("politie", &[99], pb::Phase::Assessment as i32, read);
    assert!((0..table.fields().len()).all(|i| !nothing.allowed.contains(i)));
}

#[test]
fn what_is_allowed_in_another_phase_is_reported() {
    let table = repository().table;
    let d = table.decide(
        "caw",
        &[pb::Role::TeamMember as i32],
        pb::Phase::FollowUp as i32,
        pb::FieldAction::Read as i32,
    );
    let district = table
        .field("registration.situation_description")
        .expect("field");
    assert!(!d.allowed.contains(district));
    assert!(d.other_phase.contains(district), "readable while active");
    let clinical = table.field("ggz.clinical_notes").expect("field");
    assert!(!d.other_phase.contains(clinical), "never readable by caw");
}

#[test]
fn the_proto_form_round_trips_and_refuses_damage() {
    let table = repository().table;
    let proto = table.to_proto();
    assert_eq!(proto.rows.len(), table.partner_types().len() * 5 * 7 * 2);
    assert_eq!(
        proto.rows[0].allow_mask.len(),
        table.fields().len().div_ceil(8)
    );
    assert_eq!(DecisionTable::from_proto(&proto), Some(table.clone()));
    let mut missing = proto.clone();
    missing.rows.pop();
    assert_eq!(DecisionTable::from_proto(&missing), None);
    let mut twice = proto.clone();
    twice.rows[1] = twice.rows[0].clone();
    assert_eq!(DecisionTable::from_proto(&twice), None);
    let mut short = proto.clone();
    short.rows[3].allow_mask.pop();
    assert_eq!(DecisionTable::from_proto(&short), None);
    // A bit beyond the catalogue.
    if !proto.fields.len().is_multiple_of(8) {
        let mut beyond = proto;
        let last = beyond.rows[5].allow_mask.len() - 1;
        beyond.rows[5].allow_mask[last] |= 0x80;
        assert_eq!(DecisionTable::from_proto(&beyond), None);
    }
}

#[test]
fn the_documented_bit_order_is_used() {
    let table = repository().table;
    let proto = table.to_proto();
    let row = proto
        .rows
        .iter()
        .find(|r| {
            r.partner_type == "ggz"
                && r.role == pb::Role::TeamMember as i32
                && r.phase == pb::Phase::CaseBuilding as i32
                && r.action == pb::FieldAction::Read as i32
        })
        .expect("row");
    let mut allowed = 0;
    for (i, path) in table.fields().iter().enumerate() {
        let bit = (row.allow_mask[i / 8] >> (i % 8)) & 1 == 1;
        let want = read(
            &table,
            "ggz",
            &[pb::Role::TeamMember],
            pb::Phase::CaseBuilding,
            path,
        );
        assert_eq!(bit, want, "{path}");
        allowed += usize::from(want);
    }
    assert!(allowed > 10, "{allowed}");
}

#[test]
fn a_model_whose_matcher_the_table_does_not_reproduce_is_refused() {
    let mut document = repository_files();
    // Drop the phase condition from the matcher: casbin would now ignore phases.
    let before = document.model_conf.clone();
    document.model_conf = document.model_conf.replace(
        "(p.phase == \"*\" || r.phase == p.phase || g3(r.phase, p.phase)) && ",
        "",
    );
    assert_ne!(before, document.model_conf);
    let err = block_on(compile(2, document)).expect_err("differs from the table");
    assert_eq!(err.field, "model_conf");
    assert!(err.message.contains("by casbin"), "{}", err.message);
    // A different effect (deny does not override) is caught too, as soon as a
    // rule allows what another denies.
    let mut document = repository_files();
    document
        .policy_csv
        .push_str("p, politie, roles:case_team, ggz.diagnosis, read, phases:active, allow\n");
    let compiled = block_on(compile(2, document.clone())).expect("deny still overrides");
    assert!(!read(
        &compiled.table,
        "politie",
        &[pb::Role::TeamMember],
        pb::Phase::CaseBuilding,
        "ggz.diagnosis"
    ));
    document.model_conf = document.model_conf.replace(
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "e = some(where (p.eft == allow))",
    );
    let err = block_on(compile(2, document)).expect_err("differs from the table");
    assert_eq!(err.field, "model_conf");
}
