"""Bulk downloads through the API, in-process: a zip of finished assets of every kind, decoded
back (names, stored members, the same bytes as each single download), its GET form, the names
single downloads carry, and every refusal naming the item at fault."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image

from mediagen.app import create_app
from mediagen.campaigns import schemas as sc
from mediagen.engines.synth.video import render_video
from mediagen.generations.filenames import asset_filename, slug
from mediagen.services import Services
from tests.generations.conftest import make_seeded_services

CAMPAIGN_NAME = "Été Launch 2027"
TITLE = "Café del Mar — sunset ☀ mix, with a title far too long for any file name"


def wav_bytes() -> bytes:
    t = np.arange(22050) / 22050
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 330 * t), 22050, format="WAV")
    return buf.getvalue()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(3).random((40, 60, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class World:
    def __init__(self, services: Services, api: TestClient, ids: dict[str, int]) -> None:
        self.services, self.api, self.ids = services, api, ids


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One set of assets for the module (the tests only read them)."""
    tmp_path = tmp_path_factory.mktemp("downloads")
    services, _, admin = make_seeded_services(tmp_path / "data")
    services.campaigns.create_campaign(
        admin, sc.CampaignCreate(id="ete", client_id="acme", name=CAMPAIGN_NAME)
    )
    _, token = services.auth.create_key(user_id=admin.user_id, name="t")
    clip = tmp_path / "clip.mp4"
    render_video("ocean", duration=1.0, fps=10, width=64, height=48, seed=1, out=clip)
    with TestClient(create_app(services.settings, run_workers=False), headers={"X-API-Key": token}) as api:

        def upload(path: str, content: bytes, **params: str) -> int:
            r = api.post(f"/api/{path}/upload", params=params, content=content)
            assert r.status_code == 201, r.text
            return int(r.json()["id"])

        ids = {
            "audio": upload("audio", wav_bytes(), title=TITLE, campaign_id="ete"),
            "image": upload("images", png_bytes(), title="A red fox", client_id="acme"),
            "video": upload("videos", clip.read_bytes(), title="日本語のみ"),
            "globex": upload("images", png_bytes(), title="theirs", client_id="globex"),
        }
        pending = api.post("/api/v2/generate/audio", json={"prompt": "x", "duration": 1})
        ids["pending"] = pending.json()["id"]
        yield World(services, api, ids)
    services.close()


def expected_names(w: World) -> list[str]:
    i = w.ids
    return [
        f"ete-launch-2027-cafe-del-mar-sunset-mix-with-a-title-far-{i['audio']}.wav",  # 40 characters
        f"acme-a-red-fox-{i['image']}.png",
        f"video-{i['video']}.mp4",  # no filing, no ASCII in the title: the kind stands in
    ]


def items(w: World) -> list[dict[str, Any]]:
    return [{"kind": k, "id": w.ids[k]} for k in ("audio", "image", "video")]


def test_the_zip_holds_every_asset_under_its_download_name_with_its_bytes(world: World) -> None:
    r = world.api.post("/api/downloads", json={"items": [*items(world), items(world)[0]]})  # one twice
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=") and "filename*=UTF-8''" in disposition
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        members = zf.infolist()
        assert [m.filename for m in members] == expected_names(world)
        assert {m.compress_type for m in members} == {zipfile.ZIP_STORED}
        for member, item in zip(members, items(world), strict=True):
            path = {"audio": "audio", "image": "images", "video": "videos"}[item["kind"]]
            single = world.api.get(f"/api/{path}/{item['id']}/data", params={"download": "true"})
            assert single.status_code == 200
            assert zf.read(member) == single.content
            name = member.filename
            assert single.headers["content-disposition"] == (
                f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
            )
    # Without ?download the bytes are inline, unnamed (players fetch them).
    assert "content-disposition" not in world.api.get(f"/api/images/{world.ids['image']}/data").headers


def test_the_get_form_answers_the_same_zip(world: World) -> None:
    listed = ",".join(f"{i['kind']}:{i['id']}" for i in items(world))
    got = world.api.get("/api/downloads", params={"items": listed})
    posted = world.api.post("/api/downloads", json={"items": items(world)})
    assert got.status_code == 200 and got.content == posted.content
    one = world.api.get("/api/downloads", params={"items": f"audio:{world.ids['audio']}"})
    assert re.search(r'filename="ete-launch-2027-1-files\.zip"', one.headers["content-disposition"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (lambda w: {"items": [{"kind": "audio", "id": 2_000_000_001}]}, 404, "items[0]"),
        (lambda w: {"items": [{"kind": "audio", "id": w.ids["image"]}]}, 404, "items[0]"),  # wrong kind
        (lambda w: {"items": [items(w)[0], {"kind": "audio", "id": w.ids["pending"]}]}, 409, "items[1]"),
        (lambda w: {"items": []}, 422, "items"),
        (lambda w: {"items": [{"kind": "audio", "id": 1}] * 1001}, 422, "items"),
        (lambda w: {"items": [{"kind": "sound", "id": 1}]}, 422, "items[0].kind"),
    ],
)
def test_every_refusal_names_the_item(world: World, body: Any, status: int, field: str) -> None:
    r = world.api.post("/api/downloads", json=body(world))
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


def test_a_limited_caller_gets_a_404_for_an_asset_it_cannot_see(world: World) -> None:
    user = world.services.auth.create_user(
        email="m@example.com", password="correct horse battery", role="member", clients=["acme"]
    )
    _, token = world.services.auth.create_key(user_id=user.id, name="m")
    theirs, nothing = world.ids["globex"], 2_000_000_001
    answers = [
        world.api.get("/api/downloads", params={"items": f"image:{i}"}, headers={"X-API-Key": token})
        for i in (theirs, nothing)
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].text.replace(str(theirs), "X") == answers[1].text.replace(str(nothing), "X")
    mine = world.api.get(
        "/api/downloads", params={"items": f"image:{world.ids['image']}"}, headers={"X-API-Key": token}
    )
    assert mine.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [("audio:1,bogus", "items[1]"), ("audio:x", "items[0]"), (",", "items"), ("", "items")],
)
def test_a_malformed_link_is_a_422_naming_the_item(world: World, query: str, field: str) -> None:
    r = world.api.get("/api/downloads", params={"items": query})
    assert r.status_code == 422 and field in [e["field"] for e in r.json()["errors"]], r.text


def test_names_are_short_ascii_slugs() -> None:
    assert slug("Ça va? Über-cool   PROMPT!!") == "ca-va-uber-cool-prompt"
    long = slug("word " * 30)
    assert len(long) <= 40 and long.endswith("word") and long.isascii()
    assert slug("x" * 60) == "x" * 40
    assert slug("☀☀☀") == ""
    assert asset_filename(7, "audio", "", "audio/mpeg", client="Acme Rockets") == "acme-rockets-audio-7.mp3"
    assert (
        asset_filename(7, "image", "fox", "image/jpeg", campaign="Spring", client="Acme")
        == "spring-fox-7.jpg"
    )
    assert asset_filename(7, "video", "fox", None) == "fox-7.bin"
