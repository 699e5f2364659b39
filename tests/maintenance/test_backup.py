"""`backup` and `restore`: a round trip taken while generations keep being written, the races the
blob copy must survive, and every refusal."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mediagen.config import Settings
from mediagen.generations.tables import Derivation, Generation
from mediagen.maintenance import (
    BackupUnsupported,
    MaintenanceError,
    RestoreRefused,
    backup,
    doctor,
    read_manifest,
    restore,
)
from mediagen.maintenance.backup import STEP_BLOBS, STEP_SNAPSHOT
from mediagen.maintenance.files import blob_relpath
from mediagen.maintenance.findings import MISSING_MAIN
from mediagen.services import Services
from mediagen.storage.fs import FsBlobStore
from mediagen.vocabulary import Status
from tests.generations.conftest import blob_bytes, make_services, reread
from tests.maintenance.conftest import Deployment


class Writer(threading.Thread):
    """Makes synth assets one after another (the server's workers, in one thread) until stopped."""

    def __init__(self, dep: Deployment) -> None:
        super().__init__(daemon=True)
        self.dep = dep
        self.stop = threading.Event()
        self.completed = 0
        self.progress = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            seed = 0
            while not self.stop.is_set():
                seed += 1
                kind = "image" if seed % 3 == 0 else "audio"
                self.dep.make(kind, seed=seed if seed % 5 else 1)  # every fifth shares a blob
                with self.progress:
                    self.completed += 1
                    self.progress.notify_all()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def wait_for_more(self, n: int, timeout: float = 60) -> None:
        with self.progress:
            target = self.completed + n
            assert self.progress.wait_for(lambda: self.completed >= target or self.error, timeout)
        assert self.error is None, self.error


def restored_services(tmp_path: Path, backend: str) -> Services:
    services, _ = make_services(tmp_path / "restored", storage_backend=backend)
    return services


def completed_rows(services: Services) -> list[Generation]:
    with services.db.read() as s:
        return list(s.scalars(select(Generation).where(Generation.status == Status.COMPLETED)))


def check_every_asset_reads_back(services: Services) -> int:
    """Every completed asset's main file and derivations read back with the right sha256."""
    checked = 0
    with services.db.read() as s:
        derivations = list(s.scalars(select(Derivation)))
    keys = [row.blob_key for row in completed_rows(services)] + [d.blob_key for d in derivations]
    for key in keys:
        assert key is not None
        assert hashlib.sha256(blob_bytes(services, key)).hexdigest() == key
        checked += 1
    return checked


def test_a_backup_taken_while_generations_are_written_restores_whole(
    deployment: Deployment, tmp_path: Path
) -> None:
    writer = Writer(deployment)
    writer.start()
    writer.wait_for_more(4)
    # Let the writer finish more assets between the backup's steps, so new rows and blobs land
    # after the blob copy and after the snapshot (both backends: the db store only has the latter).
    progress: Callable[[str, str], None] = lambda step, _msg: (  # noqa: E731
        writer.wait_for_more(2) if step in (STEP_BLOBS, STEP_SNAPSHOT) else None
    )
    before = writer.completed
    try:
        report = backup(deployment.services.settings, tmp_path / "backup", progress=progress)
        during = writer.completed - before
        writer.wait_for_more(1)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None, writer.error
    assert during >= 2, "the writer kept writing while the backup ran"
    assert report.ok, report.render()

    manifest = read_manifest(tmp_path / "backup")
    assert manifest["format"] == 1 and manifest["storage"]["backend"] == deployment.backend
    snapshot_count = manifest["counts"]["generations_by_status"].get("completed", 0)
    assert before <= snapshot_count < writer.completed  # some rows made after the snapshot are not in it

    settings = Settings(data_dir=tmp_path / "restored", storage_backend=deployment.backend)
    restored = restore(settings, tmp_path / "backup")
    assert restored.ok, restored.render()
    assert restored.verified and restored.blobs_verified == manifest["storage"]["blobs"]

    con = sqlite3.connect(tmp_path / "restored" / "mediagen.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    services = restored_services(tmp_path, deployment.backend)
    try:
        rows = completed_rows(services)
        assert len(rows) == snapshot_count
        live = {row.id: row.blob_key for row in completed_rows(deployment.services)}
        assert all(live[row.id] == row.blob_key for row in rows)  # the same assets, the same bytes
        assert check_every_asset_reads_back(services) >= len(rows)
        assert doctor(services, repair=False).ok
    finally:
        services.close()


def test_blob_files_follow_the_snapshot_not_the_walk(deployment: Deployment, tmp_path: Path) -> None:
    """Files deleted before the snapshot leave the backup; files written after the walk join it; a
    file the snapshot needs that is deleted before it can be copied is reported, and doctor then
    marks its asset failed after a restore."""
    if deployment.backend != "fs":
        pytest.skip("only the fs store copies files")
    services = deployment.services
    gone_early = deployment.make("audio", seed=1)
    stays = deployment.make("image", seed=2)
    made: dict[str, Generation] = {}

    def progress(step: str, _message: str) -> None:
        if step == STEP_BLOBS:  # walked and copied; the snapshot is next
            services.generations.delete(deployment.admin, "audio", gone_early.id)
            made["late"] = deployment.make("audio", seed=3)
            made["vanishing"] = deployment.make("audio", seed=4)
        elif step == STEP_SNAPSHOT:  # in the snapshot, never walked, deleted now
            services.generations.delete(deployment.admin, "audio", made["vanishing"].id)

    report = backup(services.settings, tmp_path / "backup", progress=progress)
    vanished = made["vanishing"].blob_key
    assert vanished is not None and gone_early.blob_key is not None
    assert not report.ok
    assert len(report.problems) == 2  # its main file and its waveform
    [problem] = [p for p in report.problems if vanished in p]
    assert "not in the live store" in problem and "mediagen doctor" in problem
    files = {p.name for p in (tmp_path / "backup" / "blobs").rglob("*") if p.is_file()}
    assert gone_early.blob_key not in files
    assert {stays.blob_key, made["late"].blob_key} <= files

    settings = Settings(data_dir=tmp_path / "restored", storage_backend="fs")
    restored = restore(settings, tmp_path / "backup")
    assert [p for p in restored.problems if vanished in p] == [
        f"blob {vanished}: indexed but not in the backup"
    ]
    copy = restored_services(tmp_path, "fs")
    try:
        assert reread(copy, made["late"].id).status == Status.COMPLETED
        fixed = doctor(copy, repair=True)
        assert [f.subject for f in fixed.of(MISSING_MAIN)] == [
            f"generation {made['vanishing'].id} (audio, completed)"
        ]
        assert reread(copy, made["vanishing"].id).status == Status.FAILED
        assert check_every_asset_reads_back(copy) > 0
        assert doctor(copy, repair=False).ok
    finally:
        copy.close()


def test_restore_refuses_a_data_dir_in_use_unless_forced(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.make("audio")
    backup(deployment.services.settings, tmp_path / "backup")
    monkeypatch.chdir(tmp_path)
    target = Path("other")  # relative, as MEDIAGEN_DATA_DIR=./data is by default
    settings = Settings(data_dir=target, storage_backend=deployment.backend)
    other, _ = make_services(target, storage_backend=deployment.backend)
    other.close()
    (target / "secret_key").write_text("the old one")
    with pytest.raises(RestoreRefused, match="is not empty .*--force"):
        restore(settings, tmp_path / "backup")
    assert (target / "mediagen.db").exists()  # untouched

    report = restore(settings, tmp_path / "backup", force=True)
    assert report.ok, report.render()
    assert report.moved_aside is not None and report.moved_aside.parent == target
    assert {"mediagen.db", "secret_key"} <= {p.name for p in report.moved_aside.iterdir()}
    assert (report.moved_aside / "secret_key").read_text() == "the old one"
    assert (report.moved_aside / "mediagen.db").exists()
    services, _ = make_services(target, storage_backend=deployment.backend)
    try:
        assert len(completed_rows(services)) == 1
        assert check_every_asset_reads_back(services) == 2
    finally:
        services.close()


def test_restore_checks_the_backup_before_touching_anything(deployment: Deployment, tmp_path: Path) -> None:
    deployment.make("image")
    backup(deployment.services.settings, tmp_path / "backup")
    target = Settings(data_dir=tmp_path / "restored", storage_backend=deployment.backend)

    other = "db" if deployment.backend == "fs" else "fs"
    with pytest.raises(RestoreRefused, match=f"MEDIAGEN_STORAGE_BACKEND={deployment.backend}"):
        restore(Settings(data_dir=tmp_path / "restored", storage_backend=other), tmp_path / "backup")

    manifest_path = tmp_path / "backup" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["database"]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(MaintenanceError, match="damaged"):
        restore(target, tmp_path / "backup")
    manifest_path.unlink()
    with pytest.raises(MaintenanceError, match="not a complete mediagen backup"):
        restore(target, tmp_path / "backup")
    assert not (tmp_path / "restored").exists()


def test_a_damaged_blob_file_in_the_backup_is_reported(deployment: Deployment, tmp_path: Path) -> None:
    if deployment.backend != "fs":
        pytest.skip("only the fs store copies files")
    row = deployment.make("audio")
    assert row.blob_key is not None
    backup(deployment.services.settings, tmp_path / "backup")
    damaged = tmp_path / "backup" / "blobs" / blob_relpath(row.blob_key)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")
    report = restore(Settings(data_dir=tmp_path / "restored", storage_backend="fs"), tmp_path / "backup")
    assert not report.ok
    assert any(row.blob_key in p and "damaged in the backup" in p for p in report.problems)


def test_a_damaged_file_in_the_live_store_is_not_backed_up(deployment: Deployment, tmp_path: Path) -> None:
    store = deployment.services.store
    if not isinstance(store, FsBlobStore):
        pytest.skip("only the fs store copies files")
    row = deployment.make("audio")
    assert row.blob_key is not None
    store.path_for(row.blob_key).write_bytes(b"not what it was")
    report = backup(deployment.services.settings, tmp_path / "backup")
    assert not report.ok and "damaged file in the live store" in report.render()
    assert not (tmp_path / "backup" / "blobs" / blob_relpath(row.blob_key)).exists()


def test_postgres_is_refused_with_pg_dump_advice(tmp_path: Path) -> None:
    url = "postgresql+psycopg://mediagen@db.internal/mediagen"
    with pytest.raises(BackupUnsupported, match="pg_dump") as db_store:
        backup(Settings(data_dir=tmp_path, database_url=url), tmp_path / "b1")
    assert "blob directory" not in str(db_store.value)
    with pytest.raises(BackupUnsupported, match="pg_dump") as fs_store:
        backup(Settings(data_dir=tmp_path, database_url=url, storage_backend="fs"), tmp_path / "b2")
    assert f"copy the blob directory {tmp_path / 'blobs'}" in str(fs_store.value)
    with pytest.raises(RestoreRefused, match="pg_restore"):
        _fake_backup(tmp_path / "b3")
        restore(Settings(data_dir=tmp_path, database_url=url), tmp_path / "b3")
    assert not (tmp_path / "b1").exists()


def test_backup_wants_a_new_or_empty_directory(deployment: Deployment, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(MaintenanceError, match="not an empty directory"):
        backup(deployment.services.settings, tmp_path / "full")
    with pytest.raises(MaintenanceError, match="data dir"):
        backup(deployment.services.settings, deployment.services.settings.data_dir / "blobs" / "bk")
    (tmp_path / "empty").mkdir()
    assert backup(deployment.services.settings, tmp_path / "empty").ok


def test_the_backup_report_and_manifest_say_what_was_copied(deployment: Deployment, tmp_path: Path) -> None:
    for kind in ("audio", "image", "video"):
        deployment.make(kind)
    settings = deployment.services.settings
    (settings.data_dir / "secret_key").write_text("s3cret")
    report = backup(settings, tmp_path / "backup")
    manifest = report.manifest
    assert manifest["counts"] == {
        "generations": 3,
        "generations_by_status": {"completed": 3},
        "derivations": 4,
    }
    assert manifest["storage"]["blobs"] == 7
    assert manifest["extras"] == ["secret_key"]
    assert manifest["database"]["alembic_revision"]
    text = report.render()
    assert "generations: 3 (3 completed), derivations: 4" in text
    assert (tmp_path / "backup" / "secret_key").read_text() == "s3cret"
    con = sqlite3.connect(tmp_path / "backup" / "mediagen.db")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        con.close()


def _fake_backup(dest: Path) -> None:
    dest.mkdir()
    (dest / "mediagen.db").write_bytes(b"")
    manifest = {"format": 1, "storage": {"backend": "db"}, "database": {}, "counts": {}}
    (dest / "manifest.json").write_text(json.dumps(manifest))
