"""The JetStream topology: one stream per producing service, the dead-letter stream, and every
durable consumer, in one table. The bus's permissions (care_shared.nats_auth) are generated
from it, and a service may subscribe only to a durable listed here, so a new subscription
cannot quietly lack its permission or gain more than it needs.

Ops (`carectl streams ensure`, run by `make run`, the test fixtures and the deploy jobs)
declares every stream before the services start; each service declares only its own stream
(an identical re-declare is a no-op) and never updates, deletes or purges one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)
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

# Who owns each stream: the only service whose events may be in it.
STREAM_OWNER: dict[str, str] = {
    "INTAKE": "intake",
    "PATHWAY": "pathway",
    "REFERRAL": "referral",
    "NOTIFY": "notify",
    "REFERRAL_TASKS": "referral",  # sourced from REFERRAL (referral.work_queue)
}
SERVICES: tuple[str, ...] = ("intake", "pathway", "referral", "notify")


def own_streams(service: str) -> list[str]:
    return [name for name, owner in STREAM_OWNER.items() if owner == service]


@dataclass(frozen=True)
class Durable:
    """A durable pull consumer: `service` reads `stream` (filtered by `filter_subject`)."""

    service: str
    purpose: str
    stream: str
    filter_subject: str

    @property
    def name(self) -> str:
        return f"{self.service}-{self.purpose}"

    @property
    def dead_letter_subject(self) -> str:
        return dlq_subject(self.name)


DURABLES: tuple[Durable, ...] = (
    Durable("pathway", "intake", "INTAKE", "intake.>"),
    Durable("referral", "access", "INTAKE", "intake.>"),
    Durable("referral", "pathway", "PATHWAY", "pathway.>"),
    Durable("notify", "intake", "INTAKE", "intake.>"),
    Durable("notify", "pathway", "PATHWAY", "pathway.>"),
    Durable("notify", "referral", "REFERRAL", "referral.>"),
)


def durable_for(service: str, purpose: str, stream: str, filter_subject: str) -> Durable:
    """The table's entry for a subscription; a subscription the table lacks is refused at
    start-up (its permissions were never generated, so it could only fail quietly)."""
    wanted = Durable(service, purpose, stream, filter_subject)
    if wanted not in DURABLES:
        raise LookupError(
            f"{wanted.name} on {stream} ({filter_subject}) is not in care_shared.topology.DURABLES"
        )
    return wanted


# Receiving clinics pull their referral tasks from REFERRAL_TASKS, each only its own subject.
TASK_STREAM = "REFERRAL_TASKS"


def clinic_task_durable(clinic_id: str) -> str:
    return f"tasks-{clinic_id}"


# Every durable is created by ops with this configuration, never by the service or clinic that
# pulls from it: the right to create a consumer is the right to choose its filter and a push
# deliver_subject, i.e. to copy a stream's messages onto any subject.
# Longer than any database wait (db.LOCK_TIMEOUT_SECONDS); a handler that runs longer reports
# progress (consumer.py), so this bounds only a process that died holding a message.
ACK_WAIT_SECONDS = 60.0
MAX_ACK_PENDING = 1000


def durable_config(
    name: str, filter_subject: str, ack_wait_seconds: float = ACK_WAIT_SECONDS
) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=name,
        name=name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        # JetStream never drops a message: past the consumer's own limit, it dead-letters.
        max_deliver=-1,
        ack_wait=ack_wait_seconds,
        max_ack_pending=MAX_ACK_PENDING,
        filter_subject=filter_subject,
    )


def durable_configs(clinics: tuple[str, ...] | list[str] = ()) -> list[tuple[str, ConsumerConfig]]:
    """(stream, config) of every durable: the services' and each receiving clinic's."""
    found = [(d.stream, durable_config(d.name, d.filter_subject)) for d in DURABLES]
    return found + [(TASK_STREAM, durable_config(clinic_task_durable(c), f"tasks.{c}")) for c in clinics]


def task_stream_config(replicas: int = 1) -> StreamConfig:
    """Referral tasks per receiving clinic (`tasks.<clinic id>`): a work queue sourced from the
    REFERRAL stream's task-dispatched events, so publishing stays the outbox's job."""
    return StreamConfig(
        name=TASK_STREAM,
        description="Referral tasks per receiving clinic (tasks.<clinic id>), for clinics that pull them",
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
        # The transform is also the filter: only task-dispatched events are copied.
        sources=[
            StreamSource(
                name="REFERRAL",
                subject_transforms=[
                    SubjectTransform(src="referral.task-dispatched.*", dest="tasks.{{wildcard(1)}}")
                ],
            )
        ],
    )


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
    configs.append(task_stream_config(replicas))
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


async def ensure_topology(
    js: JetStreamContext, replicas: int = 1, clinics: list[str] | tuple[str, ...] = ()
) -> None:
    """Ops: every stream, then every durable (services' and receiving clinics'), created or
    brought up to date."""
    await ensure_streams(js, replicas)
    for stream, config in durable_configs(clinics):
        await js.add_consumer(stream, config)  # an existing one with these settings: a no-op


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Ops: declare every stream, bringing an existing one up to date (needs STREAM.UPDATE,
    which only the ops user holds)."""
    for config in stream_configs(replicas):
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code == 10058:  # exists with another configuration: bring it up to date
                log.warning("updating stream configuration", extra={"stream": config.name})
                await js.update_stream(config)
            else:
                raise


async def ensure_own_stream(js: JetStreamContext, service: str, replicas: int = 1) -> None:
    """A service: declare its own event stream if ops has not yet. One whose configuration
    differs is left as it is and said: updating a stream is ops' (`carectl streams ensure`)."""
    for config in stream_configs(replicas):
        if STREAM_OWNER.get(config.name) != service:
            continue
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != 10058:
                raise
            log.warning(
                "stream configuration differs from this version's; run `carectl streams ensure`",
                extra={"stream": config.name},
            )


def dlq_subject(consumer: str) -> str:
    return f"dlq.{consumer}"
