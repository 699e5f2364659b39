"""Alembic environment: our metadata, the URL from the config object (never from alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from mediagen.db.migrate import include_object
from mediagen.tables import Base

config = context.config
MIGRATION_LOCK = 0x6D656469  # "medi": any constant every process agrees on
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A new file gives deleted pages back to the disk a little at a time (the heartbeat's
            # `Database.reclaim_space`); set before the first table, it is a no-op afterwards.
            connection.exec_driver_sql("PRAGMA auto_vacuum=INCREMENTAL")
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            # Batch migrations rebuild tables (copy, drop, rename): with foreign keys on, the drop
            # would cascade into the rows that reference the table.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # else alembic joins this implicit transaction and never commits
        elif connection.dialect.name == "postgresql":
            # Several processes of one deployment start at once (2 APIs, 2 workers) and each
            # upgrades: a session-level advisory lock lets one migrate while the others wait,
            # then find nothing left to do.
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
