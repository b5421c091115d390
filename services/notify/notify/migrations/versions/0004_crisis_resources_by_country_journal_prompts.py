"""Crisis resources by country (trd-rules 2026.12, CLINICAL.md 8): the patient's country, and
the row each delivery try carried; daily mood-journal prompts as an opt-in of their own.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL country: registered before v2 (or none given): the time zone's country decides.
    op.add_column("notify_patients", sa.Column("country", sa.String(2), nullable=True))
    op.add_column(
        "notify_contacts",
        sa.Column("journal_prompts", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("notify_contacts", sa.Column("journal_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("notify_delivery_attempts", sa.Column("crisis_resources_row", sa.String(16), nullable=True))
    op.add_column(
        "notify_delivery_attempts", sa.Column("crisis_resources_version", sa.String(32), nullable=True)
    )


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
