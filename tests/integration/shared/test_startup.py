"""Start-up steps wait out transient failures and fail fast on real ones."""

from __future__ import annotations

import pytest
from nats.errors import NoServersError
from sqlalchemy.exc import OperationalError, ProgrammingError

from care_shared.service import until_done


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


@pytest.mark.parametrize(
    "transient",
    [
        OperationalError("SELECT 1", {}, Exception("terminating connection due to administrator command")),
        NoServersError(),
        ConnectionRefusedError(),
    ],
    ids=["database-connection-dropped", "nats-no-servers", "connection-refused"],
)
async def test_a_transient_failure_is_retried_until_the_step_succeeds(transient: Exception) -> None:
    step = Flaky([transient, transient])
    await until_done("migrations", step)
    assert step.calls == 3


async def test_a_real_failure_stops_the_start_at_once() -> None:
    step = Flaky([ProgrammingError("ALTER TABLE", {}, Exception("syntax error"))])
    with pytest.raises(ProgrammingError):
        await until_done("migrations", step)
    assert step.calls == 1
