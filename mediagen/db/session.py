"""Engine and session setup.

SQLite gets WAL, foreign keys, a busy timeout and *one writer at a time*: write transactions
open with `BEGIN IMMEDIATE` (so a reader never has to upgrade its lock mid-transaction, the case
busy_timeout cannot rescue) and, inside one process, queue on a lock instead of spinning on the
file lock. That is what keeps "database is locked" from ever reaching a caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 60_000


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=16,
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so our BEGIN below is the only one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engines; hands out read sessions and serialised write transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.read_engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.read_engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self.write_engine = self.read_engine
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self._write_lock = threading.RLock() if self.is_sqlite else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; never use it to write."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        if self._write_lock is not None:
            with self._write_lock, self._write() as session, session.begin():
                yield session
        else:
            with self._write() as session, session.begin():
                yield session

    def reclaim_space(self, max_pages: int = 2000) -> int:
        """Give freed SQLite pages back to the filesystem, a bounded batch at a time (so a big
        delete does not stall writers); returns the pages released. PostgreSQL's autovacuum
        already does this."""
        if not self.is_sqlite:
            return 0
        with self.write() as s:
            if s.execute(text("PRAGMA auto_vacuum")).scalar() != 2:  # 2 = INCREMENTAL
                return 0
            before = int(s.execute(text("PRAGMA freelist_count")).scalar() or 0)
            # Stepped to the end through the driver: each row it yields is one page released.
            cursor = s.connection().connection.cursor()
            cursor.execute(f"PRAGMA incremental_vacuum({int(max_pages)})")
            cursor.fetchall()
            cursor.close()
            after = int(s.execute(text("PRAGMA freelist_count")).scalar() or 0)
        return before - after

    def compact(self) -> None:
        """Rewrite the whole SQLite file without free pages, and switch an older file to
        incremental vacuuming (`mediagen db vacuum`; needs room for a copy, best while idle)."""
        if not self.is_sqlite:
            return
        lock = self._write_lock or threading.RLock()
        with lock:
            raw = self.write_engine.raw_connection()  # VACUUM cannot run inside a transaction
            try:
                cur = raw.cursor()
                cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cur.execute("VACUUM")
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file itself shrinks now
                cur.close()
            finally:
                raw.close()

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()
