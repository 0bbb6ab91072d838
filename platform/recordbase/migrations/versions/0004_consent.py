"""consent ledger

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rb_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("given_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("given_by", sa.String(length=200), nullable=False),
        sa.Column("withdrawn_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_consent") as batch:
        batch.create_index("ix_rb_consent_record", ["table_id", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rb_consent") as batch:
        batch.drop_index("ix_rb_consent_record")
    op.drop_table("rb_consent")
