"""notify's REST API (DESIGN.md section 6): contact and consent, and a patient's reminders."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from care_shared.auth import Clinic, ensure_patient_of
from care_shared.contracts.notify import ReminderKind
from care_shared.problems import InvalidField, NotFound
from care_shared.service import current_clinic, runtime_of
from notify.adapters.records import load_contact, replan, save_contact, utc
from notify.adapters.tables import delivery_attempts, reminders
from notify.domain.contact import AdherenceFrequency, ContactChannel, Rejected, contact_preferences

router = APIRouter(prefix="/v1", tags=["reminders"])


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    channel: ContactChannel
    reminders: bool
    adherence_reminders: AdherenceFrequency | None = None
    journal_prompts: bool = False  # daily mood-journal prompts (CLINICAL.md 8), opt-in


def _contact_out(patient_id: str, prefs) -> dict:
    return {
        "patient_id": patient_id,
        "email": prefs.email,
        "phone": prefs.phone,
        "channel": prefs.channel,
        "reminders": prefs.reminders,
        "adherence_reminders": prefs.adherence,
        "journal_prompts": prefs.journal_prompts,
    }


@router.put(
    "/patients/{patient_id}/contact",
    summary="Set the patient's contact details and reminder consent",
    description="Contact details and consent live only in notify. Reminders are opt-in, and so are daily "
    "mood-journal prompts (`journal_prompts`) and adherence reminders; the crisis resources of the patient's "
    "country are added to every message while the patient's urgency is urgent or emergency, and sent once when "
    "it rises to either, whatever the preferences (to any address on file).",
)
async def put_contact(
    patient_id: str, body: ContactIn, request: Request, clinic: Clinic = Depends(current_clinic)
):
    rt = runtime_of(request)
    try:
        prefs = contact_preferences(
            email=body.email,
            phone=body.phone,
            channel=body.channel,
            reminders=body.reminders,
            adherence=body.adherence_reminders,
            journal_prompts=body.journal_prompts,
        )
    except Rejected as exc:
        raise InvalidField(exc.reason, field=exc.field) from None
    async with rt.db.transaction() as session:
        await ensure_patient_of(session, clinic, patient_id)
        now = rt.clock.now()
        await save_contact(session, patient_id, prefs, now)
        await replan(session, rt.store, patient_id, now)
    return _contact_out(patient_id, prefs)


@router.get("/patients/{patient_id}/contact", summary="The patient's contact details and consent")
async def get_contact(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        await ensure_patient_of(session, clinic, patient_id)
        prefs = await load_contact(session, patient_id)
    if prefs is None:
        raise NotFound("no contact details for this patient", field="contact")
    return _contact_out(patient_id, prefs)


@router.get(
    "/patients/{patient_id}/reminders",
    summary="The patient's reminders: scheduled, sent, failed and cancelled, with times and channel",
)
async def list_reminders(patient_id: str, request: Request, clinic: Clinic = Depends(current_clinic)):
    rt = runtime_of(request)
    async with rt.db.read() as session:
        await ensure_patient_of(session, clinic, patient_id)
        prefs = await load_contact(session, patient_id)
        rows = (
            await session.execute(
                select(reminders)
                .where(reminders.c.patient_id == patient_id)
                .order_by(reminders.c.deliver_at, reminders.c.kind)
            )
        ).all()
        # The crisis resources' row each sent message carried (CLINICAL.md 8), from its try.
        rows_used = {
            a.reminder_id: a
            for a in await session.execute(
                select(delivery_attempts)
                .join(reminders, reminders.c.reminder_id == delivery_attempts.c.reminder_id)
                .where(
                    reminders.c.patient_id == patient_id,
                    reminders.c.status == "sent",
                    delivery_attempts.c.attempt == reminders.c.attempts,
                )
            )
        }

    def planned_channel(kind: str) -> str | None:
        channel = prefs.channel_for(kind == ReminderKind.CRISIS_RESOURCES) if prefs else None
        return channel.value if channel else None

    return [
        {
            "id": r.reminder_id,
            "kind": r.kind,
            "status": r.status,
            "due_at": utc(r.due_at),
            "deliver_at": utc(r.deliver_at),
            # A sent or failed reminder shows the channel it used; a pending one, the channel
            # it would use now.
            "channel": r.channel or (planned_channel(r.kind) if r.status == "scheduled" else None),
            "trial_id": r.trial_id,
            "referral_id": r.referral_id,
            "sent_at": utc(r.sent_at),
            "failed_at": utc(r.failed_at),
            "attempts": r.attempts,
            "reason": r.reason,
            "last_error": r.last_error,
            "crisis_resources": r.crisis_resources,
            "crisis_resources_row": rows_used[r.reminder_id].crisis_resources_row
            if r.reminder_id in rows_used
            else None,
            "crisis_resources_version": rows_used[r.reminder_id].crisis_resources_version
            if r.reminder_id in rows_used
            else None,
        }
        for r in rows
    ]
