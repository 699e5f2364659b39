"""The ingest step's costs and bounds: one decode for the waveform and the loudness, a meter
failure that costs only the loudness, few write transactions, and the analysing stage held to
one file per core however many workers ingest at once."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy.orm import Session

from mediagen.generations import ingest
from mediagen.generations.schemas import GenerateRequest
from mediagen.loudness import measure_file
from mediagen.media import metering, waveform
from mediagen.services import Services
from mediagen.vocabulary import Kind, Status
from tests.generations.conftest import RUN_FOR, Hosted, blob_bytes, reread

MUSICGEN = "meta/musicgen"


def stereo_wav(seconds: float = 1.5, rate: int = 48_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    left = 0.4 * np.sin(2 * np.pi * 220 * t)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, 0.5 * left], axis=1), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def succeeded(hosted: Hosted, output: bytes) -> int:
    """A hosted generation whose prediction has finished with `output`; its ingest is queued."""
    hosted.fake.content["audio"] = (output, "audio/wav", "wav")
    row, _ = hosted.services.generations.create(
        hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN)
    )
    hosted.fake.advance(RUN_FOR + 1)
    hosted.services.pipeline.refresh(row.id)
    return row.id


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.timeout(60)
def test_the_waveform_and_the_loudness_come_from_one_decode(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    output = stereo_wav()
    gen_id = succeeded(hosted, output)
    decodes = [count_calls(monkeypatch, m, "audio_blocks") for m in (waveform, metering)]
    assert hosted.queue.drain(hosted.services.pipeline) == 1
    done = reread(hosted.services, gen_id)
    assert done.status == Status.COMPLETED, done.error
    assert sum(map(len, decodes)) == 1
    # The same figures as the meter's own file reader, which opens and decodes for itself.
    (tmp_path / "out.wav").write_bytes(output)
    alone = measure_file(tmp_path / "out.wav")
    assert alone is not None and alone.integrated_lufs is not None
    assert (done.loudness_lufs, done.true_peak_dbtp, done.loudness_range) == (
        alone.integrated_lufs,
        alone.true_peak_dbtp,
        alone.lra,
    )
    wave = hosted.services.generations.derivations(gen_id)["waveform"]
    assert json.loads(blob_bytes(hosted.services, wave.blob_key)) == waveform.waveform_peaks(
        tmp_path / "out.wav"
    )


@pytest.mark.timeout(60)
def test_a_meter_failure_costs_the_loudness_not_the_waveform(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenMeter:
        def __init__(self, rate: int, channels: int) -> None:
            pass

        def feed(self, block: np.ndarray) -> None:
            raise ValueError("meter broke")

    monkeypatch.setattr(metering, "LoudnessMeter", BrokenMeter)
    gen_id = succeeded(hosted, stereo_wav())
    hosted.queue.drain(hosted.services.pipeline)
    done = reread(hosted.services, gen_id)
    assert done.status == Status.COMPLETED, done.error
    assert (done.loudness_lufs, done.true_peak_dbtp, done.loudness_range) == (None, None, None)
    wave = hosted.services.generations.derivations(gen_id)["waveform"]
    assert json.loads(blob_bytes(hosted.services, wave.blob_key))["length"] > 0


@pytest.mark.timeout(60)
def test_a_failed_waveform_still_measures_the_loudness_on_its_own(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_waveform(path: Path, *, tap: Any = None) -> bytes:
        raise RuntimeError("peaks broke")

    monkeypatch.setattr(ingest, "_waveform_json", no_waveform)
    gen_id = succeeded(hosted, stereo_wav())
    hosted.queue.drain(hosted.services.pipeline)
    done = reread(hosted.services, gen_id)
    assert done.status == Status.COMPLETED, done.error
    assert "waveform" not in hosted.services.generations.derivations(gen_id)
    assert done.loudness_lufs is not None and done.true_peak_dbtp is not None


def counting_writes(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    writes: list[int] = []
    real: Callable[[], AbstractContextManager[Session]] = services.db.write

    def counted() -> AbstractContextManager[Session]:
        writes.append(1)
        return real()

    monkeypatch.setattr(services.db, "write", counted)
    return writes


@pytest.mark.timeout(60)
def test_an_ingest_takes_four_write_transactions(hosted: Hosted, monkeypatch: pytest.MonkeyPatch) -> None:
    gen_id = succeeded(hosted, stereo_wav())
    writes = counting_writes(hosted.services, monkeypatch)
    hosted.queue.drain(hosted.services.pipeline)
    assert reread(hosted.services, gen_id).status == Status.COMPLETED
    # The lease (with `download_attempted`), the output's bytes, the waveform's, and the row
    # completed with its references and its event.
    assert len(writes) == 4
    assert reread(hosted.services, gen_id).download_attempted


@pytest.mark.timeout(60)
def test_files_are_analysed_at_most_one_per_core_at_a_time(
    hosted: Hosted, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cores = ingest._cores()
    running = [0]
    most = [0]
    lock = threading.Lock()
    real = ingest._analyse

    def slow(*args: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(ingest, "_analyse", slow)
    path = tmp_path / "a.wav"
    path.write_bytes(stereo_wav(0.5))
    failures: list[BaseException] = []

    def prepare() -> None:
        try:
            hosted.services.pipeline.ingestor.prepare(Kind.AUDIO, {"main": (path, None)}, label="t")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=prepare) for _ in range(3 * cores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert most[0] == cores
