"""The tested cluster is the deployed one (issue 18): deploy/nats/nats.conf, the compose file,
the Helm values, the compose credentials and the cluster test's members
(care_shared.testing.nats_cluster) take the cluster name, JetStream limits, route
credentials and stream replicas from care_shared.nats_cluster, and nats-server accepts a
member's configuration."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from care_shared.nats_cluster import (
    CLUSTER_NAME,
    MAX_FILE_STORE,
    REPLICAS,
    ROUTE_USER,
    member_conf,
    routes_conf,
)
from care_shared.testing.nats_cluster import NatsCluster
from care_shared.testing.nats_server import nats_server_binary

ROOT = Path(__file__).resolve().parents[2]


def block(conf: str, name: str) -> str:
    """The body of a top-level `name { ... }` block (nested braces allowed)."""
    start = re.search(rf"^{name}\s*\{{", conf, re.M)
    assert start, f"no {name} block"
    depth, i = 1, start.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(conf[i], 0)
        i += 1
    return conf[start.end() : i - 1]


def setting(body: str, key: str) -> str:
    found = re.search(rf"^\s*{key}\s*[:=]?\s*(\S+)", body, re.M)
    assert found, f"no {key}"
    return found.group(1).strip('"')


def test_the_deployed_member_config_has_the_generators_cluster_and_limits() -> None:
    deployed = (ROOT / "deploy/nats/nats.conf").read_text()
    assert setting(block(deployed, "cluster"), "name") == CLUSTER_NAME
    assert "include ./secrets/cluster.conf" in block(deployed, "cluster")
    assert setting(block(deployed, "jetstream"), "max_file_store") == MAX_FILE_STORE
    assert "include ./secrets/auth.conf" in deployed


def test_the_tested_member_config_has_the_same(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path).prepare()
    for member in cluster.members:
        tested = member.config_file.read_text()
        assert setting(block(tested, "cluster"), "name") == CLUSTER_NAME
        assert setting(block(tested, "jetstream"), "max_file_store") == MAX_FILE_STORE
        assert re.search(r'^include ".*auth\.conf"$', tested, re.M)
        # The generated route settings: one route per member, all with the route user.
        routes = (tmp_path / "cluster.conf").read_text()
        assert routes.count(f"nats-route://{ROUTE_USER}:") == len(cluster.members)
        result = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(member.config_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_credentials_write_the_generators_routes() -> None:
    script = (ROOT / "scripts/compose-credentials.py").read_text()
    assert "from care_shared.nats_cluster import routes_conf" in script
    assert "routes_conf(route_password" in script
    text = routes_conf("pw", ["nats1:6222", "nats2:6222", "nats3:6222"])
    assert text.count('"nats-route://route:pw@nats') == 3 and 'user: "route", password: "pw"' in text


def test_compose_helm_and_streams_job_run_three_members_at_three_replicas() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    members = [n for n in compose["services"] if re.fullmatch(r"nats\d", n)]
    assert len(members) == REPLICAS
    for name in members:
        assert compose["services"][name]["command"][-2:] == ["--name", name]
    assert compose["services"]["streams"]["command"] == ["bus", "ensure", "--replicas", str(REPLICAS)]
    values = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
    assert values["config"]["cluster"]["replicas"] == REPLICAS
    job = (ROOT / "deploy/k8s/streams-job.yaml").read_text()
    assert re.search(rf'"--replicas",\s*"{REPLICAS}"|--replicas[", ]+{REPLICAS}', job), (
        "streams job not at three replicas"
    )


def test_member_conf_is_what_a_member_gets(tmp_path: Path) -> None:
    text = member_conf(
        name="n1",
        port=1,
        monitor_port=2,
        cluster_port=3,
        store_dir=tmp_path / "js",
        auth_conf=tmp_path / "auth.conf",
        cluster_conf=tmp_path / "cluster.conf",
        conf_dir=tmp_path,
    )
    assert 'server_name: "n1"' in text and 'include "auth.conf"' in text and 'include "cluster.conf"' in text
