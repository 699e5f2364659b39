"""GenerationService through the real core: tmp SQLite from the migrations, the real catalog and synth
engine, the in-memory queue stepped by hand, and the fake Replicate server for hosted models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediagen.auth.service import Principal
from mediagen.error_map import status_for
from mediagen.errors import Conflict, InvalidInput, NotFound, ProviderRefused, RateLimited
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import Dispatched, MemoryJobQueue
from mediagen.media.probe import MediaInfo, probe
from mediagen.services import Services
from mediagen.vocabulary import ProviderStatus, Status
from tests.generations.conftest import (
    ADMIN,
    Hosted,
    blob_bytes,
    make_seeded_services,
    make_services,
    reread,
    set_row,
)

MUSICGEN = "meta/musicgen"


def audio(prompt: str = "calm piano 90 bpm", **fields: object) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, duration=1, **fields)  # type: ignore[arg-type]


@pytest.fixture
def member(services: Services) -> Principal:
    """A user limited to the acme client."""
    user = services.auth.create_user(
        email="member@example.com", password="correct horse", role="member", clients=["acme"]
    )
    return services.auth.principal_for_user(user)


def write_wav(path: Path, seconds: float = 1.5, rate: int = 22050, hz: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


# -- create ----------------------------------------------------------------------------------------


def test_create_inserts_a_pending_row_and_dispatches_one_submit(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, created = services.generations.create(admin, "audio", audio())
    assert created
    assert queue.history == [Dispatched(Step.SUBMIT, row.id, 0.0)]
    stored = reread(services, row.id)
    assert stored.status == Status.PENDING
    assert stored.kind == "audio"
    assert stored.owner_key == admin.user_id
    assert stored.lease_until is not None  # a lost enqueue heals through reconcile after one lease
    assert stored.webhook_token and len(stored.webhook_token) >= 24
    assert stored.attempts == 0 and stored.provider_ref is None


def test_create_without_a_token_defaults_to_the_offline_model_with_catalog_defaults(
    services: Services, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="lofi beat"))
    assert (row.model_id, row.engine) == ("synth/music", "synth")
    # The catalog's defaults are filled in and the prompt is an input like any other.
    # The seed is a fresh random one (takes), sent in place of the catalog's 0.
    assert row.seed is not None and row.seed >= 1
    assert row.parameters == {"prompt": "lofi beat", "duration": 8, "seed": row.seed, "output_format": "mp3"}
    assert row.meta == {"engine_label": "offline procedural"}
    assert row.cost_usd == 0.0
    assert "requested_model" not in row.meta

    image, _ = services.generations.create(admin, "image", GenerateRequest(prompt="a red fox"))
    assert image.model_id == "synth/image"
    assert image.parameters["aspect_ratio"] == "1:1"


def test_named_fields_and_parameters_become_model_inputs(services: Services, admin: Principal) -> None:
    req = GenerateRequest(prompt="techno", duration=12.0, seed=7, parameters={"bpm": 128})
    row, _ = services.generations.create(admin, "audio", req)
    assert row.parameters == {
        "prompt": "techno",
        "duration": 12.0,
        "seed": 7,
        "bpm": 128,
        "output_format": "mp3",
    }
    with pytest.raises(InvalidInput) as named:
        services.generations.create(admin, "audio", GenerateRequest(prompt="x", fps=24))
    assert named.value.field == "fps" and "not an input of synth/music" in named.value.message
    with pytest.raises(InvalidInput) as param:
        services.generations.create(admin, "audio", GenerateRequest(prompt="x", parameters={"bpm": 500}))
    assert param.value.field == "parameters.bpm"


def test_create_files_under_the_client_a_campaign_implies(services: Services, admin: Principal) -> None:
    row, _ = services.generations.create(admin, "audio", audio(campaign_id="spring", collection="drafts"))
    assert (row.client_id, row.campaign_id, row.collection) == ("acme", "spring", "drafts")

    with pytest.raises(InvalidInput) as mismatch:
        services.generations.create(admin, "audio", audio(client_id="globex", campaign_id="spring"))
    assert mismatch.value.field == "client_id"
    with pytest.raises(InvalidInput) as unknown:
        services.generations.create(admin, "audio", audio(campaign_id="autumn"))
    assert unknown.value.field == "campaign_id"


def test_a_limited_user_never_sees_another_clients_asset(
    services: Services, queue: MemoryJobQueue, admin: Principal, member: Principal
) -> None:
    theirs, _ = services.generations.create(admin, "audio", audio(client_id="globex"))
    mine, _ = services.generations.create(member, "audio", audio())
    assert mine.client_id == "acme"  # a key limited to one client files under it

    assert services.generations.get(member, "audio", mine.id).id == mine.id
    with pytest.raises(NotFound):
        services.generations.get(member, "audio", theirs.id)
    with pytest.raises(NotFound):
        services.generations.cancel(member, "audio", theirs.id)
    with pytest.raises(NotFound):
        services.generations.delete(member, "audio", theirs.id)
    with pytest.raises(NotFound):
        services.generations.retry(member, "audio", theirs.id)
    # An asset of another kind is not found under this kind either (ids are shared across kinds).
    with pytest.raises(NotFound):
        services.generations.get(admin, "image", mine.id)

    rows, total = services.generations.list(member, "audio", filters={}, limit=10, offset=0)
    assert total == 1 and [r.id for r in rows] == [mine.id]
    with pytest.raises(InvalidInput) as filing:
        services.generations.create(member, "audio", audio(client_id="globex"))
    assert filing.value.field == "client_id"
    assert reread(services, theirs.id).status == Status.PENDING  # untouched by the refused calls


def test_a_hosted_model_without_a_token_becomes_an_offline_draft_that_says_so(
    services: Services, admin: Principal
) -> None:
    req = GenerateRequest(prompt="dreamy synthwave", model=MUSICGEN, duration=4, temperature=0.7)
    row, _ = services.generations.create(admin, "audio", req)
    assert row.model_id == "synth/music" and row.engine == "synth"
    assert row.meta["requested_model"] == MUSICGEN
    assert row.meta["ignored_inputs"] == ["temperature"]  # synth has no temperature
    assert "meta/musicgen is not reachable" in row.meta["notice"]
    assert "REPLICATE_API_TOKEN" in row.meta["notice"] and "synth/music" in row.meta["notice"]
    assert row.parameters["duration"] == 4 and "temperature" not in row.parameters


def test_a_stored_asset_the_draft_cannot_use_is_still_checked(
    services: Services, admin: Principal, member: Principal, tmp_path: Path
) -> None:
    """musicgen's `audio_id` is dropped from a synth draft, but naming another client's asset (or
    none) is refused all the same: the draft must not become a way to probe ids."""
    theirs = services.generations.create_upload(
        admin,
        "audio",
        write_wav(tmp_path / "m.wav"),
        title="Globex melody",
        client_id="globex",
        campaign_id=None,
        brief_id=None,
        collection=None,
    )
    mine = services.generations.create_upload(
        admin,
        "audio",
        write_wav(tmp_path / "n.wav"),
        title="Acme melody",
        client_id="acme",
        campaign_id=None,
        brief_id=None,
        collection=None,
    )
    for asset_id in (theirs.id, 999_999):
        with pytest.raises(InvalidInput) as refused:
            services.generations.create(member, "audio", audio(model=MUSICGEN, audio_id=asset_id))
        assert refused.value.field == "audio_id" and "not found" in refused.value.message
    row, _ = services.generations.create(member, "audio", audio(model=MUSICGEN, audio_id=mine.id))
    assert row.meta["ignored_inputs"] == ["audio_id"] and row.client_id == "acme"


def test_without_offline_fallback_a_hosted_model_is_refused_on_field_model(tmp_path: Path) -> None:
    services, queue = make_services(
        tmp_path / "data", offline_fallback=False, generate_rate_limit_per_minute=0
    )
    try:
        with pytest.raises(InvalidInput) as exc:
            services.generations.create(ADMIN, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
        assert exc.value.field == "model"
        assert "REPLICATE_API_TOKEN" in exc.value.message
        _, total = services.generations.list(ADMIN, "audio", filters={}, limit=10, offset=0)
        assert total == 0 and queue.history == []
        # The offline default itself still works.
        row, _ = services.generations.create(ADMIN, "audio", GenerateRequest(prompt="x"))
        assert row.model_id == "synth/music"
    finally:
        services.close()


def test_unknown_model_or_wrong_kind_is_refused(services: Services, admin: Principal) -> None:
    with pytest.raises(InvalidInput) as unknown:
        services.generations.create(admin, "audio", GenerateRequest(prompt="x", model="nobody/nothing"))
    assert unknown.value.field == "model"
    with pytest.raises(InvalidInput) as kind:
        services.generations.create(admin, "audio", GenerateRequest(prompt="x", model="synth/image"))
    assert kind.value.field == "model"


# -- idempotency -----------------------------------------------------------------------------------


def test_an_idempotency_key_returns_the_first_row_and_dispatches_nothing_new(
    services: Services, queue: MemoryJobQueue, admin: Principal, member: Principal
) -> None:
    first, created = services.generations.create(admin, "audio", audio(), idempotency_key="k-1")
    again, created_again = services.generations.create(admin, "audio", audio(), idempotency_key="k-1")
    assert created and not created_again
    assert again.id == first.id and again.prompt == first.prompt
    assert queue.history == [Dispatched(Step.SUBMIT, first.id, 0.0)]

    # The same key with another request is refused, never answered with the first one's asset.
    with pytest.raises(Conflict, match="different request"):
        services.generations.create(admin, "audio", audio("something else entirely"), idempotency_key="k-1")
    with pytest.raises(Conflict, match="different request"):
        services.generations.create(admin, "image", GenerateRequest(prompt="x"), idempotency_key="k-1")

    # Keys are per user: another user's identical key is a new asset.
    other, other_created = services.generations.create(member, "audio", audio(), idempotency_key="k-1")
    assert other_created and other.id != first.id
    _, total = services.generations.list(admin, "audio", filters={}, limit=10, offset=0)
    assert total == 2


# -- list --------------------------------------------------------------------------------------------


def test_list_filters_searches_and_pages_newest_first(services: Services, admin: Principal) -> None:
    make = services.generations.create
    a1, _ = make(admin, "audio", audio("rainy night jazz", campaign_id="spring", collection="moods"))
    a2, _ = make(admin, "audio", audio("sunny morning pop", client_id="acme"))
    a3, _ = make(admin, "audio", audio("Rain on a tin roof", campaign_id="spring"))
    a4, _ = make(admin, "audio", audio("desert wind", client_id="globex", collection="moods"))
    make(admin, "image", GenerateRequest(prompt="rain on glass"))
    set_row(services, a4.id, status=Status.FAILED, error="boom")

    def ids(
        limit: int = 50, offset: int = 0, q: str | None = None, sort: str | None = None, **filters: object
    ) -> tuple[list[int], int]:
        rows, total = services.generations.list(
            admin, "audio", filters=filters, limit=limit, offset=offset, q=q, sort=sort
        )
        return [r.id for r in rows], total

    assert ids() == ([a4.id, a3.id, a2.id, a1.id], 4)
    assert ids(client_id="acme") == ([a3.id, a2.id, a1.id], 3)
    assert ids(campaign_id="spring") == ([a3.id, a1.id], 2)
    assert ids(collection="moods") == ([a4.id, a1.id], 2)
    assert ids(status="failed") == ([a4.id], 1)
    assert ids(model_id="synth/music", status="pending") == ([a3.id, a2.id, a1.id], 3)
    # Case-insensitive, in the prompt; the last word also as a prefix ("rainy"). A search is
    # ranked best match first unless a sort is given (tests/generations/test_gallery.py).
    assert ids(q="rain", sort="-created") == ([a3.id, a1.id], 2)
    assert ids(q="rain", client_id="globex") == ([], 0)
    # Pages: the total is the whole match, the page is a slice of it.
    assert ids(limit=2) == ([a4.id, a3.id], 4)
    assert ids(limit=2, offset=2) == ([a2.id, a1.id], 4)
    assert ids(limit=2, offset=4) == ([], 4)
    rows, _ = services.generations.list(admin, "audio", filters={}, limit=1, offset=0)
    assert rows[0].prompt == "desert wind" and rows[0].error == "boom"  # a plain row of public columns


# -- delete ------------------------------------------------------------------------------------------


def test_delete_frees_bytes_nothing_else_references(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    # The synth is deterministic for a prompt and seed, so these two share their bytes.
    twin_a, _ = services.generations.create(admin, "audio", audio("shared bytes", seed=7))
    twin_b, _ = services.generations.create(admin, "audio", audio("shared bytes", seed=7))
    alone, _ = services.generations.create(admin, "audio", audio("bytes of my own"))
    queue.drain(services.pipeline)
    a, b, solo = (reread(services, g.id) for g in (twin_a, twin_b, alone))
    assert a.blob_key is not None and a.blob_key == b.blob_key and solo.blob_key != a.blob_key
    shared_wave = services.generations.derivations(a.id)["waveform"].blob_key
    solo_wave = services.generations.derivations(solo.id)["waveform"].blob_key
    assert solo.blob_key is not None

    services.generations.delete(admin, "audio", solo.id)
    assert services.store.stat(solo.blob_key) is None
    assert services.store.stat(solo_wave) is None
    with pytest.raises(NotFound):
        services.generations.get(admin, "audio", solo.id)
    assert services.generations.derivations(solo.id) == {}

    services.generations.delete(admin, "audio", a.id)
    assert services.store.stat(a.blob_key) is not None  # still b's
    assert services.store.stat(shared_wave) is not None
    assert probe_blob(services, a.blob_key, Path(services.settings.data_dir) / "b.mp3").kind == "audio"

    services.generations.delete(admin, "audio", b.id)
    assert services.store.stat(a.blob_key) is None
    assert services.store.stat(shared_wave) is None


def probe_blob(services: Services, key: str, path: Path) -> MediaInfo:
    path.write_bytes(blob_bytes(services, key))
    return probe(path)


# -- cancel / retry ----------------------------------------------------------------------------------


def test_cancel_stops_a_pending_job_for_good(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", audio())
    canceled = services.generations.cancel(admin, "audio", row.id)
    assert canceled.provider_error is None
    assert canceled.row.status == Status.CANCELED
    assert canceled.row.error == "canceled by user"
    assert canceled.row.completed_at is not None and canceled.row.lease_until is None
    with pytest.raises(Conflict, match="already canceled"):
        services.generations.cancel(admin, "audio", row.id)

    queue.drain(services.pipeline)  # the SUBMIT already queued finds nothing to claim
    after = reread(services, row.id)
    assert after.status == Status.CANCELED and after.blob_key is None and after.attempts == 0


def test_cancel_of_a_finished_job_is_a_conflict(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row, _ = services.generations.create(admin, "audio", audio())
    queue.drain(services.pipeline)
    with pytest.raises(Conflict, match="already completed"):
        services.generations.cancel(admin, "audio", row.id)
    assert reread(services, row.id).status == Status.COMPLETED


def test_retry_makes_a_new_asset_with_the_same_inputs_and_filing(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    req = GenerateRequest(
        prompt="slow ambient pads", duration=1, seed=42, campaign_id="spring", collection="pads"
    )
    first, _ = services.generations.create(admin, "audio", req)
    set_row(services, first.id, status=Status.FAILED, error="lost")
    queue.history.clear()
    queue.waiting.clear()

    again = services.generations.retry(admin, "audio", first.id, same_seed=True)
    assert again.id != first.id
    assert again.status == Status.PENDING
    assert (again.model_id, again.prompt, again.parameters) == (
        first.model_id,
        first.prompt,
        first.parameters,
    )
    assert (again.client_id, again.campaign_id, again.collection) == ("acme", "spring", "pads")
    assert queue.history == [Dispatched(Step.SUBMIT, again.id, 0.0)]
    queue.drain(services.pipeline)
    assert reread(services, again.id).status == Status.COMPLETED
    assert reread(services, first.id).status == Status.FAILED  # the original is kept as it was


# -- uploads ---------------------------------------------------------------------------------------


def test_an_uploaded_wav_becomes_a_completed_asset_with_a_waveform(
    services: Services, queue: MemoryJobQueue, admin: Principal, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "melody.wav", seconds=1.5)
    row = services.generations.create_upload(
        admin, "audio", wav, title="my melody", client_id="acme", campaign_id=None, brief_id=None,
        collection="refs",
    )  # fmt: skip
    assert row.status == Status.COMPLETED
    assert (row.model_id, row.engine, row.prompt) == ("upload", "upload", "my melody")
    assert (row.client_id, row.collection) == ("acme", "refs")
    assert row.meta["uploaded"] is True
    assert row.content_type == "audio/wav"
    assert row.duration == pytest.approx(1.5, abs=0.01)
    assert row.blob_key is not None and blob_bytes(services, row.blob_key) == wav.read_bytes()
    derivations = services.generations.derivations(row.id)
    assert set(derivations) == {"waveform"}
    peaks = json.loads(blob_bytes(services, derivations["waveform"].blob_key))
    assert peaks["length"] > 0 and max(peaks["data"]) > 0  # a loud tone, not silence
    assert queue.history == []  # nothing to run: the file is the result

    # It is an asset like any other (test_pipeline hands one to a hosted model as its melody).
    _, total = services.generations.list(admin, "audio", filters={"model_id": "upload"}, limit=5, offset=0)
    assert total == 1


def test_an_upload_that_is_not_media_of_its_kind_leaves_no_row(
    services: Services, admin: Principal, tmp_path: Path
) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("these are not the samples you are looking for\n" * 20)
    with pytest.raises(InvalidInput) as exc:
        services.generations.create_upload(
            admin, "audio", text, title="bad", client_id=None, campaign_id=None, brief_id=None,
            collection=None,
        )  # fmt: skip
    assert exc.value.field == "file" and "not usable audio" in exc.value.message

    wav = write_wav(tmp_path / "tone.wav", seconds=0.5)
    with pytest.raises(InvalidInput, match="expected image but the output is audio") as wrong_kind:
        services.generations.create_upload(
            admin, "image", wav, title="bad", client_id=None, campaign_id=None, brief_id=None,
            collection=None,
        )  # fmt: skip
    assert wrong_kind.value.field == "file"
    for kind in ("audio", "image"):
        _, total = services.generations.list(admin, kind, filters={}, limit=5, offset=0)
        assert total == 0


# -- hosted models (the real Replicate engine against the fake Replicate server) -----------------------


@pytest.mark.timeout(60)
def test_a_hosted_model_is_submitted_inside_create(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, created = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", duration=3))
    assert created and row.model_id == MUSICGEN and row.engine == "replicate"  # the hosted default
    assert row.status == Status.PROCESSING and row.provider_ref in fake.predictions
    assert row.provider_status == ProviderStatus.PROCESSING
    assert row.next_poll_at is not None and row.attempts == 1
    assert queue.history == []  # nothing to queue: the provider has it, polling follows
    (sent,) = fake.create_requests
    assert sent.json["version"] == "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"
    assert sent.json["input"]["prompt"] == "x" and sent.json["input"]["duration"] == 3
    assert "webhook" not in sent.json  # no public URL: polling only
    assert row.provider_input == sent.json["input"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("req", "field"),
    [
        (GenerateRequest(prompt="x", model=MUSICGEN, model_version="large"), "model_version"),
        (
            GenerateRequest(prompt="x", model=MUSICGEN, parameters={"model_version": "melody-large"}),
            "parameters.model_version",
        ),
    ],
)
def test_a_providers_input_error_names_the_field_and_keeps_no_row(
    hosted: Hosted, req: GenerateRequest, field: str
) -> None:
    # The catalog takes these versions; this model's server does not (the fake's enum is narrower).
    with pytest.raises(InvalidInput) as exc:
        hosted.services.generations.create(hosted.admin, "audio", req)
    assert exc.value.field == field
    assert exc.value.message.startswith("model_version must be one of the following")
    assert exc.value.detail == f"{field}: {exc.value.message}"
    _, total = hosted.services.generations.list(hosted.admin, "audio", filters={}, limit=5, offset=0)
    assert total == 0 and hosted.queue.history == []
    assert len(hosted.fake.create_requests) == 1 and not hosted.fake.predictions


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("status", "payment", "reason"), [(401, False, "401"), (402, True, "no credit")])
def test_a_provider_refusal_keeps_a_failed_row_with_the_reason(
    hosted: Hosted, status: int, payment: bool, reason: str
) -> None:
    hosted.fake.fail_next_create(status)
    with pytest.raises(ProviderRefused) as exc:
        hosted.services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    refused = exc.value
    assert refused.kind == "audio" and refused.payment is payment
    assert status_for(refused) == (503 if payment else 502)
    assert f"generation {refused.generation_id} failed" in refused.message
    failed = hosted.services.generations.get(hosted.admin, "audio", refused.generation_id)
    assert failed.status == Status.FAILED and reason in (failed.error or "")
    assert failed.completed_at is not None and failed.provider_ref is None
    assert hosted.queue.history == []  # a refusal is not retried


@pytest.mark.timeout(60)
def test_a_throttled_create_stays_pending_and_the_queue_submits_it_later(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    fake.fail_next_create(429, times=5, ratelimit_reset=0)  # every try the engine makes in one call
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.status == Status.PENDING and row.provider_ref is None
    assert "429" in (row.error or "")
    assert queue.history == [Dispatched(Step.SUBMIT, row.id, 2.0)]  # backoff, not a 502
    queue.drain(services.pipeline)
    submitted = reread(services, row.id)
    assert submitted.status == Status.PROCESSING and submitted.provider_ref in fake.predictions
    assert submitted.attempts == 2 and len(fake.predictions) == 1


@pytest.mark.timeout(60)
def test_cancel_stops_a_running_prediction_at_the_provider(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.provider_ref is not None
    canceled = services.generations.cancel(hosted.admin, "audio", row.id)
    assert canceled.provider_error is None and canceled.row.status == Status.CANCELED
    assert len(fake.requests_to("POST", f"/v1/predictions/{row.provider_ref}/cancel")) == 1
    assert fake.prediction_json(row.provider_ref)["status"] == "canceled"
    assert "cancel_error" not in canceled.row.meta


@pytest.mark.timeout(60)
def test_a_provider_error_on_cancel_is_kept_and_the_cancel_stands(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert row.provider_ref is not None
    fake.token = "r8_rotated_" + "0" * 16  # the token was revoked: every call now answers 401
    canceled = services.generations.cancel(hosted.admin, "audio", row.id)
    assert canceled.provider_error is not None and "401" in canceled.provider_error
    stored = reread(services, row.id)
    assert stored.status == Status.CANCELED
    assert stored.meta["cancel_error"] == canceled.provider_error
    assert canceled.row.meta["cancel_error"] == canceled.provider_error
    assert fake.predictions[row.provider_ref].status != "canceled"  # it really did not stop there


def test_search_matches_the_prompt_text_literally(services: Services, admin: Principal) -> None:
    for prompt in ("50% off sale jingle", "500 items", "lo_fi beat", "lofi beat"):
        services.generations.create(admin, "audio", audio(prompt))
    found = {
        q: [
            r.prompt for r in services.generations.list(admin, "audio", filters={}, limit=9, offset=0, q=q)[0]
        ]
        for q in ("50%", "lo_fi")
    }
    assert found == {"50%": ["50% off sale jingle"], "lo_fi": ["lo_fi beat"]}


@pytest.mark.timeout(60)
def test_a_provider_input_error_without_a_field_is_reported_on_parameters(hosted: Hosted) -> None:
    hosted.fake.fail_next_create(
        422,
        invalid_fields=[
            {
                "type": "additional_property_not_allowed",
                "field": "input",
                "description": "Additional property foo is not allowed",
            }
        ],
    )
    with pytest.raises(InvalidInput) as exc:
        hosted.services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    assert exc.value.message == "Additional property foo is not allowed"
    assert exc.value.field == "parameters"


# -- hardening: ids, idempotency scope, rate limit ------------------------------------------------


def test_a_deleted_assets_id_is_never_handed_out_again(services: Services, admin: Principal) -> None:
    first, _ = services.generations.create(admin, "audio", audio())
    newest, _ = services.generations.create(admin, "audio", audio("another"))
    services.generations.delete(admin, "audio", newest.id)
    after, _ = services.generations.create(admin, "audio", audio("after the delete"))
    assert after.id > newest.id > first.id
    with pytest.raises(NotFound):
        services.generations.get(admin, "audio", newest.id)


def key_principal(services: Services, admin: Principal, clients: list[str]) -> Principal:
    """A principal as an API key limited to `clients` authenticates (same user, its own key id)."""
    _, token = services.auth.create_key(user_id=admin.user_id, name="k", clients=clients)
    principal = services.auth.authenticate_key(token)
    assert principal is not None and principal.key_id
    return principal


def test_idempotency_keys_are_scoped_to_the_api_key_that_sent_them(
    services: Services, admin: Principal
) -> None:
    acme = key_principal(services, admin, ["acme"])
    globex = key_principal(services, admin, ["globex"])
    mine, _ = services.generations.create(acme, "audio", audio(client_id="acme"), idempotency_key="shared")
    # Another key of the same user sends the same Idempotency-Key: its own, new asset, filed where
    # it asked, and never the other tenant's row.
    theirs, created = services.generations.create(
        globex, "audio", audio(client_id="globex"), idempotency_key="shared"
    )
    assert created and theirs.id != mine.id and theirs.client_id == "globex"
    replay, created_again = services.generations.create(
        globex, "audio", audio(client_id="globex"), idempotency_key="shared"
    )
    assert not created_again and replay.id == theirs.id


def test_the_rate_limit_counts_valid_requests_including_idempotent_ones(tmp_path: Path) -> None:
    services, _, admin = make_seeded_services(tmp_path / "data", generate_rate_limit_per_minute=3)
    try:
        for _ in range(5):  # invalid requests are refused on their own merits and do not count
            with pytest.raises(InvalidInput):
                services.generations.create(admin, "audio", audio(model="synth/nope"))
        first, _ = services.generations.create(admin, "audio", audio(), idempotency_key="a")
        services.generations.create(admin, "audio", audio(), idempotency_key="a")  # a replay: free
        services.generations.create(admin, "audio", audio(), idempotency_key="b")
        services.generations.create(admin, "audio", audio())
        with pytest.raises(RateLimited) as limited:  # a fresh key is a new request: it counts
            services.generations.create(admin, "audio", audio(), idempotency_key="c")
        assert 1 <= limited.value.retry_after <= 60 and status_for(limited.value) == 429
        again, created = services.generations.create(admin, "audio", audio(), idempotency_key="a")
        assert again.id == first.id and not created  # replays still answer while limited
    finally:
        services.close()
