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
from nats.js.api import RetentionPolicy, StorageType, StreamConfig, StreamSource, SubjectTransform
from nats.js.errors import BadRequestError

log = logging.getLogger(__name__)

TASK_STREAM = "REFERRAL_TASKS"
DISPATCHED = "referral.task-dispatched.*"


def task_subject(clinic_id: str) -> str:
    return f"tasks.{clinic_id}"


def task_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=TASK_STREAM,
        description="Referral tasks per receiving clinic (tasks.<clinic id>), for clinics that pull them",
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
        # The transform is also the filter: only task-dispatched events are copied.
        sources=[StreamSource(name="REFERRAL", subject_transforms=[SubjectTransform(src=DISPATCHED, dest="tasks.{{wildcard(1)}}")])],
    )


async def ensure_task_stream(js: JetStreamContext, replicas: int = 1) -> None:
    config = task_stream_config(replicas)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:  # exists with another configuration: bring it up to date
            raise
        log.warning("updating stream configuration", extra={"stream": TASK_STREAM})
        await js.update_stream(config)
