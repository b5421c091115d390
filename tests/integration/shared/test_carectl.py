"""carectl as an operator uses it: help that explains, and clinic keys shown once and rotated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from care_shared.db import sqlite_url_for
from care_shared.ops import carectl

CARECTL = [sys.executable, "-m", "care_shared.ops.carectl"]


@pytest.mark.parametrize(
    "command", ["streams", "consumers", "dlq", "rebuild", "trace", "clinic", "coordinator", "audit", "outbox"]
)
def test_every_command_explains_itself(command: str) -> None:
    out = subprocess.run([*CARECTL, command, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    description = carectl.HELP[command]
    assert description.splitlines()[0] in out.stdout
    assert len(description) > 200  # says what the columns or effects are, not just a name


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CARECTL, *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_clinic_key_is_shown_once_and_a_rotation_retires_the_old_one(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url_for(tmp_path / "intake.db"),
        "CARE_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("NATS_URL", None)
    added = run(["clinic", "add", "--name", "North clinic"], env)
    assert added.returncode == 0, added.stderr
    first = json.loads(added.stdout.strip().splitlines()[-1])
    assert first["api_key"] and first["clinic_id"]

    rotated = run(["clinic", "rotate-key"], {**env, "CLINIC_KEY": first["api_key"]})
    assert rotated.returncode == 0, rotated.stderr
    second = json.loads(rotated.stdout.strip().splitlines()[-1])
    assert second["api_key"] != first["api_key"] and second["clinic_id"] == first["clinic_id"]

    again = run(["clinic", "rotate-key"], {**env, "CLINIC_KEY": first["api_key"]})
    assert again.returncode != 0, "the replaced key still worked"
    assert first["api_key"] not in again.stdout + again.stderr  # never echoed back
