"""Both blob backends on SQLite and PostgreSQL: round trips, dedup, refcounts, gc, crashes, ranges."""

from __future__ import annotations

import hashlib
import io
import os
import random
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from mediagen.config import Settings
from mediagen.db.base import Base
from mediagen.db.session import Database
from mediagen.storage import make_store
from mediagen.storage.base import (
    BlobInUseError,
    BlobNotFoundError,
    iter_chunks,
)
from mediagen.storage.db import DbBlobStore, StagingLostError
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.index import IndexedBlobStore
from mediagen.storage.s3 import S3BlobStore, make_s3_client
from mediagen.storage.tables import Blob, BlobChunk
from tests.utils.s3 import S3Server

MiB = 1024 * 1024
PG_ADMIN_URL = os.environ.get("MEDIAGEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = [Blob.__table__, BlobChunk.__table__]


def pattern(size: int, seed: int = 0, piece: int = MiB + 7) -> Iterator[bytes]:
    """Deterministic bytes, fast, never all in memory; pieces deliberately not chunk-aligned."""
    block = random.Random(seed).randbytes(piece)
    index = 0
    sent = 0
    while sent < size:
        data = index.to_bytes(8, "big") + block[8:]
        data = data[: size - sent]
        sent += len(data)
        index += 1
        yield data


def read_all(store: IndexedBlobStore, key: str) -> bytes:
    info = store.stat(key)
    assert info is not None
    return b"".join(store.open_range(key, 0, info.size - 1))


# Databases ---------------------------------------------------------------------------------------


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped after this module."""
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} (set MEDIAGEN_TEST_PG)")
    import psycopg

    name = f"mediagen_test_{secrets.token_hex(5)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'blobs.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    db = Database(url)
    Base.metadata.drop_all(db.write_engine, tables=TABLES)
    Base.metadata.create_all(db.write_engine, tables=TABLES)
    yield db
    db.dispose()


@pytest.fixture(params=["db", "fs", "s3"])
def store(request: pytest.FixtureRequest, database: Database, tmp_path: Path) -> IndexedBlobStore:
    if request.param == "db":
        return DbBlobStore(database)
    if request.param == "s3":
        return s3_store(database, request.getfixturevalue("s3_endpoint"), tmp_path)
    return FsBlobStore(database, tmp_path / "blobs")


def s3_store(database: Database, server: S3Server, tmp_path: Path) -> S3BlobStore:
    """A store on a bucket of its own (created by the store, as in production)."""
    client = make_s3_client(endpoint_url=server.endpoint_url, region="us-east-1")
    return S3BlobStore(database, client, f"t-{secrets.token_hex(6)}", spool_dir=tmp_path / "spool")


@dataclass
class Census:
    """What the store holds, staging included, straight from the tables and the disk."""

    rows: list[str]
    staging_rows: int
    chunks: int
    files: int
    tmp_files: int


def census(store: IndexedBlobStore) -> Census:
    with store.database.read() as session:
        keys = list(session.execute(select(Blob.key)).scalars())
        chunk_count = session.execute(select(func.count()).select_from(BlobChunk)).scalar_one()
    files = tmp_files = 0
    if isinstance(store, S3BlobStore):
        listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
        files = len(listed.get("Contents", []))
        tmp_files = sum(1 for _ in store.spool_dir.glob("*")) if store.spool_dir.exists() else 0
    if isinstance(store, FsBlobStore):
        files = sum(1 for p in store.root.glob("??/??/*") if p.is_file())
        tmp_files = sum(1 for _ in store.tmp_dir.glob("*")) if store.tmp_dir.exists() else 0
    return Census(
        rows=sorted(k for k in keys if not k.startswith("tmp-")),
        staging_rows=sum(1 for k in keys if k.startswith("tmp-")),
        chunks=chunk_count,
        files=files,
        tmp_files=tmp_files,
    )


# Round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB - 1, MiB, MiB + 1, 5 * MiB + 12345])
def test_put_then_read_back(store: IndexedBlobStore, size: int) -> None:
    data = b"".join(pattern(size, seed=size))
    info = store.put(pattern(size, seed=size))
    assert info.key == hashlib.sha256(data).hexdigest()
    assert info.size == size
    assert store.stat(info.key) == info
    assert read_all(store, info.key) == data
    assert store.refcount(info.key) == 0
    state = census(store)
    assert state.rows == [info.key] and state.staging_rows == 0 and state.tmp_files == 0
    if isinstance(store, DbBlobStore):
        assert state.chunks == -(-size // MiB)


def test_put_accepts_files_iterables_and_bytes(store: IndexedBlobStore) -> None:
    data = b"".join(pattern(3 * MiB + 5))

    class Trickle(io.RawIOBase):
        """A raw stream that returns short reads, like a socket."""

        def __init__(self, payload: bytes) -> None:
            self._buffer = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, target: Any) -> int:
            chunk = self._buffer.read(min(len(target), 70_001))
            target[: len(chunk)] = chunk
            return len(chunk)

    expected = hashlib.sha256(data).hexdigest()
    assert store.put(io.BytesIO(data)).key == expected
    assert store.put(Trickle(data)).key == expected  # type: ignore[arg-type]
    assert store.put(data).key == expected
    assert store.put([data[:10], b"", data[10 : MiB + 3], data[MiB + 3 :]]).key == expected
    assert read_all(store, expected) == data
    assert census(store).rows == [expected]


def test_iter_chunks_cuts_at_fixed_boundaries() -> None:
    pieces = [b"a" * 3, b"b" * 10, b"", b"c" * 1, b"d" * 8]
    assert [len(c) for c in iter_chunks(pieces, 4)] == [4, 4, 4, 4, 4, 2]
    assert b"".join(iter_chunks(pieces, 4)) == b"".join(pieces)
    assert list(iter_chunks(b"", 4)) == []
    assert [len(c) for c in iter_chunks(io.BytesIO(b"x" * 9), 4)] == [4, 4, 1]


def test_unknown_and_malformed_keys(store: IndexedBlobStore) -> None:
    missing = "0" * 64
    assert store.stat(missing) is None
    assert store.stat("../../etc/passwd") is None
    assert store.stat("A" * 64) is None
    with pytest.raises(BlobNotFoundError):
        list(store.open_range(missing, 0, 0))
    with store.database.write() as session, pytest.raises(BlobNotFoundError):
        store.attach(session, missing)
    assert store.delete_now(missing) is False


# Dedup, refcounts, gc -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 6 * MiB + 1])  # small (direct) and staged uploads
def test_same_bytes_twice_are_stored_once(store: IndexedBlobStore, size: int) -> None:
    first = store.put(pattern(size))
    second = store.put(iter_chunks(pattern(size), 4096))  # same bytes, split differently
    assert first == second
    state = census(store)
    assert state.rows == [first.key]
    assert state.staging_rows == 0 and state.tmp_files == 0
    if isinstance(store, DbBlobStore):
        assert state.chunks == -(-size // MiB)
    else:
        assert state.files == 1


def test_refcounts_move_with_the_callers_transaction_and_gate_gc(store: IndexedBlobStore) -> None:
    key = store.put(pattern(2 * MiB)).key

    with pytest.raises(RuntimeError), store.database.write() as session:
        store.attach(session, key)
        raise RuntimeError("the caller's transaction fails")
    assert store.refcount(key) == 0  # rolled back with it

    with store.database.write() as session:
        store.attach(session, key)
        store.attach(session, key)
    assert store.refcount(key) == 2
    assert store.gc(grace_seconds=0).blobs_deleted == 0

    with store.database.write() as session:
        store.release(session, key)
    assert store.gc(grace_seconds=0).blobs_deleted == 0
    with pytest.raises(BlobInUseError):
        store.delete_now(key)

    with store.database.write() as session:
        store.release(session, key)
        store.release(session, key)  # one too many: logged, never negative
    assert store.refcount(key) == 0
    assert store.gc().blobs_deleted == 0  # just released: inside the grace period
    report = store.gc(grace_seconds=0)
    assert (report.blobs_deleted, report.bytes_freed) == (1, 2 * MiB)
    assert store.stat(key) is None
    state = census(store)
    assert state.rows == [] and state.chunks == 0 and state.files == 0 and state.staging_rows == 0


def test_delete_now(store: IndexedBlobStore) -> None:
    key = store.put(pattern(5 * MiB)).key
    with store.database.write() as session:
        store.attach(session, key)
    with pytest.raises(BlobInUseError):
        store.delete_now(key)
    assert store.delete_now(key, force=True) is True
    assert store.delete_now(key) is False
    state = census(store)
    assert state.rows == [] and state.chunks == 0 and state.files == 0 and state.staging_rows == 0
    # The same content can come back afterwards.
    assert read_all(store, store.put(pattern(5 * MiB)).key) == b"".join(pattern(5 * MiB))


def test_gc_with_zero_grace_spares_uploads_in_flight(store: IndexedBlobStore) -> None:
    started, resume = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def source() -> Iterator[bytes]:
        for index, piece in enumerate(pattern(12 * MiB)):
            if index == 6:
                started.set()
                resume.wait(30)
            yield piece

    def upload() -> None:
        try:
            result["info"] = store.put(source())
        except Exception as exc:  # reported below
            result["error"] = exc

    worker = threading.Thread(target=upload)
    worker.start()
    assert started.wait(30)
    store.gc(grace_seconds=0)
    resume.set()
    worker.join(60)
    assert "error" not in result, result
    assert read_all(store, result["info"].key) == b"".join(pattern(12 * MiB))


def test_an_upload_whose_staging_was_collected_fails_cleanly(database: Database) -> None:
    store = DbBlobStore(database)
    fired = threading.Event()

    def source() -> Iterator[bytes]:
        for index, piece in enumerate(pattern(12 * MiB)):
            if index == 6 and not fired.is_set():
                fired.set()
                store.gc(staging_grace_seconds=-60)  # an operator forcing it
            yield piece

    with pytest.raises(StagingLostError):
        store.put(source())
    state = census(store)
    assert state.rows == [] and state.staging_rows == 0 and state.chunks == 0


CRASHING_PUT = """
import os, signal, sys
from pathlib import Path
from mediagen.db.session import Database
from mediagen.storage.db import DbBlobStore
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.s3 import S3BlobStore, make_s3_client

backend, url, root, endpoint, bucket = sys.argv[1:6]
db = Database(url)
if backend == "s3":
    client = make_s3_client(endpoint_url=endpoint, region="us-east-1")
    store = S3BlobStore(db, client, bucket, spool_dir=Path(root))
else:
    store = DbBlobStore(db) if backend == "db" else FsBlobStore(db, Path(root))

def source():
    for index in range(100):
        if index == 10:
            os.kill(os.getpid(), signal.SIGKILL)  # die mid-upload: no cleanup runs
        yield bytes([index]) * (1024 * 1024)

store.put(source())
"""


def test_gc_removes_what_a_crashed_upload_left(store: IndexedBlobStore, tmp_path: Path) -> None:
    kept = store.put(pattern(2 * MiB)).key
    backend = "db" if isinstance(store, DbBlobStore) else "s3" if isinstance(store, S3BlobStore) else "fs"
    root = str(store.root) if isinstance(store, FsBlobStore) else ""
    endpoint = bucket = ""
    if isinstance(store, S3BlobStore):
        root, bucket = str(store.spool_dir), store.bucket
        endpoint = str(store.client.meta.endpoint_url)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_PUT, backend, store.database.url, root, endpoint, bucket],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr
    left = census(store)
    if backend == "db":
        assert left.staging_rows == 1 and left.chunks > 2
    else:
        assert left.tmp_files == 1

    assert store.gc().staged_dropped == 0  # the heartbeat is fresh: could still be alive
    report = store.gc(staging_grace_seconds=0)
    assert report.staged_dropped == 1
    state = census(store)
    assert state.rows == [kept] and state.staging_rows == 0 and state.tmp_files == 0
    if backend == "db":
        assert state.chunks == 2
    assert read_all(store, kept) == b"".join(pattern(2 * MiB))


def test_fs_gc_removes_orphan_files(database: Database, tmp_path: Path) -> None:
    store = FsBlobStore(database, tmp_path / "blobs")
    key = store.put(b"orphan").key
    with store.database.write() as session:  # as if the row's commit never happened
        session.execute(Blob.__table__.delete().where(Blob.key == key))
    assert store.path_for(key).exists()
    assert store.gc(staging_grace_seconds=0).orphans_removed == 1
    assert not store.path_for(key).exists()


def test_fs_put_heals_a_missing_file(database: Database, tmp_path: Path) -> None:
    store = FsBlobStore(database, tmp_path / "blobs")
    key = store.put(b"precious").key
    store.path_for(key).unlink()
    assert store.put(b"precious").key == key
    assert read_all(store, key) == b"precious"


# Ranges --------------------------------------------------------------------------------------------


def test_ranges_at_chunk_boundaries(store: IndexedBlobStore) -> None:
    size = 3 * MiB + 123
    data = b"".join(pattern(size))
    key = store.put(pattern(size)).key
    cases = [
        (0, 0),
        (0, MiB - 1),
        (MiB - 1, MiB - 1),
        (MiB - 1, MiB),
        (MiB, 2 * MiB - 1),
        (MiB + 1, 3 * MiB + 122),
        (2 * MiB - 5, 3 * MiB + 5),
        (0, size - 1),
        (size - 1, size - 1),
    ]
    for start, end in cases:
        assert b"".join(store.open_range(key, start, end)) == data[start : end + 1], (start, end)
    assert b"".join(store.open_range(key, size - 10, size + 1000)) == data[-10:]  # end is clamped
    assert b"".join(store.open_range(key, 7, 6)) == b""
    with pytest.raises(ValueError):
        list(store.open_range(key, size + 1, size + 2))
    empty = store.put(b"").key
    assert b"".join(store.open_range(empty, 0, 0)) == b""


def test_db_range_reads_only_the_chunks_it_needs(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'q.db'}")
    statements: list[str] = []

    @event.listens_for(database.read_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)  # SQL as run, values expanded

    Base.metadata.create_all(database.write_engine, tables=TABLES)
    store = DbBlobStore(database)
    key = store.put(pattern(10 * MiB)).key

    def chunk_queries() -> list[str]:
        return [sql for sql in statements if "FROM blob_chunks" in sql]

    assert len(b"".join(store.open_range(key, 2 * MiB + 10, 3 * MiB + 10))) == MiB + 1
    assert len(chunk_queries()) == 1 and "BETWEEN 2 AND 3" in chunk_queries()[0]
    statements.clear()
    assert len(b"".join(store.open_range(key, 0, 10 * MiB - 1))) == 10 * MiB
    assert len(chunk_queries()) == 3  # batches of four 1 MiB chunks


def test_db_reads_notice_a_blob_deleted_or_restored_under_the_cache(database: Database) -> None:
    writer = DbBlobStore(database, chunk_size=64 * 1024)
    reader = DbBlobStore(database)  # another process, with its own layout cache
    data = b"".join(pattern(3 * MiB))
    key = writer.put(data).key
    assert b"".join(reader.open_range(key, 0, 3 * MiB - 1)) == data  # layout now cached
    writer.delete_now(key)
    with pytest.raises(BlobNotFoundError):
        list(reader.open_range(key, 0, 10))
    key = reader.put(data).key  # back, with 1 MiB chunks this time
    assert b"".join(reader.open_range(key, 0, 10)) == data[:11]  # cached: 1 MiB chunks
    writer.delete_now(key)
    writer.put(data)  # and again with 64 KiB chunks, behind the reader's cache
    assert b"".join(reader.open_range(key, MiB - 5, 2 * MiB + 5)) == data[MiB - 5 : 2 * MiB + 6]


# Concurrency -----------------------------------------------------------------------------------


def test_concurrent_puts_on_sqlite_never_see_database_is_locked(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'busy.db'}")
    Base.metadata.create_all(database.write_engine, tables=TABLES)
    store = DbBlobStore(database)
    errors: list[BaseException] = []
    keys: dict[int, str] = {}
    sizes = [6 * MiB + 1, 200, 5 * MiB, 3 * MiB + 17, 6 * MiB + 1, 100_000, 9 * MiB, 1]

    def work(index: int) -> None:
        try:
            keys[index] = store.put(pattern(sizes[index], seed=index % 4)).key
            # Deletes and gc passes in the mix (gc with its grace: these blobs are not attached yet).
            store.delete_now(store.put(pattern(2 * MiB + index, seed=100 + index)).key)
            store.gc()
            with database.write() as session:
                store.attach(session, keys[index])
            assert read_all(store, keys[index]) == b"".join(pattern(sizes[index], seed=index % 4))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert census(store).staging_rows == 0


# Factory -----------------------------------------------------------------------------------------


def test_make_store_follows_settings(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'f.db'}")
    assert isinstance(make_store(Settings(data_dir=tmp_path), database), DbBlobStore)
    fs = make_store(Settings(data_dir=tmp_path, storage_backend="fs", storage_chunk_size=65536), database)
    assert isinstance(fs, FsBlobStore)
    assert fs.root == tmp_path / "blobs" and fs.chunk_size == 65536
