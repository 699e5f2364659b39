"""Post-production pages in-process (no browser): the compose page and its prefills, loudness badges
on asset pages and gallery cards, "made from" / "used in" links, and a channel export's page.

Workers are off: compositions and renditions stay `pending` (rendering is tested elsewhere), and a
finished state is written straight into the row where a page's look at it is what is tested. The
source media are uploads of tiny files made here (a second of video, an image, a second of music).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import update

from mediagen.auth.service import Principal
from mediagen.generations.tables import Generation
from mediagen.services import Services
from tests.web.page_kit import PASSWORD, page_world
from tests.web.test_pages import csrf_of


def make_video(path: Path, seconds: float = 1.0) -> Path:
    """Moving colour at 96×64, 10 fps, with a quiet tone (AAC)."""
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = out.add_stream("aac", rate=48_000, layout="stereo")
        for i in range(int(seconds * 10)):
            frame = np.full((64, 96, 3), (i * 20) % 255, np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(v.encode(None))
        t = np.arange(int(seconds * 48_000)) / 48_000
        tone = np.ascontiguousarray(np.stack([(0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)] * 2))
        af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="stereo")
        af.sample_rate, af.pts, af.time_base = 48_000, 0, Fraction(1, 48_000)
        out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def make_music(path: Path, seconds: float = 1.0) -> Path:
    t = np.arange(int(seconds * 44_100)) / 44_100
    sf.write(path, np.stack([0.2 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1), 44_100, subtype="PCM_16")
    return path


def make_image(path: Path) -> Path:
    Image.new("RGB", (80, 48), (40, 120, 200)).save(path)
    return path


class Studio:
    def __init__(self, app: Any, services: Services, admin: Principal, media: Path) -> None:
        self.app, self.services, self.admin, self.media = app, services, admin, media

    def upload(self, kind: str, title: str, client_id: str | None = "acme") -> int:
        make = {"video": make_video, "audio": make_music, "image": make_image}[kind]
        ext = {"video": "mp4", "audio": "wav", "image": "png"}[kind]
        path = make(self.media / f"{title}.{ext}")
        row = self.services.generations.create_upload(
            self.admin, kind, path, title=title, client_id=client_id, campaign_id=None, brief_id=None,
            collection=None,
        )  # fmt: skip
        return row.id

    def set_row(self, gen_id: int, **values: Any) -> None:
        with self.services.db.write() as s:
            s.execute(update(Generation).where(Generation.id == gen_id).values(**values))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    world = page_world(tmp_path_factory, "web-compose", spring=False)
    app, services, admin = world.app, world.services, world.admin
    media = Path(tmp_path_factory.mktemp("media"))
    yield Studio(app, services, admin, media)
    services.db.dispose()


@pytest.fixture(scope="module")
def assets(studio: Studio) -> dict[str, int]:
    """One finished video, image and track of Acme's (uploads: ingested as any asset)."""
    return {kind: studio.upload(kind, f"acme {kind}") for kind in ("video", "image", "audio")}


@pytest.fixture
def client(studio: Studio) -> Iterator[TestClient]:
    with TestClient(studio.app, base_url="http://testserver") as c:
        yield c


def sign_in(client: TestClient, email: str = "admin@example.com") -> str:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def compose_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="compose-data">(.*?)</script>', html, re.S)
    assert m, "the compose page embeds no data"
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def test_compose_page_offers_the_library_and_is_in_the_nav(
    client: TestClient, assets: dict[str, int]
) -> None:
    sign_in(client)
    r = client.get("/compose")
    assert r.status_code == 200
    page = r.text
    assert '<a href="/compose" aria-current="page">Compose</a>' in page
    assert f'data-add-clip="video" data-id="{assets["video"]}"' in page
    assert f'data-add-clip="image" data-id="{assets["image"]}"' in page
    assert f'id="music-{assets["audio"]}" value="{assets["audio"]}"' in page
    assert 'id="music-none" value="" checked' in page
    # The script gets what it needs of each item, and starts with nothing chosen.
    data = compose_data(page)
    video = next(v for v in data["library"]["video"] if v["id"] == assets["video"])
    assert video["duration"] == pytest.approx(1.0, abs=0.1) and video["thumbnail_url"]
    assert "parameters" not in video
    assert data["start"]["clips"] == [] and data["start"]["music"] is None
    # Every API field an error can name has its place beside a control.
    for field in (
        "clips",
        "music music.audio_id",
        "length",
        "loudness",
        "aspect",
        "title prompt",
        "collection",
    ):
        assert f'data-error-for="{field}"' in page, field
    for preset in ("social", "broadcast_eu", "broadcast_us", "podcast"):
        assert f'<option value="{preset}"' in page
    assert "/static/app.js" in page and "<script>" not in page  # no inline script (CSP)


def test_put_music_on_a_video_starts_with_it_and_its_filing(
    client: TestClient, studio: Studio, assets: dict[str, int]
) -> None:
    sign_in(client)
    page = client.get(f"/compose?video_id={assets['video']}&loudness=podcast&aspect=9:16").text
    start = compose_data(page)["start"]
    assert start["clips"] == [{"video_id": assets["video"]}]
    assert start["title"] == "acme video · with music"
    assert '<option value="podcast" selected>' in page
    assert re.search(r'name="aspect" id="aspect-\d" value="9:16" checked', page)
    assert '<option value="acme" selected>' in page  # filed like the video
    master = client.get(f"/compose?audio_id={assets['audio']}").text
    start = compose_data(master)["start"]
    assert start["clips"] == [] and start["music"] == {"audio_id": assets["audio"]}
    assert start["length"] == "1" and 'id="length" type="number"' in master
    assert f'id="music-{assets["audio"]}" value="{assets["audio"]}" checked' in master


def test_compose_page_is_scoped_to_the_users_clients(client: TestClient, assets: dict[str, int]) -> None:
    sign_in(client, "limited@example.com")
    page = client.get("/compose").text
    assert f'data-id="{assets["video"]}"' not in page and "acme video" not in page
    for url in (f"/compose?video_id={assets['video']}", f"/compose?audio_id={assets['audio']}"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith("text/html")
    assert client.get("/compose?video_id=abc").status_code == 404


def test_asset_pages_show_loudness_per_preset_and_post_production_actions(
    client: TestClient, studio: Studio, assets: dict[str, int]
) -> None:
    sign_in(client)
    video = client.get(f"/assets/video/{assets['video']}").text
    assert f'href="/compose?video_id={assets["video"]}"' in video and "Put music on this video" in video
    assert 'data-action="export"' in video and 'id="export-dialog"' in video
    for channel in ("youtube", "instagram-reel", "tiktok", "instagram-feed", "tv-eu", "tv-us"):
        assert f'id="channel-{channel}" value="{channel}"' in video
    assert 'value="radio"' not in video
    # The upload was measured at ingest: a quiet tone, too quiet for social delivery.
    assert 'data-field="integrated_lufs">−' in video
    assert re.search(r'<li data-preset="social">.*?verdict-too_quiet.*?</li>', video, re.S)

    # Figures as measured, a badge for each preset, and a way to master for the ones it misses.
    studio.set_row(assets["audio"], loudness_lufs=-14.2, true_peak_dbtp=-1.5, loudness_range=4.0)
    audio = client.get(f"/assets/audio/{assets['audio']}").text
    assert f'href="/compose?audio_id={assets["audio"]}"' in audio and "Master for …" in audio
    assert 'id="channel-radio"' in audio and 'id="channel-youtube"' not in audio
    assert '<dd data-field="integrated_lufs">−14.2 LUFS</dd>' in audio
    assert '<dd data-field="true_peak_dbtp">−1.5 dBTP</dd>' in audio and "4.0 LU" in audio
    verdicts = {p: v for v, p in re.findall(r'class="verdict verdict-(\w+)" data-preset="(\w+)"', audio)}
    assert verdicts == {
        "social": "meets",
        "broadcast_eu": "too_loud",
        "broadcast_us": "too_loud",
        "podcast": "too_loud",
    }
    assert f'href="/compose?audio_id={assets["audio"]}&amp;loudness=broadcast_eu">Master for this' in audio
    assert 'href="/compose?audio_id={}&amp;loudness=social"'.format(assets["audio"]) not in audio

    image = client.get(f"/assets/image/{assets['image']}").text
    assert 'id="loudness-panel"' not in image and 'data-action="export"' not in image
    assert f'href="/compose?image_id={assets["image"]}"' in image


def test_gallery_cards_carry_the_social_verdict(
    client: TestClient, studio: Studio, assets: dict[str, int]
) -> None:
    studio.set_row(assets["audio"], loudness_lufs=-14.2, true_peak_dbtp=-1.5, loudness_range=4.0)
    sign_in(client)
    music = client.get("/music").text
    card = music.split(f'data-id="{assets["audio"]}"', 1)[1].split("</li>", 1)[0]
    assert 'class="loud verdict-meets"' in card and "−14.2 LUFS" in card
    assert ", meets for social" in card  # said in words, not only by colour
    videos = client.get("/videos").text
    assert 'class="loud verdict-too_quiet"' in videos
    assert "LUFS" not in client.get("/images").text


def test_made_from_and_used_in_link_both_ways_and_a_deleted_source_says_so(
    client: TestClient, studio: Studio, assets: dict[str, int]
) -> None:
    token = sign_in(client)
    still = studio.upload("image", "short-lived still")
    body = {
        "clips": [{"video_id": assets["video"], "in": 0.1, "out": 0.8}, {"image_id": still, "duration": 1}],
        "music": {"audio_id": assets["audio"], "loop": True},
        "client_id": "acme",
    }
    assert client.post("/api/v2/compose", json=body).status_code == 403  # the session needs its CSRF header
    res = client.post("/api/v2/compose", json=body, headers={"X-CSRF-Token": token})
    assert res.status_code == 202, res.text
    spot = res.json()["video_id"]
    page = client.get(f"/assets/video/{spot}").text
    made_from = page.split('id="made-from"', 1)[1].split("</ul>", 1)[0]
    assert f'<a href="/assets/video/{assets["video"]}">Video #{assets["video"]}</a>' in made_from
    assert (
        f'<a href="/assets/image/{still}">Image #{still}</a></span> <span class="muted">Clip 2' in made_from
    )
    assert f'<a href="/assets/audio/{assets["audio"]}">Track #{assets["audio"]}</a>' in made_from
    assert "Measured when the video is ready." in page  # a composition is measured once rendered
    used_in = client.get(f"/assets/audio/{assets['audio']}").text.split('id="used-in"', 1)[1]
    assert f'<a href="/assets/video/{spot}">Video #{spot}</a>' in used_in.split("</ul>", 1)[0]

    studio.services.generations.delete(studio.admin, "image", still)
    made_from = client.get(f"/assets/video/{spot}").text.split('id="made-from"', 1)[1].split("</ul>", 1)[0]
    assert f'Image #{still} <span class="badge badge-deleted">deleted</span>' in made_from
    assert f'href="/assets/image/{still}"' not in made_from

    # What the compose page shows beside a field: the API names it as the recipe spells it.
    bad = {"clips": [{"video_id": assets["video"]}, {"video_id": 999_999}]}
    res = client.post("/api/v2/compose", json=bad, headers={"X-CSRF-Token": token})
    assert res.status_code == 404 and res.json()["errors"][0]["field"] == "clips[1].video_id"


def test_export_page_lists_the_renditions_and_offers_the_zip_once_one_is_done(
    client: TestClient, studio: Studio, assets: dict[str, int]
) -> None:
    token = sign_in(client)
    body = {"source": {"video_id": assets["video"]}, "channels": ["youtube", "tiktok"]}
    res = client.post("/api/v2/export", json=body, headers={"X-CSRF-Token": token})
    assert res.status_code == 202, res.text
    export_id, ids = res.json()["export_id"], res.json()["ids"]
    page = client.get(f"/exports/{export_id}").text
    assert f"<h1>Export #{export_id}</h1>" in page
    assert '<tr data-channel="tiktok" data-status="pending">' in page
    assert '<tr data-channel="youtube" data-status="pending">' in page
    assert 'id="export-zip-wait" aria-disabled="true"' in page and 'data-running="true"' in page
    assert "2 of 2 still running" in page

    studio.set_row(
        ids[0], status="completed", loudness_lufs=-14.1, true_peak_dbtp=-1.2, width=1920, height=1080
    )
    page = client.get(f"/exports/{export_id}").text
    assert f'id="export-zip" href="/api/exports/{export_id}/zip" download' in page
    row = page.split('<tr data-channel="youtube" data-status="completed">', 1)[1].split("</tr>", 1)[0]
    assert f'href="/api/videos/{ids[0]}/data?download=true"' in row
    assert "−14.1 LUFS" in row and 'verdict verdict-meets" data-preset="social"' in row
    assert "1920 × 1080" in row

    sign_in(client, "limited@example.com")
    assert client.get(f"/exports/{export_id}").status_code == 404
    assert client.get("/exports/999999").status_code == 404
