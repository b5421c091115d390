"""Alembic, applied on start-up. Each service has its own migration scripts; the tables of
the shared machinery (events, outbox, inbox, idempotency keys, clinic access) are created by
`create_core_tables()`, called from each service's first revision."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from care_shared.db import Database

_Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def create_core_tables() -> None:
    """Core schema, version 1. Change it only by adding a new function for a new revision."""
    op.create_table(
        "events",
        sa.Column("position", _Position, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("stream_id", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(160), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    )
    op.create_index("ix_events_type", "events", ["type"])
    op.create_table(
        "outbox",
        sa.Column("position", _Position, sa.ForeignKey("events.position"), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(120), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(120), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "clinic_keys",
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("clinic_id", sa.String(36), nullable=False, index=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "patient_clinics",
        sa.Column("patient_id", sa.String(36), primary_key=True),
        sa.Column("clinic_id", sa.String(36), nullable=False, index=True),
    )


def create_edge_tables() -> None:
    """Core schema, version 2 (issue 12): the access audit (append-only), key events a
    service could not apply, outbox rows set aside as unpublishable, and an index to purge
    expired Idempotency-Keys by age."""
    from care_shared.audit import create_audit_table

    create_audit_table()
    op.create_table(
        "access_event_failures",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("consumer", sa.String(120), nullable=False),
        sa.Column("type", sa.String(160), nullable=False),
        sa.Column("clinic_id", sa.String(36), nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("set_aside_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def run_env() -> None:
    """The body of every service's alembic env.py: migrate on the connection we are given."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _config(script_location: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


def head_revision(script_location: Path) -> str | None:
    return ScriptDirectory.from_config(_config(script_location)).get_current_head()


async def migrate(db: Database, script_location: Path) -> None:
    def upgrade(sync_conn) -> None:
        cfg = _config(script_location)
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            # Replicas starting together: one migrates, the others wait and find it done.
            # This wait is the one that may be long (a replica migrating): not lock_timeout's.
            await conn.execute(text("SET LOCAL lock_timeout = 0"))
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('care-migrations'))"))
        await conn.run_sync(upgrade)


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
