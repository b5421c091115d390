"""A lost database connection is a 503 to retry, not a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from care_shared.problems import install_problem_handlers


class Terminated(Exception):
    sqlstate = "57P01"  # admin_shutdown: pg_terminate_backend


def app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/x")
    async def x() -> None:
        raise exc

    return app


async def call(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as c:
        return await c.post("/x")


async def test_a_terminated_backend_is_503_with_retry_after() -> None:
    r = await call(app_raising(DBAPIError("INSERT ...", {}, Terminated())))
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in r.json()["detail"]


async def test_other_database_errors_stay_500_and_say_nothing() -> None:
    r = await call(app_raising(DBAPIError("INSERT ...", {"secret": "x"}, ValueError("boom"))))
    assert r.status_code == 500
    assert "secret" not in r.text and "boom" not in r.text


async def test_an_event_too_large_for_consumers_is_413_naming_the_body() -> None:
    from care_shared.eventstore import EventTooLarge

    r = await call(app_raising(EventTooLarge("care.intake.patient-registered.v1", 300_000)))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "body" and "Nothing was stored" in r.json()["detail"]
