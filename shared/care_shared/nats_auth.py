"""Who may do what on the bus, generated from the topology (care_shared.topology).

One NATS account; one nkey user per service, one for ops (`carectl`, stream administration,
replays) and one per receiving clinic that pulls its own referral tasks. No anonymous user:
a connection without a key is refused. Each user publishes and subscribes only to what the
table below derives from the topology:

- a service publishes its own `<service>.>` events and the dead letters of its own durables;
  it declares (CREATE, INFO) only its own streams; on each stream it reads it may look up,
  pull from and acknowledge only its own durables, which ops creates (`carectl bus ensure`);
  it never creates a consumer, nor updates, deletes or purges a stream;
- a clinic may look up, pull from and acknowledge only the durable on its own `tasks.<id>`;
- every user reads replies only on its own inbox prefix (`_INBOX_<user>.>`): with the shared
  `_INBOX.>` one user could read another's replies, fetched messages included.

`python -m care_shared.nats_auth generate --dir DIR [--clinic ID ...]` writes DIR/auth.conf
(included by the server configuration) and one seed file DIR/<user>.nk (mode 0600) per user,
keeping the seeds that exist. Seeds never leave DIR and are never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nkeys

from care_shared.topology import (
    DURABLES,
    SERVICES,
    TASK_STREAM,
    clinic_task_durable,
    own_streams,
)

OPS = "ops"
CLINIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# Stream administration: only ops may.
ADMIN_API = (
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.CONSUMER.CREATE.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.>",
    "$JS.API.CONSUMER.DELETE.>",
)


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}"


def clinic_user(clinic_id: str) -> str:
    return f"clinic-{clinic_id}"


@dataclass(frozen=True)
class Permissions:
    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()


def _consume(stream: str, durable: str) -> list[str]:
    """The JetStream API subjects one pull consumer uses once ops created it (nats-server 2.15,
    nats-py, FastStream 0.7; see NATS_NOTES): look up, pull, and ack/nak/term/in-progress.
    Never CREATE: whoever may create a consumer chooses its filter and can make it a push
    consumer delivering to any subject (care_shared.topology.durable_config; ops creates it)."""
    return [
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def service_permissions(service: str) -> Permissions:
    publish = [f"{service}.>"]
    for stream in own_streams(service):
        publish += [f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.INFO.{stream}"]
    for durable in DURABLES:
        if durable.service == service:
            publish.append(durable.dead_letter_subject)
            publish += _consume(durable.stream, durable.name)
    return Permissions(service, tuple(publish), (f"{inbox_prefix(service)}.>",), ADMIN_API)


def clinic_permissions(clinic_id: str) -> Permissions:
    if not CLINIC_ID.match(clinic_id):
        raise ValueError("a clinic id must be one NATS token (letters, digits, - and _)")
    user = clinic_user(clinic_id)
    publish = _consume(TASK_STREAM, clinic_task_durable(clinic_id))
    return Permissions(user, tuple(publish), (f"{inbox_prefix(user)}.>",), ADMIN_API)


def ops_permissions() -> Permissions:
    return Permissions(OPS, (">",), (">",))


def permission_table(clinics: Iterable[str] = ()) -> list[Permissions]:
    table = [service_permissions(s) for s in SERVICES] + [ops_permissions()]
    return table + [clinic_permissions(c) for c in sorted(set(clinics))]


# --- credentials and the server's configuration -------------------------------------------


@dataclass
class Credentials:
    """Seeds and the generated server fragment in one directory."""

    directory: Path
    public_keys: dict[str, str] = field(default_factory=dict)

    @property
    def auth_conf(self) -> Path:
        return self.directory / "auth.conf"

    def seed_file(self, user: str) -> Path:
        return self.directory / f"{user}.nk"


def _seed_for(directory: Path, user: str) -> str:
    """The user's public key, making its seed on first use (0600, written atomically)."""
    path = directory / f"{user}.nk"
    if not path.exists():
        seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
        os.replace(tmp, path)
    keypair = nkeys.from_seed(bytearray(path.read_bytes().strip()))
    return keypair.public_key.decode()


def _quoted(subjects: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in subjects) + "]"


def render_auth_conf(table: list[Permissions], public_keys: dict[str, str]) -> str:
    lines = [
        "# Generated by `python -m care_shared.nats_auth generate` from care_shared.topology.",
        "# Do not edit: regenerate. No anonymous user: a connection without a key is refused.",
        "authorization {",
        "  users = [",
    ]
    for p in table:
        lines.append(f"    # {p.user}")
        lines.append(f"    {{ nkey: {json.dumps(public_keys[p.user])}, permissions: {{")
        publish = f"allow: {_quoted(p.publish)}"
        if p.publish_deny:
            publish += f", deny: {_quoted(p.publish_deny)}"
        lines.append(f"        publish: {{ {publish} }}")
        lines.append(f"        subscribe: {{ allow: {_quoted(p.subscribe)} }}")
        lines.append("    } }")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def generate(directory: Path, clinics: Iterable[str] = ()) -> Credentials:
    """Seeds for every user of the table (existing ones kept) and DIR/auth.conf."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    table = permission_table(clinics)
    creds = Credentials(directory, {p.user: _seed_for(directory, p.user) for p in table})
    tmp = creds.auth_conf.with_suffix(".tmp")
    tmp.write_text(render_auth_conf(table, creds.public_keys))
    os.chmod(tmp, 0o600)
    os.replace(tmp, creds.auth_conf)
    (directory / "clinics.json").write_text(json.dumps(sorted(set(clinics))))
    return creds


def known_clinics(directory: Path) -> list[str]:
    try:
        return json.loads((directory / "clinics.json").read_text())
    except FileNotFoundError:
        return []


def server_conf(
    *,
    port: int,
    monitor_port: int | None,
    store_dir: Path,
    auth_conf: Path,
    conf_dir: Path,
    host: str = "127.0.0.1",
    tls: dict[str, str] | None = None,
) -> str:
    """A single server's configuration: JetStream (the top-level block is required) and the
    generated users (`include` is relative to the configuration's directory, `conf_dir`).
    `tls`: cert_file, key_file, ca_file (clients then need certificates)."""
    lines = [
        f"host: {json.dumps(host)}",
        f"port: {port}",
        f"jetstream {{ store_dir: {json.dumps(str(store_dir))} }}",
        f"include {json.dumps(os.path.relpath(auth_conf, conf_dir))}",
    ]
    if monitor_port:
        lines.append(f"http_port: {monitor_port}")
    if tls:
        body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in tls.items())
        lines.append(f"tls {{ {body}, verify: true }}")
    return "\n".join(lines) + "\n"


# --- the client side ----------------------------------------------------------------------


def ssl_context(
    ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext | None:
    if not ca_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def connect_options(user: str, nkey_file: str | None, tls: ssl.SSLContext | None = None) -> dict:
    """nats-py `connect()` keyword arguments for `user` (its seed, its own inbox prefix)."""
    options: dict = {"inbox_prefix": inbox_prefix(user)}
    if nkey_file:
        options["nkeys_seed"] = nkey_file
    if tls is not None:
        options["tls"] = tls
    return options


def client_options(settings) -> dict:
    """nats-py `connect()` keyword arguments from a service's settings."""
    tls = ssl_context(settings.nats_ca_file, settings.nats_cert_file, settings.nats_key_file)
    return connect_options(settings.nats_user_name, settings.nats_nkey_file, tls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m care_shared.nats_auth", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write DIR/auth.conf and a seed per user (existing seeds kept)")
    gen.add_argument("--dir", required=True, type=Path)
    gen.add_argument("--clinic", action="append", default=[], help="a receiving clinic's id (repeatable)")
    gen.add_argument("--keep-clinics", action="store_true", help="also keep the clinics generated before")
    table = sub.add_parser("table", help="print the permission table as JSON")
    table.add_argument("--clinic", action="append", default=[])
    args = parser.parse_args(argv)
    if args.command == "table":
        print(json.dumps([p.__dict__ for p in permission_table(args.clinic)], indent=2))
        return 0
    clinics = list(args.clinic) + (known_clinics(args.dir) if args.keep_clinics else [])
    creds = generate(args.dir, clinics)
    print(json.dumps({"auth_conf": str(creds.auth_conf), "users": sorted(creds.public_keys)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
