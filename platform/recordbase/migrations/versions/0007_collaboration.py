"""saved views, comments, the inbox and public form links

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import recordbase.database

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, recordbase.database.UTCDateTime(timezone=True), nullable=nullable)


def _big_id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "rb_saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["rb_table.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["rb_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_saved_view") as batch:
        batch.create_index("ix_rb_saved_view_table", ["table_id", "owner_id"], unique=False)
    op.create_table(
        "rb_comment",
        _big_id(),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        _at("created_at"),
        _at("edited_at", nullable=True),
        _at("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["rb_table.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["rb_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_comment") as batch:
        batch.create_index("ix_rb_comment_record", ["table_id", "record_id"], unique=False)
    op.create_table(
        "rb_notification",
        _big_id(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=True),
        sa.Column("table_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("comment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=True),
        _at("created_at"),
        _at("read_at", nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["rb_user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["table_id"], ["rb_table.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["comment_id"], ["rb_comment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rb_notification") as batch:
        batch.create_index("ix_rb_notification_user", ["user_id", "read_at"], unique=False)
    op.create_table(
        "rb_form_share",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=63), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["rb_app.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("rb_form_share")
    with op.batch_alter_table("rb_notification") as batch:
        batch.drop_index("ix_rb_notification_user")
    op.drop_table("rb_notification")
    with op.batch_alter_table("rb_comment") as batch:
        batch.drop_index("ix_rb_comment_record")
    op.drop_table("rb_comment")
    with op.batch_alter_table("rb_saved_view") as batch:
        batch.drop_index("ix_rb_saved_view_table")
    op.drop_table("rb_saved_view")
