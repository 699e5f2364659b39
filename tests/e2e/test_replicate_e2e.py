"""The hosted-model path end to end: a live `mediagen serve` against the fake Replicate server.

Two scenario groups, each with one fake and one server (class-scoped, so the file stays quick):
- `TestWebhooks`: MEDIAGEN_PUBLIC_URL set, so predictions call back signed webhooks; the poller is
  only the safety net (lost webhooks);
- `TestPolling`: no public URL, so every job is finished by polling; provider errors and download
  failures live here too (they do not depend on how the outcome arrives).
Every scenario ends in the right state with nothing lost and nothing duplicated: the fake records
every request, the server's SQLite file shows blob reference counts and derivations.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import secrets
import sqlite3
import struct
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from mediagen.engines.webhook_signing import signed_headers
from tests.conftest import LiveServer, make_server
from tests.fakes.replicate_server import FakePrediction, FakeReplicate, Script

pytestmark = pytest.mark.timeout(120)

MUSICGEN_VERSION = "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb"
RIFFUSION_VERSION = "8cf61ea6c56afd61d8f5b9ffd14d7c216c0a93844ce2d82ac1c9ecc9c7f24e05"
SEED_MUSICGEN = {
    "prompt": "upbeat electronic dance music with heavy bass",
    "campaign_id": "campaign_123",
    "duration": 10,
}
SEED_RIFFUSION = {
    "prompt": "ambient lo-fi hip hop beats",
    "campaign_id": "campaign_123",
    "model": "riffusion/riffusion",
}
FAST = Script(start_after=0.05, run_for=0.1)
LONG = Script(start_after=0.05, run_for=60)


# -- helpers ------------------------------------------------------------------------------------


def wav_tone(seed: str, seconds: float = 0.25, rate: int = 16000) -> bytes:
    """A short WAV whose pitch depends on `seed`, ending in the seed's digest as its last 16 samples:
    every prediction's bytes differ, so blob reference counts show whether one output was stored once."""
    digest = hashlib.sha256(seed.encode()).digest()
    hz = 200 + int.from_bytes(digest[:4], "big") % 80000 / 100
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / rate)))
                for i in range(int(seconds * rate) - len(digest) // 2)
            )
            + digest
        )
    return buf.getvalue()


def png_tile(seed: str, size: int = 16) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    buf = io.BytesIO()
    Image.new("RGB", (size, size), tuple(digest[:3])).save(buf, format="PNG")
    return buf.getvalue()


def unique_content(p: FakePrediction, index: int, role: str) -> tuple[bytes, str, str] | None:
    """Different bytes for every output of every prediction (the fake's defaults are shared)."""
    if p.model.kind == "audio" and role != "spectrogram":
        return wav_tone(f"{p.id}/{index}"), "audio/wav", "wav"
    if p.model.kind == "image" or role == "spectrogram":
        return png_tile(f"{p.id}/{index}"), "image/png", "png"
    return None  # the fake's default MP4


def hosted_server(tmp: Path, fake: FakeReplicate, *, webhooks: bool, **env: str) -> LiveServer:
    srv = make_server(
        tmp,
        REPLICATE_API_TOKEN=fake.token,
        MEDIAGEN_REPLICATE_BASE_URL=fake.base_url,
        MEDIAGEN_DOWNLOAD_ALLOWED_HOSTS=fake.delivery_allow_entry,
        MEDIAGEN_RECONCILE_INTERVAL_SECONDS="0.5",
        **env,
    )
    if webhooks:
        srv.extra_env["MEDIAGEN_PUBLIC_URL"] = srv.url
    return srv.start()


def reset(fake: FakeReplicate) -> None:
    """Every knob back to normal after a test turned one."""
    with fake._lock:
        fake.scripts.clear()
        fake.default_script = FAST
        fake._failures.clear()
        fake._slow.clear()
        fake.drop_webhooks = False
        fake.duplicate_webhooks = False
        fake.out_of_order_webhooks = False
        fake.forge_signatures = False
        fake.delivery_failures = 0
        fake.data_ttl_s = 3600.0
        fake.aborted_sends_completed = True


def generate(
    srv: LiveServer, kind: str, body: dict[str, Any], *, key: str | None = None, expect: int = 202
) -> dict[str, Any]:
    with srv.client(key) as c:
        r = c.post(f"/api/v2/generate/{kind}", json=body)
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


def get_item(srv: LiveServer, path: str, gen_id: int, key: str | None = None) -> dict[str, Any]:
    with srv.client(key) as c:
        return c.get(f"/api/{path}/{gen_id}").json()  # type: ignore[no-any-return]


def total(srv: LiveServer, path: str) -> int:
    with srv.client() as c:
        return int(c.get(f"/api/{path}", params={"limit": 1}).json()["total"])


def db(srv: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{srv.data_dir / 'mediagen.db'}?mode=ro", uri=True, timeout=10)


def row(srv: LiveServer, gen_id: int) -> dict[str, Any]:
    with db(srv) as conn:
        conn.row_factory = sqlite3.Row
        r = conn.execute("SELECT * FROM generations WHERE id = ?", (gen_id,)).fetchone()
        return dict(r) if r else {}


def prediction_of(fake: FakeReplicate, srv: LiveServer, gen_id: int, timeout: float = 10) -> FakePrediction:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ref = row(srv, gen_id).get("provider_ref")
        if ref:
            return fake.predictions[ref]
        time.sleep(0.05)
    raise AssertionError(f"generation {gen_id} has no prediction")


def stored_once(srv: LiveServer, gen_id: int) -> None:
    """The asset's blob and each derivation are referenced exactly once (bytes unique per test)."""
    with db(srv) as conn:
        key = conn.execute("SELECT blob_key FROM generations WHERE id = ?", (gen_id,)).fetchone()[0]
        assert key and conn.execute("SELECT refcount FROM blobs WHERE key = ?", (key,)).fetchone()[0] == 1
        names = [
            n for (n,) in conn.execute("SELECT name FROM derivations WHERE generation_id = ?", (gen_id,))
        ]
        assert len(names) == len(set(names))


def downloads(fake: FakeReplicate, pred: FakePrediction) -> list[str]:
    return [
        r.path
        for r in list(fake.requests)
        if r.method == "GET" and r.path.startswith(f"/delivery/{pred.id}/")
    ]


def creates_for(fake: FakeReplicate, prompt: str) -> list[Any]:
    return [
        r
        for r in fake.create_requests
        if (r.json or {}).get("input", {}).get("prompt") == prompt
        or (r.json or {}).get("input", {}).get("prompt_a") == prompt
    ]


def predictions_for(fake: FakeReplicate, prompt: str) -> list[FakePrediction]:
    return [
        p
        for p in list(fake.predictions.values())
        if p.input.get("prompt") == prompt or p.input.get("prompt_a") == prompt
    ]


def decode_audio_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(stream))
        return samples / stream.rate


def replay(
    srv: LiveServer,
    body: bytes,
    secret: str,
    *,
    webhook_id: str | None = None,
    path: str = "/api/webhooks/replicate",
) -> httpx.Response:
    headers = {
        **signed_headers(secret, webhook_id or "msg_" + secrets.token_urlsafe(12), body),
        "content-type": "application/json",
    }
    return httpx.post(srv.url + path, content=body, headers=headers, timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.05)


def assert_stays(
    srv: LiveServer, path: str, gen_id: int, status: str, seconds: float = 1.0
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        item = get_item(srv, path, gen_id)
        assert item["status"] == status, item
        if time.monotonic() > deadline:
            return item
        time.sleep(0.1)


# -- group 1: webhooks --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hooks_fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        fake.default_script = FAST
        fake.content_for = unique_content
        yield fake


@pytest.fixture(scope="module")
def hooks_srv(hooks_fake: FakeReplicate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = hosted_server(tmp_path_factory.mktemp("hooks"), hooks_fake, webhooks=True)
    with srv.client() as c:
        c.post("/api/clients", json={"id": "seed-client", "name": "Seed"})
        c.post("/api/campaigns", json={"id": "campaign_123", "client_id": "seed-client", "name": "Seed"})
    yield srv
    srv.stop()


class TestWebhooks:
    @pytest.fixture
    def fake(self, hooks_fake: FakeReplicate) -> FakeReplicate:
        return hooks_fake

    @pytest.fixture
    def srv(self, hooks_srv: LiveServer) -> LiveServer:
        return hooks_srv

    @pytest.fixture(autouse=True)
    def _reset(self, fake: FakeReplicate) -> Iterator[None]:
        reset(fake)
        yield
        reset(fake)

    def test_seed_examples_complete_with_the_seed_inputs(self, srv: LiveServer, fake: FakeReplicate) -> None:
        music = generate(srv, "audio", SEED_MUSICGEN)
        riff = generate(srv, "audio", SEED_RIFFUSION)
        assert music["model"] == "meta/musicgen" and music["engine"] == "replicate"
        assert riff["model"] == "riffusion/riffusion" and set(music) >= {"audio_id", "status", "model"}

        [mg_create] = creates_for(fake, SEED_MUSICGEN["prompt"])
        assert mg_create.path == "/v1/predictions"
        body = mg_create.json
        assert body["version"] == MUSICGEN_VERSION
        # No seed asked for: a fresh random one is sent, and kept on the asset to reproduce it.
        with srv.client() as c:
            stored = c.get(f"/api/audio/{music['audio_id']}").json()["seed"]
        assert isinstance(stored, int) and body["input"].pop("seed") == stored
        assert body["input"] == {
            "prompt": SEED_MUSICGEN["prompt"],
            "duration": 10,
            "model_version": "stereo-melody-large",
            "temperature": 1.0,
            "top_k": 250,
            "top_p": 0.0,
            "classifier_free_guidance": 3,
            "output_format": "mp3",
        }
        assert body["webhook"].startswith(f"{srv.url}/api/webhooks/replicate?gen={music['audio_id']}")
        assert body["webhook_events_filter"] == ["start", "completed"]
        [rf_create] = creates_for(fake, SEED_RIFFUSION["prompt"])
        assert rf_create.json["version"] == RIFFUSION_VERSION
        assert rf_create.json["input"] == {
            "prompt_a": SEED_RIFFUSION["prompt"],
            "denoising": 0.75,
            "num_inference_steps": 50,
            "seed_image_id": "vibes",
        }

        for created in (music, riff):
            item = srv.wait_for("audio", created["audio_id"], timeout=30)
            assert item["status"] == "completed", item
            assert item["campaign_id"] == "campaign_123" and item["client_id"] == "seed-client"
            assert item["download_attempted"] and item["error"] is None
            pred = prediction_of(fake, srv, item["id"])
            assert pred.status == "succeeded"
            # finished by the webhook: the poller never had to ask
            assert not fake.requests_to("GET", f"/v1/predictions/{pred.id}")
            assert any(d.status_code == 200 for d in fake.deliveries(pred.id, "completed"))
            with srv.client() as c:
                data = c.get(item["audio_url"]).content
            main_file = "output.wav" if item["id"] == music["audio_id"] else "audio.wav"
            assert data == pred.files[main_file][0]  # exactly the bytes the model produced
            assert abs(decode_audio_seconds(data) - item["duration"]) < 0.05
            stored_once(srv, item["id"])

        item = get_item(srv, "audio", riff["audio_id"])
        assert item["derivations"] == ["spectrogram", "waveform"] and item["content_type"].startswith(
            "audio/"
        )
        with srv.client() as c:
            spec = c.get(f"/api/audio/{riff['audio_id']}/spectrogram")
            audio = c.get(item["audio_url"]).content
        assert spec.status_code == 200 and spec.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(spec.content)).size == (16, 16)
        pred = prediction_of(fake, srv, riff["audio_id"])
        assert audio == pred.files["audio.wav"][0]  # the audio is the asset, not the spectrogram
        with srv.client() as c:  # the seed's filter example
            listed = c.get("/api/audio", params={"campaign_id": "campaign_123", "status": "completed"}).json()
        assert {music["audio_id"], riff["audio_id"]} <= {a["audio_id"] for a in listed["audio"]}

    @pytest.mark.parametrize("side,transport", [(160, "data"), (1024, "files")])
    def test_seedance_video_from_a_generated_image(
        self, srv: LiveServer, fake: FakeReplicate, side: int, transport: str
    ) -> None:
        img = generate(
            srv,
            "image",
            {
                "prompt": "blue ocean at dawn",
                "model": "synth/image",
                "width": side,
                "height": side,
                "parameters": {"output_format": "png"},
            },
        )
        assert srv.wait_for("images", img["image_id"])["status"] == "completed"
        with srv.client() as c:
            image_bytes = c.get(f"/api/images/{img['image_id']}/data").content
        assert (len(image_bytes) > 256 * 1024) == (transport == "files")
        prompt = f"waves roll in {side}"
        vid = generate(srv, "video", {"prompt": prompt, "image_id": img["image_id"], "duration": 5})
        assert vid["model"] == "bytedance/seedance-1-lite"
        item = srv.wait_for("videos", vid["video_id"], timeout=30)
        assert item["status"] == "completed", item
        assert item["content_type"] == "video/mp4" and set(item["derivations"]) == {"poster", "thumbnail"}
        assert item["parameters"]["image"] == img["image_id"]  # the asset id is what we keep
        [create] = creates_for(fake, prompt)
        assert create.path == "/v1/models/bytedance/seedance-1-lite/predictions"  # official: no version
        sent = create.json["input"]["image"]
        if transport == "data":  # small: inline, as Replicate advises up to 256 KB
            header, b64 = sent.split(",", 1)
            assert header == "data:image/png;base64" and base64.b64decode(b64) == image_bytes
        else:  # large: uploaded through POST /v1/files, the URL sent instead
            assert sent.startswith(f"{fake.base_url}/files/")
            assert fake.files[sent.rstrip("/").split("/")[-1]]["_data"] == image_bytes
        with srv.client() as c:
            r = c.get(item["video_url"])
        assert (
            r.headers["content-type"] == "video/mp4"
            and r.content == prediction_of(fake, srv, item["id"]).files["output.mp4"][0]
        )

    def test_list_output_keeps_every_image(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["black-forest-labs/flux-schnell"] = Script(start_after=0.05, run_for=0.1, count=2)
        created = generate(
            srv,
            "image",
            {"prompt": "two red kites", "model": "black-forest-labs/flux-schnell", "num_outputs": 2},
        )
        item = srv.wait_for("images", created["image_id"], timeout=30)
        assert item["status"] == "completed", item
        assert set(item["derivations"]) == {"output_1", "thumbnail"}
        assert item["cost_usd"] == pytest.approx(0.006)
        pred = prediction_of(fake, srv, item["id"])
        assert pred.input["num_outputs"] == 2 and len(pred.output) == 2
        assert sorted(downloads(fake, pred)) == [
            f"/delivery/{pred.id}/out-0.png",
            f"/delivery/{pred.id}/out-1.png",
        ]
        with db(srv) as conn:
            (size,) = conn.execute(
                "SELECT size_bytes FROM derivations WHERE generation_id = ? AND name = 'output_1'",
                (item["id"],),
            ).fetchone()
        assert size == len(pred.files["out-1.png"][0])

    def test_data_url_output(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["google/nano-banana"] = Script(start_after=0.05, run_for=0.1, output="data_url")
        created = generate(srv, "image", {"prompt": "a banana in space", "model": "google/nano-banana"})
        item = srv.wait_for("images", created["image_id"], timeout=30)
        assert item["status"] == "completed" and item["content_type"] == "image/png", item
        pred = prediction_of(fake, srv, item["id"])
        assert pred.output.startswith("data:image/png;base64,") and not downloads(fake, pred)
        with srv.client() as c:
            assert c.get(item["image_url"]).content == base64.b64decode(pred.output.split(",", 1)[1])
        assert "data:" not in json.dumps(row(srv, item["id"])["metadata"])  # rows never carry the base64

    def test_duplicate_and_out_of_order_webhooks(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.duplicate_webhooks = True
        fake.out_of_order_webhooks = True
        ids = [
            generate(srv, "audio", {"prompt": f"dup order {i}", "duration": 2})["audio_id"] for i in range(3)
        ]
        items = [srv.wait_for("audio", i, timeout=30) for i in ids]
        assert all(it["status"] == "completed" for it in items), items
        time.sleep(1.0)  # let the held-back "start" webhooks and the copies land after completion
        for gid in ids:
            pred = prediction_of(fake, srv, gid)
            sent = fake.deliveries(pred.id)
            assert [d.event for d in sent][:2] == ["completed", "completed"]  # terminal first, twice
            assert {d.event for d in sent} == {"start", "completed"}
            assert all(d.status_code == 200 for d in sent)
            assert downloads(fake, pred) == [f"/delivery/{pred.id}/output.wav"]  # fetched once
            stored_once(srv, gid)
            item = get_item(srv, "audio", gid)
            assert item["status"] == "completed" and item["derivations"] == ["waveform"]

        # Replays, signed with the real secret: the same message again, then an old "processing".
        gid = ids[0]
        pred = prediction_of(fake, srv, gid)
        before = get_item(srv, "audio", gid)
        completed = fake.deliveries(pred.id, "completed")[0]
        r = replay(
            srv,
            completed.body,
            fake.webhook_secret,
            webhook_id=completed.webhook_id,
            path=completed.url.removeprefix(srv.url),
        )
        assert r.status_code == 200 and r.json()["status"] == "duplicate"
        start = fake.deliveries(pred.id, "start")[0]
        assert start.payload["status"] == "processing"
        r = replay(srv, start.body, fake.webhook_secret, path=start.url.removeprefix(srv.url))
        assert r.status_code == 200 and r.json()["status"] == "ignored"
        r = replay(srv, completed.body, fake.webhook_secret)  # a new message id, same news
        assert r.status_code == 200 and r.json()["status"] == "ignored"
        after = get_item(srv, "audio", gid)
        assert after == before and downloads(fake, pred) == [f"/delivery/{pred.id}/output.wav"]
        stored_once(srv, gid)

    def test_start_and_completed_arriving_together(self, srv: LiveServer, fake: FakeReplicate) -> None:
        """Replicate sends "start" and "completed" of a fast model within milliseconds, on parallel
        connections: handling "start" last must not put the row back to processing (which left the
        ingest with nothing to do until the next poll)."""
        fake.drop_webhooks = True  # capture the real signed bodies, deliver them ourselves
        ids = [
            generate(srv, "audio", {"prompt": f"racing hooks {i}", "duration": 2})["audio_id"]
            for i in range(12)
        ]
        preds = [prediction_of(fake, srv, gid) for gid in ids]
        fake.wait_for(lambda: all(len(fake.deliveries(p.id)) == 2 for p in preds))
        bodies = [(d.body, d.url.removeprefix(srv.url)) for p in preds for d in fake.deliveries(p.id)]
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: replay(srv, b[0], fake.webhook_secret, path=b[1]), bodies))
        assert all(r.status_code == 200 for r in answers)
        for gid, pred in zip(ids, preds, strict=True):
            item = srv.wait_for("audio", gid, timeout=5)  # webhook-driven: well before the 10 s poll
            assert item["status"] == "completed", item
            assert not fake.requests_to("GET", f"/v1/predictions/{pred.id}")
            stored_once(srv, gid)

    def test_forged_signature_is_refused_and_changes_nothing(
        self, srv: LiveServer, fake: FakeReplicate
    ) -> None:
        fake.scripts["stackadoc/stable-audio-open-1.0"] = Script(start_after=0.05, run_for=1.5)
        created = generate(srv, "audio", {"prompt": "forged", "model": "stackadoc/stable-audio-open-1.0"})
        pred = prediction_of(fake, srv, created["audio_id"])
        wait_until(lambda: any(d.status_code == 200 for d in fake.deliveries(pred.id, "start")), what="start")
        before = row(srv, created["audio_id"])
        forged = json.dumps({**fake.prediction_json(pred.id), "status": "failed", "error": "forged"}).encode()
        other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        r = replay(srv, forged, other)
        assert r.status_code == 401 and "signature" in r.json()["detail"]
        r = httpx.post(
            srv.url + "/api/webhooks/replicate", content=forged, headers={"content-type": "application/json"}
        )
        assert r.status_code == 401
        after = row(srv, created["audio_id"])
        assert after["status"] == before["status"] == "processing"
        assert after["error"] is None and after["updated_at"] == before["updated_at"]
        item = srv.wait_for("audio", created["audio_id"], timeout=30)  # the real webhook still counts
        assert item["status"] == "completed", item

    def test_lost_webhooks_finish_by_polling(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.drop_webhooks = True
        ids = [
            generate(srv, "audio", {"prompt": f"lost hook {i}", "duration": 2})["audio_id"] for i in range(2)
        ]
        items = [srv.wait_for("audio", i, timeout=40) for i in ids]
        assert all(it["status"] == "completed" for it in items), items
        for gid in ids:
            pred = prediction_of(fake, srv, gid)
            assert fake.deliveries(pred.id) and all(d.status_code is None for d in fake.deliveries(pred.id))
            assert fake.requests_to("GET", f"/v1/predictions/{pred.id}")  # the poller found it
            stored_once(srv, gid)

    def test_cancel_reaches_the_provider(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["stackadoc/stable-audio-open-1.0"] = LONG
        created = generate(srv, "audio", {"prompt": "cancel me", "model": "stackadoc/stable-audio-open-1.0"})
        pred = prediction_of(fake, srv, created["audio_id"])
        fake.wait_for(lambda: pred.status == "processing")
        with srv.client() as c:
            r = c.post(f"/api/audio/{created['audio_id']}/cancel")
            assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
            assert c.post(f"/api/audio/{created['audio_id']}/cancel").status_code == 409
        assert fake.requests_to("POST", f"/v1/predictions/{pred.id}/cancel")
        assert pred.status == "canceled"
        wait_until(
            lambda: any(d.status_code == 200 for d in fake.deliveries(pred.id, "completed")),
            what="canceled webhook",
        )
        item = assert_stays(srv, "audio", created["audio_id"], "canceled", 0.5)
        assert item["error"] == "canceled by user" and item["data_url"] is None

    def test_aborted_is_terminal(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["stackadoc/stable-audio-open-1.0"] = Script(start_after=30, run_for=1)
        created = generate(
            srv, "audio", {"prompt": "never starts", "model": "stackadoc/stable-audio-open-1.0"}
        )
        pred = prediction_of(fake, srv, created["audio_id"])
        with fake._lock:
            pred.deadline = fake.now() + 0.1  # what a Cancel-After would do: expires before it starts
        item = srv.wait_for("audio", created["audio_id"], timeout=20)
        assert pred.status == "aborted"
        assert item["status"] == "canceled" and "aborted" in item["error"].lower(), item
        assert_stays(srv, "audio", created["audio_id"], "canceled", 0.5)
        late = json.dumps({**fake.prediction_json(pred.id), "status": "processing"}).encode()
        assert replay(srv, late, fake.webhook_secret).json()["status"] == "ignored"
        assert get_item(srv, "audio", created["audio_id"])["status"] == "canceled"

    def test_media_inputs(self, srv: LiveServer, fake: FakeReplicate) -> None:
        clip = generate(
            srv, "audio", {"prompt": "a melody to follow", "model": "synth/music", "duration": 2, "seed": 3}
        )
        assert srv.wait_for("audio", clip["audio_id"])["status"] == "completed"
        with srv.client() as c:
            clip_bytes = c.get(f"/api/audio/{clip['audio_id']}/data").content
        created = generate(
            srv, "audio", {"prompt": "follow that melody", "audio_id": clip["audio_id"], "duration": 5}
        )
        item = srv.wait_for("audio", created["audio_id"], timeout=30)
        assert item["status"] == "completed", item
        [create] = creates_for(fake, "follow that melody")
        sent = create.json["input"]["input_audio"]
        if sent.startswith("data:"):
            header, b64 = sent.split(",", 1)
            assert header == "data:audio/mpeg;base64" and base64.b64decode(b64) == clip_bytes
        else:
            assert fake.files[sent.rstrip("/").split("/")[-1]]["_data"] == clip_bytes

        # An asset that is not finished yet, and one filed under a client the key cannot see.
        fake.scripts["stackadoc/stable-audio-open-1.0"] = LONG
        running = generate(
            srv, "audio", {"prompt": "still running", "model": "stackadoc/stable-audio-open-1.0"}
        )
        with srv.client() as c:
            c.post("/api/clients", json={"id": "mine", "name": "Mine"})
            c.post("/api/clients", json={"id": "theirs", "name": "Theirs"})
            limited = c.post("/api/keys", json={"name": "mine only", "clients": ["mine"]}).json()["key"]
        theirs = generate(
            srv,
            "audio",
            {"prompt": "their clip", "model": "synth/music", "duration": 1, "client_id": "theirs"},
        )
        assert srv.wait_for("audio", theirs["audio_id"])["status"] == "completed"
        n_before, creates_before = total(srv, "audio"), len(fake.create_requests)
        r = generate(srv, "audio", {"prompt": "x", "audio_id": running["audio_id"]}, expect=422)
        assert "audio_id" in r["detail"] and "not completed" in r["detail"]
        assert r["errors"][0]["field"] == "audio_id"
        r = generate(
            srv,
            "audio",
            {"prompt": "x", "audio_id": theirs["audio_id"], "client_id": "mine"},
            key=limited,
            expect=422,
        )
        assert "audio_id" in r["detail"] and "not found" in r["detail"]
        r = generate(srv, "audio", {"prompt": "x", "audio_id": 999999}, expect=422)
        assert "not found" in r["detail"]
        assert total(srv, "audio") == n_before and len(fake.create_requests) == creates_before
        with srv.client() as c:
            c.post(f"/api/audio/{running['audio_id']}/cancel")


# -- group 2: polling only, provider errors, downloads -----------------------------------------


@pytest.fixture(scope="module")
def poll_fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        fake.default_script = FAST
        fake.content_for = unique_content
        yield fake


@pytest.fixture(scope="module")
def poll_srv(poll_fake: FakeReplicate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = hosted_server(tmp_path_factory.mktemp("poll"), poll_fake, webhooks=False)
    yield srv
    srv.stop()


class TestPolling:
    @pytest.fixture
    def fake(self, poll_fake: FakeReplicate) -> FakeReplicate:
        return poll_fake

    @pytest.fixture
    def srv(self, poll_srv: LiveServer) -> LiveServer:
        return poll_srv

    @pytest.fixture(autouse=True)
    def _reset(self, fake: FakeReplicate) -> Iterator[None]:
        reset(fake)
        yield
        reset(fake)

    def test_polling_only_path_finishes_every_job(self, srv: LiveServer, fake: FakeReplicate) -> None:
        ids = [
            ("audio", generate(srv, "audio", {"prompt": "polled tune", "duration": 3})["audio_id"]),
            (
                "audio",
                generate(srv, "audio", {"prompt": "polled riff", "model": "riffusion/riffusion"})["audio_id"],
            ),
            (
                "images",
                generate(
                    srv, "image", {"prompt": "polled picture", "model": "black-forest-labs/flux-schnell"}
                )["image_id"],
            ),
        ]
        for path, gid in ids:
            item = srv.wait_for(path, gid, timeout=30)
            assert item["status"] == "completed", item
            pred = prediction_of(fake, srv, gid)
            assert fake.requests_to("GET", f"/v1/predictions/{pred.id}")
            stored_once(srv, gid)
        assert not fake.deliveries()
        assert all("webhook" not in (r.json or {}) for r in fake.create_requests)

    def test_failed_prediction_reports_the_model_error(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["meta/musicgen"] = Script(start_after=0.05, run_for=0.1, status="failed")
        created = generate(srv, "audio", {"prompt": "doomed", "duration": 2})
        item = srv.wait_for("audio", created["audio_id"], timeout=30)
        assert item["status"] == "failed" and "CUDA out of memory" in item["error"], item
        assert item["data_url"] is None

    def test_provider_422_names_the_field_and_keeps_no_row(
        self, srv: LiveServer, fake: FakeReplicate
    ) -> None:
        before = total(srv, "audio")
        fake.fail_next_create(
            422,
            invalid_fields=[
                {
                    "type": "enum",
                    "field": "input.seed_image_id",
                    "description": 'seed_image_id must be one of the following: "vibes", "agile"',
                }
            ],
        )
        r = generate(
            srv,
            "audio",
            {"prompt": "p", "model": "riffusion/riffusion", "parameters": {"seed_image_id": "og_beat"}},
            expect=422,
        )
        assert r["errors"][0]["field"] == "parameters.seed_image_id", r
        assert r["detail"].startswith("parameters.seed_image_id: seed_image_id must be one of")
        fake.fail_next_create(
            422,
            invalid_fields=[{"type": "required", "field": "input", "description": "prompt_a is required"}],
        )
        r = generate(srv, "audio", {"prompt": "p", "model": "riffusion/riffusion"}, expect=422)
        assert r["errors"][0]["field"] == "prompt", r  # the request's own name for prompt_a
        fake.fail_next_create(
            422,
            invalid_fields=[
                {
                    "type": "number_lte",
                    "field": "input.duration",
                    "description": "Must be less than or equal to 12",
                }
            ],
        )
        r = generate(srv, "audio", {"prompt": "p", "duration": 20}, expect=422)
        assert r["errors"][0]["field"] == "duration" and "less than or equal to 12" in r["detail"], r
        assert total(srv, "audio") == before

    @pytest.mark.parametrize("status,api_status,words", [(401, 502, "API token"), (402, 503, "credit")])
    def test_account_errors_fail_the_generation_clearly(
        self, srv: LiveServer, fake: FakeReplicate, status: int, api_status: int, words: str
    ) -> None:
        before = total(srv, "audio")
        fake.fail_next_create(status)
        r = generate(srv, "audio", {"prompt": f"refused {status}", "duration": 2}, expect=api_status)
        assert words in r["detail"] and "replicate" in r["detail"].lower(), r
        assert total(srv, "audio") == before + 1
        with srv.client() as c:
            newest = c.get("/api/audio", params={"limit": 1}).json()["audio"][0]
        assert newest["prompt"] == f"refused {status}" and f"generation {newest['id']}" in r["detail"]
        assert newest["status"] == "failed" and words in newest["error"], newest
        assert len(creates_for(fake, f"refused {status}")) == 1  # not retried
        assert_stays(srv, "audio", newest["id"], "failed", 0.5)

    def test_429_and_503_are_retried_and_create_once(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.fail_next_create(429, ratelimit_reset=1)
        t0 = time.monotonic()
        first = generate(srv, "audio", {"prompt": "throttled", "duration": 2})
        assert time.monotonic() - t0 >= 0.9  # waited for ratelimit-reset
        fake.fail_next_create(503)
        second = generate(srv, "audio", {"prompt": "unavailable", "duration": 2})
        for prompt, gid in (("throttled", first["audio_id"]), ("unavailable", second["audio_id"])):
            assert len(creates_for(fake, prompt)) == 2
            assert len(predictions_for(fake, prompt)) == 1
            assert srv.wait_for("audio", gid, timeout=30)["status"] == "completed"

    def test_503_after_the_prediction_was_made_adopts_it(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.fail_next_create(503, create_anyway=True)
        created = generate(srv, "audio", {"prompt": "made anyway", "duration": 2})
        assert len(creates_for(fake, "made anyway")) == 1  # the listing found it: no second POST
        [pred] = predictions_for(fake, "made anyway")
        assert prediction_of(fake, srv, created["audio_id"]).id == pred.id
        assert srv.wait_for("audio", created["audio_id"], timeout=30)["status"] == "completed"

    def test_slow_create_makes_no_duplicate(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.slow_next_create(2.5, create_first=True)
        body = {"prompt": "slow to start", "duration": 2}
        headers = {"Idempotency-Key": "slow-create-1"}
        with srv.client(timeout=1.0) as c, pytest.raises(httpx.ReadTimeout):
            c.post("/api/v2/generate/audio", json=body, headers=headers)
        with srv.client() as c:  # the client retries its timed-out POST, as it should
            r = c.post("/api/v2/generate/audio", json=body, headers=headers)
            assert r.status_code == 200, r.text
            gid = r.json()["audio_id"]
            again = c.post("/api/v2/generate/audio", json=body, headers=headers)
            assert again.status_code == 200 and again.json()["audio_id"] == gid
        assert srv.wait_for("audio", gid, timeout=30)["status"] == "completed"
        assert (
            len(creates_for(fake, "slow to start")) == 1 and len(predictions_for(fake, "slow to start")) == 1
        )
        with srv.client() as c:
            listed = c.get("/api/audio", params={"limit": 100}).json()["audio"]
        assert [a["id"] for a in listed if a["prompt"] == "slow to start"] == [gid]

    def test_expired_output_file_fails_clearly(self, srv: LiveServer, fake: FakeReplicate) -> None:
        # an output URL whose file is already gone (404 at the delivery host)
        fake.scripts["meta/musicgen"] = Script(
            start_after=0.05, run_for=0.1, output=lambda p: fake.output_url(p.id, "gone.wav")
        )
        gone = generate(srv, "audio", {"prompt": "expired file", "duration": 2})["audio_id"]
        item = srv.wait_for("audio", gone, timeout=30)
        assert item["status"] == "failed", item
        assert "gone (404)" in item["download_error"] and "after an hour" in item["download_error"]
        assert "could not store the output" in item["error"] and item["download_attempted"]
        assert item["download_retries"] == 0  # a deleted file is not retried

    def test_data_removed_before_download_fails_clearly(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.data_ttl_s = 0.5  # the poller looks after the provider deleted the output
        removed = generate(srv, "audio", {"prompt": "data removed", "duration": 2})["audio_id"]
        item = srv.wait_for("audio", removed, timeout=30)
        assert item["status"] == "failed" and item["download_error"] == "data_removed", item
        assert "deleted the output before it was downloaded" in item["error"]

    def test_download_503s_are_retried(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.delivery_failures = 2
        created = generate(srv, "audio", {"prompt": "flaky delivery", "duration": 2})
        item = srv.wait_for("audio", created["audio_id"], timeout=30)
        assert item["status"] == "completed", item
        assert item["download_retries"] == 2 and item["download_error"] is None
        pred = prediction_of(fake, srv, item["id"])
        assert downloads(fake, pred) == [f"/delivery/{pred.id}/output.wav"] * 3
        stored_once(srv, item["id"])

    def test_output_host_off_the_allow_list(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["meta/musicgen"] = Script(
            start_after=0.05, run_for=0.1, output=lambda p: "http://169.254.169.254/latest/meta-data.wav"
        )
        created = generate(srv, "audio", {"prompt": "ssrf attempt", "duration": 2})
        item = srv.wait_for("audio", created["audio_id"], timeout=30)
        assert item["status"] == "failed", item
        assert "not on the download allow-list" in item["download_error"]
        assert "169.254.169.254" in item["error"] and item["download_retries"] == 0

    def test_aborted_seen_by_polling_is_terminal(self, srv: LiveServer, fake: FakeReplicate) -> None:
        fake.scripts["stackadoc/stable-audio-open-1.0"] = Script(start_after=30, run_for=1)
        created = generate(
            srv, "audio", {"prompt": "aborted quietly", "model": "stackadoc/stable-audio-open-1.0"}
        )
        pred = prediction_of(fake, srv, created["audio_id"])
        with fake._lock:
            pred.deadline = fake.now() + 0.1
        item = srv.wait_for("audio", created["audio_id"], timeout=20)
        assert item["status"] == "canceled" and "aborted" in item["error"].lower(), item
        polls = len(fake.requests_to("GET", f"/v1/predictions/{pred.id}"))
        assert_stays(srv, "audio", created["audio_id"], "canceled", 2.5)
        assert len(fake.requests_to("GET", f"/v1/predictions/{pred.id}")) == polls  # no more polling
