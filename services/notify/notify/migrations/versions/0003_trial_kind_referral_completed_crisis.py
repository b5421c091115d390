"""Adherence reminders for medication trials only (the trial's kind), appointment reminders
ended by a completed referral, and the crisis-resources message once per rise of urgency.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL kind: a trial started before this revision, not known to be a medication trial:
    # it plans no adherence reminder.
    op.add_column("notify_trials", sa.Column("kind", sa.String(16), nullable=True))
    op.add_column(
        "notify_referrals", sa.Column("completed", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("notify_patients", sa.Column("crisis_since", sa.String(36), nullable=True))
    op.add_column("notify_patients", sa.Column("crisis_raised_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
