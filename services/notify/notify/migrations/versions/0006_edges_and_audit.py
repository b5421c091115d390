"""Issue 12, hardened edges: the access audit (append-only), key events this service could
not apply, outbox rows set aside, and the index that purges expired Idempotency-Keys.

Revision ID: 0006
"""

from care_shared.migrations import create_edge_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_edge_tables()


def downgrade() -> None:
    raise NotImplementedError("the event store is append-only: restore from backup instead")
