"""personal access tokens

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rb_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("apps", sa.JSON(), nullable=True),
        sa.Column("created_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", recordbase.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["rb_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("rb_token") as batch:
        batch.create_index("ix_rb_token_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rb_token") as batch:
        batch.drop_index("ix_rb_token_user_id")
    op.drop_table("rb_token")
