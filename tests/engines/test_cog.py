"""CogEngine against a real Cog HTTP server running the test predictor (tests/fakes/cog_predictor).

The server is started once for the module (setup takes a second or two); every test leaves its
single prediction slot idle for the next. Webhooks are received by a small HTTP server of our own
on 127.0.0.1, exactly as the API's webhook route would receive them.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import socket
import struct
import threading
import time
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagen.engines.base import Engine, EngineError, Finished, InputError, Job, Submitted
from mediagen.engines.cog import CogEngine, prediction_id, state_from_cog_payload
from tests.fakes.cog_server import COG_PIP_SPEC, CogServer, find_cog_python

pytestmark = pytest.mark.timeout(60)
NO_COG = f"needs the Cog server: pip install '{COG_PIP_SPEC}'"
needs_cog = pytest.mark.skipif(find_cog_python() is None, reason=NO_COG)

Payload = dict[str, Any]
MISSING = object()  # marks an input a test leaves out


class WebhookReceiver:
    """Collects the JSON bodies Cog POSTs, and lets a test wait for the one it expects."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Payload]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver._changed:
                    receiver.events.append((self.path, body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self, ref: str) -> list[Payload]:
        with self._changed:
            return [body for _, body in self.events if body.get("id") == ref]

    def wait_for(self, ref: str, predicate: Callable[[Payload], bool], timeout: float = 15.0) -> Payload:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for _, body in self.events:
                    if body.get("id") == ref and predicate(body):
                        return body
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [body.get("status") for _, body in self.events if body.get("id") == ref]
                    raise AssertionError(f"no matching webhook for {ref}; statuses seen: {seen}")
                self._changed.wait(remaining)

    def wait_terminal(self, ref: str, timeout: float = 15.0) -> Payload:
        return self.wait_for(ref, lambda b: b.get("status") in {"succeeded", "failed", "canceled"}, timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CogServer]:
    if find_cog_python() is None:
        pytest.skip(NO_COG)
    server = CogServer(tmp_path_factory.mktemp("cog"))
    with server:
        yield server


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def engine(cog: CogServer) -> Iterator[CogEngine]:
    with CogEngine(base_url=cog.base_url) as eng:
        yield eng
    cog.wait_until_idle()  # the next test gets the single slot free


_generation_ids = itertools.count(1000)


def make_job(tmp_path: Path, hooks: WebhookReceiver, **inputs: Any) -> Job:
    generation_id = next(_generation_ids)
    return Job(
        generation_id=generation_id,
        kind="audio",
        model_id="meta/musicgen",
        inputs={"prompt": f"tone {generation_id}", "duration": 0.5, "seed": 7, **inputs},
        workdir=tmp_path,
        webhook_url=f"{hooks.url}/api/webhooks/cog/{generation_id}/secret-token",
    )


def expected_hz(prompt: str, seed: int) -> float:
    """The predictor's pitch rule (tests/fakes/cog_predictor/predict.py: tone_hz)."""
    return 220.0 + (zlib.crc32(prompt.encode("utf-8")) + seed) % 660


def submitted(result: object) -> Submitted:
    assert isinstance(result, Submitted), result
    return result


def test_engine_satisfies_the_protocol(engine: CogEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "cog"


def test_async_submit_delivers_start_and_completed_webhooks_with_a_wav(
    engine: CogEngine, cog: CogServer, hooks: WebhookReceiver, tmp_path: Path
) -> None:
    job = make_job(tmp_path, hooks, duration=0.75, seed=3)

    result = submitted(engine.submit(job))

    assert result.ref == prediction_id(job.generation_id, 1)
    assert result.provider_status in {"starting", "processing"}
    assert result.provider_input == job.inputs
    done = hooks.wait_terminal(result.ref, timeout=30.0)
    # The receiver handles each POST in its own thread, so the order they are listed in is not
    # the order they were sent in (and our intake does not rely on order): each kind arrived.
    statuses = [body["status"] for body in hooks.bodies(result.ref)]
    assert {"starting", "processing"} & set(statuses), statuses  # the "start" event
    assert "succeeded" in statuses and not {"failed", "canceled"} & set(statuses), statuses
    paths = {path for path, body in hooks.events if body.get("id") == result.ref}
    assert paths == {f"/api/webhooks/cog/{job.generation_id}/secret-token"}

    state = state_from_cog_payload(done)
    if not cog.inlines_async_files:
        assert state.status == "failed" and state.error is not None and "--upload-url" in state.error
        pytest.skip("cog<0.17 returns container paths for async predictions without --upload-url")
    assert state.ref == result.ref and state.status == "succeeded" and state.error is None
    [main] = state.outputs
    assert main.role == "main"
    assert main.url is not None and main.url.startswith("data:audio/")
    assert main.content_type in {"audio/wav", "audio/x-wav"}
    with wave.open(io.BytesIO(base64.b64decode(main.url.split(",", 1)[1]))) as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    assert len(samples) / rate == pytest.approx(0.75, abs=1e-3)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    assert crossings / 2 / 0.75 == pytest.approx(expected_hz(job.inputs["prompt"], 3), rel=0.02)


def test_repeated_submit_of_the_same_attempt_runs_one_prediction(
    engine: CogEngine, cog: CogServer, hooks: WebhookReceiver, tmp_path: Path
) -> None:
    job = make_job(tmp_path, hooks, sleep=1.0)

    first = submitted(engine.submit(job))
    second = submitted(engine.submit(job))  # e.g. the submit task ran again after a worker crash

    assert first.ref == second.ref
    hooks.wait_terminal(first.ref)
    assert cog.runs().count(job.inputs["prompt"]) == 1
    terminal = [b for b in hooks.bodies(first.ref) if b["status"] == "succeeded"]
    assert len(terminal) == 1


def test_a_busy_server_answers_retryable_409(
    engine: CogEngine, hooks: WebhookReceiver, tmp_path: Path
) -> None:
    slow = submitted(engine.submit(make_job(tmp_path, hooks, sleep=5.0)))
    try:
        with pytest.raises(EngineError) as caught:
            engine.submit(make_job(tmp_path, hooks))
        assert caught.value.retryable is True
        assert caught.value.status_code == 409
        assert "busy" in str(caught.value)
        assert engine.refresh(slow.ref).status == "processing"
    finally:
        engine.cancel(slow.ref)
    assert hooks.wait_terminal(slow.ref)["status"] == "canceled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": -1.0}, "duration"),  # below the model's minimum
        ({"seed": "seven"}, "seed"),  # wrong type
        ({"duration": MISSING}, "duration"),  # required and absent
    ],
)
def test_invalid_input_raises_input_error_naming_the_field(
    engine: CogEngine, cog: CogServer, hooks: WebhookReceiver, tmp_path: Path, change: Payload, field: str
) -> None:
    job = make_job(tmp_path, hooks, **change)
    for key in [key for key, value in job.inputs.items() if value is MISSING]:
        del job.inputs[key]
    runs_before = len(cog.runs())

    with pytest.raises(InputError) as caught:
        engine.submit(job)

    assert caught.value.field == field
    assert caught.value.retryable is False and caught.value.status_code == 422
    assert field in str(caught.value)
    assert len(cog.runs()) == runs_before


def test_a_failing_model_reports_failed_with_its_error(
    engine: CogEngine, hooks: WebhookReceiver, tmp_path: Path
) -> None:
    result = submitted(engine.submit(make_job(tmp_path, hooks, fail=True)))

    state = state_from_cog_payload(hooks.wait_terminal(result.ref))

    assert state.status == "failed"
    assert state.error is not None and "asked to fail" in state.error
    assert state.outputs == []


def test_cancel_stops_a_slow_prediction(engine: CogEngine, hooks: WebhookReceiver, tmp_path: Path) -> None:
    result = submitted(engine.submit(make_job(tmp_path, hooks, sleep=20.0)))
    hooks.wait_for(result.ref, lambda b: b["status"] in {"starting", "processing"})
    started = time.monotonic()

    engine.cancel(result.ref)

    state = state_from_cog_payload(hooks.wait_terminal(result.ref, timeout=10))
    assert state.status == "canceled"
    assert time.monotonic() - started < 10
    engine.cancel(result.ref)  # no longer known to Cog: 404, which is fine
    engine.cancel("mg-never-submitted")


def test_submit_without_a_webhook_url_fails_fast(
    engine: CogEngine, hooks: WebhookReceiver, tmp_path: Path
) -> None:
    job = replace(make_job(tmp_path, hooks), webhook_url=None)

    with pytest.raises(EngineError, match="MEDIAGEN_PUBLIC_URL") as caught:
        engine.submit(job)
    assert caught.value.retryable is False


@needs_cog
def test_a_starting_then_killed_server_gives_retryable_errors_quickly(
    tmp_path: Path, hooks: WebhookReceiver
) -> None:
    server = CogServer(tmp_path / "doomed", setup_seconds=2.0).start(wait_for_setup=False)
    try:
        slept: list[float] = []
        engine = CogEngine(base_url=server.base_url, timeout=httpx.Timeout(2.0), sleep=slept.append)

        # Setup (loading weights) still running: coglet says 503, cog<0.17 says 409; retry later.
        with pytest.raises(EngineError) as caught:
            engine.submit(make_job(tmp_path, hooks))
        assert caught.value.retryable is True
        if server.cog_version >= (0, 17):
            assert caught.value.status_code == 503 and "not ready" in str(caught.value)
        with pytest.raises(EngineError, match="STARTING") as caught:
            engine.refresh("mg-1-1")
        assert caught.value.retryable is True

        server.wait_until_idle()
        assert engine.refresh("mg-1-1").status == "processing"
        server.kill()

        started = time.monotonic()
        with pytest.raises(EngineError) as caught:
            engine.submit(make_job(tmp_path, hooks))
        assert time.monotonic() - started < 2
        assert caught.value.retryable is True
        assert server.base_url in str(caught.value) and "unreachable" in str(caught.value)
        assert slept == [0.2, 0.4]  # connect failures are retried briefly, then reported

        with pytest.raises(EngineError, match="unreachable") as caught:
            engine.refresh("mg-1-1")
        assert caught.value.retryable is True
        with pytest.raises(EngineError, match="unreachable"):
            engine.cancel("mg-1-1")
        engine.close()
    finally:
        server.stop()


def test_a_hung_server_is_bounded_by_the_timeout(tmp_path: Path, hooks: WebhookReceiver) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with CogEngine(base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(0.5)) as engine:
            started = time.monotonic()
            with pytest.raises(EngineError, match="did not answer") as caught:
                engine.submit(make_job(tmp_path, hooks))
            assert time.monotonic() - started < 2
            assert caught.value.retryable is True


def test_an_unbounded_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="bounded"):
        CogEngine(base_url="http://127.0.0.1:1", timeout=httpx.Timeout(None))


# -- state_from_cog_payload on its own -----------------------------------------------------------


def test_payload_mapping_covers_every_cog_status() -> None:
    for status in ("starting", "processing", "canceled"):
        assert state_from_cog_payload({"id": "p", "status": status}).status == status
    running = state_from_cog_payload(
        {"id": "p", "status": "processing", "output": "data:audio/wav;base64,AA==", "logs": "abc"}
    )
    assert running.outputs == [] and running.logs_length == 3  # partial output is not ingested
    done = state_from_cog_payload(
        {
            "id": "p",
            "status": "succeeded",
            "output": {"audio": "data:audio/wav;base64,AA==", "spectrogram": "data:image/png;base64,AA=="},
            "metrics": {"predict_time": 1.5},
        }
    )
    assert [(o.role, o.content_type) for o in done.outputs] == [
        ("main", "audio/wav"),
        ("spectrogram", "image/png"),
    ]
    assert done.metrics == {"predict_time": 1.5}
    failed = state_from_cog_payload({"id": "p", "status": "failed", "error": "boom"})
    assert (failed.status, failed.error) == ("failed", "boom")


@pytest.mark.parametrize(
    "payload", [{"status": "succeeded"}, {"id": "p", "status": "weird"}, {"id": "", "status": "failed"}]
)
def test_payload_mapping_rejects_what_is_not_a_cog_prediction(payload: Payload) -> None:
    with pytest.raises(ValueError):
        state_from_cog_payload(payload)


def test_a_container_path_output_reads_as_a_failure_naming_the_fix() -> None:
    state = state_from_cog_payload({"id": "p", "status": "succeeded", "output": "/tmp/out/tone.wav"})

    assert state.status == "failed"
    assert state.error is not None and "--upload-url" in state.error


# -- answers the test predictor cannot provoke, replayed through httpx.MockTransport -------------


def mocked_engine(handler: Callable[[httpx.Request], httpx.Response]) -> CogEngine:
    return CogEngine(base_url="http://cog.test:5000", transport=httpx.MockTransport(handler))


def test_a_server_that_ignores_respond_async_returns_finished(hooks: WebhookReceiver, tmp_path: Path) -> None:
    body = {"status": "succeeded", "output": ["data:audio/wav;base64,AA=="], "metrics": {"predict_time": 0.1}}
    engine = mocked_engine(lambda request: httpx.Response(200, json=body))

    result = engine.submit(make_job(tmp_path, hooks))

    assert isinstance(result, Finished)
    assert [(o.role, o.url) for o in result.outputs] == [("main", "data:audio/wav;base64,AA==")]


@pytest.mark.parametrize(
    ("response", "retryable", "text"),
    [
        (httpx.Response(500, text="oops"), True, "answered 500"),
        (httpx.Response(400, json={"detail": "bad request"}), False, "bad request"),
        (
            httpx.Response(422, json={"detail": [{"loc": ["body", "id"], "msg": "must match", "type": "x"}]}),
            False,
            "body.id: must match",
        ),
    ],
)
def test_other_answers_map_to_engine_errors(
    hooks: WebhookReceiver, tmp_path: Path, response: httpx.Response, retryable: bool, text: str
) -> None:
    engine = mocked_engine(lambda request: response)

    with pytest.raises(EngineError, match=text) as caught:
        engine.submit(make_job(tmp_path, hooks))

    assert not isinstance(caught.value, InputError)
    assert caught.value.retryable is retryable


def test_refresh_reports_a_failed_setup_as_final() -> None:
    health = {"status": "SETUP_FAILED", "setup": {"status": "failed", "logs": "CUDA out of memory"}}
    engine = mocked_engine(lambda request: httpx.Response(200, json=health))

    with pytest.raises(EngineError, match="CUDA out of memory") as caught:
        engine.refresh("mg-1-1")

    assert caught.value.retryable is False


def test_submit_sends_the_documented_request(hooks: WebhookReceiver, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "mg-1-1", "status": "starting"})

    job = replace(make_job(tmp_path, hooks), attempt=2)
    mocked_engine(handler).submit(job)

    [request] = seen
    ref = prediction_id(job.generation_id, 2)
    assert ref == f"mg-{job.generation_id}-2"  # a new attempt is a new prediction
    assert (request.method, request.url.path) == ("PUT", f"/predictions/{ref}")
    assert request.headers["Prefer"] == "respond-async"
    assert json.loads(request.content) == {
        "id": ref,
        "input": job.inputs,
        "webhook": job.webhook_url,
        "webhook_events_filter": ["start", "completed"],
    }
