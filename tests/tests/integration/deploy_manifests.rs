//! The deployment material in `deploy/` is valid offline: every Kubernetes
//! object against the Kubernetes schemas (kubernetes-validate), the kustomize
//! base complete, every Deployment with probes, resources, a restricted
//! security context and Secrets referenced by name only, and the compose file
//! accepted by docker compose when it is installed.

use crate::support::{python, python_with, stdout_ok};

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    if !python_with("kubernetes_validate") || !python_with("yaml") {
        eprintln!(
            "SKIPPED: python3 with kubernetes-validate and PyYAML is not installed \
             (pip install kubernetes-validate pyyaml)"
        );
        return;
    }
    let stdout = stdout_ok(
        &python("validate_deploy.py")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap(),
    );
    assert!(
        stdout.contains("objects validated against Kubernetes"),
        "{stdout}"
    );
}
