"""pathway's REST API (DESIGN.md section 6)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request

from care_shared.auth import Clinic, ensure_patient_of
from care_shared.problems import NotFound
from care_shared.service import current_clinic, runtime_of
from pathway.handlers import assessment_stream
from pathway.tables import patient_assessments

router = APIRouter(prefix="/v1", tags=["assessment"])


@router.get(
    "/patients/{patient_id}/assessment",
    summary="The patient's TRD status, staging, urgency, recommendations and referral advice",
    description=(
        "Every field carries its reasons: `status_reason`, `urgency_reason`, each stage's inputs "
        "and points, each trial's adequacy with what was missing, each recommendation's rationale "
        "and evidence. `rules_version` names the rule set (trd-rules 2026.12); `tried`, `declined` "
        "and `not_offered` are kept apart from `recommendations` and never appear in them; `workup` "
        "shows each pseudo-resistance check (open, normal, abnormal) after a failure and `journal` the "
        "mood journal's last 14 days; flags include `at_risk_of_trd`, `workup_open`, "
        "`workup_abnormal`, `journal_low_mood`, `reassess_suicide_risk` and `suicide_item_not_recorded`. "
        "`as_of_event` is the latest intake event it reflects; `waiting_for_sequence` "
        "is set while an earlier event of the patient has not arrived yet."
    ),
)
async def get_assessment(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    async with runtime_of(request).db.read() as session:
        await ensure_patient_of(session, clinic, patient_id)
        row = (
            await session.execute(
                sa.select(patient_assessments).where(patient_assessments.c.patient_id == patient_id)
            )
        ).first()
    if row is None or row.assessment is None:
        raise NotFound("no assessment for this patient yet", field="patient_id")
    pending = sorted(int(s) for s in row.pending)
    return {
        **row.assessment,
        "applied_through_sequence": row.applied_through,
        "waiting_for_sequence": row.applied_through + 1 if pending else None,
    }


@router.get(
    "/patients/{patient_id}/assessment/history",
    summary="Every change of the patient's assessment, oldest first",
)
async def assessment_history(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        await ensure_patient_of(session, clinic, patient_id)
        changes = await rt.store.read_stream(session, assessment_stream(patient_id))
    return [
        {
            "event_id": e.event_id,
            "version": e.version,
            "recorded_at": e.recorded_at,
            "as_of_event": e.data["as_of_event"],
            "assessment": e.data["assessment"],
        }
        for e in changes
    ]
