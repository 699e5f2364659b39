"""SQLite gives deleted space back: new files vacuum incrementally on the heartbeat, and
`mediagen db vacuum` shrinks (and converts) an older one."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from mediagen.db.migrate import upgrade
from mediagen.db.session import Database

MEDIAGEN = Path(sys.executable).parent / "mediagen"


def fill_and_empty(path: Path) -> None:
    """20 MB of blob chunks, then deleted: the pages are free but still in the file."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO blobs (key, size, chunk_size, refcount, created_at, touched_at)"
            " VALUES ('k', 0, 1, 0, '2026-01-01', '2026-01-01')"
        )
        for i in range(20):
            db.execute(
                "INSERT INTO blob_chunks (blob_key, seq, data) VALUES ('k', ?, ?)", (i, os.urandom(2**20))
            )
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM blob_chunks")


def test_a_new_database_gives_freed_pages_back_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    upgrade(f"sqlite:///{path}")
    fill_and_empty(path)
    full = path.stat().st_size
    db = Database(f"sqlite:///{path}")
    try:
        released = 0
        while step := db.reclaim_space(max_pages=1000):
            released += step
    finally:
        db.dispose()
    with sqlite3.connect(path) as done:  # as SQLite's own automatic checkpoint would, later
        done.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert released > 4000  # 20 MB of 4 KiB pages, most of them
    assert path.stat().st_size < full / 4


def test_db_vacuum_shrinks_and_converts_an_older_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "mediagen.db"
    with sqlite3.connect(path) as db:  # an older file: tables made before incremental vacuuming
        db.execute("CREATE TABLE older (a)")
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    fill_and_empty(path)
    full = path.stat().st_size
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGEN_")}
    out = subprocess.run(
        [str(MEDIAGEN), "db", "vacuum"],
        env={**env, "MEDIAGEN_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert path.stat().st_size < full / 4 and "MB ->" in out.stdout
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
