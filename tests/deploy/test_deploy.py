"""docker-compose.yml and deploy/ are checked against their schemas, and against the code:
every service, port and variable they name must exist."""

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

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")
INFRA = {"nats1", "nats2", "nats3", "postgres", "jaeger"}


def settings_of(service: str):  # noqa: ANN201
    module = importlib.import_module(f"{service}.settings")
    cls = next(v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings")
    return cls


def setting_names(service: str) -> set[str]:
    return {name.upper() for name in settings_of(service).model_fields}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_meets_the_compose_specification() -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.validate(compose(), schema)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_it_where_the_cli_has_compose() -> None:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI here has no compose plugin")
    out = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_compose_names_only_services_ports_and_variables_the_code_has() -> None:
    services = compose()["services"]
    assert set(services) == INFRA | set(SERVICES)
    init_sql = (ROOT / "deploy/postgres/init.sql").read_text()
    for name in SERVICES:
        svc = services[name]
        dockerfile = ROOT / svc["build"]["dockerfile"]
        assert dockerfile.exists()
        env = svc["environment"]
        unknown = set(env) - setting_names(name)
        assert not unknown, f"{name}: compose sets variables the service does not read: {unknown}"
        port = settings_of(name)().http_port
        assert env["HTTP_PORT"] == str(port)
        assert svc["ports"] == [f"{port}:{port}"]
        database = env["DATABASE_URL"].rsplit("/", 1)[1]
        assert database == name and f"CREATE DATABASE {database};" in init_sql
        assert len(env["NATS_URL"].split(",")) == 3 and env["NATS_STREAM_REPLICAS"] == "3"
        assert {"nats1", "nats2", "nats3", "postgres"} <= set(svc["depends_on"])
        text = dockerfile.read_text()
        assert f"EXPOSE {port}" in text and f'"-m", "{name}", "serve"' in text
    for member in ("nats1", "nats2", "nats3"):
        assert "healthcheck" in services[member]
    routes = re.findall(r"nats-route://(\w+):6222", (ROOT / "deploy/nats/nats.conf").read_text())
    assert sorted(routes) == ["nats1", "nats2", "nats3"]


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
        env_names = {e["name"] for e in container["env"]} - {"PGUSER", "PGPASSWORD"}
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
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert values["config"]["jetstream"]["enabled"] and values["config"]["jetstream"]["fileStore"]["enabled"]
    cluster = yaml.safe_load((ROOT / "deploy/postgres/cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster" and cluster["spec"]["instances"] == 3
    init = cluster["spec"]["bootstrap"]["initdb"]
    created = {init["database"]} | {s.split()[2] for s in init["postInitSQL"]}
    assert created == set(SERVICES)
    # The services read the operator-generated <cluster>-app secret; naming an initdb secret
    # that nothing creates would leave the bootstrap waiting for it.
    assert "secret" not in init
    generated = f"{cluster['metadata']['name']}-app"
    for service in SERVICES:
        manifest = (ROOT / f"deploy/k8s/{service}.yaml").read_text()
        refs = set(re.findall(r"secretKeyRef: \{name: ([\w-]+)", manifest))
        assert refs == {generated}, (service, refs)
