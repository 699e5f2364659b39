"""Post-production through the whole core and the API: compose a spot from stored clips and
music, master a music bed, export for channels, lineage, loudness on every asset, bad input."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from mediagen.app import create_app
from mediagen.auth.service import Principal
from mediagen.generations.ports import Step
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.vocabulary import Status
from tests.generations.conftest import blob_bytes, make_seeded_services, reread


def make_video(path: Path, seconds: float = 2.0, size: tuple[int, int] = (160, 90), fps: int = 25) -> Path:
    """Colour bars that move, with a 440 Hz tone at -20 dBFS."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48_000, layout="stereo")
        for i in range(int(seconds * fps)):
            frame = np.zeros((height, width, 3), np.uint8)
            frame[:, :, 0] = (np.arange(width) * 255 // width + i * 5) % 255
            frame[:, :, 1] = 120
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(v.encode(None))
        t = np.arange(int(seconds * 48_000)) / 48_000
        tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, len(tone), 4800):
            chunk = np.ascontiguousarray(np.stack([tone[s : s + 4800]] * 2))
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = 48_000, s, Fraction(1, 48_000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def make_music(path: Path, seconds: float = 3.0) -> Path:
    """A beat: clicks every half second over a quiet chord (wav)."""
    import soundfile as sf

    rate = 44_100
    t = np.arange(int(seconds * rate)) / rate
    chord = 0.05 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t) + np.sin(2 * np.pi * 330 * t))
    clicks = np.where((t % 0.5) < 0.01, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
    sf.write(path, np.stack([chord + clicks] * 2, axis=1).astype(np.float32), rate, subtype="PCM_16")
    return path


def make_image(path: Path) -> Path:
    ramp = np.linspace(0, 255, 200, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (120, 1))] * 3, -1)).save(path)
    return path


def decode(data: bytes, tmp: Path) -> dict[str, Any]:
    path = tmp / "out.bin"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        out: dict[str, Any] = {"video": None, "audio": None}
        if c.streams.video:
            frames = list(c.decode(c.streams.video[0]))
            out["video"] = {"frames": len(frames), "width": frames[0].width, "height": frames[0].height}
    with av.open(str(path)) as c:
        if c.streams.audio:
            s = c.streams.audio[0]
            pcm = np.concatenate(
                [f.to_ndarray().reshape(f.to_ndarray().shape[0], -1) for f in c.decode(s)], axis=1
            )
            out["audio"] = {"seconds": pcm.shape[1] / s.rate, "rate": s.rate}
    return out


class Studio:
    def __init__(self, services: Services, queue: Any, admin: Principal, api: TestClient, tmp: Path) -> None:
        self.services, self.queue, self.admin, self.api, self.tmp = services, queue, admin, api, tmp

    def upload(self, kind: str, path: Path, client_id: str = "acme") -> int:
        row = self.services.generations.create_upload(
            self.admin, kind, path, title=path.stem, client_id=client_id, campaign_id=None, brief_id=None,
            collection=None,
        )  # fmt: skip
        return row.id

    def run(self) -> None:
        """What a worker would do: the app queued these on its own (huey) queue; run each pending
        row's submit here, on the same database."""
        with self.services.db.read() as s:
            pending = s.scalars(select(Generation.id).where(Generation.status == Status.PENDING)).all()
        for gen_id in pending:
            self.services.pipeline.run(Step.SUBMIT, gen_id)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    services, queue, admin = make_seeded_services(tmp_path / "data")
    _, token = services.auth.create_key(user_id=admin.user_id, name="t")
    with TestClient(create_app(services.settings, run_workers=False), headers={"X-API-Key": token}) as api:
        yield Studio(services, queue, admin, api, tmp_path)
    services.close()


def test_every_audio_and_video_asset_gets_its_loudness_at_ingest(studio: Studio) -> None:
    vid = studio.upload("video", make_video(studio.tmp / "v.mp4"))
    item = studio.api.get(f"/api/videos/{vid}").json()
    # A 440 Hz tone peaking at -20 dBFS in both channels: each channel's mean square is 0.005
    # (-23.0 dB), two channels add 3.0 dB, BS.1770's offset is -0.691 and K-weighting at 440 Hz ~0 dB.
    assert item["loudness"]["integrated_lufs"] == pytest.approx(-20.7, abs=0.3)
    assert item["loudness"]["true_peak_dbtp"] == pytest.approx(-20.0, abs=0.5)
    img = studio.upload("image", make_image(studio.tmp / "i.png"))
    assert studio.api.get(f"/api/images/{img}").json()["loudness"] is None
    quiet = studio.api.get("/api/videos", params={"loudness": "social:too_quiet"}).json()
    assert [v["id"] for v in quiet["videos"]] == [vid]
    assert studio.api.get("/api/videos", params={"loudness": "social:meets"}).json()["total"] == 0
    assert studio.api.get("/api/videos", params={"loudness": "loud"}).status_code == 422


def test_a_spot_from_clips_and_music_is_a_video_with_its_lineage(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 2.0))
    v2 = studio.upload("video", make_video(studio.tmp / "b.mp4", 2.0))
    img = studio.upload("image", make_image(studio.tmp / "i.png"))
    music = studio.upload("audio", make_music(studio.tmp / "m.wav", 3.0))
    body = {
        "clips": [
            {"video_id": v1, "in": 0.5, "out": 1.5},
            {"image_id": img, "duration": 1},
            {"video_id": v2},
        ],
        "transition": {"type": "crossfade", "duration": 0.5},
        "music": {"audio_id": music, "loop": True, "fade_in": 0.2, "fade_out": 0.5, "mode": "duck"},
        "aspect": "9:16", "fit": "pad", "length": 2.5, "loudness": "social",
        "client_id": "acme", "collection": "spots",
    }  # fmt: skip
    res = studio.api.post("/api/v2/compose", json=body)
    assert res.status_code == 202, res.text
    accepted = res.json()
    assert accepted["model"] == "post/compose" and "video_id" in accepted
    studio.run()
    row = reread(studio.services, accepted["video_id"])
    assert row.status == Status.COMPLETED, row.error
    got = decode(blob_bytes(studio.services, row.blob_key or ""), studio.tmp)
    assert (got["video"]["width"], got["video"]["height"]) == (1080, 1920)
    assert got["video"]["frames"] == pytest.approx(2.5 * 30, abs=1)
    assert got["audio"]["seconds"] == pytest.approx(2.5, abs=1 / 30)
    item = studio.api.get(f"/api/videos/{row.id}").json()
    assert item["loudness"]["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    assert item["loudness"]["true_peak_dbtp"] <= -1.0 + 0.1
    made_from = {(m["kind"], m["id"], m["field"]) for m in item["made_from"]}
    assert made_from == {
        ("video", v1, "clips[0].video_id"),
        ("image", img, "clips[1].image_id"),
        ("video", v2, "clips[2].video_id"),
        ("audio", music, "music.audio_id"),
    }
    assert studio.api.get(f"/api/audio/{music}").json()["used_in"] == [{"kind": "video", "id": row.id}]
    # Deleting a source never breaks what was made from it.
    assert studio.api.delete(f"/api/videos/{v1}").status_code == 204
    after = studio.api.get(f"/api/videos/{row.id}").json()
    assert after["status"] == "completed" and studio.api.get(f"/api/videos/{row.id}/data").status_code == 200
    gone = [m for m in after["made_from"] if m["id"] == v1]
    assert gone and gone[0]["exists"] is False


def test_music_alone_is_mastered_to_a_preset(studio: Studio) -> None:
    music = studio.upload("audio", make_music(studio.tmp / "m.wav", 2.0))
    res = studio.api.post(
        "/api/v2/compose",
        json={"music": {"audio_id": music, "loop": True, "fade_out": 1}, "length": 5, "loudness": "podcast"},
    )
    assert res.status_code == 202, res.text
    assert res.json()["model"] == "post/master" and "audio_id" in res.json()
    studio.run()
    item = studio.api.get(f"/api/audio/{res.json()['audio_id']}").json()
    assert item["status"] == "completed", item["error"]
    assert item["duration"] == pytest.approx(5.0, abs=0.05)
    assert item["loudness"]["integrated_lufs"] == pytest.approx(-16.0, abs=0.5)


def test_bad_recipes_name_the_field_and_leave_nothing(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 1.0))
    music = studio.upload("audio", make_music(studio.tmp / "m.wav", 1.0))
    theirs = studio.upload("video", make_video(studio.tmp / "g.mp4", 1.0), client_id="globex")
    member = studio.services.auth.create_user(
        email="m@example.com", password="correct horse battery", role="member", clients=["acme"]
    )
    _, member_key = studio.services.auth.create_key(user_id=member.id, name="m")
    before = studio.api.get("/api/videos").json()["total"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"clips": [{"video_id": v1}, {"video_id": 999999}]}, 404, "clips[1].video_id"),
        ({"clips": [{"video_id": music}]}, 422, "clips[0].video_id"),
        ({"clips": [{"video_id": v1, "in": -1}]}, 422, "clips[0].in"),
        ({"clips": [{"video_id": v1}], "aspect": "3:2"}, 422, "aspect"),
        ({"clips": [{"video_id": v1}], "music": {"audio_id": v1}}, 422, "music.audio_id"),
        ({"clips": [{"video_id": v1, "image_id": 3}]}, 422, "clips[0]"),
    ]
    for body, status, field in cases:
        res = studio.api.post("/api/v2/compose", json=body)
        assert res.status_code == status, (body, res.text)
        assert res.json()["errors"][0]["field"] == field, res.json()
    hidden = studio.api.post(
        "/api/v2/compose", json={"clips": [{"video_id": theirs}]}, headers={"X-API-Key": member_key}
    )
    assert hidden.status_code == 404 and hidden.json()["errors"][0]["field"] == "clips[0].video_id"
    assert studio.api.get("/api/videos").json()["total"] == before


def test_cuts_the_material_cannot_give_are_refused_before_queueing(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 1.0))
    before = studio.api.get("/api/videos").json()["total"]
    cases = [
        ({"clips": [{"video_id": v1, "in": 0.2, "out": 5.0}]}, "clips[0].out"),
        ({"clips": [{"video_id": v1, "in": 0.8, "out": 0.4}]}, "clips[0].out"),
        ({"clips": [{"video_id": v1}], "length": 30}, "length"),
    ]
    for body, field in cases:
        res = studio.api.post("/api/v2/compose", json=body)
        assert res.status_code == 422, (body, res.text)
        assert res.json()["errors"][0]["field"] == field, res.json()
    assert studio.api.get("/api/videos").json()["total"] == before


def test_the_generic_generate_route_takes_the_same_recipe(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 1.0))
    res = studio.api.post(
        "/api/v2/generate/video",
        json={
            "model": "post/compose",
            "prompt": "square cut",
            "parameters": {"clips": [{"video_id": v1}], "aspect": "1:1"},
        },
    )
    assert res.status_code == 202, res.text
    bad = studio.api.post(
        "/api/v2/generate/video",
        json={"model": "post/compose", "prompt": "x", "parameters": {"clips": [{"video_id": v1, "out": 9}]}},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "parameters.clips[0].out"
    studio.run()
    item = studio.api.get(f"/api/videos/{res.json()['video_id']}").json()
    assert item["status"] == "completed", item["error"]
    assert (item["width"], item["height"]) == (1080, 1080)


def test_channel_exports_render_each_channel_and_zip_them(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 1.0))
    res = studio.api.post(
        "/api/v2/export", json={"source": {"video_id": v1}, "channels": ["youtube", "tiktok"]}
    )
    assert res.status_code == 202, res.text
    export = res.json()
    assert len(export["ids"]) == 2
    studio.run()
    listed = studio.api.get(f"/api/exports/{export['export_id']}").json()
    by_channel = {r["channel"]: r for r in listed["renditions"]}
    assert set(by_channel) == {"youtube", "tiktok"}
    assert all(r["status"] == "completed" for r in by_channel.values())
    tiktok = studio.api.get(by_channel["tiktok"]["url"]).json()
    assert (tiktok["width"], tiktok["height"]) == (1080, 1920)
    assert tiktok["loudness"]["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    zipped = studio.api.get(f"/api/exports/{export['export_id']}/zip")
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert sorted(names) == sorted(f"acme-{c}-{by_channel[c]['id']}.mp4" for c in ("youtube", "tiktok"))

    bad = studio.api.post("/api/v2/export", json={"source": {"video_id": v1}, "channels": ["youtube", "fax"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "channels[1]"
    audio_only = studio.api.post("/api/v2/export", json={"source": {"video_id": v1}, "channels": ["radio"]})
    assert audio_only.status_code == 422
    missing = studio.api.post(
        "/api/v2/export", json={"source": {"video_id": 999999}, "channels": ["youtube"]}
    )
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "source.video_id"


def test_an_export_is_visible_only_within_its_clients(studio: Studio) -> None:
    v1 = studio.upload("video", make_video(studio.tmp / "a.mp4", 1.0))
    export = studio.api.post(
        "/api/v2/export", json={"source": {"video_id": v1}, "channels": ["youtube"]}
    ).json()
    outsider = studio.services.auth.create_user(
        email="g@example.com", password="correct horse battery", role="member", clients=["globex"]
    )
    _, key = studio.services.auth.create_key(user_id=outsider.id, name="g")
    for path in (f"/api/exports/{export['export_id']}", f"/api/exports/{export['export_id']}/zip"):
        assert studio.api.get(path, headers={"X-API-Key": key}).status_code == 404
    # Nor can they export, or compose from, an asset of a client they cannot see.
    theirs = studio.api.post(
        "/api/v2/export",
        json={"source": {"video_id": v1}, "channels": ["youtube"]},
        headers={"X-API-Key": key},
    )
    assert theirs.status_code == 404 and theirs.json()["errors"][0]["field"] == "source.video_id"
    assert (
        studio.api.get(f"/api/exports/{export['export_id']}/zip").status_code == 422
    )  # nothing rendered yet
