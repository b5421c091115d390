"""Initial schema: the shared event-store tables and intake's patient index.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from care_shared.migrations import create_core_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_core_tables()
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(36), primary_key=True),
        sa.Column("clinic_id", sa.String(36), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("clinic_id", "external_id", name="uq_patients_clinic_external"),
    )


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
