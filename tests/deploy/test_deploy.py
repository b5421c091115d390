"""docker-compose.yml and deploy/ are checked against their schemas, and against the code:
every service, port and variable they name must exist. Then the trust boundaries (issue 10):
nothing published beyond loopback, no `trust`, NetworkPolicies, TLS and authentication for
NATS and PostgreSQL, credentials only from secrets. Static checks: no Docker engine or
Kubernetes cluster runs here (nats-server does, to accept the compose server config)."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")
INFRA = {"nats1", "nats2", "nats3", "postgres", "jaeger"}
TOOLS = {"credentials", "streams", "carectl"}
# The NATS credential settings the services read (the other half of issue 10, in
# care_shared.settings). Until they exist there, the deploy files may name them; once any of
# them exists, every one must.
NATS_AUTH_ENV = {"NATS_NKEY_FILE", "NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE"}


def settings_of(service: str):
    module = importlib.import_module(f"{service}.settings")
    cls = next(v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings")
    return cls


def setting_names(service: str) -> set[str]:
    names = {name.upper() for name in settings_of(service).model_fields}
    if not names & NATS_AUTH_ENV:
        names |= NATS_AUTH_ENV
    return names


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_meets_the_compose_specification() -> None:
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    jsonschema.validate(compose(), schema)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_it_where_the_cli_has_compose() -> None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI here has no compose plugin")
    out = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_compose_names_only_services_ports_and_variables_the_code_has() -> None:
    services = compose()["services"]
    assert set(services) == INFRA | set(SERVICES) | TOOLS
    init_roles = (ROOT / "deploy/postgres/init-roles.sh").read_text()
    assert re.search(r"^for service in intake pathway referral notify; do$", init_roles, re.M)
    for name in SERVICES:
        svc = services[name]
        dockerfile = ROOT / svc["build"]["dockerfile"]
        assert dockerfile.exists()
        env = svc["environment"]
        unknown = set(env) - setting_names(name)
        assert not unknown, f"{name}: compose sets variables the service does not read: {unknown}"
        port = settings_of(name)().http_port
        assert env["HTTP_PORT"] == str(port)
        assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]
        url = make_url(env["DATABASE_URL"])
        assert url.database == name and url.username == name and url.host == "postgres"
        assert len(env["NATS_URL"].split(",")) == 3 and env["NATS_STREAM_REPLICAS"] == "3"
        assert {"nats1", "nats2", "nats3", "postgres", "credentials", "streams"} <= set(svc["depends_on"])
        text = dockerfile.read_text()
        assert f"EXPOSE {port}" in text and f'"-m", "{name}", "serve"' in text
    for member in ("nats1", "nats2", "nats3"):
        assert "healthcheck" in services[member]
        assert services[member]["depends_on"]["credentials"]["condition"] == "service_completed_successfully"
    # Ops declares every stream before the services start (they may declare only their own).
    streams = services["streams"]
    assert streams["command"] == ["bus", "ensure", "--replicas", "3"] and streams["entrypoint"] == ["carectl"]
    assert streams["volumes"][0]["volume"]["subpath"] == "ops"
    # The routes (with their password) come from the generated secrets/cluster.conf.
    cluster = re.search(
        r"^cluster \{(.*?)^\}", (ROOT / "deploy/nats/nats.conf").read_text(), re.M | re.S
    ).group(1)
    assert "include ./secrets/cluster.conf" in cluster and "routes" not in cluster.replace("# Routes", "")


def manifests() -> list[dict]:
    docs = []
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_meet_the_kubernetes_schemas() -> None:
    docs = manifests()
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)


def test_kubernetes_deployments_match_the_services() -> None:
    docs = manifests()
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES)
    for name, dep in deployments.items():
        assert dep["spec"]["replicas"] > 1
        [container] = dep["spec"]["template"]["spec"]["containers"]
        port = settings_of(name)().http_port
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        env_names = {e["name"] for e in container["env"]}
        assert env_names <= setting_names(name)
        assert set(config["data"]) <= setting_names(name)
        assert container["env"][-1]["value"].endswith(f"/{name}")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert set(services) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_serves_the_probes_and_metrics_the_manifests_use(service: str, tmp_path: Path) -> None:
    bootstrap = importlib.import_module(f"{service}.bootstrap")
    settings = settings_of(service)(database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    app = bootstrap.create_app(bootstrap.make_runtime(settings))
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/healthz", "/readyz", "/metrics", "/asyncapi.json", "/openapi.json"} <= paths


def test_nats_and_postgres_values() -> None:
    values = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
    cluster_values = values["config"]["cluster"]
    assert cluster_values["enabled"] and cluster_values["replicas"] == 3
    assert values["config"]["jetstream"]["enabled"] and values["config"]["jetstream"]["fileStore"]["enabled"]
    cluster = yaml.safe_load((ROOT / "deploy/postgres/cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster" and cluster["spec"]["instances"] == 3
    init = cluster["spec"]["bootstrap"]["initdb"]
    created = {init["database"]} | {
        s.split()[2] for s in init["postInitSQL"] if s.startswith("CREATE DATABASE")
    }
    assert created == set(SERVICES)
    # Each database is owned by its service's role, and no other role may connect to it.
    assert init["owner"] == init["database"] == "intake"
    owners = {s.split()[2]: s.split()[4] for s in init["postInitSQL"] if s.startswith("CREATE DATABASE")}
    assert owners == {name: name for name in SERVICES if name != "intake"}
    revoked = {
        s.split()[4]
        for s in init["postInitSQL"] + init["postInitApplicationSQL"]
        if s.startswith("REVOKE ALL ON DATABASE")
    }
    assert revoked == set(SERVICES)
    # Each role's password is its own Secret (scripts/k8s-secrets.py): intake's as the initdb
    # owner's, the others' as managed roles; the operator's CA verifies the server.
    assert init["secret"] == {"name": "care-pg-intake"}
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == set(SERVICES) - {"intake"}
    for name, role in roles.items():
        assert (
            role["passwordSecret"] == {"name": f"care-pg-{name}"}
            and role["login"]
            and role["ensure"] == "present"
        )
    for service in SERVICES:
        dep = next(d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"] == service)
        volumes = dep["spec"]["template"]["spec"]["volumes"]
        refs = {v["secret"]["secretName"] for v in volumes if "secret" in v}
        assert refs == {f"care-nats-{service}", f"care-pg-{service}", f"{cluster['metadata']['name']}-ca"}, (
            service,
            refs,
        )
        manifest = (ROOT / f"deploy/k8s/{service}.yaml").read_text()
        assert "secretKeyRef" not in manifest


def test_kubernetes_declares_every_stream_as_ops_before_the_services() -> None:
    [job] = [m for m in manifests() if m.get("kind") == "Job" and m["metadata"]["name"] == "care-streams"]
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["trd-care.io/nats-client"] == "ops"  # NetworkPolicy lets it reach NATS
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["carectl", "bus", "ensure", "--replicas", "3"]
    assert [v["secret"]["secretName"] for v in pod["spec"]["volumes"]] == ["care-nats-ops"]
