//! The need-to-know policy files in `policies/` mean what their expectation
//! tables say under a reference casbin implementation (Python's pycasbin):
//! every row of `policies/tests/*.csv` holds, every field named exists in the
//! field catalogue, and the generated field groups match `fields.csv`.

use std::process::Command;

fn python_with_casbin() -> bool {
    Command::new("python3")
        .args(["-c", "import casbin"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_expectation_tables_hold_under_pycasbin() {
    if !python_with_casbin() {
        eprintln!("SKIPPED: python3 with casbin is not installed (pip install casbin)");
        return;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/policy_crosscheck.py"
        ))
        .arg(format!("{root}/policies"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("expectations hold"), "{stdout}");
}
