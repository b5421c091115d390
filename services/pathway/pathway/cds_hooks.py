"""CDS Hooks 2.0 on pathway (issue 16): TRD staging and strategies inside the EHR.

- `GET /cds-services`: discovery, both services with their prefetch templates.
- `POST /cds-services/trd-patient-view`: cards for the TRD status and stages (info), each top
  strategy with its evidence as the card's source, urgency (critical when urgent or emergency)
  and a referral suggestion.
- `POST /cds-services/trd-order-select`: warnings on draft MedicationRequests (context
  `draftOrders`, or MedicationRequests in the prefetch): an agent that already failed
  adequately (or was stopped for intolerance) in this episode, buspirone as augmentation, a
  dose below the agent's minimum (CLINICAL.md 2).
- `POST /cds-services/{id}/feedback`: accepted and overridden cards, recorded as events.

The answer always comes from pathway's own projection (the patient's assessment as intake's
events built it); prefetch is declared so a client may send it, but the engine needs the
patient's event history, which FHIR prefetch does not carry. The clinic key authenticates the
call (`Authorization: Bearer`), as on every route; another clinic's patient is a 404.
Each issued card is an event (`CdsCardIssued`) so feedback can be traced to it.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from care_shared import codes, drugs
from care_shared.auth import Clinic, ensure_patient_of
from care_shared.contracts.pathway import CdsCardFeedbackRecorded, CdsCardIssued
from care_shared.envelope import new_id
from care_shared.eventstore import NewEvent
from care_shared.idempotency import run_command
from care_shared.problems import InvalidField, NotFound
from care_shared.service import current_clinic, runtime_of
from pathway.tables import patient_assessments

PATIENT_VIEW = "trd-patient-view"
ORDER_SELECT = "trd-order-select"
SOURCE = {"label": "TRD Care Network (trd-rules 2026.12)"}
OVERRIDE_SYSTEM = "https://trd-care.example/cds/override-reason"
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": "patient-declined", "display": "Patient declined"},
    {"system": OVERRIDE_SYSTEM, "code": "already-addressed", "display": "Already addressed"},
    {"system": OVERRIDE_SYSTEM, "code": "clinical-judgement", "display": "Not appropriate for this patient"},
]
TOP_STRATEGIES = 3
PATIENT_PREFETCH = {"patient": "Patient/{{context.patientId}}"}

SERVICES = [
    {
        "hook": "patient-view",
        "id": PATIENT_VIEW,
        "title": "TRD status, staging and next strategies",
        "description": "Where the patient stands on the treatment-resistant depression pathway "
        "(status, Thase-Rush, Maudsley, MGH), the evidence-based next strategies, urgency and "
        "referral advice. Decision support: it never prescribes.",
        "prefetch": PATIENT_PREFETCH,
        "usageRequirements": "Authorization: Bearer <clinic API key>; context.patientId is the network's patient id.",
    },
    {
        "hook": "order-select",
        "id": ORDER_SELECT,
        "title": "TRD antidepressant order check",
        "description": "Warns when a drafted agent already failed adequately or was stopped for "
        "intolerance in this episode, when buspirone is chosen as augmentation, or when the "
        "daily dose is below the agent's minimum for an adequate trial.",
        "prefetch": {**PATIENT_PREFETCH, "medications": "MedicationStatement?patient={{context.patientId}}"},
        "usageRequirements": "Authorization: Bearer <clinic API key>; context.patientId is the network's patient id.",
    },
]

router = APIRouter(prefix="/cds-services", tags=["cds-hooks"])


class HookRequest(BaseModel):
    """The CDS Hooks 2.0 request body (fields this service reads; others are allowed)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    hook: str
    hookInstance: str = Field(min_length=1, max_length=100)
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: dict[str, Any] | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str = Field(min_length=1, max_length=100)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] = Field(default=[], max_length=20)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1, max_length=40)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=50)


def card_stream(card_id: str) -> str:
    return f"cds-card-{card_id}"


# --- cards (pure: an assessment in, cards out) ------------------------------------------


def _card(
    kind: str, summary: str, indicator: str, detail: str, source: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "summary": summary[:140],
        "indicator": indicator,
        "detail": detail,
        "source": source or SOURCE,
        "overrideReasons": OVERRIDE_REASONS,
        "_kind": kind,
        **extra,
    }


def status_card(a: dict[str, Any]) -> dict[str, Any]:
    stages = a["stages"]
    lines = [
        f"**Status:** {a['status']} ({a.get('status_reason', '')})",
        f"**Failed adequate trials:** {a.get('failed_adequate_trials', 0)}",
    ]
    if tr := stages.get("thase_rush"):
        lines.append(f"**Thase-Rush:** stage {tr['label']} ({tr['source']})")
    if (ms := stages.get("maudsley")) and ms.get("score") is not None:
        lines.append(f"**Maudsley:** {ms['score']} ({ms['band']}; {ms['source']})")
    else:
        lines.append("**Maudsley:** not staged")
    if mgh := stages.get("mgh"):
        lines.append(f"**MGH:** {mgh['score']} ({mgh['source']})")
    return _card("status", f"TRD status: {a['status'].replace('_', ' ')}", "info", "\n\n".join(lines))


def strategy_cards(a: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for r in a["recommendations"][:TOP_STRATEGIES]:
        options = ", ".join(r["options"]) if r["options"] else "see rationale"
        out.append(
            _card(
                "strategy",
                f"Consider: {r['strategy'].replace('_', ' ')} ({options})",
                "info",
                f"{r['rationale']}\n\n**Setting:** {r['setting'].replace('_', ' ')}",
                source={"label": r["evidence"]},
            )
        )
    return out


def urgency_card(a: dict[str, Any]) -> dict[str, Any] | None:
    if a["urgency"] not in ("urgent", "emergency"):
        return None
    # CLINICAL.md 5 and 8: suicidality always advises referral and crisis resources.
    detail = (
        f"{a.get('urgency_reason', '')}\n\n**Crisis resources:** US/CA: call or text 988 (Suicide and Crisis "
        "Lifeline); US: text HOME to 741741; GB/IE: Samaritans 116 123; emergency: 911 (US/CA), 999 (GB), "
        "112 or 999 (IE), else the local emergency number (112 in the EU)."
    )
    return _card(
        "urgency", f"Suicide risk: {a['urgency']} - assess now and give crisis resources", "critical", detail
    )


def referral_card(a: dict[str, Any], patient_id: str) -> dict[str, Any] | None:
    referral = a["referral"]
    if not referral["advised"]:
        return None
    capabilities = ", ".join(referral["capabilities"])
    request = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": {"text": "Referral to a specialist mood disorder service"},
        "reasonCode": [{"text": reason} for reason in referral["reasons"]],
    }
    suggestion = {
        "label": "Draft a referral to a mood disorder clinic",
        "uuid": new_id(),
        "isRecommended": True,
        "actions": [
            {
                "type": "create",
                "description": "Draft ServiceRequest for a specialist referral",
                "resource": request,
            }
        ],
    }
    return _card(
        "referral",
        "Referral to a specialist or mood disorder clinic advised",
        "warning",
        "**Reasons:** " + "; ".join(referral["reasons"]) + f"\n\n**Needs:** {capabilities}",
        suggestions=[suggestion],
        selectionBehavior="at-most-one",
    )


def patient_view_cards(a: dict[str, Any], patient_id: str) -> list[dict[str, Any]]:
    cards = [urgency_card(a), status_card(a), *strategy_cards(a), referral_card(a, patient_id)]
    return [c for c in cards if c]


_RXNORM_AGENTS = {row["rxnorm"]: agent for agent, row in codes.table()["agents"].items() if row["verified"]}
_PER_MG = {"mg": 1.0, "ug": 0.001, "microgram": 0.001, "mcg": 0.001, "g": 1000.0}


def drafted_agent(order: dict[str, Any]) -> drugs.Drug | None:
    concept = order.get("medicationCodeableConcept") or {}
    for coding in concept.get("coding", []):
        if coding.get("system") == codes.RXNORM and (agent := _RXNORM_AGENTS.get(str(coding.get("code")))):
            return drugs.lookup(agent)
    for name in [concept.get("text"), *(c.get("display") for c in concept.get("coding", []))]:
        if isinstance(name, str) and (drug := drugs.lookup(name)):
            return drug
    return None


def daily_dose_mg(order: dict[str, Any]) -> float | None:
    """The drafted daily dose in mg: dose x frequency per period, for periods in days."""
    try:
        dosage = order["dosageInstruction"][0]
        quantity = dosage["doseAndRate"][0]["doseQuantity"]
        per_mg = _PER_MG[str(quantity.get("code") or quantity.get("unit")).lower()]
        value = float(quantity["value"]) * per_mg
        repeat = (dosage.get("timing") or {}).get("repeat") or {}
        frequency, period = float(repeat.get("frequency", 1)), float(repeat.get("period", 1))
        per_day = {"d": 1.0, "wk": 1 / 7, "h": 24.0}[repeat.get("periodUnit", "d")]
        return value * frequency / period * per_day
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None


def draft_orders(req: HookRequest) -> list[dict[str, Any]]:
    """MedicationRequests drafted: context.draftOrders (a Bundle), else any Bundle in the
    prefetch; only the selected ones when context.selections names them."""
    bundles = [req.context.get("draftOrders")] + list((req.prefetch or {}).values())
    orders: list[dict[str, Any]] = []
    for bundle in bundles:
        if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle":
            orders += [
                e["resource"]
                for e in bundle.get("entry", [])
                if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)
                and e["resource"].get("resourceType") == "MedicationRequest"
            ]
        if orders:
            break
    selections = req.context.get("selections")
    if isinstance(selections, list) and selections:
        chosen = {str(s).removeprefix("MedicationRequest/") for s in selections}
        orders = [o for o in orders if str(o.get("id")) in chosen]
    return orders


def order_select_cards(a: dict[str, Any], orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tried = {t["option"]: t for t in a.get("tried", [])}
    cards = []
    for order in orders:
        try:
            drug = drafted_agent(order)
        except (AttributeError, TypeError):
            drug = None  # a malformed draft: nothing to check it against
        if drug is None:
            continue  # an agent the drug table lacks: nothing to check it against
        if (t := tried.get(drug.name)) is not None:
            what = (
                "failed an adequate trial"
                if t["result"] == "failed_adequate"
                else "was stopped for intolerance"
            )
            cards.append(
                _card(
                    "failed_agent",
                    f"{drug.name} {what} in this episode",
                    "warning",
                    f"{drug.name} {what} (trial ended {t['ended_on']}); CLINICAL.md 6: never recommend it again "
                    "in this episode. Consider the patient's recommended strategies instead.",
                    source={"label": "NICE NG222 1.9; CANMAT 2023"},
                )
            )
        if drug.name == "buspirone":
            cards.append(
                _card(
                    "buspirone",
                    "Buspirone augmentation is not evidence-based for TRD",
                    "warning",
                    "Cochrane 2019: no benefit of buspirone augmentation; it does not count as an "
                    "augmentation trial for chronic resistance. First-line augmenters: aripiprazole, "
                    "brexpiprazole, cariprazine (CANMAT 2023).",
                    source={"label": "Cochrane 2019"},
                )
            )
        dose = daily_dose_mg(order)
        if dose is not None and drug.min_mg_per_day is not None and dose < drug.min_mg_per_day:
            cards.append(
                _card(
                    "low_dose",
                    f"{drug.name} {drugs.per_day_text(drug, dose)} is below the adequate dose",
                    "warning",
                    f"An adequate trial needs at least {drugs.per_day_text(drug, drug.min_mg_per_day)} "
                    "(CLINICAL.md 2); a trial below it cannot count toward TRD.",
                    source={"label": "NICE NG222 1.9.1; ATHF"},
                )
            )
    return cards


# --- routes -----------------------------------------------------------------------------


@router.get("", summary="CDS Hooks discovery")
async def discovery() -> dict[str, Any]:
    return {"services": SERVICES}


async def _assessment(session, clinic: Clinic, patient_id: str) -> dict[str, Any]:
    await ensure_patient_of(session, clinic, patient_id)
    row = (
        await session.execute(
            sa.select(patient_assessments.c.assessment).where(patient_assessments.c.patient_id == patient_id)
        )
    ).first()
    if row is None or row.assessment is None:
        raise NotFound("no assessment for this patient yet", field="context.patientId")
    return row.assessment


async def _answer(request: Request, clinic: Clinic, req: HookRequest, service_id: str) -> dict[str, Any]:
    patient_id = req.context.get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        raise InvalidField("context.patientId is required", field="context.patientId")
    request.state.audit_patient_ids = [patient_id]
    rt = runtime_of(request)

    async def command(session):
        a = await _assessment(session, clinic, patient_id)
        cards = (
            patient_view_cards(a, patient_id)
            if service_id == PATIENT_VIEW
            else order_select_cards(a, draft_orders(req))
        )
        for card in cards:
            issued = CdsCardIssued(
                patient_id=patient_id,
                card_id=card["uuid"],
                clinic_id=clinic.clinic_id,
                service_id=service_id,
                kind=card.pop("_kind"),
                hook_instance=req.hookInstance,
            )
            await rt.store.append(
                session,
                card_stream(card["uuid"]),
                0,
                [
                    NewEvent(
                        type=issued.event_type,
                        subject=patient_id,
                        data=issued.to_data(),
                        meta={"clinicid": clinic.clinic_id},
                    )
                ],
                publish=False,
            )
        return 200, {"cards": cards}

    _, body = await run_command(rt.db, request, clinic.clinic_id, command)
    return body


@router.post(f"/{PATIENT_VIEW}", summary="patient-view: TRD status, stages, strategies, urgency, referral")
async def patient_view(
    body: HookRequest, request: Request, clinic: Clinic = Depends(current_clinic)
) -> dict[str, Any]:
    if body.hook != "patient-view":
        raise InvalidField("this service answers the patient-view hook", field="hook")
    return await _answer(request, clinic, body, PATIENT_VIEW)


@router.post(f"/{ORDER_SELECT}", summary="order-select: checks on draft MedicationRequests")
async def order_select(
    body: HookRequest, request: Request, clinic: Clinic = Depends(current_clinic)
) -> dict[str, Any]:
    if body.hook != "order-select":
        raise InvalidField("this service answers the order-select hook", field="hook")
    return await _answer(request, clinic, body, ORDER_SELECT)


@router.post("/{service_id}/feedback", summary="Feedback: cards accepted or overridden")
async def feedback(
    service_id: str, body: FeedbackIn, request: Request, clinic: Clinic = Depends(current_clinic)
) -> dict[str, Any]:
    if service_id not in (PATIENT_VIEW, ORDER_SELECT):
        raise NotFound("no such CDS service", field="service_id")
    rt = runtime_of(request)

    async def command(session):
        patients: list[str] = []
        recorded = 0
        for i, item in enumerate(body.feedback):
            stream = await rt.store.read_stream(session, card_stream(item.card))
            issued = CdsCardIssued.model_validate(stream[0].data) if stream else None
            if issued is None or issued.clinic_id != clinic.clinic_id or issued.service_id != service_id:
                raise NotFound("no such card from this service for this clinic", field=f"feedback[{i}].card")
            reason = (item.overrideReason.reason or {}) if item.overrideReason else {}
            event = CdsCardFeedbackRecorded(
                patient_id=issued.patient_id,
                card_id=item.card,
                service_id=service_id,
                outcome=item.outcome,
                accepted_suggestions=[str(s.get("id", ""))[:100] for s in item.acceptedSuggestions],
                override_reason_system=str(reason["system"])[:200] if reason.get("system") else None,
                override_reason_code=str(reason["code"])[:100] if reason.get("code") else None,
                user_comment_given=bool(item.overrideReason and item.overrideReason.userComment),
                outcome_timestamp=item.outcomeTimestamp,
            )
            patients.append(issued.patient_id)
            if any(e.data == event.to_data() for e in stream[1:]):
                continue  # the same feedback again: recorded once
            await rt.store.append(
                session,
                card_stream(item.card),
                stream[-1].version,
                [
                    NewEvent(
                        type=event.event_type,
                        subject=issued.patient_id,
                        data=event.to_data(),
                        meta={"clinicid": clinic.clinic_id},
                    )
                ],
                publish=False,
            )
            recorded += 1
        request.state.audit_patient_ids = patients
        return 200, {"recorded": recorded}

    _, out = await run_command(rt.db, request, clinic.clinic_id, command)
    return out
