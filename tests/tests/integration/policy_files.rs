//! The need-to-know policy files in `policies/` mean what their expectation
//! tables say under a reference casbin implementation (Python's pycasbin):
//! every row of `policies/tests/*.csv` holds, every field named exists in the
//! field catalogue, and the generated field groups match `fields.csv`.

use crate::support::{python, python_with, stdout_ok};

#[test]
fn the_expectation_tables_hold_under_pycasbin() {
    if !python_with("casbin") {
        eprintln!("SKIPPED: python3 with casbin is not installed (pip install casbin)");
        return;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let stdout = stdout_ok(
        &python("policy_crosscheck.py")
            .arg(format!("{root}/policies"))
            .output()
            .unwrap(),
    );
    assert!(stdout.contains("expectations hold"), "{stdout}");
}
