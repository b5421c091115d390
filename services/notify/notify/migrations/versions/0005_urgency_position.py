"""Urgency ordered by pathway's stream position (issue "Trust boundaries on the bus"): an id
is only a name, so "newer" is the assessment-changed's version in pathway's stream.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: urgency recorded before positions were kept; the next assessment-changed decides.
    op.add_column("notify_patients", sa.Column("urgency_position", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("notify_patients", "urgency_position")
