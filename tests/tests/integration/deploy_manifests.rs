//! The deployment material in `deploy/` is valid offline: every Kubernetes
//! object against the Kubernetes schemas (kubernetes-validate), the kustomize
//! base complete, every Deployment with probes, resources, a restricted
//! security context and Secrets referenced by name only, and the compose file
//! accepted by docker compose when it is installed.

use std::process::Command;

fn python_with(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    if !python_with("kubernetes_validate") || !python_with("yaml") {
        eprintln!(
            "SKIPPED: python3 with kubernetes-validate and PyYAML is not installed \
             (pip install kubernetes-validate pyyaml)"
        );
        return;
    }
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/validate_deploy.py"
        ))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("objects validated against Kubernetes"),
        "{stdout}"
    );
}
