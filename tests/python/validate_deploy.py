#!/usr/bin/env python3
"""Validates the deployment material in deploy/ offline.

Kubernetes (deploy/k8s):
  - every YAML file parses;
  - every object validates against the Kubernetes schemas of the
    kubernetes-validate package (strict: unknown fields are errors), for
    Kubernetes 1.31 unless --kubernetes-version says otherwise;
  - each kustomization.yaml lists exactly the YAML files beside it (and the
    directories it names exist); when kubectl is installed, `kubectl kustomize`
    builds it and the built objects validate too;
  - the five services (identity, audit, legal-basis, policy, broker) each have a
    Deployment, a Service (port 50051 named grpc) and a PodDisruptionBudget;
  - every Deployment's containers have readiness and liveness probes, CPU and
    memory requests and limits, and a restrictive securityContext (non-root,
    read-only root filesystem, no privilege escalation, all capabilities
    dropped, RuntimeDefault seccomp);
  - Secrets are only referenced by name: no Secret object at all, no
    credentials in literal environment values, every referenced ConfigMap exists;
  - the schakel.toml in the ConfigMap parses as TOML;
  - NetworkPolicies: a default deny of ingress and egress for the namespace.
Compose (deploy/compose.yaml):
  - it parses and has the expected services; each Schakel service runs
    `serve <service> --config /etc/schakel/schakel.toml` and exports to the
    collector; secrets are files under ./secrets, never inline;
  - compose.schakel.toml and otel-collector.yaml parse;
  - when `docker compose` (or `docker-compose`) works, `config -q` succeeds.
Dockerfile: the builder and runtime images, the non-root user, the entrypoint.

Prints one summary line, e.g.
  ok: 31 objects validated against Kubernetes 1.31, compose: 8 services
and exits 0; otherwise prints every problem and exits 1.

Needs PyYAML and kubernetes-validate (pip install kubernetes-validate; it
ships the schemas, no network is used).
"""

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("error: PyYAML is missing: pip install pyyaml")
try:
    import kubernetes_validate
except ImportError:  # pragma: no cover
    sys.exit("error: kubernetes-validate is missing: pip install kubernetes-validate")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ["identity", "audit", "legal-basis", "policy", "broker"]
COMPOSE_SERVICES = {"postgres", "otel-collector", "jaeger", *SERVICES}
GRPC_PORT = 50051
# Credentials in a URL (user:password@) or key material in a literal value.
CREDENTIALS = re.compile(r"://[^/@\s:]+:[^/@\s]+@|PRIVATE KEY|BEGIN CERTIFICATE")

problems: list[str] = []


def problem(where: str, message: str) -> None:
    problems.append(f"{where}: {message}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_yaml_documents(path: Path) -> list:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as err:
        problem(rel(path), f"does not parse as YAML: {err}")
        return []


def name_of(obj: dict) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def validate_object(obj: dict, where: str, version: str) -> bool:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return True
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        problem(where, f"{name_of(obj)} does not validate against Kubernetes {version}: {path}: {err.message}")
    except kubernetes_validate.SchemaNotFoundError as err:
        problem(where, f"{name_of(obj)}: {err.message}")
    except Exception as err:  # VersionNotSupportedError and schema errors
        problem(where, f"{name_of(obj)} could not be validated: {getattr(err, 'message', err)}")
    return False


# --- Kubernetes -------------------------------------------------------------


def check_kustomization(path: Path) -> None:
    kustomization = (load_yaml_documents(path) or [{}])[0]
    where = rel(path)
    listed = kustomization.get("resources") or []
    if not isinstance(listed, list):
        problem(where, "resources must be a list")
        return
    here = path.parent
    files = set()
    for entry in listed:
        target = here / entry
        if "://" in entry:
            problem(where, f"remote resource {entry!r}: the base must build offline")
        elif target.is_dir():
            if not (target / "kustomization.yaml").exists():
                problem(where, f"directory {entry!r} has no kustomization.yaml")
        elif target.is_file():
            files.add(target.resolve())
        else:
            problem(where, f"lists {entry!r}, which does not exist")
    if len(listed) != len(set(listed)):
        problem(where, "lists a resource twice")
    present = {
        p.resolve()
        for p in here.iterdir()
        if p.is_file() and p.suffix in (".yaml", ".yml") and p.name != "kustomization.yaml"
    }
    for missing in sorted(present - files):
        problem(where, f"does not list {missing.name}, which is beside it")


def containers_of(deployment: dict) -> list:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def check_deployment(obj: dict, where: str) -> None:
    name = name_of(obj)
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    for key, value in selector.items():
        if labels.get(key) != value:
            problem(where, f"{name}: selector {key}={value} does not match the pod labels")
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"):
        if key not in labels:
            problem(where, f"{name}: pod label {key} is missing")
    if labels.get("app.kubernetes.io/part-of") != "schakel":
        problem(where, f"{name}: app.kubernetes.io/part-of must be schakel")

    pod_security = pod.get("securityContext") or {}
    if pod_security.get("runAsNonRoot") is not True:
        problem(where, f"{name}: pod securityContext.runAsNonRoot must be true")
    pod_seccomp = (pod_security.get("seccompProfile") or {}).get("type")
    if pod.get("automountServiceAccountToken") is not False:
        problem(where, f"{name}: automountServiceAccountToken must be false")

    containers = pod.get("containers") or []
    if not containers:
        problem(where, f"{name}: no containers")
    for container in containers:
        cname = f"{name} container {container.get('name', '?')}"
        for probe in ("readinessProbe", "livenessProbe"):
            if not container.get(probe):
                problem(where, f"{cname}: {probe} is missing")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    problem(where, f"{cname}: resources.{kind}.{resource} is missing")
        security = container.get("securityContext") or {}
        if security.get("readOnlyRootFilesystem") is not True:
            problem(where, f"{cname}: securityContext.readOnlyRootFilesystem must be true")
        if security.get("allowPrivilegeEscalation") is not False:
            problem(where, f"{cname}: securityContext.allowPrivilegeEscalation must be false")
        if security.get("runAsNonRoot") is False or (
            security.get("runAsNonRoot") is None and pod_security.get("runAsNonRoot") is not True
        ):
            problem(where, f"{cname}: must run as non-root")
        drop = (security.get("capabilities") or {}).get("drop") or []
        if "ALL" not in drop:
            problem(where, f"{cname}: securityContext.capabilities.drop must include ALL")
        if (security.get("capabilities") or {}).get("add"):
            problem(where, f"{cname}: adds capabilities")
        seccomp = (security.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp != "RuntimeDefault":
            problem(where, f"{cname}: seccompProfile must be RuntimeDefault")
        for env in container.get("env") or []:
            value = env.get("value")
            if isinstance(value, str) and CREDENTIALS.search(value):
                problem(where, f"{cname}: env {env.get('name')} has credentials inline; use secretKeyRef")


def secret_references(obj: dict) -> tuple[set, set]:
    """The Secrets and ConfigMaps a workload refers to."""
    secrets, configmaps = set(), set()
    for container in containers_of(obj):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if "secretKeyRef" in source:
                secrets.add(source["secretKeyRef"].get("name"))
            if "configMapKeyRef" in source:
                configmaps.add(source["configMapKeyRef"].get("name"))
        for env_from in container.get("envFrom") or []:
            if "secretRef" in env_from:
                secrets.add(env_from["secretRef"].get("name"))
            if "configMapRef" in env_from:
                configmaps.add(env_from["configMapRef"].get("name"))
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            secrets.add(volume["secret"].get("secretName"))
        if "configMap" in volume:
            configmaps.add(volume["configMap"].get("name"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                secrets.add(source["secret"].get("name"))
            if "configMap" in source:
                configmaps.add(source["configMap"].get("name"))
    return secrets, configmaps


def check_network_policies(policies: list, where: str) -> None:
    deny = [
        p
        for p in policies
        if (p.get("spec") or {}).get("podSelector") == {}
        and set((p.get("spec") or {}).get("policyTypes") or []) == {"Ingress", "Egress"}
        and not (p.get("spec") or {}).get("ingress")
        and not (p.get("spec") or {}).get("egress")
    ]
    if not deny:
        problem(where, "no NetworkPolicy denies all ingress and egress of the namespace")


def check_kubernetes(version: str) -> int:
    k8s = DEPLOY / "k8s"
    files = sorted(p for p in k8s.rglob("*") if p.suffix in (".yaml", ".yml"))
    if not files:
        problem(rel(k8s), "no YAML files")
        return 0
    objects: list[tuple[str, dict]] = []
    for path in files:
        docs = load_yaml_documents(path)
        if path.name == "kustomization.yaml":
            check_kustomization(path)
            continue
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                problem(rel(path), "a document is not a Kubernetes object (kind, apiVersion)")
                continue
            objects.append((rel(path), doc))

    validated = sum(validate_object(obj, where, version) for where, obj in objects)

    by_kind: dict[str, dict[str, tuple[str, dict]]] = {}
    for where, obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = (where, obj)
        if obj["kind"] == "Secret":
            what = "with data" if obj.get("data") or obj.get("stringData") else "(empty)"
            problem(where, f"{name_of(obj)} {what}: Secrets are referenced by name, never created here")

    configmaps = by_kind.get("ConfigMap", {})
    referenced_secrets: set = set()
    for name, (where, obj) in by_kind.get("Deployment", {}).items():
        check_deployment(obj, where)
        secrets, maps = secret_references(obj)
        referenced_secrets |= secrets
        for missing in sorted(m for m in maps if m not in configmaps):
            problem(where, f"{name_of(obj)} refers to ConfigMap {missing}, which no file defines")
    for secret in sorted(s for s in referenced_secrets if not s or not s.startswith("schakel-")):
        problem(rel(k8s), f"Secret reference {secret!r} should be named schakel-...")

    for service in SERVICES:
        for kind in ("Deployment", "Service", "PodDisruptionBudget"):
            if service not in by_kind.get(kind, {}):
                problem(rel(k8s), f"no {kind} {service}")
        if service in by_kind.get("Service", {}):
            where, svc = by_kind["Service"][service]
            ports = (svc.get("spec") or {}).get("ports") or []
            if not any(p.get("port") == GRPC_PORT and p.get("name") == "grpc" for p in ports):
                problem(where, f"Service {service}: no port {GRPC_PORT} named grpc")
            selector = (svc.get("spec") or {}).get("selector") or {}
            if selector.get("app.kubernetes.io/component") != service:
                problem(where, f"Service {service}: does not select component {service}")

    for name, (where, obj) in configmaps.items():
        for key, text in (obj.get("data") or {}).items():
            if key.endswith(".toml"):
                try:
                    tomllib.loads(text)
                except tomllib.TOMLDecodeError as err:
                    problem(where, f"ConfigMap {name} {key} does not parse as TOML: {err}")
            if CREDENTIALS.search(text):
                problem(where, f"ConfigMap {name} {key} holds credentials or key material")

    check_network_policies([obj for _, obj in by_kind.get("NetworkPolicy", {}).values()], rel(k8s))
    check_kustomize_build(version)
    return validated


def check_kustomize_build(version: str) -> None:
    """Builds every kustomization with kubectl, when there is one."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("note: kubectl not found; kustomize build not checked", file=sys.stderr)
        return
    for kustomization in sorted((DEPLOY / "k8s").rglob("kustomization.yaml")):
        where = rel(kustomization.parent)
        built = subprocess.run(
            [kubectl, "kustomize", str(kustomization.parent)], capture_output=True, text=True
        )
        if built.returncode != 0:
            problem(where, f"kubectl kustomize failed: {built.stderr.strip()}")
            continue
        for obj in yaml.safe_load_all(built.stdout):
            if obj:
                validate_object(obj, f"{where} (built)", version)


# --- Compose ----------------------------------------------------------------


def check_compose() -> int:
    path = DEPLOY / "compose.yaml"
    where = rel(path)
    docs = load_yaml_documents(path)
    if not docs:
        problem(where, "empty or unparsable")
        return 0
    compose = docs[0]
    services = compose.get("services") or {}
    missing = COMPOSE_SERVICES - set(services)
    if missing:
        problem(where, f"services missing: {', '.join(sorted(missing))}")
    postgres = services.get("postgres") or {}
    if not str(postgres.get("image", "")).startswith("postgres:15"):
        problem(where, "postgres: image should be postgres:15")
    if not postgres.get("healthcheck"):
        problem(where, "postgres: no healthcheck")
    declared_secrets = compose.get("secrets") or {}
    for name, secret in declared_secrets.items():
        file = (secret or {}).get("file")
        if not file or not str(file).startswith("./secrets/"):
            problem(where, f"secret {name}: must be a file under ./secrets (never inline)")
    for service in SERVICES:
        spec = services.get(service) or {}
        expected = ["serve", service, "--config", "/etc/schakel/schakel.toml"]
        if spec.get("command") != expected:
            problem(where, f"{service}: command should be {expected}")
        env = spec.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector:4317":
            problem(where, f"{service}: OTEL_EXPORTER_OTLP_ENDPOINT should be http://otel-collector:4317")
        for key in ("SCHAKEL_SERVER__TLS__CERT", "SCHAKEL_SERVER__TLS__KEY"):
            if key not in env:
                problem(where, f"{service}: {key} (its own certificate) is not set")
        for key, value in env.items():
            if isinstance(value, str) and CREDENTIALS.search(value):
                problem(where, f"{service}: {key} holds credentials inline")
        for secret in spec.get("secrets") or []:
            name = secret if isinstance(secret, str) else secret.get("source")
            if name not in declared_secrets:
                problem(where, f"{service}: secret {name} is not declared")
    for name in ("compose.schakel.toml", "otel-collector.yaml"):
        if not (DEPLOY / name).is_file():
            problem(where, f"{name} is missing")
    try:
        tomllib.loads((DEPLOY / "compose.schakel.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        problem("deploy/compose.schakel.toml", f"does not parse as TOML: {err}")
    check_collector()
    check_compose_cli()
    return len(services)


def check_collector() -> None:
    path = DEPLOY / "otel-collector.yaml"
    docs = load_yaml_documents(path)
    if not docs:
        return
    config = docs[0]
    traces = (((config.get("service") or {}).get("pipelines") or {}).get("traces")) or {}
    for section, kind in (("receivers", "receivers"), ("processors", "processors"), ("exporters", "exporters")):
        for name in traces.get(kind) or []:
            if name not in (config.get(section) or {}):
                problem(rel(path), f"the traces pipeline uses {section[:-1]} {name}, which is not defined")
    if "otlp" not in (traces.get("receivers") or []):
        problem(rel(path), "the traces pipeline does not receive OTLP")


def works(command: list) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check_compose_cli() -> None:
    """`docker compose config -q` (or docker-compose) when one is usable."""
    compose = DEPLOY / "compose.yaml"
    if shutil.which("docker") and works(["docker", "compose", "version"]):
        command = ["docker", "compose"]
    elif shutil.which("docker-compose") and works(["docker-compose", "version"]):
        command = ["docker-compose"]
    else:
        print("note: neither `docker compose` nor docker-compose works; compose CLI check skipped", file=sys.stderr)
        return
    result = subprocess.run([*command, "-f", str(compose), "config", "-q"], capture_output=True, text=True)
    if result.returncode != 0:
        problem(rel(compose), f"`{' '.join(command)} config -q` failed: {result.stderr.strip()}")


# --- Dockerfile -------------------------------------------------------------


def check_dockerfile() -> None:
    path = DEPLOY / "Dockerfile"
    where = rel(path)
    try:
        text = path.read_text()
    except OSError:
        problem(where, "missing")
        return
    for needle, what in (
        (r"(?m)^FROM rust:1\.95-bookworm AS builder", "builder FROM rust:1.95-bookworm"),
        (r"cargo build --release --locked -p schakel", "cargo build --release --locked -p schakel"),
        (r"(?m)^FROM debian:bookworm-slim", "runtime FROM debian:bookworm-slim"),
        (r"(?m)^USER (?!root|0\b)\S+", "a non-root USER"),
        (r"/usr/local/bin/schakel", "the binary at /usr/local/bin/schakel"),
        (r'(?m)^ENTRYPOINT \["schakel"\]', 'ENTRYPOINT ["schakel"]'),
        (r"(?m)^EXPOSE 50051", "EXPOSE 50051"),
    ):
        if not re.search(needle, text):
            problem(where, f"expected {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", default="1.31", help="schemas to validate against (default 1.31)")
    args = parser.parse_args()

    objects = check_kubernetes(args.kubernetes_version)
    services = check_compose()
    check_dockerfile()
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        print(f"FAILED: {len(problems)} problem(s) in deploy/", file=sys.stderr)
        return 1
    print(f"ok: {objects} objects validated against Kubernetes {args.kubernetes_version}, compose: {services} services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
