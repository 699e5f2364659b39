"""`doctor`: each inconsistency made on purpose, reported by a dry run that changes nothing, then
repaired, after which a second run finds nothing."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mediagen.db.base import utcnow
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Derivation
from mediagen.jobs.memory import Dispatched
from mediagen.maintenance import doctor
from mediagen.maintenance.findings import (
    BROKEN_BLOB,
    MISSING_DERIVATION,
    MISSING_MAIN,
    ORPHAN_BLOB,
    ORPHAN_FILE,
    REFCOUNT,
    STUCK_JOB,
)
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.tables import BlobChunk
from mediagen.vocabulary import Status
from tests.generations.conftest import reread, set_row
from tests.maintenance.conftest import Deployment

HOURS_AGO = utcnow() - timedelta(hours=2)


def clean(dep: Deployment) -> None:
    again = doctor(dep.services, repair=False)
    assert again.findings == [], again.render()


def test_a_healthy_deployment_is_all_clear(deployment: Deployment) -> None:
    for kind in ("audio", "image", "video"):
        deployment.make(kind)
    report = doctor(deployment.services, repair=True, deep=True)
    assert report.ok and report.findings == [], report.render()
    assert report.scanned == {"generations": 3, "blobs": 7, "derivations": 4}
    assert "all clear" in report.render()


def test_a_completed_asset_whose_file_is_gone_is_marked_failed(deployment: Deployment) -> None:
    lost = deployment.make("audio", seed=1)
    twin = deployment.make("audio", seed=1)  # same bytes: the same blob, referenced twice
    kept = deployment.make("audio", seed=2)
    assert lost.blob_key == twin.blob_key != kept.blob_key
    assert lost.blob_key is not None
    deployment.lose_bytes(lost.blob_key)

    dry = doctor(deployment.services, repair=False)
    assert not dry.ok
    assert {f.subject for f in dry.of(MISSING_MAIN)} == {
        f"generation {lost.id} (audio, completed)",
        f"generation {twin.id} (audio, completed)",
    }
    assert {f.action for f in dry.of(MISSING_MAIN)} == {"would mark failed"}
    assert [f.subject for f in dry.of(BROKEN_BLOB)] == [f"blob {lost.blob_key}"]
    assert reread(deployment.services, lost.id).status == Status.COMPLETED  # a dry run changes nothing

    fixed = doctor(deployment.services, repair=True)
    assert {f.action for f in fixed.of(MISSING_MAIN)} == {"marked failed"}
    assert [f.action for f in fixed.of(BROKEN_BLOB)] == ["removed"]
    for gen_id in (lost.id, twin.id):
        row = reread(deployment.services, gen_id)
        assert row.status == Status.FAILED
        assert row.blob_key is None
        assert row.error is not None and "mediagen doctor" in row.error and "lost" in row.error
        assert row.meta["lost_blob_key"] == lost.blob_key
    assert deployment.blob_row(lost.blob_key) is None  # the same content can be stored anew
    assert reread(deployment.services, kept.id).status == Status.COMPLETED
    clean(deployment)


def test_a_completed_asset_whose_blob_row_is_gone_is_marked_failed(deployment: Deployment) -> None:
    row = deployment.make("image")
    assert row.blob_key is not None
    deployment.lose_blob(row.blob_key)
    report = doctor(deployment.services, repair=True)
    [finding] = report.of(MISSING_MAIN)
    assert "not stored" in finding.detail and finding.action == "marked failed"
    assert report.of(BROKEN_BLOB) == []
    assert reread(deployment.services, row.id).status == Status.FAILED
    clean(deployment)


def test_a_missing_derivation_is_dropped_and_derived_again(deployment: Deployment) -> None:
    row = deployment.make("video")
    before = deployment.derivations(row.id)
    assert set(before) == {"poster", "thumbnail"}
    poster = before["poster"].blob_key
    deployment.lose_bytes(poster)
    deployment.lose_blob(before["thumbnail"].blob_key)

    dry = doctor(deployment.services, repair=False)
    assert {f.subject for f in dry.of(MISSING_DERIVATION)} == {
        f"derivation poster of generation {row.id}",
        f"derivation thumbnail of generation {row.id}",
    }
    assert {f.action for f in dry.of(MISSING_DERIVATION)} == {
        "would drop it; would re-derive it from the main file"
    }
    assert dry.of(MISSING_MAIN) == []

    fixed = doctor(deployment.services, repair=True)
    assert {f.action for f in fixed.of(MISSING_DERIVATION)} == {"dropped; re-derived from the main file"}
    after = deployment.derivations(row.id)
    assert set(after) == {"poster", "thumbnail"}
    for derivation in after.values():
        assert deployment.readable(derivation.blob_key)
        assert deployment.blob_row(derivation.blob_key).refcount == 1  # type: ignore[union-attr]
    assert after["poster"].blob_key == poster  # the derivers are deterministic: the same content
    assert reread(deployment.services, row.id).meta["derivations"] == ["poster", "thumbnail"]
    assert reread(deployment.services, row.id).status == Status.COMPLETED
    clean(deployment)


def test_a_derivation_no_deriver_makes_is_only_dropped(deployment: Deployment) -> None:
    row = deployment.make("audio")
    extra = deployment.services.store.put(b"a second output of the model")
    with deployment.services.db.write() as s:
        deployment.services.store.attach(s, extra.key)
        s.add(
            Derivation(
                generation_id=row.id,
                name="stems",
                blob_key=extra.key,
                content_type="audio/wav",
                size_bytes=27,
            )
        )
        fresh = s.get(type(row), row.id)
        assert fresh is not None
        fresh.meta = {**fresh.meta, "derivations": ["stems", "waveform"]}
    deployment.lose_bytes(extra.key)

    report = doctor(deployment.services, repair=True)
    [finding] = report.of(MISSING_DERIVATION)
    assert finding.action == "dropped; cannot be re-derived: no deriver makes it (retry the generation)"
    assert set(deployment.derivations(row.id)) == {"waveform"}
    assert reread(deployment.services, row.id).meta["derivations"] == ["waveform"]
    clean(deployment)


def test_orphan_blobs_are_collected_after_the_gc_grace(deployment: Deployment) -> None:
    deployment.make("image")
    old = deployment.services.store.put(b"nobody's: left by a crash long ago")
    new = deployment.services.store.put(b"nobody's yet: an upload about to be attached")
    deployment.set_blob(old.key, touched_at=HOURS_AGO)

    dry = doctor(deployment.services, repair=False)
    actions = {f.subject: f.action for f in dry.of(ORPHAN_BLOB)}
    assert actions[f"blob {old.key}"] == "would collect"
    assert actions[f"blob {new.key}"].startswith("kept until")
    assert not dry.ok

    fixed = doctor(deployment.services, repair=True)
    actions = {f.subject: f.action for f in fixed.of(ORPHAN_BLOB)}
    assert actions == {f"blob {old.key}": "collected", f"blob {new.key}": actions[f"blob {new.key}"]}
    assert fixed.gc is not None and fixed.gc.blobs_deleted == 1
    assert deployment.services.store.stat(old.key) is None
    assert deployment.services.store.stat(new.key) is not None
    again = doctor(deployment.services, repair=False)
    assert again.ok  # an orphan inside its grace is normal
    assert [f.subject for f in again.findings] == [f"blob {new.key}"]


def test_wrong_refcounts_are_set_to_the_true_count_before_gc_runs(deployment: Deployment) -> None:
    a = deployment.make("audio", seed=1)
    b = deployment.make("audio", seed=2)
    assert a.blob_key and b.blob_key
    deployment.set_blob(a.blob_key, refcount=5)
    # Referenced, but counted as free and idle: gc would delete a live asset's bytes.
    deployment.set_blob(b.blob_key, refcount=0, touched_at=HOURS_AGO)

    dry = doctor(deployment.services, repair=False)
    details = {f.subject: (f.detail, f.action) for f in dry.of(REFCOUNT)}
    assert details == {
        f"blob {a.blob_key}": ("refcount 5, referenced 1 time(s)", "would set it to 1"),
        f"blob {b.blob_key}": ("refcount 0, referenced 1 time(s)", "would set it to 1"),
    }
    fixed = doctor(deployment.services, repair=True)
    assert len(fixed.of(REFCOUNT)) == 2
    assert fixed.gc is not None and fixed.gc.blobs_deleted == 0
    assert deployment.blob_row(a.blob_key).refcount == 1  # type: ignore[union-attr]
    assert deployment.blob_row(b.blob_key).refcount == 1  # type: ignore[union-attr]
    assert deployment.readable(b.blob_key)
    clean(deployment)


def test_a_leaked_reference_becomes_an_orphan_with_a_fresh_grace(deployment: Deployment) -> None:
    leaked = deployment.services.store.put(b"released by nobody")
    deployment.set_blob(leaked.key, refcount=2, touched_at=HOURS_AGO)
    report = doctor(deployment.services, repair=True)
    assert [f.action for f in report.of(REFCOUNT)] == ["set to 0"]
    [orphan] = report.of(ORPHAN_BLOB)
    assert orphan.action.startswith("kept until")  # the fix restarted its gc clock, as `release` does
    assert deployment.blob_row(leaked.key).refcount == 0  # type: ignore[union-attr]


def test_stuck_jobs_go_back_to_reconcile_or_fail(deployment: Deployment) -> None:
    services, queue = deployment.services, deployment.queue
    ids = []
    for seed in (1, 2, 3):
        row, _ = services.generations.create(deployment.admin, "audio", _request(seed))
        ids.append(row.id)
    queue.waiting.clear()  # every SUBMIT was lost
    lost, ancient, leaseless = ids
    set_row(services, lost, lease_until=HOURS_AGO)
    set_row(
        services,
        ancient,
        status=Status.PROCESSING,
        attempts=1,
        lease_until=HOURS_AGO,
        created_at=utcnow() - timedelta(seconds=services.settings.max_run_seconds + 60),
    )
    set_row(services, leaseless, status=Status.PROCESSING, lease_until=None)
    recent = services.generations.create(deployment.admin, "audio", _request(4))[0].id
    queue.waiting.clear()
    set_row(services, recent, lease_until=utcnow() - timedelta(seconds=5))  # reconcile's, not stuck yet

    dry = doctor(services, repair=False)
    assert {f.subject for f in dry.of(STUCK_JOB)} == {f"generation {i}" for i in ids}
    assert {f.action for f in dry.of(STUCK_JOB)} == {"would hand to reconcile"}
    assert reread(services, lost).status == Status.PENDING and not queue.waiting

    fixed = doctor(services, repair=True)
    actions = {f.subject: f.action for f in fixed.of(STUCK_JOB)}
    assert actions[f"generation {lost}"] == "reconcile handed it back to the queue (pending, lease renewed)"
    assert actions[f"generation {ancient}"].startswith("reconcile moved it to failed: no result within")
    assert actions[f"generation {leaseless}"] == "failed"
    assert "mediagen doctor" in (reread(services, leaseless).error or "")
    assert Dispatched(Step.SUBMIT, lost, 0.0) in queue.waiting
    queue.drain(services.pipeline)
    assert reread(services, lost).status == Status.COMPLETED
    assert reread(services, recent).status == Status.COMPLETED  # reconcile took the expired one too
    clean(deployment)


def test_a_blob_file_without_an_index_row_is_removed_by_gc(deployment: Deployment) -> None:
    store = deployment.services.store
    if not isinstance(store, FsBlobStore):
        pytest.skip("files exist only in the fs store")
    stray = "ab" * 32
    young = "cd" * 32
    for key in (stray, young):
        path = store.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a put that crashed before its commit")
    old = time.time() - 7200
    os.utime(store.path_for(stray), (old, old))

    dry = doctor(deployment.services, repair=False)
    assert {f.subject: f.action for f in dry.of(ORPHAN_FILE)} == {
        f"file {stray}": "would remove",
        f"file {young}": "kept: younger than the gc grace (an upload may be finishing)",
    }
    fixed = doctor(deployment.services, repair=True)
    assert {f.subject: f.action for f in fixed.of(ORPHAN_FILE)}[f"file {stray}"] == "removed"
    assert not store.path_for(stray).exists() and store.path_for(young).exists()


def test_deep_finds_bytes_that_are_there_but_wrong(deployment: Deployment) -> None:
    row = deployment.make("image")
    assert row.blob_key is not None
    store = deployment.services.store
    if isinstance(store, FsBlobStore):
        path = store.path_for(row.blob_key)
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        with deployment.services.db.write() as s:
            data = s.scalar(select(BlobChunk.data).where(BlobChunk.blob_key == row.blob_key))
            assert data is not None
            flipped = bytes([data[0] ^ 0xFF]) + data[1:]
            s.execute(update(BlobChunk).where(BlobChunk.blob_key == row.blob_key).values(data=flipped))
    assert doctor(deployment.services, repair=False).of(MISSING_MAIN) == []  # sizes still agree
    deep = doctor(deployment.services, repair=True, deep=True)
    [finding] = deep.of(MISSING_MAIN)
    assert "hash to" in finding.detail and finding.action == "marked failed"
    clean(deployment)


def _request(seed: int) -> GenerateRequest:
    return GenerateRequest(prompt=f"stuck {seed}", duration=1, seed=seed)
