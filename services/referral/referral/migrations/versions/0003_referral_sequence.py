"""A patient may have a new referral for a need once the last one is closed: referrals per
patient and need are numbered, and the unique key is (patient, need, number).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_needs") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer, nullable=False, server_default="1"))
        batch.drop_constraint("uq_referral_needs_patient_need", type_="unique")
        batch.create_unique_constraint(
            "uq_referral_needs_patient_need_sequence", ["patient_id", "need", "sequence"]
        )


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
