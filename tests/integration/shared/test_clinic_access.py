"""Clinic keys projected from events converge whatever order the events arrive in."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from care_shared.auth import clinic_for_key, hash_key, record_clinic_key
from care_shared.db import Database
from care_shared.migrations import migrate

MIGRATIONS = Path(__import__("pathway").__file__).parent / "migrations"

KEYS = ["trd_k0", "trd_k1", "trd_k2"]
EVENTS = [  # registration, then two rotations
    ("c1", hash_key("trd_k0"), None),
    ("c1", hash_key("trd_k1"), hash_key("trd_k0")),
    ("c1", hash_key("trd_k2"), hash_key("trd_k1")),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_only_the_newest_key_works_in_any_delivery_order(
    database: Database, order: tuple[int, ...]
) -> None:
    await migrate(database, MIGRATIONS)
    for i in order:
        clinic_id, key_hash, replaces = EVENTS[i]
        async with database.transaction() as s:
            await record_clinic_key(s, clinic_id, key_hash, replaces_sha256=replaces)
    async with database.read() as s:
        working = [k for k in KEYS if await clinic_for_key(s, k)]
    assert working == ["trd_k2"]
