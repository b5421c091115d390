"""The bare limits of JetStream on this machine: publishing (sync, async) and pull-and-ack."""

from __future__ import annotations

import time
import uuid

import bench_pathway as bp
from harness import scope

from care_shared.envelope import nats_subject
from care_shared.topology import ensure_streams

# --- JetStream limits ------------------------------------------------------------------------


def sample_envelopes(n: int) -> list[tuple[str, bytes, str]]:
    out = []
    while len(out) < n:
        pid = str(uuid.uuid4())
        for event_id, seq, e in bp.history(pid, 20):
            out.append((nats_subject(e.event_type, pid), bp.envelope(e, pid, seq, event_id), event_id))
    return out[:n]


async def jetstream_limits(n_sync: int = 2000, n_async: int = 20000) -> dict:
    async with scope("js") as s:
        server = s.start_nats()
        nc = await server.connect()
        try:
            js = nc.jetstream()
            await ensure_streams(js)
            msgs = sample_envelopes(n_sync + n_async)
            size = sum(len(m[1]) for m in msgs) / len(msgs)
            t0 = time.perf_counter()
            for subject, data, eid in msgs[:n_sync]:
                await js.publish(subject, data, headers={"Nats-Msg-Id": eid})
            sync_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for subject, data, eid in msgs[n_sync:]:
                await js.publish_async(subject, data, headers={"Nats-Msg-Id": eid})
            await js.publish_async_completed()
            async_s = time.perf_counter() - t0
            total = (await js.stream_info("INTAKE")).state.messages
            consume = {}
            for batch in (16, 256):
                sub = await js.pull_subscribe("intake.>", durable=f"bench-{batch}", stream="INTAKE")
                got = 0
                t0 = time.perf_counter()
                deadline = t0 + 60
                while got < total and time.perf_counter() < deadline:
                    try:
                        fetched = await sub.fetch(batch, timeout=2)
                    except TimeoutError:  # nats-py raises its own or the built-in one
                        continue
                    for m in fetched:
                        await m.ack()
                    got += len(fetched)
                elapsed = time.perf_counter() - t0
                consume[f"batch_{batch}"] = {
                    "messages": got,
                    "seconds": round(elapsed, 2),
                    "msgs_per_s": round(got / elapsed, 1),
                }
                await sub.unsubscribe()
            return {
                "message_bytes_avg": round(size),
                "publish_sync": {
                    "messages": n_sync,
                    "seconds": round(sync_s, 2),
                    "msgs_per_s": round(n_sync / sync_s, 1),
                },
                "publish_async": {
                    "messages": n_async,
                    "seconds": round(async_s, 2),
                    "msgs_per_s": round(n_async / async_s, 1),
                },
                "stream_messages": total,
                "pull_consume": consume,
            }
        finally:
            await nc.close()
