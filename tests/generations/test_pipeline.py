"""The pipeline steps, run one by one from the in-memory queue: the real synth engine end to end,
the order-safety of the steps, and the hosted path (poll → ingest) against the fake Replicate."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mediagen.auth.service import Principal
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import Dispatched, MemoryJobQueue
from mediagen.media.probe import probe
from mediagen.services import Services
from mediagen.vocabulary import ProviderStatus, Status
from tests.fakes.replicate_server import Script
from tests.generations.conftest import RUN_FOR, Hosted, blob_bytes, reread, set_row

MUSICGEN = "meta/musicgen"


def stored_file(services: Services, key: str, path: Path) -> Path:
    path.write_bytes(blob_bytes(services, key))
    return path


def decoded_seconds(path: Path) -> float:
    """Decode every audio frame (not the header's claim) and count the samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


# -- the synth engine, end to end ------------------------------------------------------------------


def test_audio_is_made_stored_and_decodes_to_the_requested_length(
    services: Services, queue: MemoryJobQueue, admin: Principal, tmp_path: Path
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="house 124 bpm", duration=2))
    assert queue.drain(services.pipeline) == 1
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED and done.error is None
    assert (done.content_type, done.duration, done.attempts) == (
        "audio/mpeg",
        pytest.approx(2.0, abs=0.05),
        1,
    )
    assert done.completed_at is not None and done.lease_until is None
    assert done.blob_key is not None and done.size_bytes == services.store.stat(done.blob_key).size  # type: ignore[union-attr]
    mp3 = stored_file(services, done.blob_key, tmp_path / "out.mp3")
    assert decoded_seconds(mp3) == pytest.approx(2.0, abs=0.1)
    assert done.meta["media"]["content_type"] == "audio/mpeg" and done.meta["derivations"] == ["waveform"]

    derivations = services.generations.derivations(row.id)
    assert set(derivations) == {"waveform"}
    wave = derivations["waveform"]
    assert wave.content_type == "application/json"
    peaks = json.loads(blob_bytes(services, wave.blob_key))
    assert peaks["version"] == 2 and peaks["length"] > 50 and max(peaks["data"]) > 0


def test_a_wav_output_decodes_with_soundfile(
    services: Services, queue: MemoryJobQueue, admin: Principal, tmp_path: Path
) -> None:
    req = GenerateRequest(prompt="ambient drone", duration=1.5, output_format="wav")
    row, _ = services.generations.create(admin, "audio", req)
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED and done.content_type == "audio/wav"
    assert done.blob_key is not None
    samples, rate = sf.read(stored_file(services, done.blob_key, tmp_path / "out.wav"))
    assert len(samples) / rate == pytest.approx(1.5, abs=0.02)
    assert np.abs(samples).max() > 0.01  # music, not silence


def test_an_image_is_stored_with_a_thumbnail(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    req = GenerateRequest(prompt="a red fox at dusk", width=160, height=96)
    row, _ = services.generations.create(admin, "image", req)
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert (done.width, done.height, done.content_type) == (160, 96, "image/png")
    assert done.blob_key is not None
    with Image.open(io.BytesIO(blob_bytes(services, done.blob_key))) as img:
        img.load()
        assert img.size == (160, 96)
    derivations = services.generations.derivations(row.id)
    assert set(derivations) == {"thumbnail"}
    with Image.open(io.BytesIO(blob_bytes(services, derivations["thumbnail"].blob_key))) as thumb:
        assert thumb.format == "WEBP" and thumb.size[0] <= 160 and thumb.size[1] <= 96


def test_a_video_is_stored_with_a_poster_and_a_thumbnail(
    services: Services, queue: MemoryJobQueue, admin: Principal, tmp_path: Path
) -> None:
    req = GenerateRequest(prompt="waves on a beach", duration=1, fps=8, resolution="240p")
    row, _ = services.generations.create(admin, "video", req)
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert done.content_type == "video/mp4" and done.duration == pytest.approx(1.0, abs=0.05)
    assert done.blob_key is not None and done.height == 240
    mp4 = stored_file(services, done.blob_key, tmp_path / "out.mp4")
    with av.open(str(mp4)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 8 and (frames[0].width, frames[0].height) == (done.width, done.height)
    derivations = services.generations.derivations(row.id)
    assert set(derivations) == {"poster", "thumbnail"}
    for name in ("poster", "thumbnail"):
        with Image.open(io.BytesIO(blob_bytes(services, derivations[name].blob_key))) as img:
            img.load()
            assert img.format == "WEBP" and img.size[0] <= done.width  # type: ignore[operator]


# -- steps that run twice, late, or on a row that cannot run -----------------------------------------


def test_a_duplicate_submit_task_does_no_harm(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="twice", duration=1))
    queue.dispatch(Step.SUBMIT, row.id)  # the same task delivered twice (a queue redelivery)
    assert queue.drain(services.pipeline) == 2
    once = reread(services, row.id)
    assert once.status == Status.COMPLETED and once.attempts == 1
    names = services.generations.derivations(row.id)

    # Later still, every step again: nothing moves, nothing is stored twice.
    for step in Step:
        services.pipeline.run(step, row.id)
    again = reread(services, row.id)
    assert (again.status, again.attempts, again.blob_key) == (Status.COMPLETED, 1, once.blob_key)
    assert again.completed_at == once.completed_at and again.updated_at == once.updated_at
    assert services.generations.derivations(row.id).keys() == names.keys()
    assert queue.history == [Dispatched(Step.SUBMIT, row.id, 0.0)] * 2  # no further work was queued


def test_a_row_whose_engine_is_unknown_fails_with_a_clear_error(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    set_row(services, row.id, engine="cog:gone/model")  # configured when it was made, not any more
    queue.drain(services.pipeline)
    failed = reread(services, row.id)
    assert failed.status == Status.FAILED
    assert failed.error == "engine 'cog:gone/model' is not configured on this server"
    assert failed.completed_at is not None and failed.lease_until is None and failed.blob_key is None


def test_a_row_out_of_attempts_gives_up(services: Services, queue: MemoryJobQueue, admin: Principal) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    max_attempts = services.settings.max_attempts
    set_row(services, row.id, attempts=max_attempts, error="worker vanished")
    queue.drain(services.pipeline)
    failed = reread(services, row.id)
    assert failed.status == Status.FAILED
    assert failed.error == f"gave up after {max_attempts} attempts: worker vanished"
    assert failed.blob_key is None


def test_submit_skips_a_row_another_worker_holds(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    set_row(services, row.id, status=Status.PROCESSING, attempts=1)  # claimed, lease still valid
    queue.drain(services.pipeline)
    held = reread(services, row.id)
    assert held.status == Status.PROCESSING and held.attempts == 1 and held.blob_key is None


# -- the hosted path: poll → ingest ------------------------------------------------------------------


def wav_tone(seconds: float, hz: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.timeout(60)
def test_a_hosted_job_is_polled_to_the_end_and_its_output_ingested(hosted: Hosted, tmp_path: Path) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    output = wav_tone(0.75, 523.25)
    fake.content["audio"] = (output, "audio/wav", "wav")
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.status == Status.PROCESSING and row.provider_ref is not None

    services.pipeline.refresh(row.id)  # still running at the provider: nothing to do but wait
    running = reread(services, row.id)
    assert running.provider_status == ProviderStatus.PROCESSING and running.status == Status.PROCESSING
    assert queue.history == []

    fake.advance(RUN_FOR + 1)  # the model finishes
    services.pipeline.refresh(row.id)
    succeeded = reread(services, row.id)
    assert (succeeded.status, succeeded.provider_status) == (Status.PROCESSING, ProviderStatus.SUCCEEDED)
    assert succeeded.meta["outputs"][0]["url"].startswith(fake.root_url)
    assert queue.history == [Dispatched(Step.INGEST, row.id, 0.0)]

    assert queue.drain(services.pipeline) == 1
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert done.blob_key is not None and blob_bytes(services, done.blob_key) == output
    assert done.download_attempted and done.download_retries == 0
    info = probe(stored_file(services, done.blob_key, tmp_path / "out.wav"))
    assert (info.kind, info.duration) == ("audio", pytest.approx(0.75, abs=0.01))
    assert set(services.generations.derivations(row.id)) == {"waveform"}
    assert done.meta["provider_metrics"]["predict_time"] > 0
    assert len(fake.create_requests) == 1


@pytest.mark.timeout(60)
def test_provider_events_apply_only_in_lifecycle_order(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.provider_ref is not None
    engine = hosted.engine
    processing = engine.refresh(row.provider_ref)
    fake.advance(RUN_FOR + 1)
    succeeded = engine.refresh(row.provider_ref)
    assert (processing.status, succeeded.status) == (ProviderStatus.PROCESSING, ProviderStatus.SUCCEEDED)

    assert services.pipeline.apply_state(row.id, succeeded) is True
    assert services.pipeline.apply_state(row.id, processing) is False  # "start" arriving after "completed"
    assert services.pipeline.apply_state(row.id, succeeded) is False  # the same news twice
    kept = reread(services, row.id)
    assert (kept.status, kept.provider_status) == (Status.PROCESSING, ProviderStatus.SUCCEEDED)
    assert queue.history == [Dispatched(Step.INGEST, row.id, 0.0)]  # one ingest, not two

    queue.drain(services.pipeline)
    assert reread(services, row.id).status == Status.COMPLETED
    assert services.pipeline.apply_state(row.id, processing) is False  # finished rows never move
    assert services.pipeline.apply_state(row.id, succeeded) is False
    assert reread(services, row.id).status == Status.COMPLETED and len(queue.history) == 1


@pytest.mark.timeout(60)
def test_a_failed_prediction_fails_the_row_with_the_models_error(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    fake.scripts[MUSICGEN] = Script(start_after=0.0, run_for=RUN_FOR, status="failed", error="CUDA OOM")
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    fake.advance(RUN_FOR + 1)
    services.pipeline.refresh(row.id)
    failed = reread(services, row.id)
    assert (failed.status, failed.provider_status, failed.error) == (
        Status.FAILED,
        ProviderStatus.FAILED,
        "CUDA OOM",
    )
    assert queue.history == [] and failed.blob_key is None


@pytest.mark.timeout(60)
def test_an_output_the_provider_already_deleted_fails_the_row(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    fake.advance(fake.data_ttl_s + 60)  # nobody looked for over an hour: Replicate removed the output
    services.pipeline.refresh(row.id)
    failed = reread(services, row.id)
    assert failed.status == Status.FAILED
    assert failed.error == "the provider deleted the output before it was downloaded"
    assert failed.download_error == "data_removed" and queue.history == []


@pytest.mark.timeout(60)
def test_an_output_that_expires_before_the_download_fails_without_retrying(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    fake.advance(RUN_FOR + 1)
    services.pipeline.refresh(row.id)
    fake.advance(fake.data_ttl_s)  # the ingest task ran too late
    assert queue.drain(services.pipeline) == 1  # an expired file is final: no retry is queued
    failed = reread(services, row.id)
    assert failed.status == Status.FAILED and (failed.error or "").startswith("could not store the output")
    assert failed.download_attempted and failed.download_error and failed.blob_key is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("seconds", "sent_as"), [(0.5, "data URL"), (12.0, "provider file")])
def test_an_uploaded_melody_reaches_the_provider_as_its_input_audio(
    hosted: Hosted, tmp_path: Path, seconds: float, sent_as: str
) -> None:
    services, fake = hosted.services, hosted.fake
    melody = tmp_path / "melody.wav"
    melody.write_bytes(wav_tone(seconds, 440.0, rate=22050))
    upload = services.generations.create_upload(
        hosted.admin, "audio", melody, title="hum", client_id=None, campaign_id=None, brief_id=None,
        collection=None,
    )  # fmt: skip
    req = GenerateRequest(prompt="follow this", model=MUSICGEN, audio_id=upload.id)
    row, _ = services.generations.create(hosted.admin, "audio", req)
    assert row.parameters["input_audio"] == upload.id  # the row keeps the asset id, not the bytes
    sent = fake.create_requests[0].json["input"]["input_audio"]
    if sent_as == "data URL":  # small files travel inline
        assert sent == "data:audio/wav;base64," + base64.b64encode(melody.read_bytes()).decode()
    else:  # large ones go up to the provider's file store first
        (stored,) = fake.files.values()
        assert sent == stored["urls"]["get"] and stored["_data"] == melody.read_bytes()


@pytest.mark.timeout(60)
def test_every_image_of_a_several_image_request_is_kept_and_reachable(hosted: Hosted) -> None:
    """FLUX with num_outputs=3: the first image is the asset, the others are kept beside it as
    files `output_1`, `output_2`, listed on the item and served by the API."""
    from fastapi.testclient import TestClient

    from mediagen.app import create_app
    from mediagen.generations.presenters import asset_json
    from mediagen.vocabulary import KINDS, Kind

    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    flux = "black-forest-labs/flux-schnell"
    fake.scripts[flux] = Script(start_after=0.0, run_for=RUN_FOR, count=3)
    row, _ = services.generations.create(
        hosted.admin, "image", GenerateRequest(prompt="three lamps", model=flux, num_outputs=3)
    )
    fake.advance(RUN_FOR + 1)
    services.pipeline.refresh(row.id)
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    kept = services.generations.derivations(row.id)
    assert {"output_1", "output_2", "thumbnail"} <= set(kept)
    files = asset_json(done, KINDS[Kind.IMAGE], kept)["files"]
    assert files["output_2"] == f"/api/images/{row.id}/files/output_2"

    _, token = services.auth.create_key(user_id=hosted.admin.user_id, name="t")
    with TestClient(create_app(services.settings, run_workers=False)) as api:
        served = api.get(files["output_2"], headers={"X-API-Key": token})
        assert served.status_code == 200 and served.content == blob_bytes(services, kept["output_2"].blob_key)
        assert Image.open(io.BytesIO(served.content)).size[0] > 0
        missing = api.get(f"/api/images/{row.id}/files/output_9", headers={"X-API-Key": token})
        assert missing.status_code == 404
