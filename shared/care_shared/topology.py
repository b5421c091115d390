"""The JetStream topology: one stream per producing service, and the dead-letter stream.

Every service declares all of them on start (an identical re-declare is a no-op), so a
consumer never starts before the stream it reads exists, whatever the start order.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

log = logging.getLogger(__name__)

# The event log of each service: kept by limits, never deleted or purged by clients.
EVENT_STREAMS: dict[str, str] = {
    "INTAKE": "intake.>",
    "PATHWAY": "pathway.>",
    "REFERRAL": "referral.>",
    "NOTIFY": "notify.>",
}
DLQ_STREAM = "DLQ"
DLQ_SUBJECTS = "dlq.>"

# Server-side dedupe by Nats-Msg-Id covers a relay that republishes after a crash; past this
# window the consumers' inbox still recognises a duplicate.
DUPLICATE_WINDOW_SECONDS = 600.0


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    configs = [
        StreamConfig(
            name=name,
            subjects=[subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            deny_delete=True,
            deny_purge=True,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        )
        for name, subject in EVENT_STREAMS.items()
    ]
    # Dead letters may be deleted once an operator has replayed them.
    configs.append(
        StreamConfig(
            name=DLQ_STREAM,
            subjects=[DLQ_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        )
    )
    return configs


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    for config in stream_configs(replicas):
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code == 10058:  # exists with another configuration: bring it up to date
                log.warning("updating stream configuration", extra={"stream": config.name})
                await js.update_stream(config)
            else:
                raise


def dlq_subject(consumer: str) -> str:
    return f"dlq.{consumer}"
