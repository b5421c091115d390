"""Each patient's facts and current assessment.

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
        "patient_assessments",
        sa.Column("patient_id", sa.String(36), primary_key=True),
        sa.Column("clinic_id", sa.String(36), nullable=True),
        sa.Column("applied_through", sa.Integer, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("pending", sa.JSON, nullable=False),
        sa.Column("assessment", sa.JSON, nullable=True),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("patient_assessments")
