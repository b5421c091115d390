"""Operator commands, run as operators run them: `python -m referral coordinator add` and
`python -m referral demo-seed` (which `make run` calls)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from care_shared.db import sqlite_url_for


def run(tmp_path: Path, *args: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": sqlite_url_for(tmp_path / "referral.db"),
        "LOG_LEVEL": "WARNING",
    }
    out = subprocess.run(
        [sys.executable, "-m", "referral", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_coordinator_add_shows_the_key_once_and_demo_seed_is_idempotent(tmp_path: Path) -> None:
    made = run(tmp_path, "coordinator", "add", "--name", "Ana")
    assert made["api_key"].startswith("trd_") and made["coordinator_id"]
    again = run(tmp_path, "coordinator", "add", "--name", "Ana")
    assert again["api_key"] != made["api_key"]  # a new coordinator, a new key; keys are never shown again

    first = run(tmp_path, "demo-seed", "--key-file", "var/demo-coordinator.key")
    second = run(tmp_path, "demo-seed", "--key-file", "var/demo-coordinator.key")
    assert (
        first["coordinator_key"]
        == second["coordinator_key"]
        == (tmp_path / "var/demo-coordinator.key").read_text().strip()
    )
    assert oct((tmp_path / "var/demo-coordinator.key").stat().st_mode & 0o777) == "0o600"
    assert len(first["clinics"]) == len(second["clinics"]) == 4
    capabilities = {c for clinic in first["clinics"] for c in clinic["capabilities"]}
    assert {"ect", "rtms", "esketamine", "vns", "clinical_trials", "psychotherapy"} <= capabilities
