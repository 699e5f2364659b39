"""Every kind end to end through the live API: bytes decoded back, filing, errors, idempotency."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.utils.audio import estimate_bpm


@pytest.fixture(scope="module")
def campaign(live_server: LiveServer) -> str:
    with live_server.client() as c:
        c.post("/api/clients", json={"id": "acme", "name": "Acme"})
        c.post("/api/campaigns", json={"id": "spring", "client_id": "acme", "name": "Spring Launch"})
        c.post("/api/briefs", json={"id": "jingle", "campaign_id": "spring", "title": "Jingle"})
    return "spring"


def generate(srv: LiveServer, kind: str, body: dict, **headers: str) -> dict:
    with srv.client() as c:
        r = c.post(f"/api/v2/generate/{kind}", json=body, headers=headers)
        assert r.status_code in (200, 202), r.text
        return r.json()


def fetch(srv: LiveServer, path: str, **headers: str) -> tuple[bytes, dict]:
    with srv.client() as c:
        r = c.get(path, headers=headers)
        assert r.status_code in (200, 206), (path, r.status_code, r.text)
        return r.content, dict(r.headers)


def decode_audio(data: bytes) -> tuple[np.ndarray, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        channels = stream.channels
        frames = []
        for f in container.decode(stream):
            arr = f.to_ndarray()
            # Packed formats (WAV's s16) come back interleaved in one row; make them (channels, n).
            frames.append(arr if f.format.is_planar else arr.reshape(-1, channels).T)
        rate = stream.rate
    pcm = np.concatenate(frames, axis=1)
    if pcm.dtype.kind == "i":
        pcm = pcm / float(np.iinfo(pcm.dtype).max)
    return pcm, rate, pcm.shape[-1] / rate


@pytest.mark.parametrize("fmt,ctype", [("mp3", "audio/mpeg"), ("wav", "audio/wav")])
def test_music_end_to_end(live_server: LiveServer, campaign: str, fmt: str, ctype: str) -> None:
    created = generate(
        live_server,
        "audio",
        {
            "prompt": "upbeat electronic dance music with heavy bass",
            "duration": 4,
            "campaign_id": campaign,
            "brief_id": "jingle",
            "model": "synth/music",
            "output_format": fmt,
            "seed": 7,
        },
    )
    assert created["status"] == "pending" and created["model"] == "synth/music"
    item = live_server.wait_for("audio", created["audio_id"])
    assert item["status"] == "completed", item
    assert item["content_type"].startswith(ctype.split("/")[0]) and item["client_id"] == "acme"
    assert item["brief_id"] == "jingle"
    data, headers = fetch(live_server, item["audio_url"])
    assert headers["content-type"] == item["content_type"]
    assert headers["accept-ranges"] == "bytes" and headers["etag"].strip('"')
    pcm, rate, seconds = decode_audio(data)
    assert rate == 44100 and pcm.shape[0] == 2
    assert abs(seconds - 4.0) < 0.1 and abs(item["duration"] - 4.0) < 0.1
    assert np.sqrt(np.mean(pcm**2)) > 0.02 and np.abs(pcm).max() < 1.0
    plan_bpm = item["metadata"]["bpm"]
    assert abs(estimate_bpm(pcm.mean(axis=0), rate) - plan_bpm) / plan_bpm < 0.02
    peaks = json.loads(fetch(live_server, item["waveform_url"])[0])
    assert peaks["version"] == 2 and peaks["bits"] == 8 and len(peaks["data"]) == 2 * peaks["length"]
    part, h = fetch(live_server, item["audio_url"], Range="bytes=100-199")
    assert part == data[100:200] and h["content-range"] == f"bytes 100-199/{len(data)}"


def test_seeded_runs_are_byte_identical(live_server: LiveServer) -> None:
    body = {"prompt": "acoustic folk with guitar", "duration": 2, "model": "synth/music", "seed": 42}
    a, b = (generate(live_server, "audio", body)["audio_id"] for _ in range(2))
    c = generate(live_server, "audio", {**body, "seed": 43})["audio_id"]
    items = [live_server.wait_for("audio", i) for i in (a, b, c)]
    datas = [fetch(live_server, it["audio_url"])[0] for it in items]
    assert datas[0] == datas[1] and datas[0] != datas[2]


def test_image_end_to_end(live_server: LiveServer, campaign: str) -> None:
    created = generate(
        live_server,
        "image",
        {
            "prompt": "warm sunset orange palette",
            "width": 320,
            "height": 200,
            "campaign_id": campaign,
            "parameters": {"output_format": "webp"},
        },
    )
    assert created["image_id"] and created["model"] == "synth/image"
    item = live_server.wait_for("images", created["image_id"])
    assert item["status"] == "completed", item
    data, headers = fetch(live_server, item["image_url"])
    img = Image.open(io.BytesIO(data))
    assert img.size == (320, 200) and img.format == "WEBP" and headers["content-type"] == "image/webp"
    assert (item["width"], item["height"]) == (320, 200)
    thumb = Image.open(io.BytesIO(fetch(live_server, item["thumbnail_url"])[0]))
    assert thumb.format == "WEBP" and max(thumb.size) <= 400


def test_video_end_to_end_from_generated_image(live_server: LiveServer, campaign: str) -> None:
    img = generate(live_server, "image", {"prompt": "blue ocean", "aspect_ratio": "16:9"})
    assert live_server.wait_for("images", img["image_id"])["status"] == "completed"
    created = generate(
        live_server,
        "video",
        {
            "prompt": "calm blue waves",
            "duration": 2,
            "fps": 12,
            "resolution": "240p",
            "aspect_ratio": "16:9",
            "image_id": img["image_id"],
            "campaign_id": campaign,
            "parameters": {"soundtrack": True},
        },
    )
    item = live_server.wait_for("videos", created["video_id"])
    assert item["status"] == "completed", item
    assert item["content_type"] == "video/mp4" and item["parameters"]["image"] == img["image_id"]
    data, _ = fetch(live_server, item["video_url"])
    with av.open(io.BytesIO(data)) as container:
        v = container.streams.video[0]
        assert v.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(v))
        assert container.streams.audio, "soundtrack requested"
    assert (v.width, v.height) == (item["width"], item["height"]) and item["height"] == 240
    assert abs(frames / 12 - 2.0) < 0.1 and abs(item["duration"] - 2.0) < 0.1
    poster = Image.open(io.BytesIO(fetch(live_server, item["poster_url"])[0]))
    assert poster.size == (item["width"], item["height"])


def _total(srv: LiveServer, path: str) -> int:
    with srv.client() as c:
        return int(c.get(f"/api/{path}").json()["total"])


@pytest.mark.parametrize(
    "body,field",
    [
        ({"duration": 3}, "prompt"),
        ({"prompt": "x", "model": "nobody/nothing"}, "model"),
        ({"prompt": "x", "model": "synth/image"}, "model"),
        ({"prompt": "x", "duration": 301, "model": "synth/music"}, "duration"),
        ({"prompt": "x", "parameters": {"bpm": 500}}, "parameters.bpm"),
        ({"prompt": "x", "parameters": {"output_format": "ogg"}}, "parameters.output_format"),
        ({"prompt": "x", "parameters": {"bpm": "fast"}}, "parameters.bpm"),
        ({"prompt": "x", "duration": "long"}, "duration"),
        ({"prompt": "x", "parameters": {"nonsense": 1}}, "parameters.nonsense"),
        ({"prompt": "x", "temperature": 1.0, "model": "synth/music"}, "temperature"),
        ({"prompt": "x", "campaign_id": "no-such-campaign"}, "campaign_id"),
        ({"prompt": "x", "campaign_id": "spring", "client_id": "other"}, "client_id"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "x", "audio_id": 999999, "model": "synth/music"}, "audio_id"),
    ],
)
def test_bad_input_names_the_field_and_keeps_nothing(
    live_server: LiveServer, campaign: str, body: dict, field: str
) -> None:
    before = _total(live_server, "audio")
    with live_server.client() as c:
        r = c.post("/api/v2/generate/audio", json=body)
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}:") or f"{field}:" in detail, detail
    assert _total(live_server, "audio") == before


def test_idempotency_key_returns_the_same_generation(live_server: LiveServer) -> None:
    body = {"prompt": "cinematic orchestral", "duration": 1, "model": "synth/music"}
    first = generate(live_server, "audio", body, **{"Idempotency-Key": "abc-123"})
    again = generate(live_server, "audio", body, **{"Idempotency-Key": "abc-123"})
    assert first["audio_id"] == again["audio_id"]
    other = generate(live_server, "audio", body, **{"Idempotency-Key": "abc-124"})
    assert other["audio_id"] != first["audio_id"]


def test_list_filters_and_order(live_server: LiveServer, campaign: str) -> None:
    ids = [
        generate(
            live_server,
            "audio",
            {"prompt": f"ambient {i}", "duration": 1, "collection": "batch-x", "campaign_id": campaign},
        )["audio_id"]
        for i in range(3)
    ]
    for i in ids:
        live_server.wait_for("audio", i)
    with live_server.client() as c:
        page = c.get("/api/audio", params={"collection": "batch-x", "status": "completed"}).json()
        assert [a["id"] for a in page["audio"]] == ids[::-1] and page["total"] == 3
        page = c.get("/api/audio", params={"collection": "batch-x", "limit": 1, "offset": 1}).json()
        assert [a["id"] for a in page["audio"]] == [ids[1]] and page["count"] == 1
        assert c.get("/api/audio", params={"model_id": "synth/music", "limit": 100}).json()["total"] >= 3
        assert c.get("/api/audio", params={"status": "bogus"}).status_code == 422
        assert c.get("/api/images", params={"collection": "batch-x"}).json()["total"] == 0
        stats = c.get(f"/api/campaigns/{campaign}/stats").json()
        assert stats["by_kind"]["audio"]["by_status"]["completed"] >= 3


def test_delete_removes_item_and_bytes(live_server: LiveServer) -> None:
    created = generate(live_server, "audio", {"prompt": "dark techno 130 bpm", "duration": 1, "seed": 991})
    item = live_server.wait_for("audio", created["audio_id"])
    _, headers = fetch(live_server, item["audio_url"])
    sha = headers["etag"].strip('"')
    with live_server.client() as c:
        assert c.get(f"/api/blobs/{sha}").status_code == 200
        assert c.delete(f"/api/audio/{item['id']}").status_code == 204
        assert c.get(f"/api/audio/{item['id']}").status_code == 404
        assert c.get(f"/api/audio/{item['id']}/data").status_code == 404
        assert c.get(f"/api/blobs/{sha}").status_code == 404
        assert c.delete(f"/api/audio/{item['id']}").status_code == 404
        assert c.get("/api/audio/987654").status_code == 404


def test_rate_limit(server_factory) -> None:
    srv = server_factory(MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE="10")
    with srv.client() as c:
        codes = [
            c.post("/api/v2/generate/image", json={"prompt": "red", "width": 64, "height": 64}).status_code
            for _ in range(11)
        ]
        assert codes[:10] == [202] * 10 and codes[10] == 429
        r = c.post("/api/v2/generate/image", json={"prompt": "red"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_cli_generate_saves_the_file(live_server: LiveServer, campaign: str, tmp_path) -> None:
    out = tmp_path / "clip.wav"
    env = {
        **live_server.env(),
        "MEDIAGEN_API_URL": live_server.url,
        "MEDIAGEN_API_KEY": live_server.admin_key,
    }
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "generate",
            "audio",
            "lo-fi hip hop",
            "--duration",
            "2",
            "--campaign",
            campaign,
            "--param",
            "output_format=wav",
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    with av.open(str(out)) as container:
        assert abs(float(container.duration or 0) / 1e6 - 2.0) < 0.1
    bad = subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "generate", "audio", "x", "--param", "bpm=999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "parameters.bpm" in bad.stderr


def test_crash_recovery(server_factory) -> None:
    """kill -9 with jobs in flight; after restart every job ends, bytes stored once each."""
    srv = server_factory(MEDIAGEN_LEASE_SECONDS="2", MEDIAGEN_WORKERS="1")
    ids = [
        generate(srv, "audio", {"prompt": f"cinematic orchestral {i}", "duration": 20, "seed": i + 1})[
            "audio_id"
        ]
        for i in range(6)
    ]
    time.sleep(0.5)
    srv.kill()
    srv.start()
    items = [srv.wait_for("audio", i, timeout=120) for i in ids]
    assert all(it["status"] == "completed" for it in items), [it["status"] for it in items]
    shas = set()
    with srv.client() as c:
        for it in items:
            r = c.get(it["audio_url"])
            assert abs(decode_audio(r.content)[2] - 20.0) < 0.1
            shas.add(r.headers["etag"])
    assert len(shas) == 6
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{srv.data_dir / 'mediagen.db'}")
    with engine.connect() as conn:
        refs = conn.execute(
            text("SELECT key, refcount FROM blobs WHERE key IN (SELECT blob_key FROM generations)")
        ).all()
    engine.dispose()
    assert len(refs) == 6 and all(r.refcount == 1 for r in refs)


def test_a_restart_after_kill_9_takes_its_dead_leases_back_at_once(server_factory) -> None:
    """With the default 120 s lease: the restarted process sees its predecessor's pid is gone and
    re-runs the jobs it held at once, instead of waiting the lease out."""
    srv = server_factory(MEDIAGEN_WORKERS="1")
    ids = [
        generate(srv, "audio", {"prompt": f"slow strings {i}", "duration": 20, "seed": i + 1})["audio_id"]
        for i in range(3)
    ]
    time.sleep(0.5)  # the worker has claimed the first job
    srv.kill()
    restarted = time.monotonic()
    srv.start()
    items = [srv.wait_for("audio", i, timeout=60) for i in ids]
    assert all(it["status"] == "completed" for it in items), [it["status"] for it in items]
    assert time.monotonic() - restarted < 60  # far inside the 120 s lease


def test_upload_becomes_an_asset_usable_as_input(live_server: LiveServer, campaign: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (200, 120), (200, 40, 40)).save(buf, format="PNG")
    with live_server.client() as c:
        r = c.post(
            "/api/images/upload",
            params={"title": "Logo", "campaign_id": campaign},
            content=buf.getvalue(),
            headers={"Content-Type": "image/png"},
        )
        assert r.status_code == 201, r.text
        up = r.json()
        assert up["status"] == "completed" and (up["width"], up["height"]) == (200, 120)
        assert up["content_type"] == "image/png" and up["client_id"] == "acme" and up["thumbnail_url"]
        bad = c.post("/api/images/upload", params={"title": "junk"}, content=b"not an image at all")
        assert bad.status_code == 422 and bad.json()["detail"].startswith("file:")
        empty = c.post("/api/images/upload", params={"title": "empty"}, content=b"")
        assert empty.status_code == 422
        wrong = c.post("/api/audio/upload", params={"title": "png as audio"}, content=buf.getvalue())
        assert wrong.status_code == 422
    video = generate(
        live_server,
        "video",
        {"prompt": "logo reveal", "duration": 1, "resolution": "240p", "image_id": up["image_id"]},
    )
    assert live_server.wait_for("videos", video["video_id"])["status"] == "completed"
