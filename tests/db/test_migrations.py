"""The Alembic migrations build exactly the schema the table models describe, on both backends.

Each test upgrades an empty database to head with the real migration scripts (`mediagen.db.migrate`,
what `mediagen db upgrade` and server start-up run), then asks Alembic's autogenerate to compare it
with the models' metadata: any difference is a model change that needs a new migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from mediagen.db.migrate import SEARCH_OBJECTS, alembic_config, current, include_object, upgrade
from mediagen.tables import Base

EXPECTED_TABLES = {
    "added_models",
    "api_keys",
    "asset_tags",
    "blob_chunks",
    "blobs",
    "briefs",
    "campaigns",
    "clients",
    "comments",
    "derivations",
    "duties",
    "events",
    "export_items",
    "exports",
    "generations",
    "plans",
    "rate_hits",
    "review_events",
    "sessions",
    "shares",
    "sources",
    "sign_in_throttle",
    "users",
    "webhook_deliveries",
    "workers",
}


def schema_diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "compare_server_default": True, "include_object": include_object},
            )
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def head(url: str) -> str:
    rev = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert rev is not None
    return rev


def upgraded_without_drift(url: str) -> None:
    upgrade(url)
    assert current(url) == head(url)
    engine = create_engine(url)
    try:
        tables = {t for t in inspect(engine).get_table_names() if not t.startswith(SEARCH_OBJECTS)}
    finally:
        engine.dispose()
    assert tables == EXPECTED_TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == EXPECTED_TABLES
    diff = schema_diff(url)
    assert diff == [], "the migrations and the table models differ; add a migration:\n" + "\n".join(
        map(repr, diff)
    )


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    upgraded_without_drift(f"sqlite:///{tmp_path / 'mediagen.db'}")


@pytest.mark.postgres
def test_postgres_migrations_match_the_models(pg_url: str) -> None:
    # `pg_url` (tests/conftest.py) is a fresh uniquely-named database, dropped afterwards; the test
    # is skipped, saying so, when no server answers on 127.0.0.1:5432.
    upgraded_without_drift(pg_url)


def test_the_comparison_sees_drift(tmp_path: Path) -> None:
    """Guards the two tests above against passing vacuously."""
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_generations_status_poll")
            conn.exec_driver_sql("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
    finally:
        engine.dispose()
    diff = schema_diff(url)
    assert [d[0] for d in diff] == ["add_index", "remove_column"]
    assert diff[0][1].name == "ix_generations_status_poll"
    assert (diff[1][2], diff[1][3].name) == ("users", "nickname")


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    assert current(url) is None
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgraded_without_drift(url)


def test_upgrading_an_existing_database_keeps_its_rows_and_stops_reusing_ids(tmp_path: Path) -> None:
    """0003 rebuilds `generations` on SQLite (AUTOINCREMENT): the rows that reference it survive,
    old idempotency keys keep their user scope, and a deleted id is never handed out again."""
    import sqlite3

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0002")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(
            "INSERT INTO generations (id, kind, prompt, model_id, engine, parameters, status, metadata,"
            " download_attempted, download_retries, cost_usd, attempts, created_at, updated_at,"
            " owner_key, idempotency_key) VALUES (7, 'audio', 'p', 'synth/music', 'synth', '{}',"
            " 'completed', '{}', 0, 0, 0, 0, '2026-01-01', '2026-01-01', 'u1', 'k1')"
        )
        db.execute(
            "INSERT INTO derivations (generation_id, name, blob_key, content_type, size_bytes, created_at)"
            " VALUES (7, 'waveform', 'x', 'application/json', 1, '2026-01-01')"
        )
    upgrade(url)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        assert db.execute("SELECT count(*) FROM derivations").fetchone() == (1,)
        assert db.execute("SELECT idempotency_scope FROM generations").fetchone() == ("u1",)
        db.execute("DELETE FROM generations WHERE id = 7")
        db.execute(
            "INSERT INTO generations (kind, prompt, model_id, engine, parameters, status, metadata,"
            " download_attempted, download_retries, cost_usd, attempts, created_at, updated_at)"
            " VALUES ('audio', 'q', 'synth/music', 'synth', '{}', 'pending', '{}', 0, 0, 0, 0,"
            " '2026-01-02', '2026-01-02')"
        )
        assert db.execute("SELECT id FROM generations").fetchone() == (8,)


@pytest.mark.postgres
def test_processes_starting_together_upgrade_once(pg_url: str) -> None:
    """A deployment starts several API and worker processes at once and each upgrades; without
    the advisory lock in env.py all but one failed on duplicate tables."""
    import subprocess
    import sys

    script = f"from mediagen.db.migrate import upgrade; upgrade({pg_url!r})"
    children = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    failures = [err for child in children if (err := child.communicate(timeout=120)[1]) and child.returncode]
    assert failures == []
    assert current(pg_url) == head(pg_url)
