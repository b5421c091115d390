"""One patient through all four services, as real processes on a real nats-server."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from care_shared.testing.polling import eventually
from tests.e2e.conftest import Network

pytestmark = pytest.mark.e2e


async def test_a_trial_completion_reaches_pathway_referral_and_notify_in_one_trace(network: Network) -> None:
    key = network.add_clinic("E2E clinic")
    auth = {"Authorization": f"Bearer {key}"}
    marker = "mrn-ZEBRA-7731"  # recognisable: must never appear in spans or logs
    async with httpx.AsyncClient(timeout=10) as http:
        intake = network.url("intake")

        async def post(path: str, body: dict) -> dict:
            r = await http.post(f"{intake}{path}", json=body, headers=auth)
            assert r.status_code == 201, r.text
            return r.json()

        # The clinic's key reaches intake at once; the patient record is where the flow starts.
        patient = await eventually(
            lambda: _try_post(
                http,
                f"{intake}/v1/patients",
                auth,
                {"external_id": marker, "birth_year": 1979, "sex": "female", "timezone": "America/New_York"},
            ),
            what="intake to accept the new clinic",
        )
        pid = patient["id"]
        await post(
            f"/v1/patients/{pid}/episodes",
            {"onset_date": "2025-06-01", "severity": "severe", "diagnosis": "mdd"},
        )
        trial = await post(
            f"/v1/patients/{pid}/trials",
            {
                "kind": "antidepressant",
                "agent": "escitalopram",
                "dose_mg_per_day": 20,
                "started_on": "2025-07-01",
            },
        )

        async def assessment() -> dict | None:
            r = await http.get(f"{network.url('pathway')}/v1/patients/{pid}/assessment", headers=auth)
            return r.json() if r.status_code == 200 else None

        async def assessment_as_of(event_id: str) -> dict | None:
            a = await assessment()
            return a if a and a["as_of_event"] == event_id else None

        # A clinic's next step comes after pathway has taken in the last one, as in practice,
        # so the completion's own trace carries pathway's reaction to it.
        await eventually(
            lambda: assessment_as_of(trial["event_id"]), timeout=30, what="pathway to take in the trial"
        )
        r = await http.post(
            f"{intake}/v1/patients/{pid}/trials/{trial['id']}/completion",
            json={
                "ended_on": "2025-09-01",
                "max_dose_mg_per_day": 20,
                "adherence_pct": 95,
                "outcome": "no_response",
            },
            headers=auth,
        )
        assert r.status_code == 201, r.text
        completed = r.json()["event_id"]
        first = await eventually(
            lambda: assessment_as_of(completed), timeout=30, what="pathway's assessment of the completion"
        )
        assert first["status"] == "inadequate_response"

        async def seen(service: str) -> list[dict]:
            r = await http.get(f"{network.url(service)}/v1/patients/{pid}/seen", headers=auth)
            return r.json() if r.status_code == 200 else []

        async def has(service: str, predicate) -> list[dict] | None:
            rows = await seen(service)
            return rows if any(predicate(e) for e in rows) else None

        await eventually(
            lambda: has("pathway", lambda e: e["event_id"] == completed),
            timeout=30,
            what="pathway to see trial-completed",
        )
        await eventually(
            lambda: has("notify", lambda e: e["event_id"] == completed),
            timeout=30,
            what="notify to see trial-completed",
        )
        referral_rows = await eventually(
            lambda: has("referral", lambda e: e["caused_by"] == completed),
            timeout=30,
            what="referral to see pathway's assessment for it",
        )
        changed = next(e for e in referral_rows if e["caused_by"] == completed)
        assert changed["type"] == "care.pathway.assessment-changed.v2"
        await eventually(
            lambda: has("notify", lambda e: e["event_id"] == changed["event_id"]),
            timeout=30,
            what="notify to see pathway's event",
        )

        # Another clinic sees none of it.
        other = network.add_clinic("Other clinic")

        async def other_is_refused() -> bool:
            r = await http.get(
                f"{network.url('pathway')}/v1/patients/{pid}/seen",
                headers={"Authorization": f"Bearer {other}"},
            )
            return r.status_code == 404

        await eventually(other_is_refused, timeout=30, what="pathway to know the other clinic and refuse it")

    # One trace: the completion request, the relay's publish, each consumer, pathway's own
    # event and its publish, and the consumers of that.
    def request_trace() -> str | None:
        for s in network.spans():
            if (
                s["service"] == "intake"
                and s["kind"] == "SERVER"
                and s["name"].startswith("POST")
                and "completion" in s["name"]
            ):
                return s["trace_id"]
        return None

    async def whole_trace() -> dict[tuple[str, str], int] | None:
        trace_id = request_trace()
        if not trace_id:
            return None
        kinds: dict[tuple[str, str], int] = {}
        for s in network.spans():
            if s["trace_id"] == trace_id:
                kinds[(s["service"], s["kind"])] = kinds.get((s["service"], s["kind"]), 0) + 1
        wanted = {
            ("intake", "SERVER"),  # the clinic's request
            ("intake", "CLIENT"),  # its append
            ("intake", "PRODUCER"),  # the relay's publish, continuing the stored traceparent
            ("pathway", "CONSUMER"),
            ("pathway", "CLIENT"),  # the projection and pathway's own append
            ("pathway", "PRODUCER"),  # assessment-changed, published through pathway's outbox
            ("referral", "CONSUMER"),
            ("notify", "CONSUMER"),
        }
        return kinds if wanted <= kinds.keys() else None

    kinds = await eventually(whole_trace, timeout=30, what="every hop's span in the request's trace")
    assert kinds[("notify", "CONSUMER")] >= 2  # intake's event and pathway's, both in this trace

    # Background work (start-up migrations, the relay's, notify's and referral's polls) makes
    # no root traces of its own: every trace an operator sees starts with a request or a message.
    stray = [
        (s["service"], s["name"])
        for s in network.spans()
        if s["parent_span_id"] is None and s["kind"] == "CLIENT"
    ]
    assert not stray, f"root traces made of bare database work: {sorted(set(stray))[:10]}"

    for svc in network.services.values():
        assert marker not in svc.trace_file.read_text(), f"patient reference leaked into {svc.name} spans"
        assert marker not in svc.log_tail(10_000), f"patient reference leaked into {svc.name} logs"


async def _try_post(http: httpx.AsyncClient, url: str, auth: dict, body: dict) -> dict | None:
    r = await http.post(url, json=body, headers=auth)
    return r.json() if r.status_code == 201 else None


async def test_two_failed_adequate_trials_of_different_classes_make_trd_with_stages_and_referral(
    network: Network,
) -> None:
    """Issue 3, done when: status trd, Thase-Rush II, the Maudsley score and band, the MGH score
    and an advised referral, on real servers, within a deadline."""
    key = network.add_clinic("TRD clinic")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        intake, pathway = network.url("intake"), network.url("pathway")
        patient = await eventually(
            lambda: _try_post(
                http,
                f"{intake}/v1/patients",
                auth,
                {"external_id": "trd-1", "birth_year": 1970, "sex": "male", "timezone": "Europe/London"},
            ),
            what="intake to accept the new clinic",
        )
        pid = patient["id"]
        steps = [
            ("episodes", {"onset_date": "2024-01-10", "severity": "severe", "diagnosis": "mdd"}),
            (
                "trials",
                {
                    "kind": "antidepressant",
                    "agent": "sertraline",
                    "dose_mg_per_day": 100,
                    "started_on": "2024-02-01",
                },
            ),
            ("complete", {"ended_on": "2024-03-15", "adherence_pct": 90, "outcome": "no_response"}),
            (
                "trials",
                {
                    "kind": "antidepressant",
                    "agent": "venlafaxine",
                    "dose_mg_per_day": 150,
                    "started_on": "2024-03-20",
                },
            ),
            (
                "complete",
                {
                    "ended_on": "2024-05-20",
                    "max_dose_mg_per_day": 225,
                    "adherence_pct": 85,
                    "outcome": "partial_response",
                },
            ),
        ]
        trial_id = None
        for kind, body in steps:
            path = (
                f"/v1/patients/{pid}/trials/{trial_id}/completion"
                if kind == "complete"
                else f"/v1/patients/{pid}/{kind}"
            )
            r = await http.post(f"{intake}{path}", json=body, headers=auth)
            assert r.status_code == 201, r.text
            if kind == "trials":
                trial_id = r.json()["id"]
        last_event = r.json()["event_id"]

        async def assessed() -> dict | None:
            r = await http.get(f"{pathway}/v1/patients/{pid}/assessment", headers=auth)
            return r.json() if r.status_code == 200 and r.json()["as_of_event"] == last_event else None

        a = await eventually(assessed, timeout=30, what="pathway's assessment of the second failure")
        assert a["status"] == "trd"
        assert a["failed_adequate_trials"] == 2
        assert a["stages"]["thase_rush"]["stage"] == 2  # SSRI and SNRI
        # 4 months (1) + severe without psychotic features (4) + 2 failed agents (1) = 6: mild
        assert (a["stages"]["maudsley"]["score"], a["stages"]["maudsley"]["band"]) == (6, "mild")
        assert a["stages"]["mgh"]["score"] == 2.5  # 1 + 1, + 0.5 for venlafaxine raised to 225 mg
        assert a["referral"]["advised"] is True
        assert "mood_disorder_clinic" in a["referral"]["capabilities"]
        assert {r["strategy"] for r in a["recommendations"]} >= {
            "augment",
            "combine",
            "esketamine_or_ketamine",
            "rtms",
            "ect",
        }

        metrics = (await http.get(f"{pathway}/metrics")).text
        assert 'care_consumer_lag{consumer="pathway-intake"} 0.0' in metrics
        assert (
            'care_events_consumed_total{consumer="pathway-intake",type="care.intake.trial-completed.v2"}'
            in metrics
        )
        assert 'care_events_appended_total{type="care.pathway.assessment-changed.v2"}' in metrics

        history = (await http.get(f"{pathway}/v1/patients/{pid}/assessment/history", headers=auth)).json()
        assert [h["assessment"]["status"] for h in history][-1] == "trd"
        assert len({h["as_of_event"] for h in history}) == len(history)  # one change per changing event


async def test_carectl_shows_streams_consumers_dead_letters_and_the_last_trace(network: Network) -> None:
    key = network.add_clinic("Ops clinic")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        patient = await eventually(
            lambda: _try_post(
                http,
                f"{network.url('intake')}/v1/patients",
                auth,
                {"external_id": "ops-1", "birth_year": 1990, "sex": "female", "timezone": "UTC"},
            ),
            what="intake to accept the clinic",
        )
        pid = patient["id"]

        async def pathway_saw() -> bool:
            r = await http.get(f"{network.url('pathway')}/v1/patients/{pid}/seen", headers=auth)
            return r.status_code == 200 and len(r.json()) == 1

        await eventually(pathway_saw, what="pathway to see the patient")

    nc = await network.nats.connect()  # as ops: the one user that may publish anything
    await nc.jetstream().publish(
        f"intake.patient-registered.{pid}", b"{not json", headers={"Nats-Msg-Id": "poison-1"}
    )
    await nc.close()

    def carectl(*args: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "care_shared.ops.carectl",
                "--nats",
                network.nats.url,
                "--creds",
                str(network.nats.seed_file("ops")),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=network.workdir,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    async def dead_lettered() -> str | None:
        text = await asyncio.to_thread(carectl, "dlq", "list")
        return text if text.count("malformed JSON") >= 3 else None  # pathway, referral, notify each

    listing = await eventually(dead_lettered, timeout=30, what="every consumer to dead-letter the poison")
    assert "pathway-intake" in listing and "notify-intake" in listing and "referral-access" in listing
    assert "pathway-intake" in await asyncio.to_thread(carectl, "consumers")
    assert "INTAKE" in await asyncio.to_thread(carectl, "streams", "--interval", "0.1")
    tree = await asyncio.to_thread(carectl, "trace", "--last", "--dir", str(network.workdir / "traces"))
    assert "[intake] POST /v1/patients" in tree
    assert all(f"[{svc}]" in tree for svc in ("pathway", "referral", "notify"))

    first_seq = listing.splitlines()[1].split()[0]
    replayed = await asyncio.to_thread(carectl, "dlq", "replay", first_seq)
    assert f"replayed dlq {first_seq}" in replayed
    after = await asyncio.to_thread(carectl, "dlq", "list")
    assert f"\n{first_seq} " not in after  # removed from the DLQ once back on its subject
