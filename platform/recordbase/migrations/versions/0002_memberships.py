"""memberships: users' roles per app

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rb_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=63), nullable=False),
        sa.Column("created_at", recordbase.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["rb_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "app_id", "role"),
    )
    op.create_index("ix_rb_membership_user_id", "rb_membership", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rb_membership_user_id", table_name="rb_membership")
    op.drop_table("rb_membership")
