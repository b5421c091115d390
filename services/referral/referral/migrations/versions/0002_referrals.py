"""Directory, referral queue, one-referral-per-need key, coordinators (issue 4).

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
        "directory_clinics",
        sa.Column("clinic_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("region", sa.String(60), nullable=False, index=True),
        sa.Column("capabilities", sa.JSON, nullable=False),
        sa.Column("weekly_capacity", sa.Integer, nullable=False),
        sa.Column("partner_clinic_id", sa.String(36), nullable=True, index=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "referral_needs",
        sa.Column("patient_id", sa.String(36), nullable=False),
        sa.Column("need", sa.String(200), nullable=False),
        sa.Column("referral_id", sa.String(36), nullable=False, unique=True),
        sa.UniqueConstraint("patient_id", "need", name="uq_referral_needs_patient_need"),
    )
    op.create_table(
        "referral_tasks",
        sa.Column("referral_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(36), nullable=False, index=True),
        sa.Column("owner_clinic_id", sa.String(36), nullable=True, index=True),
        sa.Column("need", sa.String(200), nullable=False),
        sa.Column("urgency", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("clinic_id", sa.String(36), nullable=True, index=True),
        sa.Column("partner_clinic_id", sa.String(36), nullable=True, index=True),
        sa.Column("region", sa.String(60), nullable=True, index=True),
        sa.Column("claimed_by", sa.String(36), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("view", sa.JSON, nullable=False),
    )
    op.create_table(
        "coordinators",
        sa.Column("coordinator_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
