"""`mediagen storage migrate`: every blob reaches the target verified, runs resume, the source
is never touched, and a damaged source blob is reported rather than copied."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from mediagen.cli import app
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.db.session import Database
from mediagen.maintenance.storage_move import move_storage
from mediagen.storage import make_store
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.index import IndexedBlobStore
from tests.utils.s3 import CREDENTIALS, S3Server, s3_server

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3() -> object:
    pytest.importorskip("moto")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        with s3_server() as server:
            yield server


def settings_for(tmp_path: Path, backend: str, server: S3Server | None = None) -> Settings:
    extra = {}
    if server is not None:
        extra = {
            "s3_bucket": "moved",
            "s3_prefix": f"{secrets.token_hex(3)}/",
            "s3_endpoint_url": server.endpoint_url,
        }
    return Settings(data_dir=tmp_path, storage_backend=backend, storage_chunk_size=64 * 1024, **extra)  # type: ignore[arg-type]


def fill(settings: Settings) -> dict[str, bytes]:
    """A few blobs of awkward sizes (empty, sub-chunk, several chunks), one of them referenced."""
    upgrade(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    store = make_store(settings, database)
    blobs = {}
    for size in (0, 1, 64 * 1024 + 3, 3 * MiB + 17):
        data = os.urandom(size)
        blobs[store.put(data).key] = data
    with database.write() as session:
        store.attach(session, next(iter(blobs)))
    database.dispose()
    return blobs


def read_back(settings: Settings, keys: dict[str, bytes]) -> None:
    database = Database(settings.resolved_database_url)
    store = make_store(settings, database)
    try:
        for key, data in keys.items():
            assert b"".join(store.open_range(key, 0, max(0, len(data) - 1))) == data
    finally:
        database.dispose()


def test_db_to_fs_to_s3_and_back_to_db(tmp_path: Path, s3: S3Server) -> None:
    db_settings = settings_for(tmp_path, "db")
    blobs = fill(db_settings)
    first = move_storage(db_settings, "fs")
    assert (first.copied, first.skipped, first.failed) == (len(blobs), 0, [])
    assert first.bytes_copied == sum(map(len, blobs.values()))
    read_back(settings_for(tmp_path, "fs"), blobs)

    fs_settings = settings_for(tmp_path, "fs", s3)
    moved = move_storage(fs_settings, "s3")
    assert moved.ok and moved.copied == len(blobs)
    s3_settings = fs_settings.model_copy(update={"storage_backend": "s3"})
    read_back(s3_settings, blobs)

    # Back into the database: drop the original chunks first, as if it had been pruned.
    database = Database(db_settings.resolved_database_url)
    with database.write() as session:
        session.execute(text("DELETE FROM blob_chunks"))
    database.dispose()
    back = move_storage(s3_settings, "db")
    assert back.ok and back.copied == len(blobs) - 1  # the empty blob has no chunks to miss
    read_back(db_settings, blobs)


def test_a_second_run_copies_only_what_is_missing_or_partial(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "db")
    blobs = fill(settings)
    assert move_storage(settings, "fs").copied == len(blobs)
    fs = FsBlobStore(Database(settings.resolved_database_url), tmp_path / "blobs")
    big = max(blobs, key=lambda k: len(blobs[k]))
    fs.path_for(big).write_bytes(blobs[big][:1000])  # as if killed half-way through a copy
    again = move_storage(settings, "fs")
    assert (again.copied, again.skipped) == (1, len(blobs) - 1)
    read_back(settings_for(tmp_path, "fs"), blobs)


def test_a_damaged_source_blob_is_reported_and_not_copied(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "fs")
    blobs = fill(settings)
    fs = FsBlobStore(Database(settings.resolved_database_url), tmp_path / "blobs")
    big = max(blobs, key=lambda k: len(blobs[k]))
    damaged = bytearray(fs.path_for(big).read_bytes())
    damaged[5] ^= 0xFF
    fs.path_for(big).write_bytes(bytes(damaged))
    report = move_storage(settings, "db")
    assert not report.ok and [key for key, _ in report.failed] == [big]
    assert "hash" in report.failed[0][1]
    target = make_store(settings_for(tmp_path, "db"), Database(settings.resolved_database_url))
    assert isinstance(target, IndexedBlobStore)
    assert not target.has_bytes(big, len(blobs[big]))
    assert hashlib.sha256(fs.path_for(big).read_bytes()).hexdigest() != big  # source left as it was


def test_the_cli_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = fill(settings_for(tmp_path, "db"))
    monkeypatch.setenv("MEDIAGEN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEDIAGEN_STORAGE_BACKEND", "db")
    result = CliRunner().invoke(app, ["storage", "migrate", "--to", "fs"])
    assert result.exit_code == 0, result.output
    assert f"{len(blobs)} blobs copied" in result.output and "MEDIAGEN_STORAGE_BACKEND=fs" in result.output
    same = CliRunner().invoke(app, ["storage", "migrate", "--to", "db"])
    assert same.exit_code == 1 and "already 'db'" in same.output
