"""the automation run log

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rb_automation_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("automation", sa.String(length=63), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("fire_key", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["rb_table.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_id", "automation", "record_id", "fire_key", name="uq_rb_automation_run_fire"),
    )
    with op.batch_alter_table("rb_automation_run") as batch:
        batch.create_index("ix_rb_automation_run_at", ["app_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rb_automation_run") as batch:
        batch.drop_index("ix_rb_automation_run_at")
    op.drop_table("rb_automation_run")
