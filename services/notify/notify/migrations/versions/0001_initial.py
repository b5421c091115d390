"""Initial schema: the shared event-store tables, clinic access, and the seen-events log.

Revision ID: 0001
"""

from care_shared.migrations import create_core_tables
from care_shared.seen import create_seen_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_core_tables()
    create_seen_table()


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
