"""Tests wait for a condition with a deadline; they never sleep and hope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns a truthy value (returned) or the deadline passes.
    Exceptions from the probe count as "not yet"; the last one is reported on timeout."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = await probe()
            if value:
                return value
            last_value = value
        except AssertionError as exc:
            last_error = exc
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; last value {last_value!r}, last error {last_error!r}"
            )
        await asyncio.sleep(interval)


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
