"""Alembic environment: migrates the system tables on the connection the engine hands over."""

from alembic import context

from recordbase.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through Recordbase.init_db(), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        user_module_prefix="recordbase.database.",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
