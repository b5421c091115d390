"""The domains stay pure: nothing a domain module imports, directly or through the project's
own modules, does I/O (a database, the bus, the web, processes). A rule is then read and
tested without a server."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

# What a domain may never reach: each of these talks to something outside the process.
IO_MODULES = {
    "aiosmtplib",
    "aiosqlite",
    "asyncpg",
    "fastapi",
    "faststream",
    "httpx",
    "nats",
    "psycopg",
    "smtplib",
    "socket",
    "sqlalchemy",
    "starlette",
    "subprocess",
    "uvicorn",
    "urllib.request",
}
FIRST_PARTY = ("care_shared", "intake", "pathway", "referral", "notify")
DOMAINS = ["referral.domain", "intake.domain", "pathway.engine", "notify.domain"]


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ModuleNotFoundError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _imports(path: Path, package: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def reachable(start: str) -> dict[str, str]:
    """Every module `start` reaches through first-party imports, with who imported it."""
    seen: dict[str, str] = {start: "-"}
    todo = [start]
    spec = importlib.util.find_spec(start)
    if spec and spec.submodule_search_locations:  # a package: all its modules
        root = Path(next(iter(spec.submodule_search_locations)))
        for p in root.rglob("*.py"):
            name = ".".join((start, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
            seen.setdefault(name, start)
            todo.append(name)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for imported in _imports(path, package):
            if imported in seen:
                continue
            seen[imported] = name
            if imported.split(".")[0] in FIRST_PARTY and _module_file(imported):
                todo.append(imported)
    return seen


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_reaches_no_io(domain: str) -> None:
    reached = reachable(domain)
    io = {m: by for m, by in reached.items() if m in IO_MODULES or m.split(".")[0] in IO_MODULES}
    assert io == {}, f"{domain} reaches I/O: " + ", ".join(f"{m} (from {by})" for m, by in sorted(io.items()))


def test_the_check_sees_an_io_import() -> None:
    """The check itself can fail: care_shared.eventstore is I/O and is seen as such."""
    reached = reachable("care_shared.eventstore")
    assert "sqlalchemy" in reached
