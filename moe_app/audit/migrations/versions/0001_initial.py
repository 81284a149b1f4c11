"""Audit events chain and clinician feedback, with append-only triggers.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = ("audit_events", "audit_feedback")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("action", sa.String(64), nullable=False, index=True),
        sa.Column("type_code", sa.String(16), nullable=False),
        sa.Column("subtype_code", sa.String(16)),
        sa.Column("action_code", sa.String(1), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False, index=True),
        sa.Column("actor_role", sa.String(64), nullable=False),
        sa.Column("client_address", sa.String(128)),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("outcome_description", sa.Text, nullable=False),
        sa.Column("case_pseudonym", sa.String(128), index=True),
        sa.Column("model_version", sa.String(64)),
        sa.Column("model_weights_sha256", sa.String(64)),
        sa.Column("runtime", sa.String(64)),
        sa.Column("source_site", sa.String(128), nullable=False),
        sa.Column("app_version", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "audit_feedback",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "prediction_event_id",
            BigId,
            sa.ForeignKey("audit_events.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "feedback_event_id",
            BigId,
            sa.ForeignKey("audit_events.id", ondelete="RESTRICT"),
            nullable=False,
            unique=True,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("agree", sa.Boolean, nullable=False),
        sa.Column("corrected_label", sa.String(64)),
        sa.Column("comment", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table in TABLES:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
            )


def _postgres_triggers() -> None:
    op.execute(
        "CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
    op.drop_table("audit_feedback")
    op.drop_table("audit_events")
