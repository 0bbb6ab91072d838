"""webhooks and their delivery log

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rb_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("allow_private", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["rb_table.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["rb_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_webhook") as batch:
        batch.create_index("ix_rb_webhook_table", ["table_id", "active"], unique=False)
    op.create_table(
        "rb_webhook_delivery",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["rb_webhook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_webhook_delivery") as batch:
        batch.create_index("ix_rb_webhook_delivery_due", ["status", "next_attempt_at"], unique=False)
        batch.create_index("ix_rb_webhook_delivery_webhook", ["webhook_id", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rb_webhook_delivery") as batch:
        batch.drop_index("ix_rb_webhook_delivery_webhook")
        batch.drop_index("ix_rb_webhook_delivery_due")
    op.drop_table("rb_webhook_delivery")
    with op.batch_alter_table("rb_webhook") as batch:
        batch.drop_index("ix_rb_webhook_table")
    op.drop_table("rb_webhook")
