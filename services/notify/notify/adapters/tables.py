"""notify's own tables: the facts it keeps from other services' events, contact and consent,
and the reminders read model, which is also the due-time queue the delivery loop works from.

Why a database due-time queue and not JetStream message schedules (NATS_NOTES.md, ADR-51):
a reminder's time changes (moves, cancellations, quiet hours, consent) and each change must
commit together with the reminder's events; in the database that is one transaction, and
"what is due" is one indexed query that survives restarts of notify and of NATS alike. A
schedule in NATS would be a second store to keep in step without a shared transaction (one
subject per reminder, replaced or purged on every move or cancel), and still needs a
sent-record here for exactly-once delivery. NATS stays the event backbone; the clock lives
in the database.
"""

from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Integer, MetaData, String, Table, Text, false

metadata = MetaData()

patient_facts = Table(
    "notify_patients",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("birth_year", Integer, nullable=True),
    Column("timezone", String(64), nullable=True),
    # ISO 3166-1 alpha-2 from patient-registered v2, for the crisis resources' row (CLINICAL.md
    # 8); NULL: not given (v1, or the clinic left it out): the time zone's country decides.
    Column("country", String(2), nullable=True),
    Column("urgency", String(16), nullable=False),
    # The intake event the urgency reflects, and the assessment-changed's position in
    # pathway's stream for the patient: a late, older one never overwrites a newer one.
    Column("urgency_as_of", String(36), nullable=True),
    Column("urgency_position", Integer, nullable=True),
    Column("suicidality_flagged", Boolean, nullable=False),
    # The latest rise of urgency to urgent or emergency (the assessment that raised it, and
    # notify's time then), for the one crisis-resources message per rise. NULL while routine.
    Column("crisis_since", String(36), nullable=True),
    Column("crisis_raised_at", DateTime(timezone=True), nullable=True),
)

trial_facts = Table(
    "notify_trials",
    metadata,
    Column("trial_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("started_on", Date, nullable=True),
    Column("completed", Boolean, nullable=False),
    # The trial's kind (adherence reminders are for medication trials); NULL until its start
    # is seen.
    Column("kind", String(16), nullable=True),
)

referral_facts = Table(
    "notify_referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("appointment_at", DateTime(timezone=True), nullable=True),
    Column("cancelled", Boolean, nullable=False),
    Column("completed", Boolean, nullable=False, server_default=false()),
    # (sequence, time) of the referral event last applied: a later scheduled moves the
    # appointment, an older one arriving late changes nothing.
    Column("last_event", JSON, nullable=True),
)

contacts = Table(
    "notify_contacts",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("phone", String(20), nullable=True),
    Column("channel", String(8), nullable=False),
    Column("reminders", Boolean, nullable=False),
    Column("adherence", String(8), nullable=False),
    # Daily mood-journal prompts (opt-in), and since when: the first prompt is the first one
    # due after the patient opted in, never one for a time already past.
    Column("journal_prompts", Boolean, nullable=False, server_default=false()),
    Column("journal_since", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reminders = Table(
    "notify_reminders",
    metadata,
    Column("reminder_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("kind", String(24), nullable=False),
    Column("status", String(12), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("deliver_at", DateTime(timezone=True), nullable=False),
    Column("trial_id", String(36), nullable=True),
    Column("referral_id", String(36), nullable=True),
    Column("channel", String(8), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("failed_at", DateTime(timezone=True), nullable=True),
    Column("reason", String(120), nullable=True),
    Column("crisis_resources", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    # The delivery queue: tries so far, when the next may run, and a lease so that one
    # replica works a reminder at a time (wall-clock seconds: it is about processes, not
    # about the patient's time).
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("last_error", String(120), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
)

# One row per try, written and committed before the message leaves: after a crash, a try
# without an outcome means "may have gone", and the retry reuses its idempotency key.
delivery_attempts = Table(
    "notify_delivery_attempts",
    metadata,
    Column("reminder_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("idempotency_key", String(80), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=True),  # sent | error | None (in doubt)
    Column("error", Text, nullable=True),
    # The crisis resources' row this try's message carried (`US`, ..., `default`) and its rule
    # set; NULL: the message carried none (CLINICAL.md 8: each message names the row used).
    Column("crisis_resources_row", String(16), nullable=True),
    Column("crisis_resources_version", String(32), nullable=True),
)
