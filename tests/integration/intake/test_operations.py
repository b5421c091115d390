"""Operations surface of a service: metrics, AsyncAPI, health and readiness."""

from __future__ import annotations

from care_shared.testing.polling import eventually
from tests.integration.intake.conftest import Intake


async def test_metrics_count_requests_by_route_and_events_by_type(intake: Intake) -> None:
    pid = await intake.new_patient()
    await intake.new_episode(pid)
    await intake.client.get(f"/v1/patients/{pid}", headers=intake.auth())

    async def scraped() -> str | None:
        text = (await intake.client.get("/metrics")).text
        return text if 'care_events_published_total{type="care.intake.episode-opened.v2"}' in text else None

    text = await eventually(scraped, what="the relay to publish and the metric to show it")
    assert 'care_http_requests_total{method="POST",route="/v1/patients",status="201"} 1.0' in text
    assert 'route="/v1/patients/{patient_id}"' in text
    assert pid not in text  # ids never become label values
    assert 'care_events_appended_total{type="care.intake.patient-registered.v2"}' in text
    assert "care_outbox_backlog" in text
    assert "care_http_request_duration_seconds_bucket" in text


async def test_asyncapi_document_describes_the_events_intake_publishes(intake: Intake) -> None:
    doc = (await intake.client.get("/asyncapi.json")).json()
    assert doc["asyncapi"] == "3.0.0"
    channel = doc["channels"]["intake.trial-completed"]
    assert channel["address"] == "intake.trial-completed.{subject}"
    message = doc["components"]["messages"]["intake.trial-completed.v2"]
    assert message["payload"]["properties"]["data"]["$ref"] == "#/components/schemas/TrialCompleted"
    assert "adherence_pct" in doc["components"]["schemas"]["TrialCompleted"]["properties"]
    assert doc["operations"]["publish.intake.trial-completed"]["action"] == "send"


async def test_health_and_readiness(intake: Intake) -> None:
    assert (await intake.client.get("/healthz")).json() == {"status": "ok"}
    ready = (await intake.client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"] == {"database": "ok", "migrations": "ok", "nats": "ok"}
