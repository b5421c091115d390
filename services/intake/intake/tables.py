"""intake's own read model, written in the same transaction as the events it reflects."""

from sqlalchemy import Column, DateTime, MetaData, String, Table, UniqueConstraint

metadata = MetaData()

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("clinic_id", String(36), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("clinic_id", "external_id", name="uq_patients_clinic_external"),
)
