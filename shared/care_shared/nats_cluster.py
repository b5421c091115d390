"""The JetStream cluster's settings in one place (issue 18): the cluster block, the route
credentials and the JetStream limits that deploy/nats/nats.conf, the compose credentials
(scripts/compose-credentials.py writes secrets/cluster.conf from `routes_conf`) and the
cluster test (care_shared.testing.nats_cluster) all use, so the tested cluster is the
deployed one. tests/deploy/test_cluster_config.py checks nats.conf against these."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

CLUSTER_NAME = "care"
ROUTE_USER = "route"
MAX_FILE_STORE = "2GB"
# Every stream at three replicas: one member may be lost without losing a write.
REPLICAS = 3


def routes_conf(password: str, members: Iterable[str]) -> str:
    """The body included in the `cluster {}` block: the route user and a route to every
    member (`host:port`), each with the route password."""
    routes = ", ".join(f'"nats-route://{ROUTE_USER}:{password}@{m}"' for m in members)
    return (
        f'authorization {{ user: "{ROUTE_USER}", password: "{password}", timeout: 2 }}\nroutes: [{routes}]\n'
    )


def member_conf(
    *,
    name: str,
    port: int,
    monitor_port: int,
    cluster_port: int,
    store_dir: Path,
    auth_conf: Path,
    cluster_conf: Path,
    conf_dir: Path,
    host: str = "127.0.0.1",
) -> str:
    """One member's configuration on loopback, as deploy/nats/nats.conf less TLS: the same
    JetStream limits, generated users and cluster block (name, included route settings)."""

    def rel(p: Path) -> str:
        return json.dumps(os.path.relpath(p, conf_dir))

    return (
        "\n".join(
            [
                f"server_name: {json.dumps(name)}",
                f"host: {json.dumps(host)}",
                f"port: {port}",
                f"http_port: {monitor_port}",
                f"include {rel(auth_conf)}",
                f"jetstream {{\n  store_dir: {json.dumps(str(store_dir))}\n  max_file_store: {MAX_FILE_STORE}\n}}",
                f"cluster {{\n  name: {CLUSTER_NAME}\n  host: {json.dumps(host)}\n  port: {cluster_port}\n  include {rel(cluster_conf)}\n}}",
            ]
        )
        + "\n"
    )
