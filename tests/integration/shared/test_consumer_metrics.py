"""The consumer's failure counters on a real nats-server: what operators alert on."""

from __future__ import annotations

from care_shared.testing.polling import eventually
from tests.integration.shared.test_consumer import Harness, assessment, harness  # noqa: F401 - fixture


def counted(h: Harness, metric: str) -> float:
    value = h.consumers.metrics.registry.get_sample_value(
        f"care_events_{metric}_total", {"consumer": h.durable}
    )
    return value or 0.0


async def test_a_failed_handling_counts_as_redelivered_and_a_poison_message_as_dead_lettered(
    harness: Harness,  # noqa: F811 - the fixture imported above
) -> None:
    flaky = assessment(harness.patient_id)
    harness.fail_times[flaky["id"]] = 1
    rejected = assessment(harness.patient_id)
    harness.poison.add(rejected["id"])
    await harness.publish(flaky)
    await harness.publish(b"{not json")  # poison before the handler: malformed
    await harness.publish(rejected)  # poison by the handler's verdict

    await eventually(lambda: harness.effects(flaky["id"]), what="the flaky event to be handled on redelivery")
    assert counted(harness, "redelivered") == 1

    async def both_dead_lettered() -> bool:
        return counted(harness, "dead_lettered") == 2

    await eventually(both_dead_lettered, what="both poison messages to be counted")
    assert counted(harness, "redelivered") == 1  # a poison message is never sent back
