"""ReplicateEngine against the fake Replicate API (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mediagen.engines.base import Engine, EngineError, InputError, Job, State, Submitted
from mediagen.engines.downloads import DownloadError, download
from mediagen.engines.replicate import ReplicateEngine, state_from_prediction
from tests.fakes.replicate_server import FakeReplicate, Script, default_content

pytestmark = pytest.mark.timeout(60)

MUSICGEN = "meta/musicgen"
MUSICGEN_VERSION = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"
FLUX = "black-forest-labs/flux-schnell"
SEEDANCE = "bytedance/seedance-1-lite"
RIFFUSION = "riffusion/riffusion"
FAST = Script(start_after=0.02, run_for=0.05)
_ids = itertools.count(1)


class Sleeps(list[float]):
    """Stands in for time.sleep: records each wait and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        for model in server.models:
            server.scripts[model] = FAST
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


EngineFactory = Callable[..., ReplicateEngine]


@pytest.fixture
def make_engine(fake: FakeReplicate, sleeps: Sleeps) -> Iterator[EngineFactory]:
    engines: list[ReplicateEngine] = []

    def factory(**overrides: Any) -> ReplicateEngine:
        def version_for(model_id: str) -> str | None:
            model = fake.models[model_id]
            return None if model.official else model.versions[0]

        kwargs: dict[str, Any] = {
            "token": fake.token,
            "base_url": fake.base_url,
            "timeout": httpx.Timeout(5.0, connect=2.0),
            "version_for": version_for,
            "is_official": lambda model_id: fake.models[model_id].official,
            "sleep": sleeps,
            "main_key_for": lambda model_id: "audio" if model_id == RIFFUSION else None,
        }
        kwargs.update(overrides)
        engine = ReplicateEngine(**kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: EngineFactory) -> ReplicateEngine:
    return make_engine()


def job(tmp_path: Path, model: str = MUSICGEN, webhook_url: str | None = None, **inputs: Any) -> Job:
    kind = "video" if model == SEEDANCE else "image" if model == FLUX else "audio"
    return Job(
        generation_id=next(_ids),
        kind=kind,
        model_id=model,
        inputs=inputs or {"prompt": "upbeat electronic with heavy bass"},
        workdir=tmp_path,
        webhook_url=webhook_url,
    )


def wait_state(
    engine: ReplicateEngine, ref: str, predicate: Callable[[State], bool], timeout: float = 5
) -> State:
    deadline = time.monotonic() + timeout
    while True:
        state = engine.refresh(ref)
        if predicate(state):
            return state
        assert time.monotonic() < deadline, f"state never matched; last {state}"
        time.sleep(0.02)


def terminal(state: State) -> bool:
    return state.status in ("succeeded", "failed", "canceled", "aborted")


# --- creating ---------------------------------------------------------------------------------------


def test_is_an_engine(engine: ReplicateEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "replicate"


def test_official_model_uses_models_endpoint_with_exact_body(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    submitted = engine.submit(job(tmp_path, SEEDANCE, prompt="a fox", duration=5))
    assert isinstance(submitted, Submitted)
    [request] = fake.create_requests
    assert request.path == f"/v1/models/{SEEDANCE}/predictions"
    assert request.json == {"input": {"prompt": "a fox", "duration": 5}}
    assert request.headers["authorization"] == f"Bearer {fake.token}"
    assert submitted.ref in fake.predictions
    assert submitted.provider_status == "starting"
    assert submitted.provider_input == {"prompt": "a fox", "duration": 5}


def test_community_model_uses_predictions_with_version(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    submitted = engine.submit(job(tmp_path, MUSICGEN, prompt="calm piano", duration=8))
    [request] = fake.create_requests
    assert request.path == "/v1/predictions"
    assert request.json == {"version": MUSICGEN_VERSION, "input": {"prompt": "calm piano", "duration": 8}}
    assert fake.predictions[submitted.ref].version == MUSICGEN_VERSION


def test_pinned_version_may_name_the_model(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    engine = make_engine(version_for=lambda m: f"{m}:{MUSICGEN_VERSION}", is_official=lambda m: False)
    engine.submit(job(tmp_path, MUSICGEN))
    assert fake.create_requests[0].json["version"] == MUSICGEN_VERSION


def test_unpinned_community_model_runs_latest_version(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    engine = make_engine(version_for=lambda m: None, is_official=lambda m: False)
    engine.submit(job(tmp_path, MUSICGEN))
    engine.submit(job(tmp_path, MUSICGEN))
    assert [r.json["version"] for r in fake.create_requests] == [MUSICGEN_VERSION] * 2
    assert len(fake.requests_to("GET", f"/v1/models/{MUSICGEN}")) == 1  # looked up once


def test_webhook_is_tagged_and_filtered(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    j = job(tmp_path, MUSICGEN, webhook_url="https://mediagen.example/api/webhooks/replicate?x=1")
    engine.submit(j)
    body = fake.create_requests[0].json
    assert body["webhook_events_filter"] == ["start", "completed"]
    hook = urlsplit(body["webhook"])
    assert (hook.scheme, hook.netloc, hook.path) == ("https", "mediagen.example", "/api/webhooks/replicate")
    query = parse_qs(hook.query)
    assert query["gen"] == [str(j.generation_id)] and query["x"] == ["1"] and len(query["nonce"][0]) == 32


def test_engine_default_webhook_url_applies(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    engine = make_engine(webhook_url="https://mediagen.example/hook")
    engine.submit(job(tmp_path))
    assert fake.create_requests[0].json["webhook"].startswith("https://mediagen.example/hook?gen=")


def test_cancel_after_header(make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path) -> None:
    engine = make_engine(cancel_after="30m")
    ref = engine.submit(job(tmp_path)).ref
    assert fake.create_requests[0].headers["cancel-after"] == "30m"
    assert fake.prediction_json(ref)["deadline"] is not None


def test_bad_model_id_is_refused_before_any_request(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match="owner/name"):
        engine.submit(job(tmp_path, "musicgen"))
    assert fake.requests == []


# --- create errors ------------------------------------------------------------------------------------


def test_invalid_enum_names_the_field(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        engine.submit(job(tmp_path, MUSICGEN, prompt="x", output_format="ogg"))
    assert info.value.field == "output_format"
    assert "output_format must be one of the following" in str(info.value)
    assert info.value.status_code == 422 and not info.value.retryable
    assert len(fake.create_requests) == 1 and fake.predictions == {}


def test_missing_required_input_names_the_field(engine: ReplicateEngine, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        engine.submit(job(tmp_path, SEEDANCE, duration=5))
    assert info.value.field == "prompt"
    assert str(info.value) == "prompt is required"


def test_out_of_range_number_names_the_field(engine: ReplicateEngine, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        engine.submit(job(tmp_path, FLUX, prompt="x", num_inference_steps=9))
    assert info.value.field == "num_inference_steps"


def test_scripted_422_invalid_fields(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    fake.fail_next_create(
        422,
        invalid_fields=[{"type": "number_lte", "field": "input.duration", "description": "Must be <= 30"}],
    )
    with pytest.raises(InputError) as info:
        engine.submit(job(tmp_path))
    assert (info.value.field, str(info.value)) == ("duration", "Must be <= 30")


def test_bad_version_is_an_engine_error_not_an_input_error(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(version_for=lambda m: "0" * 64, is_official=lambda m: False)
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert not isinstance(info.value, InputError)
    assert info.value.status_code == 422 and "Invalid version" in str(info.value)


def test_wrong_token_message(make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path) -> None:
    engine = make_engine(token="r8_wrong")
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert str(info.value) == "Replicate rejected the API token (401): check REPLICATE_API_TOKEN"
    assert info.value.status_code == 401 and not info.value.retryable
    assert fake.predictions == {}


def test_scripted_401_and_402_messages(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    fake.fail_next_create(401)
    with pytest.raises(EngineError, match=r"^Replicate rejected the API token \(401\)"):
        engine.submit(job(tmp_path))
    fake.fail_next_create(402)
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert str(info.value) == "Replicate account has no credit (402): add billing at replicate.com"
    assert info.value.status_code == 402 and not info.value.retryable
    assert len(fake.create_requests) == 2 and fake.predictions == {}


def test_429_waits_ratelimit_reset_then_creates_once(
    engine: ReplicateEngine, fake: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake.fail_next_create(429, ratelimit_reset=7)
    submitted = engine.submit(job(tmp_path))
    assert sleeps == [7.0]
    assert len(fake.create_requests) == 2
    assert list(fake.predictions) == [submitted.ref]
    assert fake.requests_to("GET", "/v1/predictions") == []  # a 429 created nothing: no check needed


def test_429_prefers_retry_after(
    engine: ReplicateEngine, fake: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake.fail_next_create(429, ratelimit_reset=30, retry_after="2")
    engine.submit(job(tmp_path))
    assert sleeps == [2.0]
    assert len(fake.predictions) == 1


def test_429_beyond_budget_gives_up_without_waiting(
    engine: ReplicateEngine, fake: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake.fail_next_create(429, ratelimit_reset=120)
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert info.value.retryable and info.value.status_code == 429
    assert sleeps == [] and fake.predictions == {}


def test_503_is_retried_and_creates_once(
    engine: ReplicateEngine, fake: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake.fail_next_create(503, times=2)
    submitted = engine.submit(job(tmp_path))
    assert len(fake.create_requests) == 3 and list(fake.predictions) == [submitted.ref]
    assert len(sleeps) == 2 and all(0 < s <= 8 for s in sleeps)
    # a 5xx is ambiguous, so each retry was preceded by a look for an existing prediction
    assert len(fake.requests_to("GET", "/v1/predictions")) == 2


def test_5xx_after_the_prediction_was_made_adopts_it(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.fail_next_create(500, create_anyway=True)
    submitted = engine.submit(job(tmp_path, webhook_url="https://mediagen.example/hook"))
    assert len(fake.create_requests) == 1
    assert list(fake.predictions) == [submitted.ref]


def test_persistent_5xx_is_bounded(
    engine: ReplicateEngine, fake: FakeReplicate, sleeps: Sleeps, tmp_path: Path
) -> None:
    fake.fail_next_create(503, times=20)
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert info.value.retryable and info.value.status_code == 503
    assert len(fake.create_requests) == 5 and len(sleeps) == 4
    assert fake.predictions == {}


@pytest.mark.parametrize("webhook", [True, False], ids=["tagged-by-webhook", "matched-by-input"])
def test_timed_out_create_is_adopted_not_duplicated(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path, webhook: bool
) -> None:
    # Replicate made the prediction, but the answer came after our read timeout.
    engine = make_engine(timeout=httpx.Timeout(0.3, connect=2.0))
    other = make_engine()
    other.submit(job(tmp_path, prompt="someone else's prompt"))  # must not be mistaken for ours
    j = job(tmp_path, webhook_url="https://mediagen.example/hook" if webhook else None, prompt="ours")
    fake.slow_next_create(1.0, create_first=True)
    submitted = engine.submit(j)
    ours = [p for p in fake.predictions.values() if p.input == {"prompt": "ours"}]
    assert [p.id for p in ours] == [submitted.ref]
    assert len([r for r in fake.create_requests if r.json["input"] == {"prompt": "ours"}]) == 1


def test_create_that_lands_late_is_still_adopted(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    # The prediction only appears after the client gave up; the backoff before the check covers it.
    engine = make_engine(timeout=httpx.Timeout(0.2, connect=2.0), sleep=time.sleep)
    fake.slow_next_create(0.4, create_first=False)
    submitted = engine.submit(job(tmp_path, webhook_url="https://mediagen.example/hook"))
    assert list(fake.predictions) == [submitted.ref]
    assert len(fake.create_requests) == 1


def test_same_input_twice_makes_two_predictions(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    a = engine.submit(job(tmp_path, prompt="same"))
    b = engine.submit(job(tmp_path, prompt="same"))
    assert a.ref != b.ref and len(fake.predictions) == 2


def test_connect_error_gives_retryable_error(
    make_engine: EngineFactory, sleeps: Sleeps, tmp_path: Path
) -> None:
    engine = make_engine(base_url="http://127.0.0.1:1/v1")
    with pytest.raises(EngineError) as info:
        engine.submit(job(tmp_path))
    assert info.value.retryable
    assert len(sleeps) == 4


def test_find_existing_after_a_crash(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    j = job(tmp_path, webhook_url="https://mediagen.example/hook")
    submitted = engine.submit(j)
    engine.submit(job(tmp_path, webhook_url="https://mediagen.example/hook"))  # another generation
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = engine.find_existing(j, since=since)
    assert found is not None and found.ref == submitted.ref
    assert (
        engine.find_existing(job(tmp_path, webhook_url="https://mediagen.example/hook"), since=since) is None
    )
    assert engine.find_existing(job(tmp_path), since=since) is None  # untagged: cannot tell


# --- lifecycle ------------------------------------------------------------------------------------------


def test_refresh_follows_lifecycle_to_success(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0.15, run_for=0.15)
    ref = engine.submit(job(tmp_path)).ref
    seen = [engine.refresh(ref).status]
    state = wait_state(engine, ref, lambda s: seen.append(s.status) or terminal(s))
    assert seen[0] == "starting" and "processing" in seen
    assert state.status == "succeeded" and state.error is None
    [main] = state.outputs
    assert main.role == "main" and main.content_type == "audio/wav"
    assert state.metrics["predict_time"] == pytest.approx(0.15, abs=0.01)
    assert state.logs_length > 0 and not state.data_removed
    result = download(
        main.url or "", tmp_path / "out.wav", max_bytes=1 << 20, allowed=[fake.delivery_allow_entry]
    )
    assert result.path.read_bytes() == default_content("audio")[0]


def test_output_bytes_come_from_the_test(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.content["audio"] = (b"ID3fake-mp3-bytes", "audio/mpeg", "mp3")
    ref = engine.submit(job(tmp_path)).ref
    state = wait_state(engine, ref, terminal)
    assert state.outputs[0].content_type == "audio/mpeg"
    assert httpx.get(state.outputs[0].url or "").content == b"ID3fake-mp3-bytes"


@pytest.mark.parametrize(
    ("model", "shape", "expected_roles"),
    [
        (MUSICGEN, "uri", ["main"]),
        (FLUX, "uri_list", ["main", "output_1"]),
        (RIFFUSION, "object", ["main", "spectrogram"]),
        (MUSICGEN, "data_url", ["main"]),
        (MUSICGEN, "text", []),
    ],
)
def test_output_shapes(
    engine: ReplicateEngine,
    fake: FakeReplicate,
    tmp_path: Path,
    model: str,
    shape: Any,
    expected_roles: list[str],
) -> None:
    fake.scripts[model] = Script(start_after=0, run_for=0.02, output=shape)
    inputs = {"prompt_a": "jazz"} if model == RIFFUSION else {"prompt": "x"}
    ref = engine.submit(job(tmp_path, model, **inputs)).ref
    state = wait_state(engine, ref, terminal)
    assert [o.role for o in state.outputs] == expected_roles
    if shape == "object":
        assert state.outputs[0].content_type == "audio/wav"
        assert state.outputs[1].content_type == "image/png"
    if shape == "data_url":
        assert (state.outputs[0].url or "").startswith("data:audio/wav;base64,")


def test_failed_prediction_reports_error(
    engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.scripts[MUSICGEN] = Script(
        start_after=0, run_for=0.02, status="failed", error="input_audio needs melody"
    )
    ref = engine.submit(job(tmp_path)).ref
    state = wait_state(engine, ref, terminal)
    assert (state.status, state.error, state.outputs) == ("failed", "input_audio needs melody", [])


def test_canceled_by_provider(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0, run_for=0.02, status="canceled")
    state = wait_state(engine, engine.submit(job(tmp_path)).ref, terminal)
    assert state.status == "canceled" and state.outputs == []


def test_deadline_before_start_aborts(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=60, run_for=1)
    engine = make_engine(cancel_after="5s")
    ref = engine.submit(job(tmp_path)).ref
    fake.advance(6)
    state = engine.refresh(ref)
    assert state.status == "aborted"
    assert state.error is not None and "deadline" in state.error
    assert fake.prediction_json(ref)["started_at"] is None


def test_deadline_while_running_cancels(
    make_engine: EngineFactory, fake: FakeReplicate, tmp_path: Path
) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0, run_for=60)
    engine = make_engine(cancel_after="5s")
    ref = engine.submit(job(tmp_path)).ref
    fake.advance(6)
    assert engine.refresh(ref).status == "canceled"


def test_cancel(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    fake.scripts[MUSICGEN] = Script(start_after=0, run_for=60)
    ref = engine.submit(job(tmp_path)).ref
    engine.cancel(ref)
    assert len(fake.requests_to("POST", f"/v1/predictions/{ref}/cancel")) == 1
    assert engine.refresh(ref).status == "canceled"
    engine.cancel(ref)  # cancelling a finished prediction is harmless
    assert engine.refresh(ref).status == "canceled"


def test_data_removed_after_an_hour(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    ref = engine.submit(job(tmp_path)).ref
    state = wait_state(engine, ref, terminal)
    url = state.outputs[0].url or ""
    fake.advance(3601)
    removed = engine.refresh(ref)
    assert removed.status == "succeeded" and removed.data_removed and removed.outputs == []
    assert fake.prediction_json(ref)["output"] is None
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "late", max_bytes=1 << 20, allowed=[fake.delivery_allow_entry])
    assert info.value.expired


def test_refresh_unknown_prediction(engine: ReplicateEngine) -> None:
    with pytest.raises(EngineError) as info:
        engine.refresh("doesnotexist")
    assert info.value.status_code == 404 and not info.value.retryable


# --- files, models, secrets -----------------------------------------------------------------------


def test_upload_file(engine: ReplicateEngine, fake: FakeReplicate, tmp_path: Path) -> None:
    melody = tmp_path / "melody.wav"
    melody.write_bytes(default_content("audio")[0])
    url = engine.upload_file(melody, "audio/wav")
    [request] = fake.requests_to("POST", "/v1/files")
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="content"; filename="melody.wav"' in request.body
    file_id = url.rsplit("/", 1)[-1]
    assert fake.files[file_id]["_data"] == melody.read_bytes()
    assert fake.files[file_id]["content_type"] == "audio/wav"
    headers = {"Authorization": f"Bearer {fake.token}"}
    assert httpx.get(url, headers=headers).json()["size"] == melody.stat().st_size
    assert httpx.get(url + "/download", headers=headers).content == melody.read_bytes()
    with pytest.raises(InputError):
        engine.upload_file(melody, "audio/wav", max_bytes=10)


def test_get_model_and_version(engine: ReplicateEngine) -> None:
    model = engine.get_model("meta", "musicgen")
    assert model["latest_version"]["id"] == MUSICGEN_VERSION
    schema = model["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]
    assert "prompt" in schema["properties"]
    assert engine.get_version("meta", "musicgen", MUSICGEN_VERSION)["id"] == MUSICGEN_VERSION


def test_webhook_secret_is_cached(engine: ReplicateEngine, fake: FakeReplicate) -> None:
    assert engine.fetch_webhook_secret() == fake.webhook_secret
    assert engine.fetch_webhook_secret() == fake.webhook_secret
    assert len(fake.requests_to("GET", "/v1/webhooks/default/secret")) == 1
    engine.fetch_webhook_secret(refresh=True)
    assert len(fake.requests_to("GET", "/v1/webhooks/default/secret")) == 2


def test_pagination_never_follows_next_to_another_origin(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/predictions") and request.method == "GET":
            return httpx.Response(200, json={"next": "https://evil.example/steal?cursor=2", "results": []})
        if request.method == "POST":
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(404)

    engine = ReplicateEngine(
        token="r8_secret",
        base_url="https://api.replicate.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
        max_attempts=2,
    )
    with pytest.raises(EngineError):
        engine.submit(job(tmp_path, SEEDANCE))
    assert not any("evil.example" in url for url in seen)


# --- state_from_prediction ---------------------------------------------------------------------------


def test_state_from_prediction_reads_fields() -> None:
    state = state_from_prediction(
        {
            "id": "abc",
            "status": "succeeded",
            "output": {
                "spectrogram": "https://replicate.delivery/s.png",
                "audio": "https://replicate.delivery/a.wav",
            },
            "logs": "12345",
            "metrics": {"predict_time": 1.5},
            "error": None,
        },
        main_key="audio",
    )
    assert state.ref == "abc" and state.status == "succeeded"
    assert [(o.role, o.url) for o in state.outputs] == [
        ("main", "https://replicate.delivery/a.wav"),
        ("spectrogram", "https://replicate.delivery/s.png"),
    ]
    assert state.logs_length == 5 and state.metrics == {"predict_time": 1.5}


def test_state_from_prediction_tolerates_odd_payloads() -> None:
    assert state_from_prediction({"id": "x", "status": "warming_up"}).status == "processing"
    assert state_from_prediction({"id": "x", "status": "failed", "error": {"code": 1}}).error == '{"code": 1}'
    assert state_from_prediction({"id": "x", "status": "failed"}).error
    removed = state_from_prediction(
        {"id": "x", "status": "succeeded", "output": "https://a/b.wav", "data_removed": True}
    )
    assert removed.data_removed and removed.outputs == []
    empty = state_from_prediction({})
    assert (empty.ref, empty.status, empty.metrics, empty.logs_length) == ("", "processing", {}, 0)


def test_unreadable_create_answer_is_treated_as_maybe_created(tmp_path: Path) -> None:
    created = {"id": "p1", "status": "starting", "model": SEEDANCE, "input": {"prompt": "x"}, "webhook": None}
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(201, content=b"<html>proxy hiccup</html>")
        return httpx.Response(200, json={"next": None, "results": [created]})

    engine = ReplicateEngine(
        token="r8_x",
        base_url="https://api.replicate.test/v1",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    assert engine.submit(job(tmp_path, SEEDANCE, prompt="x")).ref == "p1"
    assert calls == [f"POST /v1/models/{SEEDANCE}/predictions", "GET /v1/predictions"]
