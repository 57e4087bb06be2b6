//! Filtering a 40-field read: the compiled decision table (what the broker
//! does on every read) against casbin's own `enforce` on the same files (one
//! call per field per role of the caller), for the repository's policy.
//!
//! `cargo bench -p schakel-policy --bench decision_table` (add `-- --quick`
//! for fewer iterations). Also times the proof over every combination.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::{hint::black_box, time::Instant};

use schakel_policy::{
    compile,
    document::{ROLES, repository_files},
    proof::Casbin,
};
use schakel_proto::v1 as pb;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let document = repository_files();
    let started = Instant::now();
    let compiled = runtime.block_on(compile(1, document.clone())).unwrap();
    println!(
        "compile + proof: {} decisions proven equal to casbin in {:.2?}",
        compiled.proven,
        started.elapsed()
    );
    let table = &compiled.table;
    // A read of the first 40 fields of the catalogue by a CAW professional who
    // is team member and casusregisseur, in case building.
    let fields: Vec<String> = table.fields().iter().take(40).cloned().collect();
    assert_eq!(fields.len(), 40);
    let roles = [pb::Role::TeamMember as i32, pb::Role::Casusregisseur as i32];
    let phase = pb::Phase::CaseBuilding as i32;
    let action = pb::FieldAction::Read as i32;

    let table_read = || {
        let allowed = table.allowed(black_box("caw"), &roles, phase, action);
        fields
            .iter()
            .filter(|f| table.field(f).is_some_and(|i| allowed.contains(i)))
            .count()
    };
    let iterations = if quick { 20_000 } else { 500_000 };
    let started = Instant::now();
    let mut released = 0;
    for _ in 0..iterations {
        released = black_box(table_read());
    }
    let table_ns = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("decision table: {table_ns:.0} ns per 40-field read ({released} fields released)");

    let casbin = runtime.block_on(Casbin::load(&document)).unwrap();
    let role_codes: Vec<&str> = roles
        .iter()
        .map(|r| ROLES.iter().find(|(_, x)| *x as i32 == *r).unwrap().0)
        .collect();
    let casbin_read = || {
        fields
            .iter()
            .filter(|f| {
                // Allowed if some role allows and none denies.
                let mut allow = false;
                let mut deny = false;
                for role in &role_codes {
                    let (a, d) = casbin
                        .enforce("caw", role, f, "read", "case_building")
                        .unwrap();
                    allow |= a;
                    deny |= d;
                }
                allow && !deny
            })
            .count()
    };
    let iterations = if quick { 20 } else { 300 };
    let started = Instant::now();
    let mut casbin_released = 0;
    for _ in 0..iterations {
        casbin_released = black_box(casbin_read());
    }
    let casbin_ns = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    assert_eq!(casbin_released, released, "the two must agree");
    println!(
        "casbin enforce: {:.1} µs per 40-field read (two enforcers per call: decision and explicit deny)",
        casbin_ns / 1000.0
    );
    println!("ratio: the table is {:.0}x faster", casbin_ns / table_ns);
}
