"""Offline validation of deploy/k8s.

Renders both overlays with `kubectl kustomize`, validates every document (Kubernetes kinds
with kubernetes-validate, SpinKube kinds against the vendored CRD schemas in
deploy/k8s/schemas) and checks the manifests against spin.toml: every component runs in a
SpinApp, every SpinApp gets the variables its components need, the runtime config declares
every sqlite label, and the ingress routes every HTTP route. The negative tests feed the
same checks doctored copies to prove they fail.

Run: .venv/bin/python -m pytest -q deploy/k8s/tests
"""

from __future__ import annotations

import base64
import copy
import functools
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[1]
ROOT = K8S.parents[1]
SPIN_TOML = ROOT / "spin.toml"
OVERLAYS = ["dev", "prod"]
# A Kubernetes version whose schemas kubernetes-validate bundles (the kubectl here is 1.32).
KUBERNETES_VERSION = "1.32.0"
SPINKUBE_GROUP = "core.spinkube.dev/v1alpha1"
CRD_FILES = {
    "SpinApp": K8S / "schemas/core.spinkube.dev_spinapps.yaml",
    "SpinAppExecutor": K8S / "schemas/core.spinkube.dev_spinappexecutors.yaml",
}
RUNTIME_CONFIG_KEY = "runtime-config.toml"
TEMPLATE = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


# --- rendering -------------------------------------------------------------------------


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl not found on PATH: these tests render deploy/k8s with "
            "`kubectl kustomize` (kubectl ships with the machine image; it is not an apt "
            "package). Install kubectl >= 1.27 and run again.",
            pytrace=False,
        )
    return path


@functools.cache
def rendered_text(overlay: str) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}", pytrace=False)
    return result.stdout


def render(overlay: str) -> list[dict]:
    """A fresh copy of the overlay's documents (tests may doctor it)."""
    return [d for d in yaml.safe_load_all(rendered_text(overlay)) if d]


def manifest() -> dict:
    return tomllib.loads(SPIN_TOML.read_text())


def external_secret_keys(overlay: str) -> set[str]:
    """Keys of Secrets created outside git, listed in the overlay's secrets.env.example."""
    example = K8S / "overlays" / overlay / "secrets.env.example"
    if not example.exists():
        return set()
    keys = set()
    for line in example.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip())
    return keys


# --- what spin.toml needs ----------------------------------------------------------------


def template_vars(value) -> set[str]:
    if isinstance(value, str):
        return set(TEMPLATE.findall(value))
    if isinstance(value, list):
        return set().union(*(template_vars(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(template_vars(v) for v in value.values())) if value else set()
    return set()


def required_app_variables(spin: dict) -> set[str]:
    """Variables without a default: Spin resolves every application variable at startup,
    so each SpinApp must provide these even if none of its components reads them."""
    return {
        name
        for name, spec in spin.get("variables", {}).items()
        if isinstance(spec, dict) and spec.get("required") and "default" not in spec
    }


def http_route_prefix(route: str) -> str:
    """The path prefix an ingress must route for a Spin HTTP route."""
    parts = []
    for segment in route.split("/"):
        if segment in ("...", "*") or segment.startswith(":"):
            break
        parts.append(segment)
    prefix = "/".join(parts).rstrip("/")
    return prefix or "/"


def component_needs(spin: dict) -> dict[str, dict]:
    """For each component: variables, sqlite labels, key-value labels, HTTP route prefixes."""
    needs: dict[str, dict] = {}
    for cid, comp in spin.get("component", {}).items():
        needs[cid] = {
            "variables": template_vars(comp.get("variables", {}))
            | template_vars(comp.get("allowed_outbound_hosts", [])),
            "sqlite": set(comp.get("sqlite_databases", [])),
            "kv": set(comp.get("key_value_stores", [])),
            "routes": [],
        }
    app_redis = spin.get("application", {}).get("trigger", {}).get("redis", {})
    for trigger in spin.get("trigger", {}).get("redis", []):
        cid = trigger.get("component")
        if cid in needs:
            address = trigger.get("address", app_redis.get("address", ""))
            needs[cid]["variables"] |= template_vars(address)
    for trigger in spin.get("trigger", {}).get("http", []):
        cid = trigger.get("component")
        if cid in needs:
            needs[cid]["routes"].append(http_route_prefix(trigger["route"]))
    return needs


# --- the consistency checker -------------------------------------------------------------


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def secret_data(secret: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def path_is_prefix(ingress_path: str, prefix: str) -> bool:
    """Ingress `Prefix` matching: element-wise on `/`-separated path segments."""
    if ingress_path == "/":
        return True
    a = [p for p in ingress_path.split("/") if p]
    b = [p for p in prefix.split("/") if p]
    return b[: len(a)] == a


def check_against_manifest(
    docs: list[dict], spin: dict, secret_keys_outside: set[str] = frozenset()
) -> list[str]:
    """Every problem found between the rendered documents and spin.toml (empty = fine)."""
    problems: list[str] = []
    needs = component_needs(spin)
    required = required_app_variables(spin)
    spinapps = by_kind(docs, "SpinApp")
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in by_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: secret_data(d) for d in by_kind(docs, "Secret")}
    services = {d["metadata"]["name"]: d for d in by_kind(docs, "Service")}
    executors = {d["metadata"]["name"] for d in by_kind(docs, "SpinAppExecutor")}

    # Components <-> SpinApps.
    runs_in: dict[str, list[str]] = {}
    for app in spinapps:
        name = app["metadata"]["name"]
        comps = app["spec"].get("components")
        if not comps:
            problems.append(f"SpinApp {name} has no spec.components (it would run every component)")
            comps = []
        for cid in comps:
            runs_in.setdefault(cid, []).append(name)
            if cid not in needs:
                problems.append(f"SpinApp {name} runs component {cid!r}, which spin.toml does not define")
        if app["spec"].get("executor") not in executors:
            problems.append(f"SpinApp {name} uses executor {app['spec'].get('executor')!r}, which is not rendered")
    for cid in needs:
        if cid not in runs_in:
            problems.append(f"component {cid!r} of spin.toml is in no SpinApp")
        elif len(runs_in[cid]) > 1:
            problems.append(f"component {cid!r} runs in several SpinApps: {runs_in[cid]}")

    namespaces = {d["metadata"].get("namespace") for d in docs if d["metadata"].get("namespace")}
    job_namespaces: set[str] = set()
    for job in by_kind(docs, "Job"):
        for container in job["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"] == "LIBSQL_NAMESPACES":
                    job_namespaces |= set(env.get("value", "").split())

    for app in spinapps:
        name = app["metadata"]["name"]
        comps = [c for c in app["spec"].get("components") or [] if c in needs]

        # Variables: what its components read, the redis trigger address, required ones.
        provided: dict[str, dict] = {}
        for var in app["spec"].get("variables", []):
            provided[var["name"]] = var
        wanted: dict[str, str] = {}
        for cid in comps:
            for v in needs[cid]["variables"]:
                wanted.setdefault(v, f"component {cid}")
        for v in required:
            wanted.setdefault(v, "spin.toml (required, no default)")
        for v, why in sorted(wanted.items()):
            if v not in provided:
                problems.append(f"SpinApp {name} lacks variable {v!r} (needed by {why})")
        for v, var in provided.items():
            if v not in spin.get("variables", {}):
                problems.append(f"SpinApp {name} sets {v!r}, which is not a spin.toml variable")
            source = var.get("valueFrom", {})
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                if ref.get("key") not in configmaps.get(ref.get("name"), {}):
                    problems.append(f"SpinApp {name}: variable {v!r} refers to ConfigMap {ref.get('name')!r} key {ref.get('key')!r}, which is not rendered")
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                if ref.get("name") in secrets:
                    if ref.get("key") not in secrets[ref["name"]]:
                        problems.append(f"SpinApp {name}: variable {v!r} refers to missing key {ref.get('key')!r} of Secret {ref['name']!r}")
                elif ref.get("key") not in secret_keys_outside:
                    problems.append(f"SpinApp {name}: variable {v!r} refers to Secret {ref.get('name')!r} key {ref.get('key')!r}, neither rendered nor listed in secrets.env.example")
            elif "value" not in var:
                problems.append(f"SpinApp {name}: variable {v!r} has no value")

        # Runtime config: every sqlite / key-value label its components use.
        labels_sqlite = set().union(*(needs[c]["sqlite"] for c in comps)) if comps else set()
        labels_kv = set().union(*(needs[c]["kv"] for c in comps)) if comps else set()
        secret_name = app["spec"].get("runtimeConfig", {}).get("loadFromSecret")
        if not secret_name:
            if labels_sqlite or labels_kv:
                problems.append(f"SpinApp {name} uses sqlite/key-value but has no runtimeConfig.loadFromSecret")
            continue
        if secret_name not in secrets or RUNTIME_CONFIG_KEY not in secrets[secret_name]:
            problems.append(f"SpinApp {name}: runtime config Secret {secret_name!r} with key {RUNTIME_CONFIG_KEY!r} is not rendered")
            continue
        runtime = tomllib.loads(secrets[secret_name][RUNTIME_CONFIG_KEY])
        for label in sorted(labels_sqlite):
            if label not in runtime.get("sqlite_database", {}):
                problems.append(f"SpinApp {name}: runtime config lacks [sqlite_database.{label}]")
        for label in sorted(labels_kv):
            if label not in runtime.get("key_value_store", {}):
                problems.append(f"SpinApp {name}: runtime config lacks [key_value_store.{label}]")

    # The runtime config(s) themselves: libSQL databases distinct, reachable, created.
    for secret_name, data in secrets.items():
        if RUNTIME_CONFIG_KEY not in data:
            continue
        runtime = tomllib.loads(data[RUNTIME_CONFIG_KEY])
        all_labels = set().union(*(n["sqlite"] for n in needs.values()))
        for label in sorted(all_labels):
            if label not in runtime.get("sqlite_database", {}):
                problems.append(f"Secret {secret_name}: runtime config lacks [sqlite_database.{label}]")
        urls: dict[str, str] = {}
        for label, db in runtime.get("sqlite_database", {}).items():
            if db.get("type") != "libsql":
                problems.append(f"Secret {secret_name}: sqlite {label!r} is {db.get('type')!r}, not libsql (per-pod files are lost)")
                continue
            if "token" not in db:
                problems.append(f"Secret {secret_name}: sqlite {label!r} has no token (Spin requires it)")
            url = db.get("url", "")
            if url in urls:
                problems.append(f"Secret {secret_name}: sqlite {label!r} and {urls[url]!r} share one database ({url})")
            urls[url] = label
            host = urlparse(url).hostname or ""
            service, _, rest = host.partition(".")
            svc_namespace = rest.split(".")[0] if rest else ""
            if service not in services:
                problems.append(f"Secret {secret_name}: sqlite {label!r} URL host {host!r} is not a rendered Service")
            if svc_namespace not in namespaces:
                problems.append(f"Secret {secret_name}: sqlite {label!r} URL {url!r} must name the namespace ({sorted(namespaces)}): the first label selects the database")
            if service not in job_namespaces:
                problems.append(f"Secret {secret_name}: libSQL database {service!r} (label {label!r}) is not created by the libsql-namespaces Job")
        for label, kv in runtime.get("key_value_store", {}).items():
            if kv.get("type") != "redis":
                problems.append(f"Secret {secret_name}: key-value store {label!r} is {kv.get('type')!r}, not redis (per-pod files are lost)")

    # Ingress: every HTTP route of spin.toml reaches the SpinApp running its component.
    paths = []
    for ingress in by_kind(docs, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                if p.get("pathType") == "Prefix":
                    paths.append((p["path"], p["backend"]["service"]["name"]))
    for cid, need in needs.items():
        for prefix in need["routes"]:
            matching = [p for p in paths if path_is_prefix(p[0], prefix)]
            if not matching:
                problems.append(f"ingress has no Prefix path for {prefix!r} (component {cid})")
                continue
            path, service = max(matching, key=lambda p: len(p[0]))
            if service not in runs_in.get(cid, []):
                problems.append(f"ingress routes {prefix!r} (component {cid}) to Service {service!r}, not to the SpinApp running {cid} ({runs_in.get(cid)})")
    return problems


# --- schema validation -------------------------------------------------------------------


def strict(schema):
    """kubectl apply rejects unknown fields; make the CRD schema do the same."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CRD_FILES[kind].read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def schema_errors(doc: dict) -> list[str]:
    kind = doc.get("kind")
    where = f"{kind}/{doc.get('metadata', {}).get('name')}"
    if doc.get("apiVersion") == SPINKUBE_GROUP:
        if kind not in CRD_FILES:
            return [f"{where}: no vendored schema for {SPINKUBE_GROUP} {kind}"]
        return [
            f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(kind).iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'/'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: no Kubernetes {KUBERNETES_VERSION} schema for {doc.get('apiVersion')} {kind}"]
    return []


# --- tests: the real manifests -----------------------------------------------------------


def test_kubectl_is_installed():
    kubectl()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_expected_kinds(overlay):
    kinds = {d["kind"] for d in render(overlay)}
    assert {"Namespace", "SpinAppExecutor", "SpinApp", "ConfigMap", "Secret", "Deployment",
            "Service", "PersistentVolumeClaim", "Ingress", "Job", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_validates(overlay):
    errors = [e for doc in render(overlay) for e in schema_errors(doc)]
    assert errors == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_match_spin_toml(overlay):
    spin = manifest()
    problems = check_against_manifest(render(overlay), spin, external_secret_keys(overlay))
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_has_keyspace_notifications_and_persistence(overlay):
    (redis,) = [d for d in by_kind(render(overlay), "Deployment") if d["metadata"]["name"] == "redis"]
    pod = redis["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--notify-keyspace-events") + 1] == "Ex"
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--dir") + 1] == pod["containers"][0]["volumeMounts"][0]["mountPath"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "redis-data"


def test_dev_overlay_is_small_and_marks_its_secrets_dev_only():
    docs = render("dev")
    assert {a["spec"]["replicas"] for a in by_kind(docs, "SpinApp")} == {1}
    assert "DEV-ONLY" in (K8S / "overlays/dev/secrets.dev.env").read_text()
    (config,) = by_kind(docs, "ConfigMap")
    assert config["data"]["cookie_secure"] == "false"


def test_prod_overlay_scales_limits_tls_and_keeps_secrets_out_of_git():
    docs = render("prod")
    apps = {a["metadata"]["name"]: a["spec"] for a in by_kind(docs, "SpinApp")}
    for name in ("auth", "tickets", "orders", "payments", "web", "activity", "search"):
        assert apps[name]["replicas"] >= 2, name
    for name, spec in apps.items():
        assert {"cpu", "memory"} <= set(spec["resources"].get("limits", {})), name
    (ingress,) = by_kind(docs, "Ingress")
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"][0]["secretName"]
    (config,) = by_kind(docs, "ConfigMap")
    assert config["data"]["cookie_secure"] == "true"
    # jwt_secret and the Stripe keys come from a Secret created out of band.
    assert "tessera-secrets" not in {s["metadata"]["name"].rsplit("-", 1)[0] for s in by_kind(docs, "Secret")}
    assert not [s for s in by_kind(docs, "Secret") if set(secret_data(s)) != {RUNTIME_CONFIG_KEY}]
    assert "secrets.env" in (K8S / "overlays/prod/.gitignore").read_text().split()


# --- tests: the checks can fail ----------------------------------------------------------


def spinapp(docs, name):
    return next(d for d in docs if d["kind"] == "SpinApp" and d["metadata"]["name"] == name)


def test_checker_catches_a_missing_variable():
    docs = render("dev")
    orders = spinapp(docs, "orders")
    orders["spec"]["variables"] = [v for v in orders["spec"]["variables"] if v["name"] != "order_lock_seconds"]
    problems = check_against_manifest(docs, manifest())
    assert "SpinApp orders lacks variable 'order_lock_seconds' (needed by component orders)" in problems


def test_checker_catches_a_missing_required_variable_and_redis_address():
    docs = render("dev")
    expiration = spinapp(docs, "expiration")
    expiration["spec"]["variables"] = [
        v for v in expiration["spec"]["variables"] if v["name"] not in ("redis_address", "stripe_secret_key")
    ]
    problems = check_against_manifest(docs, manifest())
    assert any("expiration lacks variable 'redis_address'" in p for p in problems)
    assert any("expiration lacks variable 'stripe_secret_key'" in p for p in problems)


def test_checker_catches_a_variable_new_in_spin_toml():
    spin = manifest()
    spin["variables"]["fee_percent"] = {"default": "5"}
    spin["component"]["orders"]["variables"]["fee_percent"] = "{{ fee_percent }}"
    problems = check_against_manifest(render("dev"), spin)
    assert "SpinApp orders lacks variable 'fee_percent' (needed by component orders)" in problems


def test_checker_catches_a_missing_sqlite_label():
    docs = render("dev")
    (secret,) = [s for s in by_kind(docs, "Secret") if RUNTIME_CONFIG_KEY in secret_data(s)]
    text = secret_data(secret)[RUNTIME_CONFIG_KEY]
    runtime = tomllib.loads(text)
    del runtime["sqlite_database"]["payments"]
    lines = [f'[sqlite_database.{label}]\ntype = "{db["type"]}"\nurl = "{db["url"]}"\ntoken = "{db["token"]}"'
             for label, db in runtime["sqlite_database"].items()]
    secret["data"][RUNTIME_CONFIG_KEY] = base64.b64encode("\n".join(lines).encode()).decode()
    problems = check_against_manifest(docs, manifest())
    assert "SpinApp payments: runtime config lacks [sqlite_database.payments]" in problems


def test_checker_catches_a_component_in_no_spinapp_and_a_missing_route():
    docs = render("dev")
    docs.remove(spinapp(docs, "tickets"))
    (ingress,) = by_kind(docs, "Ingress")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    paths[:] = [p for p in paths if p["path"] != "/api/orders"]
    problems = check_against_manifest(docs, manifest())
    assert "component 'tickets' of spin.toml is in no SpinApp" in problems
    # /api/orders now falls through to `/` (web), which does not run orders.
    assert any(p.startswith("ingress routes '/api/orders' (component orders) to Service 'web'") for p in problems)


def test_checker_catches_databases_shared_between_labels():
    docs = render("dev")
    (secret,) = [s for s in by_kind(docs, "Secret") if RUNTIME_CONFIG_KEY in secret_data(s)]
    text = secret_data(secret)[RUNTIME_CONFIG_KEY].replace("libsql-orders.", "libsql-tickets.")
    secret["data"][RUNTIME_CONFIG_KEY] = base64.b64encode(text.encode()).decode()
    problems = check_against_manifest(docs, manifest())
    assert any("share one database" in p for p in problems)


def test_schema_validation_catches_bad_documents():
    docs = render("prod")
    auth = copy.deepcopy(spinapp(docs, "auth"))
    auth["spec"]["replica"] = 2  # typo: kubectl would reject the unknown field
    auth["spec"]["checks"]["readiness"]["httpGet"] = {"port": 80}  # path is required
    errors = schema_errors(auth)
    assert any("replica" in e for e in errors)
    assert any("'path' is a required property" in e for e in errors)
    (redis,) = [copy.deepcopy(d) for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "redis"]
    redis["spec"]["replicas"] = "1"
    assert schema_errors(redis)
    unknown = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"}}
    assert schema_errors(unknown)
