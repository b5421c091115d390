"""pathway's read model: each patient's facts and current assessment, updated in the same
transaction as the inbox row of the event that changed them."""

import sqlalchemy as sa

metadata = sa.MetaData()

patient_assessments = sa.Table(
    "patient_assessments",
    metadata,
    sa.Column("patient_id", sa.String(36), primary_key=True),
    sa.Column("clinic_id", sa.String(36), nullable=True),
    # Events are applied in stream order; ones that arrive early wait in `pending`.
    sa.Column("applied_through", sa.Integer, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("pending", sa.JSON, nullable=False),
    sa.Column("assessment", sa.JSON, nullable=True),
    sa.Column("row_version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
