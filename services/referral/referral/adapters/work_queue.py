"""Tasks for clinics that pull them into their own systems: a JetStream work-queue stream.

`REFERRAL_TASKS` sources the `task-dispatched` events from the REFERRAL stream and files each
under `tasks.<clinic id>` (the event's subject is the receiving clinic). So publishing stays
the outbox's job, with its crash safety and dedupe; a clinic's pull consumer on its own
subject gets each task once, and an acknowledged task leaves the stream (work-queue
retention).
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from care_shared.topology import TASK_STREAM, task_stream_config

log = logging.getLogger(__name__)

__all__ = ["TASK_STREAM", "ensure_task_stream", "task_stream_config", "task_subject"]


def task_subject(clinic_id: str) -> str:
    return f"tasks.{clinic_id}"


async def ensure_task_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Declare the task stream if ops has not yet; updating it is ops' (`carectl streams ensure`)."""
    config = task_stream_config(replicas)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:
            raise
        log.warning(
            "stream configuration differs; run `carectl streams ensure`", extra={"stream": TASK_STREAM}
        )
