"""Reminders: facts from other services, contact and consent, the reminders read model and
due-time queue, and delivery attempts.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_patients",
        sa.Column("patient_id", sa.String(36), primary_key=True),
        sa.Column("birth_year", sa.Integer, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("urgency_as_of", sa.String(36), nullable=True),
        sa.Column("suicidality_flagged", sa.Boolean, nullable=False),
    )
    op.create_table(
        "notify_trials",
        sa.Column("trial_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(36), nullable=False, index=True),
        sa.Column("started_on", sa.Date, nullable=True),
        sa.Column("completed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "notify_referrals",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(36), nullable=False, index=True),
        sa.Column("appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("last_event", sa.JSON, nullable=True),
    )
    op.create_table(
        "notify_contacts",
        sa.Column("patient_id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("reminders", sa.Boolean, nullable=False),
        sa.Column("adherence", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notify_reminders",
        sa.Column("reminder_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deliver_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trial_id", sa.String(36), nullable=True),
        sa.Column("referral_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.String(8), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(120), nullable=True),
        sa.Column("crisis_resources", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("last_error", sa.String(120), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "notify_delivery_attempts",
        sa.Column("reminder_id", sa.String(36), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(80), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
