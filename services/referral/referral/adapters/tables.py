"""referral's own read models, written in the same transaction as the events they reflect
(so they can be rebuilt from the events and come out the same)."""

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, UniqueConstraint

metadata = MetaData()

# The directory: one row per directory clinic, a projection of its stream.
directory_clinics = Table(
    "directory_clinics",
    metadata,
    Column("clinic_id", String(36), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("region", String(60), nullable=False, index=True),
    Column("capabilities", JSON, nullable=False),
    Column("weekly_capacity", Integer, nullable=False),
    Column("partner_clinic_id", String(36), nullable=True, index=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

# The referrals opened per patient and need, numbered 1, 2...: the next is opened only once
# the last is closed, so at most one is open. Two openings of the same number break the key.
referral_needs = Table(
    "referral_needs",
    metadata,
    Column("patient_id", String(36), nullable=False),
    Column("need", String(200), nullable=False),
    Column("sequence", Integer, nullable=False, server_default="1"),
    Column("referral_id", String(36), nullable=False, unique=True),
    UniqueConstraint("patient_id", "need", "sequence", name="uq_referral_needs_patient_need_sequence"),
)

# The coordinators' queue: one row per referral, the referral's state as last folded.
tasks = Table(
    "referral_tasks",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("owner_clinic_id", String(36), nullable=True, index=True),  # the referring clinic
    Column("need", String(200), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("clinic_id", String(36), nullable=True, index=True),  # the directory clinic routed to
    Column("partner_clinic_id", String(36), nullable=True, index=True),  # its partner key, if any
    Column("region", String(60), nullable=True, index=True),
    Column("claimed_by", String(36), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("waiting_since", DateTime(timezone=True), nullable=True),
    Column("escalated_at", DateTime(timezone=True), nullable=True),
    Column("routed_at", DateTime(timezone=True), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False),
    Column("view", JSON, nullable=False),  # the whole task as the API shows it
)

coordinators = Table(
    "coordinators",
    metadata,
    Column("coordinator_id", String(36), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
