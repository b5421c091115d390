"""Rebuild: replay intake's stream from JetStream into a fresh projection and compare it with
the live one. Identical means the live assessments are exactly what the events imply."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import nats
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from care_shared.contracts import decode
from care_shared.db import Database
from care_shared.envelope import Envelope, EnvelopeError, parse_envelope
from care_shared.origin import ForgedEvent, verify_origin
from care_shared.rebuild import RebuildReport, compare, progress_bar
from pathway.projection import PatientProjection
from pathway.tables import patient_assessments


async def read_stream(
    nats_url: str | list[str],
    stream: str = "INTAKE",
    subject: str = "intake.>",
    progress: Callable[[int, int], None] | None = None,
    connect_options: dict[str, Any] | None = None,
) -> list[Envelope]:
    """Every message in the stream up to its last sequence at the time of the call (an
    ephemeral consumer: run as ops, `carectl rebuild pathway`)."""
    nc = await nats.connect(servers=nats_url, **(connect_options or {}))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        envelopes: list[Envelope] = []
        if last == 0:
            return envelopes
        sub = await js.pull_subscribe(
            subject,
            durable=None,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        seq = 0
        while seq < last:
            for msg in await sub.fetch(500, timeout=5):
                seq = msg.metadata.sequence.stream
                try:
                    envelope = parse_envelope(msg.data)
                    # What the live consumer refused as forged is no fact of the patient's.
                    verify_origin(envelope, stream, msg.subject)
                    envelopes.append(envelope)
                except (EnvelopeError, ForgedEvent):
                    pass  # not an event, or not intake's: the live consumer dead-lettered it too
            if progress:
                progress(seq, last)
        return envelopes
    finally:
        await nc.close()


def project(envelopes: list[Envelope]) -> dict[str, dict[str, Any]]:
    projections: dict[str, PatientProjection] = {}
    for env in envelopes:
        try:
            payload = decode(env.type, env.data)
        except Exception:
            continue  # dead-lettered by the live consumer as well
        patient_id = getattr(payload, "patient_id", None)
        if patient_id is None or env.sequence is None:
            continue
        projections.setdefault(patient_id, PatientProjection.new(patient_id)).add(
            env.sequence, env.id, env.type, env.data
        )
    # Through JSON, as the live projection is stored.
    return {
        pid: json.loads(json.dumps(p.assessment()))
        for pid, p in projections.items()
        if p.facts.applied_through > 0
    }


async def live_assessments(db: Database) -> dict[str, dict[str, Any]]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(patient_assessments.c.patient_id, patient_assessments.c.assessment)
        )
        return {r.patient_id: r.assessment for r in rows if r.assessment is not None}


async def rebuild_and_compare(
    db: Database,
    nats_url: str | list[str],
    *,
    progress: bool = False,
    connect_options: dict[str, Any] | None = None,
) -> RebuildReport:
    envelopes = await read_stream(
        nats_url,
        progress=progress_bar("replaying intake") if progress else None,
        connect_options=connect_options,
    )
    return compare(await live_assessments(db), project(envelopes), events=len(envelopes))
