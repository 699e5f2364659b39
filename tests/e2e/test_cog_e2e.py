"""`meta/musicgen` routed to a self-hosted Cog server (MEDIAGEN_COG_ROUTES), end to end.

The Cog server is the real one (`python -m cog.server.http` from the `cog` package, coglet for
cog>=0.17) serving tests/fakes/cog_predictor, a tiny sine-tone model. The live `mediagen serve`
creates predictions with an idempotent async PUT and learns the outcome from Cog's webhook (Cog
cannot be polled); the output comes back as a data: URL.

Inputs: the catalog sends every MusicGen input (model_version, top_k, …), more than this predictor
takes. Cog's server strips unknown inputs with a warning (coglet; see reference §10), so the engine
sends the catalog's inputs unchanged and the model's own schema stays the judge: a missing required
input is Cog's 422, which reaches the caller as our 422 naming the field.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zlib
from collections.abc import Iterator
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import LiveServer, free_port, make_server
from tests.fakes.cog_server import COG_PIP_SPEC, CogServer, find_cog_python

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        find_cog_python() is None, reason=f"cog is not installed (pip install '{COG_PIP_SPEC}')"
    ),
]

DEAD_MODEL = "stackadoc/stable-audio-open-1.0"


def tone_hz(prompt: str, seed: int) -> float:
    """The predictor's pitch for a prompt and seed (tests/fakes/cog_predictor/predict.py)."""
    return 220.0 + (zlib.crc32(prompt.encode("utf-8")) + seed) % 660


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CogServer]:
    server = CogServer(tmp_path_factory.mktemp("cog"))
    server.start()
    if not server.inlines_async_files:
        server.stop()
        pytest.skip("cog<0.17 returns container paths for async predictions; these tests need coglet")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def srv(cog: CogServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    routes = {"meta/musicgen": cog.base_url, DEAD_MODEL: dead}
    server = make_server(
        tmp_path_factory.mktemp("cog-srv"),
        MEDIAGEN_COG_ROUTES=json.dumps(routes),
        MEDIAGEN_RECONCILE_INTERVAL_SECONDS="0.5",
    ).start()
    yield server
    server.stop()


def generate(srv: LiveServer, body: dict[str, Any], expect: int = 202) -> dict[str, Any]:
    with srv.client() as c:
        r = c.post("/api/v2/generate/audio", json=body)
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        return pcm.astype(np.float64), stream.rate


def test_generation_completes_through_cogs_webhook(srv: LiveServer, cog: CogServer) -> None:
    body = {"prompt": "a low hum for the cog test", "duration": 2, "seed": 5}
    created = generate(srv, body)
    assert created["model"] == "meta/musicgen" and created["engine"] == "cog:meta/musicgen"
    item = srv.wait_for("audio", created["audio_id"], timeout=30)
    assert item["status"] == "completed", item
    assert item["engine"] == "cog:meta/musicgen" and item["content_type"] == "audio/wav"
    assert abs(item["duration"] - 2.0) < 0.01 and item["derivations"] == ["waveform"]
    assert cog.runs().count(body["prompt"]) == 1  # one prediction ran, not two
    with srv.client() as c:
        data = c.get(item["audio_url"]).content
    pcm, rate = decode(data)
    assert rate == 16000 and abs(len(pcm) / rate - 2.0) < 0.01
    spectrum = np.abs(np.fft.rfft(pcm))
    peak = np.argmax(spectrum) * rate / len(pcm)
    assert abs(peak - tone_hz(body["prompt"], body["seed"])) < 2  # the bytes the model made
    # MusicGen's extra inputs were stripped by Cog, not refused
    assert "Stripped unknown input fields" in cog.log_tail(200)


def test_a_required_seed_is_filled_and_a_bad_input_is_our_422(srv: LiveServer, cog: CogServer) -> None:
    # The model requires `seed`: a request without one gets a fresh random seed (a new take),
    # stored on the asset and sent to the model.
    made = generate(srv, {"prompt": "no seed given", "duration": 1})
    item = srv.wait_for("audio", made["audio_id"], timeout=60)
    assert item["status"] == "completed", item
    assert isinstance(item["seed"], int) and item["parameters"]["seed"] == item["seed"]
    assert "no seed given" in cog.runs()
    # An input the model's schema refuses never reaches it, and no row is kept.
    with srv.client() as c:
        before = c.get("/api/audio", params={"limit": 1}).json()["total"]
    r = generate(srv, {"prompt": "bad sleep", "duration": 1, "parameters": {"sleep": -1}}, expect=422)
    assert r["errors"][0]["field"] == "parameters.sleep", r
    with srv.client() as c:
        assert c.get("/api/audio", params={"limit": 1}).json()["total"] == before
    assert "bad sleep" not in cog.runs()


def test_failing_prediction_ends_failed_with_the_error(srv: LiveServer, cog: CogServer) -> None:
    # The model crashes at run time: its runs log cannot be opened (a directory replaced by a file).
    shutil.rmtree(cog.runs_dir)
    cog.runs_dir.write_text("not a directory")
    try:
        created = generate(srv, {"prompt": "this run crashes", "duration": 1, "seed": 1})
        item = srv.wait_for("audio", created["audio_id"], timeout=30)
    finally:
        cog.runs_dir.unlink()
        cog.runs_dir.mkdir()
    assert item["status"] == "failed", item
    assert "NotADirectoryError" in item["error"] and item["data_url"] is None
    cog.wait_until_idle()
    again = srv.wait_for(
        "audio", generate(srv, {"prompt": "works again", "duration": 1, "seed": 2})["audio_id"], timeout=30
    )
    assert again["status"] == "completed", again


def test_dead_cog_url_fails_after_its_attempts(srv: LiveServer) -> None:
    t0 = time.monotonic()
    created = generate(srv, {"prompt": "nobody home", "model": DEAD_MODEL, "duration": 2})
    assert created["engine"] == f"cog:{DEAD_MODEL}" and created["status"] == "pending"
    item = srv.wait_for("audio", created["audio_id"], timeout=60)
    elapsed = time.monotonic() - t0
    assert item["status"] == "failed", item
    assert "is unreachable" in item["error"] and "Cog server at http://127.0.0.1:" in item["error"], item
    assert elapsed < 30
    with srv.client() as c:
        assert c.get(f"/api/audio/{item['id']}").json()["status"] == "failed"


def test_cog_route_is_listed_as_available(srv: LiveServer) -> None:
    with srv.client() as c:
        model = c.get("/api/models/meta/musicgen").json()
    assert model["available"] and model["engine"] == "cog:meta/musicgen"
