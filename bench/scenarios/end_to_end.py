"""End to end: intake -> relay -> JetStream -> pathway (-> referral), at a fixed load and a ramp."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import httpx
from harness import (
    latency_summary,
    left,
    log,
    metric,
    new_clinic,
    open_loop,
    operator_command,
    scope,
    slope,
    wait_for,
)

from care_shared.db import sqlite_url_for
from scenarios.http import IntakeFlow

# --- end to end: intake -> relay -> JetStream -> pathway (-> referral) -------------------------

# A second antidepressant trial, of another agent and class than IntakeFlow's sertraline, that
# fails adequately: with the first failure, pathway's status becomes trd and it advises a referral.
SECOND_TRIAL = {
    "kind": "antidepressant",
    "agent": "venlafaxine",
    "dose_mg_per_day": 150,
    "started_on": "2025-09-02",
}
SECOND_COMPLETION = {
    "ended_on": "2025-11-01",
    "max_dose_mg_per_day": 150,
    "adherence_pct": 90,
    "outcome": "no_response",
}


async def end_to_end(
    fixed_rate: float, fixed_seconds: float, ramp: list[float], step_seconds: float, pool: int
) -> dict:
    async with scope("e2e") as s:
        server = s.start_nats()
        intake_env = {"DATABASE_URL": sqlite_url_for(s.dir / "intake.db"), **server.env("intake")}
        referral_env = {"DATABASE_URL": sqlite_url_for(s.dir / "referral.db"), **server.env("referral")}
        intake = s.service("intake", intake_env)
        pathway = s.service(
            "pathway", {"DATABASE_URL": sqlite_url_for(s.dir / "pathway.db"), **server.env("pathway")}
        )
        intake.wait_ready()
        clinic = new_clinic(intake_env, s.dir)
        key = clinic["api_key"]
        # referral's directory (clinics of varied capabilities, the first one the bench clinic's
        # partner, so its patients' region is known) and a coordinator, as `make run` seeds them.
        seeded = operator_command(
            [
                "referral",
                "demo-seed",
                "--key-file",
                str(s.dir / "coordinator.key"),
                "--partner-clinic-id",
                clinic["clinic_id"],
            ],
            referral_env,
            s.dir,
        )
        referral = s.service("referral", referral_env)
        pathway.wait_ready()
        referral.wait_ready()
        auth = {"Authorization": f"Bearer {key}"}
        coordinator = {"Authorization": f"Bearer {seeded['coordinator_key']}"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=15, headers=auth, limits=limits) as http:
            # pathway learns the clinic's key from intake's clinic-registered event.
            async def knows_key() -> bool:
                return (
                    await http.get(f"{pathway.url}/v1/patients/{uuid.uuid4()}/assessment")
                ).status_code == 404

            await wait_for(knows_key, 30, "pathway to learn the clinic key", every=0.1)

            async def referrals_of(pid: str) -> list[dict]:
                r = await http.get(
                    f"{referral.url}/v1/referrals", params={"patient_id": pid}, headers=coordinator
                )
                if r.status_code != 200:
                    raise RuntimeError(f"referral GET /v1/referrals: {r.status_code} {r.text[:200]}")
                return r.json()

            async def post(path: str, body: dict) -> dict:
                r = await http.post(f"{intake.url}{path}", json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
                return r.json()

            async def assessment(pid: str) -> dict | None:
                r = await http.get(f"{pathway.url}/v1/patients/{pid}/assessment")
                return r.json() if r.status_code == 200 else None

            # A pool of patients, each with an episode and a started trial; and a referral pool,
            # each with one failed adequate trial (no referral advised yet) and a second started.
            sem = asyncio.Semaphore(8)
            pool_rows: list[dict] = []
            referral_rows: list[dict] = []

            async def make_patient(_: int, second_trial: bool = False) -> None:
                async with sem:
                    flow = IntakeFlow(intake.url)
                    answer = None
                    for _step in range(4 if second_trial else 3):  # patient, episode, trial (, completion)
                        kind, url, body = flow.next()
                        answer = await post(url.removeprefix(intake.url), body)
                        flow.ok(kind, answer)
                    if second_trial:
                        answer = await post(f"/v1/patients/{flow.pid}/trials", SECOND_TRIAL)
                        referral_rows.append(
                            {"pid": flow.pid, "trial": answer["id"], "trial_event": answer["event_id"]}
                        )
                    else:
                        pool_rows.append(
                            {"pid": flow.pid, "trial": flow.trial, "trial_event": answer["event_id"]}
                        )

            await asyncio.gather(
                *(make_patient(i) for i in range(pool)),
                *(make_patient(i, second_trial=True) for i in range(pool)),
            )

            async def caught_up() -> bool:
                if await metric(http, pathway.url, "care_consumer_lag", 'consumer="pathway-intake"') != 0:
                    return False
                if await metric(http, referral.url, "care_consumer_lag", 'consumer="referral-pathway"') != 0:
                    return False
                for r in pool_rows + referral_rows:
                    if ((await assessment(r["pid"])) or {}).get("as_of_event") != r["trial_event"]:
                        return False
                return True

            await wait_for(caught_up, 60, "pathway and referral to take in the pools", every=0.2)

            # 1. Fixed offered load: trial completions, each followed until pathway reflects it.
            e2e: list[float] = []
            after_post: list[float] = []
            post_lat: list[float] = []
            failures: Counter = Counter()

            async def complete(i: int) -> None:
                row = pool_rows[i % len(pool_rows)]
                t0 = time.perf_counter()
                try:
                    answer = await post(
                        f"/v1/patients/{row['pid']}/trials/{row['trial']}/completion",
                        {
                            "ended_on": "2025-09-01",
                            "max_dose_mg_per_day": 100,
                            "adherence_pct": 90,
                            "outcome": "no_response",
                        },
                    )
                except Exception as exc:
                    failures[type(exc).__name__] += 1
                    return
                t1 = time.perf_counter()
                post_lat.append(t1 - t0)
                while time.perf_counter() - t0 < 30:
                    a = await assessment(row["pid"])
                    if a and a.get("as_of_event") == answer["event_id"]:
                        now = time.perf_counter()
                        e2e.append(now - t0)
                        after_post.append(now - t1)
                        return
                    await asyncio.sleep(0.01)
                failures["not reflected in 30 s"] += 1

            n_fixed = min(int(fixed_rate * fixed_seconds), len(pool_rows))
            sent = await open_loop(fixed_rate, n_fixed / fixed_rate, complete, max_in_flight=64)
            fixed = {
                "offered_completions_per_s": fixed_rate,
                **sent,
                "failures": dict(failures),
                "post_to_assessment": latency_summary(e2e),
                "post_answer": latency_summary(post_lat),
                "post_answer_to_assessment": latency_summary(after_post),
                "poll_interval_ms": 10,
            }

            # 1b. The same offered load, each completion a patient's second failed adequate trial:
            # followed until pathway reflects it, then until referral shows the patient's task queued.
            # Before: no referral open for anyone (one failed trial advises none).
            r_before = await http.get(
                f"{referral.url}/v1/tasks", params={"status": "open"}, headers=coordinator
            )
            open_before = len(r_before.json()) if r_before.status_code == 200 else None
            r_e2e: list[float] = []
            r_assessed: list[float] = []
            r_assessed_to_task: list[float] = []
            r_post: list[float] = []
            r_failures: Counter = Counter()
            r_statuses: Counter = Counter()

            async def complete_second(i: int) -> None:
                row = referral_rows[i % len(referral_rows)]
                t0 = time.perf_counter()
                try:
                    answer = await post(
                        f"/v1/patients/{row['pid']}/trials/{row['trial']}/completion", SECOND_COMPLETION
                    )
                except Exception as exc:
                    r_failures[type(exc).__name__] += 1
                    return
                r_post.append(time.perf_counter() - t0)
                t_assessed = None
                while time.perf_counter() - t0 < 30:
                    if t_assessed is None:
                        a = await assessment(row["pid"])
                        if a and a.get("as_of_event") == answer["event_id"]:
                            t_assessed = time.perf_counter()
                            r_assessed.append(t_assessed - t0)
                            if not (a.get("referral") or {}).get("advised"):
                                r_failures[f"pathway advised no referral (status {a.get('status')})"] += 1
                                return
                            continue
                    else:
                        queued = [
                            x
                            for x in await referrals_of(row["pid"])
                            if x.get("status") in ("queued", "unroutable")
                        ]
                        if queued:
                            now = time.perf_counter()
                            r_e2e.append(now - t0)
                            r_assessed_to_task.append(now - t_assessed)
                            r_statuses[queued[0]["status"]] += 1
                            return
                    await asyncio.sleep(0.01)
                r_failures["no assessment in 30 s" if t_assessed is None else "no queued task in 30 s"] += 1

            n_ref = min(int(fixed_rate * fixed_seconds), len(referral_rows))
            sent = await open_loop(fixed_rate, n_ref / fixed_rate, complete_second, max_in_flight=64)
            referral_fixed = {
                "offered_completions_per_s": fixed_rate,
                **sent,
                "failures": dict(r_failures),
                "open_referrals_before": open_before,
                "post_to_task_queued": latency_summary(r_e2e),
                "post_answer": latency_summary(r_post),
                "post_to_assessment": latency_summary(r_assessed),
                "assessment_to_task_queued": latency_summary(r_assessed_to_task),
                "task_status_seen": dict(r_statuses),
                "poll_interval_ms": 10,
                "queued_when": "GET referral /v1/referrals?patient_id= (coordinator key) lists the patient's referral as queued or unroutable; "
                "polled only once pathway's assessment reflects the completion",
            }
            log(
                f"  referral: POST -> task queued p50 {referral_fixed['post_to_task_queued']['p50_ms']} ms, statuses {dict(r_statuses)}, failures {dict(r_failures)}"
            )

            # 2. Ramp: assessments on the pool at rising rates; backlog = pathway's consumer lag.
            steps = []
            sustained = None
            counter = 0
            for rate in ramp:
                if left() < step_seconds + 15:
                    steps.append({"offered_per_s": rate, "skipped": "time budget"})
                    break
                drain = await wait_for(
                    lambda: _lag_at_most(http, pathway.url, 5), 30, "pathway backlog to drain", every=0.25
                )
                ok_lat: list[float] = []
                errs: Counter = Counter()

                async def record(_: int, ok_lat: list[float] = ok_lat, errs: Counter = errs) -> None:
                    nonlocal counter
                    counter += 1
                    row = pool_rows[counter % len(pool_rows)]
                    t0 = time.perf_counter()
                    try:
                        r = await http.post(
                            f"{intake.url}/v1/patients/{row['pid']}/assessments",
                            json={
                                "instrument": "PHQ-9",
                                "score": 10 + counter % 15,
                                "item9": 0,
                                "taken_on": "2025-09-02",
                            },
                        )
                    except httpx.HTTPError as exc:
                        errs[type(exc).__name__] += 1
                        return
                    if r.status_code == 201:
                        ok_lat.append(time.perf_counter() - t0)
                    else:
                        errs[str(r.status_code)] += 1

                samples: list[tuple[float, float]] = []
                outbox_max = 0.0
                stop = asyncio.Event()

                async def sampler(
                    samples: list[tuple[float, float]] = samples, stop: asyncio.Event = stop
                ) -> None:
                    nonlocal outbox_max
                    t_start = time.perf_counter()
                    while not stop.is_set():
                        samples.append(
                            (
                                time.perf_counter() - t_start,
                                await metric(
                                    http, pathway.url, "care_consumer_lag", 'consumer="pathway-intake"'
                                ),
                            )
                        )
                        outbox_max = max(outbox_max, await metric(http, intake.url, "care_outbox_backlog"))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 0.5)

                sampling = asyncio.create_task(sampler())
                t_step = time.perf_counter()
                sent = await open_loop(rate, step_seconds, record, max_in_flight=64)
                step_elapsed = time.perf_counter() - t_step
                stop.set()
                await sampling
                lag_slope = slope(samples)
                end_lag = samples[-1][1] if samples else 0
                achieved = len(ok_lat) / step_elapsed
                growing = lag_slope > max(1.0, 0.05 * rate) and end_lag > max(20, 0.5 * rate)
                intake_kept_up = sent["dropped"] == 0 and not errs and achieved >= 0.9 * rate
                step = {
                    "offered_per_s": rate,
                    "achieved_posts_per_s": round(achieved, 1),
                    **sent,
                    "errors": dict(errs),
                    "post_latency": latency_summary(ok_lat),
                    "drain_before_s": round(drain, 2),
                    "lag_start": samples[0][1] if samples else None,
                    "lag_end": end_lag,
                    "lag_max": max((v for _, v in samples), default=None),
                    "lag_slope_per_s": round(lag_slope, 2),
                    "outbox_backlog_max": outbox_max,
                    "backlog_growing": growing,
                    "intake_kept_up": intake_kept_up,
                }
                steps.append(step)
                log(
                    f"  ramp {rate}/s: achieved {achieved:.1f}/s, lag {step['lag_start']} -> {end_lag} (slope {lag_slope:.1f}/s), outbox max {outbox_max}"
                )
                if growing or not intake_kept_up:
                    break
                sustained = rate
            return {
                "databases": "sqlite (intake, pathway and referral)",
                "pool_patients": len(pool_rows),
                "referral_pool_patients": len(referral_rows),
                "referral_directory_clinics": len(seeded.get("clinics", [])),
                "fixed_load": fixed,
                "referral_fixed_load": referral_fixed,
                "ramp": {
                    "event": "assessment POSTs to intake, one intake event each, consumed by pathway (referral consuming pathway's events alongside)",
                    "step_seconds": step_seconds,
                    "growing_when": "least-squares slope of pathway-intake care_consumer_lag over the step > max(1, 5% of rate)/s and final lag > max(20, rate/2)",
                    "steps": steps,
                    "highest_sustained_per_s": sustained,
                },
            }


async def _lag_at_most(http: httpx.AsyncClient, base: str, n: float) -> bool:
    return await metric(http, base, "care_consumer_lag", 'consumer="pathway-intake"') <= n
