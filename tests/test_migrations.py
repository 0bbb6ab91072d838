"""Alembic's migrations build exactly the system tables the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from recordbase.models import Base


def test_the_migrated_database_matches_the_models(rb):
    with rb.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_init_db_is_idempotent(rb):
    rb.init_db()
    with rb.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0008"
