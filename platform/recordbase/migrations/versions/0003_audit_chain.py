"""audit chain: each entry's hash, chained to the previous entry's

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from recordbase.audit import GENESIS, entry_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rb_audit") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    # Chain the entries written before this revision, in the order they were written.
    conn = op.get_bind()
    audit = sa.table(
        "rb_audit", *(sa.column(c) for c in ("id", "at", "actor_kind", "actor_id", "actor_name", "action",
                                            "app_id", "table_id", "record_id", "prev_hash", "hash")),
        sa.column("changes", sa.JSON()),
    )
    from recordbase.database import UTCDateTime

    audit.c.at.type = UTCDateTime()
    prev = GENESIS
    for row in conn.execute(sa.select(audit).order_by(audit.c.id)).mappings().all():
        digest = entry_hash(prev, row)
        conn.execute(sa.update(audit).where(audit.c.id == row["id"]).values(prev_hash=prev, hash=digest))
        prev = digest
    with op.batch_alter_table("rb_audit") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_rb_audit_hash", ["hash"])


def downgrade() -> None:
    with op.batch_alter_table("rb_audit") as batch:
        batch.drop_constraint("uq_rb_audit_hash", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
