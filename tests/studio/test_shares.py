"""Review links in-process: making them (every target, absolute URLs, hashed tokens), what a token
reaches (exactly what was shared: probed by guessing ids, kinds and routes), revoking and expiry
(410 at once), the team's list across tenants, and the reviewer's comments and verdicts (recorded
under their name and the link, guarded by origin, content type and a rate limit).

One app and one small world per module: two tenants, uploads of every kind, a take group whose id
the other tenant's asset shares too, and a pending asset.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, text, update

from mediagen.app import create_app
from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.engines.synth.video import render_video
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.studio.tables import Comment, ReviewEvent, Share
from mediagen.vocabulary import KINDS, Kind
from tests.generations.conftest import migrate

PASSWORD = "correct horse battery"
ORIGIN = {"Origin": "http://testserver"}
MISSING = 2_000_000_001
ROUTES = ("data", "waveform", "thumbnail", "poster")
TG = "tg_sharedgroup01"  # used by an acme take group *and* a globex asset


@dataclass
class World:
    http: TestClient
    services: Services
    keys: dict[str, str]  # root (every client), acme, globex
    assets: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (kind, id)

    def api(self, who: str, method: str, url: str, **kw: Any) -> Any:
        headers = {"X-API-Key": self.keys[who], **kw.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kw)

    def share(self, who: str, target: dict[str, Any], **body: Any) -> dict[str, Any]:
        r = self.api(who, "POST", "/api/shares", json={"target": target, **body})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def id(self, name: str) -> int:
        return self.assets[name][1]


def token_of(link: dict[str, Any]) -> str:
    return str(link["url"]).rsplit("/s/", 1)[1]


def wav(freq: float, seconds: float = 1.0) -> bytes:
    t = np.arange(int(22050 * seconds)) / 22050
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), 22050, format="WAV")
    return buf.getvalue()


def png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def mp4(folder: Path) -> bytes:
    out = folder / "clip.mp4"
    render_video("ocean", duration=1.0, fps=10, width=64, height=48, seed=1, out=out)
    return out.read_bytes()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = Path(tmp_path_factory.mktemp("shares"))
    settings = Settings(data_dir=data, secret_key="shares", generate_rate_limit_per_minute=0)
    settings.ensure_dirs()
    migrate(settings.resolved_database_url)
    with ExitStack() as stack:
        app = create_app(settings, run_workers=False)
        http = stack.enter_context(TestClient(app, base_url="http://testserver"))
        services: Services = app.state.services
        keys = {}
        for who, role, clients in (
            ("root", "admin", None),
            ("acme", "member", ["acme"]),
            ("globex", "member", ["globex"]),
        ):
            user = services.auth.create_user(
                email=f"{who}@example.com", password=PASSWORD, role=role, clients=clients
            )
            keys[who] = services.auth.create_key(user_id=user.id, name=who)[1]
        w = World(http, services, keys)
        for client, campaigns in (("acme", ("spring", "autumn")), ("globex", ("harvest",))):
            assert (
                w.api("root", "POST", "/api/clients", json={"id": client, "name": client.title()}).status_code
                == 201
            )
            for c in campaigns:
                body = {"id": c, "client_id": client, "name": f"{c.title()} Launch"}
                assert w.api("root", "POST", "/api/campaigns", json=body).status_code == 201
        uploads = {
            "a1": ("acme", "audio", "spring", wav(220)),
            "a2": ("acme", "audio", "spring", wav(330)),
            "a3": ("acme", "audio", "autumn", wav(440)),
            "i1": ("acme", "image", "spring", png()),
            "v1": ("acme", "video", "spring", mp4(data)),
            "g1": ("globex", "audio", "harvest", wav(550)),
        }
        for name, (who, kind, campaign, content) in uploads.items():
            path = KINDS[Kind(kind)].path
            r = w.api(
                who,
                "POST",
                f"/api/{path}/upload",
                params={"title": name, "campaign_id": campaign},
                content=content,
            )
            assert r.status_code == 201, r.text
            w.assets[name] = (kind, r.json()["id"])
        pending = {"prompt": "still cooking", "model": "synth/music", "campaign_id": "spring"}
        r = w.api("acme", "POST", "/api/v2/generate/audio", json=pending)
        assert r.status_code == 202, r.text
        w.assets["p1"] = ("audio", r.json()["id"])
        with services.db.write() as s:
            for name, group in (("a1", TG), ("a2", TG), ("g1", TG), ("a3", "tg_othergroup001")):
                s.execute(update(Generation).where(Generation.id == w.id(name)).values(take_group=group))
        yield w


def reach(w: World, token: str, kind: str, gen_id: int, route: str) -> Any:
    base = f"/s/{token}/{kind}/{gen_id}"
    if route == "comments":
        return w.http.post(f"{base}/comments", json={"name": "Probe", "text": "hello"}, headers=ORIGIN)
    if route == "review":
        return w.http.post(f"{base}/review", json={"name": "Probe", "status": "approved"}, headers=ORIGIN)
    return w.http.get(f"{base}/{route}")


def census(w: World) -> tuple[int, int, list[tuple[int, str]]]:
    with w.services.db.read() as s:
        comments = s.scalar(text("SELECT COUNT(*) FROM comments")) or 0
        moves = s.scalar(text("SELECT COUNT(*) FROM review_events")) or 0
        statuses = sorted(s.execute(select(Generation.id, Generation.review_status)).all())
    return comments, moves, statuses


def assert_reaches_exactly(w: World, token: str, reachable: set[str]) -> None:
    """Every asset under every kind's routes: the reachable ones answer, every other is the same 404
    as an id that exists nowhere, and posting to one changes nothing."""
    for name, (kind, gen_id) in w.assets.items():
        for as_kind in KINDS:
            if name in reachable and as_kind == kind:
                assert reach(w, token, kind, gen_id, "data").status_code == 200, name
                for route in KINDS[Kind(kind)].derivations:
                    assert reach(w, token, kind, gen_id, route).status_code == 200, (name, route)
                continue
            before = census(w)
            for route in (*ROUTES, "comments", "review"):
                r = reach(w, token, str(as_kind), gen_id, route)
                twin = reach(w, token, str(as_kind), MISSING, route)
                assert r.status_code == 404, (name, as_kind, route, r.status_code, r.text)
                assert r.text == twin.text, (name, as_kind, route)
                assert r.headers["referrer-policy"] == "no-referrer"
            assert census(w) == before, (name, as_kind)


# making links ---------------------------------------------------------------------------------
def test_a_link_for_each_kind_of_target(world: World) -> None:
    for target in (
        {"kind": "audio", "id": world.id("a1")},
        {"kind": "video", "id": world.id("v1")},
        {"take_group": TG},
        {"campaign_id": "spring"},
    ):
        link = world.share("acme", target, label="Round 1", expires_in=3600)
        assert link["target"] == target and link["label"] == "Round 1" and link["state"] == "active"
        assert link["client_id"] == "acme" and link["campaign_id"] == "spring"
        assert link["created_by_email"] == "acme@example.com"
        assert re.fullmatch(r"http://testserver/s/[A-Za-z0-9_-]{43}", link["url"]), link["url"]
        assert "token" not in link
        made = link["created_at"]
        assert link["expires_at"] > made
        assert world.http.get(f"/s/{token_of(link)}").status_code == 200


def test_the_url_is_absolute_on_the_public_url_or_the_request_host(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = {"kind": "image", "id": world.id("i1")}
    r = world.api(
        "acme", "POST", "/api/shares", json={"target": target}, headers={"Host": "media.example.org:8443"}
    )
    assert r.status_code == 201 and r.json()["url"].startswith("http://media.example.org:8443/s/"), r.text
    monkeypatch.setattr(world.services.settings, "public_url", "https://review.example.com/studio/")
    link = world.share("acme", target)
    assert re.fullmatch(r"https://review\.example\.com/studio/s/[A-Za-z0-9_-]{43}", link["url"])


def test_a_link_lives_seven_days_unless_told_and_never_past_the_server_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = {"kind": "audio", "id": world.id("a1")}

    def lifetime(link: dict[str, Any]) -> float:
        made, ends = (
            datetime.fromisoformat(link[k].replace("Z", "+00:00")) for k in ("created_at", "expires_at")
        )
        return (ends - made).total_seconds()

    assert lifetime(world.share("acme", target)) == 7 * 86400
    assert lifetime(world.share("acme", target, expires_in=60)) == 60
    monkeypatch.setattr(world.services.settings, "share_max_seconds", 3600)
    assert lifetime(world.share("acme", target)) == 3600
    r = world.api("acme", "POST", "/api/shares", json={"target": target, "expires_in": 3601})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_in"


def test_only_the_token_hash_is_stored(world: World) -> None:
    link = world.share("acme", {"kind": "audio", "id": world.id("a1")})
    token = token_of(link)
    with world.services.db.read() as s:
        row = s.get(Share, link["id"])
        assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        dump = " ".join(str(v) for r in s.execute(text("SELECT * FROM shares")) for v in r)
    assert token not in dump
    listed = world.api("acme", "GET", "/api/shares").text
    assert token not in listed and "token" not in listed


def test_bad_requests_name_the_field(world: World) -> None:
    a1 = world.id("a1")
    cases = [
        ({"target": {"kind": "audio"}}, "target"),
        ({"target": {"kind": "audio", "id": a1, "campaign_id": "spring"}}, "target"),
        ({"target": {}}, "target"),
        ({"target": {"kind": "audio", "id": a1}, "expires_in": 59}, "expires_in"),
        ({"target": {"kind": "audio", "id": a1}, "expires_in": 91 * 86400}, "expires_in"),
        ({"target": {"kind": "audio", "id": a1}, "label": "x" * 201}, "label"),
        ({"target": {"kind": "audio", "id": a1}, "token": "mine"}, "token"),
    ]
    for body, name in cases:
        r = world.api("acme", "POST", "/api/shares", json=body)
        assert r.status_code == 422, (body, r.text)
        assert name in [e["field"] for e in r.json()["errors"]], (body, r.text)
    r = world.api("acme", "GET", "/api/shares", params={"kind": "audio"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id"


def test_a_target_the_caller_cannot_see_is_a_404_naming_target(world: World) -> None:
    for target, missing in (
        ({"kind": "audio", "id": world.id("g1")}, {"kind": "audio", "id": MISSING}),
        ({"kind": "image", "id": world.id("a1")}, {"kind": "image", "id": MISSING}),  # another kind
        ({"campaign_id": "harvest"}, {"campaign_id": "nope"}),
        ({"take_group": "tg_othergroup001"}, {"take_group": "tg_nope"}),
    ):
        who = "acme" if "take_group" not in target else "globex"
        r = world.api(who, "POST", "/api/shares", json={"target": target})
        twin = world.api(who, "POST", "/api/shares", json={"target": missing})
        assert r.status_code == twin.status_code == 404, (target, r.text)
        assert r.json()["errors"][0]["field"] == "target"
        secret = next(v for k, v in target.items() if k != "kind")
        nothing = next(v for k, v in missing.items() if k != "kind")
        assert r.text.replace(str(secret), "«»") == twin.text.replace(str(nothing), "«»")


# what a token reaches -----------------------------------------------------------------------------
def test_an_asset_link_reaches_that_asset_and_nothing_else(world: World) -> None:
    link = world.share("acme", {"kind": "audio", "id": world.id("a1")})
    assert_reaches_exactly(world, token_of(link), {"a1"})


def test_a_take_group_link_reaches_its_takes_only(world: World) -> None:
    # The globex asset carries the same take group id: the tenant still keeps it out.
    link = world.share("acme", {"take_group": TG})
    assert_reaches_exactly(world, token_of(link), {"a1", "a2"})
    page = world.http.get(f"/s/{token_of(link)}").text
    assert f"/audio/{world.id('a1')}/data" in page and f"/audio/{world.id('a2')}/data" in page
    assert f"/{world.id('g1')}/" not in page and f"/{world.id('a3')}/" not in page


def test_a_campaign_link_reaches_its_finished_assets_only(world: World) -> None:
    link = world.share("acme", {"campaign_id": "spring"})
    token = token_of(link)
    assert_reaches_exactly(world, token, {"a1", "a2", "i1", "v1"})  # not p1 (pending) nor a3, g1
    page = world.http.get(f"/s/{token}").text
    for name in ("a1", "a2", "i1", "v1"):
        kind, gen_id = world.assets[name]
        assert f"/s/{token}/{kind}/{gen_id}/data" in page, name
    for name in ("a3", "g1", "p1"):
        assert f"/{world.id(name)}/" not in page, name
    assert re.findall(r'<h2 id="share-group-(\w+)"', page) == ["audio", "image", "video"]


def test_a_token_opens_no_api_route(world: World) -> None:
    token = token_of(world.share("acme", {"kind": "audio", "id": world.id("a1")}))
    a1 = world.id("a1")
    for headers, params in (
        ({"X-API-Key": token}, {}),
        ({"Authorization": f"Bearer {token}"}, {}),
        ({}, {"token": token}),
        ({"Cookie": f"mediagen_session={token}"}, {}),
    ):
        for url in (f"/api/audio/{a1}", f"/api/audio/{a1}/data", "/api/shares", f"/api/audio/{a1}/comments"):
            r = world.http.get(url, headers=headers, params=params)
            assert r.status_code == 401, (url, headers, params, r.status_code)
        assert (
            world.http.get(
                f"/assets/audio/{a1}", headers=headers, params=params, follow_redirects=False
            ).status_code
            == 303
        )
    # Nor another route under /s/ that a guess might try.
    for url in (
        f"/s/{token}/audio/{a1}",
        f"/s/{token}/audio/{a1}/files/waveform",
        f"/s/{token}/audio",
        f"/s/{token}/api/audio/{a1}",
    ):
        assert world.http.get(url).status_code == 404, url


# revoked, expired, unknown ------------------------------------------------------------------------
def test_a_revoked_link_is_gone_at_once(world: World) -> None:
    a1 = world.id("a1")
    link = world.share("acme", {"kind": "audio", "id": a1})
    token = token_of(link)
    assert world.http.get(f"/s/{token}/audio/{a1}/data").status_code == 200
    assert world.api("acme", "DELETE", f"/api/shares/{link['id']}").status_code == 204
    page = world.http.get(f"/s/{token}")
    assert page.status_code == 410 and "was revoked" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "noindex" in page.headers["x-robots-tag"]
    for route in (*ROUTES[:2], "comments", "review"):
        r = reach(world, token, "audio", a1, route)
        assert r.status_code == 410 and r.json()["gone"] == "revoked", route
    assert world.api("acme", "DELETE", f"/api/shares/{link['id']}").status_code == 204  # harmless again
    listed = world.api(
        "acme", "GET", "/api/shares", params={"kind": "audio", "id": a1, "active": "false"}
    ).json()
    assert link["id"] in [x["id"] for x in listed["shares"] if x["state"] == "revoked"]
    active = world.api(
        "acme", "GET", "/api/shares", params={"kind": "audio", "id": a1, "active": "true"}
    ).json()
    assert link["id"] not in [x["id"] for x in active["shares"]]


def test_an_expired_link_is_gone(world: World) -> None:
    a1 = world.id("a1")
    link = world.share("acme", {"kind": "audio", "id": a1}, expires_in=60)
    token = token_of(link)
    with world.services.db.write() as s:
        s.execute(
            update(Share).where(Share.id == link["id"]).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    page = world.http.get(f"/s/{token}")
    assert page.status_code == 410 and "has expired" in page.text
    assert reach(world, token, "audio", a1, "data").status_code == 410
    assert (
        world.api("acme", "GET", "/api/shares", params={"kind": "audio", "id": a1}).json()["shares"][0][
            "state"
        ]
        == "expired"
    )


def test_an_unknown_token_is_a_404(world: World) -> None:
    a1 = world.id("a1")
    for token in ("nope", "A" * 43, "x" * 500):
        assert world.http.get(f"/s/{token}").status_code == 404
        assert world.http.get(f"/s/{token}/audio/{a1}/data").status_code == 404


# the team's list across tenants -------------------------------------------------------------------
def test_another_tenant_cannot_list_or_revoke_a_link(world: World) -> None:
    link = world.share("acme", {"campaign_id": "spring"}, label="kumquat round")
    theirs = world.share("globex", {"kind": "audio", "id": world.id("g1")}, label="zanzibar round")
    for params in (
        {},
        {"campaign_id": "spring"},
        {"kind": "audio", "id": world.id("a1")},
        {"take_group": TG},
    ):
        seen = world.api("globex", "GET", "/api/shares", params=params)
        assert seen.status_code == 200 and "kumquat" not in seen.text and "acme" not in seen.text
    r = world.api("globex", "DELETE", f"/api/shares/{link['id']}")
    twin = world.api("globex", "DELETE", f"/api/shares/{MISSING}")
    assert r.status_code == twin.status_code == 404
    assert r.text.replace(str(link["id"]), "«»") == twin.text.replace(str(MISSING), "«»")
    assert world.http.get(f"/s/{token_of(link)}").status_code == 200  # still works
    mine = world.api("acme", "GET", "/api/shares", params={"campaign_id": "spring"}).json()
    assert link["id"] in [x["id"] for x in mine["shares"]] and "zanzibar" not in str(mine)
    every = world.api("root", "GET", "/api/shares", params={"limit": 100}).json()
    assert {link["id"], theirs["id"]} <= {x["id"] for x in every["shares"]}
    assert every["total"] >= every["count"] >= 2


# the reviewer -------------------------------------------------------------------------------------
def test_a_reviewer_comments_and_approves_under_their_name(world: World) -> None:
    a2 = world.id("a2")
    link = world.share("acme", {"take_group": TG})
    token = token_of(link)
    r = world.http.post(
        f"/s/{token}/audio/{a2}/comments",
        json={"name": " Dana ", "text": "Brighter here", "at": 0.5},
        headers=ORIGIN,
    )
    assert r.status_code == 201, r.text
    assert r.json()["author_name"] == "Dana" and r.json()["at"] == 0.5
    r = world.http.post(
        f"/s/{token}/audio/{a2}/review", json={"name": "Dana", "status": "approved"}, headers=ORIGIN
    )
    assert r.status_code == 200 and r.json()["review_status"] == "approved", r.text
    with world.services.db.read() as s:
        comment = s.scalars(select(Comment).where(Comment.generation_id == a2)).one()
        move = s.scalars(select(ReviewEvent).where(ReviewEvent.generation_id == a2)).one()
    assert (comment.author_name, comment.author_user, comment.share_id, comment.at_seconds) == (
        "Dana",
        None,
        link["id"],
        0.5,
    )
    assert (move.actor_name, move.actor_user, move.share_id, move.to_status) == (
        "Dana",
        None,
        link["id"],
        "approved",
    )
    # The team sees both on the asset.
    history = world.api("acme", "GET", f"/api/audio/{a2}/history").json()["history"]
    assert history[-1]["actor_name"] == "Dana" and history[-1]["share_id"] == link["id"]
    comments = world.api("acme", "GET", f"/api/audio/{a2}/comments").json()["comments"]
    assert comments[-1]["author_name"] == "Dana" and comments[-1]["share_id"] == link["id"]
    assert world.api("acme", "GET", f"/api/audio/{a2}").json()["review_status"] == "approved"
    # And the reviewer sees their comment when they come back.
    page = world.http.get(f"/s/{token}").text
    assert "Brighter here" in page and "Dana" in page
    r = world.http.post(
        f"/s/{token}/audio/{a2}/review", json={"name": "Dana", "status": "rejected"}, headers=ORIGIN
    )
    assert (
        r.status_code == 200
        and world.api("acme", "GET", f"/api/audio/{a2}").json()["review_status"] == "rejected"
    )


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("a1", {"name": "", "text": "hi"}, "name"),
        ("a1", {"name": "   ", "text": "hi"}, "name"),
        ("a1", {"name": "x" * 101, "text": "hi"}, "name"),
        ("a1", {"name": "Dana\u0000", "text": "hi"}, "name"),
        ("a1", {"name": "Dana", "text": ""}, "text"),
        ("a1", {"name": "Dana", "text": "x" * 2001}, "text"),
        ("a1", {"name": "Dana", "text": "hi", "at": 1.5}, "at"),  # the clip is 1 s long
        ("a1", {"name": "Dana", "text": "hi", "at": -1}, "at"),
        ("i1", {"name": "Dana", "text": "hi", "at": 0}, "at"),  # an image has no timeline
        ("a1", {"name": "Dana", "text": "hi", "author_user": "root"}, "author_user"),
    ],
)
def test_reviewer_comments_are_checked(world: World, name: str, body: dict[str, Any], field: str) -> None:
    kind, gen_id = world.assets[name]
    token = token_of(world.share("acme", {"campaign_id": "spring"}))
    before = census(world)
    r = world.http.post(f"/s/{token}/{kind}/{gen_id}/comments", json=body, headers=ORIGIN)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text
    assert census(world) == before


def test_reviewer_verdicts_are_checked(world: World) -> None:
    token = token_of(world.share("acme", {"campaign_id": "spring"}))
    url = f"/s/{token}/image/{world.id('i1')}/review"
    for body, named in (
        ({"name": "Dana", "status": "in_review"}, "status"),
        ({"status": "approved"}, "name"),
    ):
        r = world.http.post(url, json=body, headers=ORIGIN)
        assert r.status_code == 422 and named in [e["field"] for e in r.json()["errors"]], r.text


def test_reviewer_posts_must_be_json_from_our_own_origin(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_of(world.share("acme", {"kind": "image", "id": world.id("i1")}))
    url = f"/s/{token}/image/{world.id('i1')}/comments"
    body = {"name": "Mallory", "text": "pwned"}
    before = census(world)
    refused = [
        (415, {"Content-Type": "text/plain", **ORIGIN}, b'{"name": "M", "text": "x"}'),
        (415, {"Content-Type": "application/x-www-form-urlencoded", **ORIGIN}, b"name=M&text=x"),
        (403, {"Origin": "https://evil.example"}, None),
        (403, {"Origin": "http://testserver.evil.example"}, None),
        (403, {"Origin": "null"}, None),
        (403, {}, None),  # no Origin and no Sec-Fetch-Site
        (403, {"Sec-Fetch-Site": "cross-site"}, None),
    ]
    for status, headers, raw in refused:
        if raw is None:
            r = world.http.post(url, json=body, headers=headers)
        else:
            r = world.http.post(url, content=raw, headers=headers)
        assert r.status_code == status, (headers, r.status_code, r.text)
    assert census(world) == before
    # A same-origin fetch without an Origin header, and the public URL's origin behind a proxy.
    assert world.http.post(url, json=body, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 201
    monkeypatch.setattr(world.services.settings, "public_url", "https://review.example.com")
    assert (
        world.http.post(url, json=body, headers={"Origin": "https://review.example.com"}).status_code == 201
    )


def test_reviewer_posts_are_rate_limited_per_link(world: World) -> None:
    v1 = world.id("v1")
    token = token_of(world.share("acme", {"kind": "video", "id": v1}))
    other = token_of(world.share("acme", {"kind": "video", "id": v1}))
    url = f"/s/{token}/video/{v1}/comments"
    for i in range(30):
        r = world.http.post(url, json={"name": "Dana", "text": f"note {i}"}, headers=ORIGIN)
        assert r.status_code == 201, (i, r.text)
    r = world.http.post(url, json={"name": "Dana", "text": "one more"}, headers=ORIGIN)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
    r = world.http.post(
        f"/s/{token}/video/{v1}/review", json={"name": "Dana", "status": "approved"}, headers=ORIGIN
    )
    assert r.status_code == 429
    r = world.http.post(
        f"/s/{other}/video/{v1}/comments", json={"name": "Dana", "text": "other link"}, headers=ORIGIN
    )
    assert r.status_code == 201  # per link


# the page -----------------------------------------------------------------------------------------
def test_the_review_page_is_public_and_passes_nothing_on(world: World) -> None:
    a1 = world.id("a1")
    token = token_of(world.share("acme", {"kind": "audio", "id": a1}, label="Spring hero"))
    fresh = TestClient(world.http.app, base_url="http://testserver")
    r = fresh.get(f"/s/{token}")
    assert r.status_code == 200 and "Spring hero" in r.text
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in r.headers["x-robots-tag"]
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers  # nothing is kept about a reviewer
    assert 'class="site-header"' not in r.text and "/logout" not in r.text  # no nav, no account
    assert "<script>" not in r.text  # data in JSON blocks, behaviour in static/share.js
    # Every address on the page stays under the token (and /static).
    for url in re.findall(r'(?:src|href|data-[\w-]+-url)="(/[^"]*)"', r.text):
        assert url.startswith((f"/s/{token}/", "/static/")), url
    data = fresh.get(f"/s/{token}/audio/{a1}/data", headers={"Range": "bytes=0-99"})
    assert data.status_code == 206 and len(data.content) == 100
    assert data.headers["referrer-policy"] == "no-referrer" and "no-cache" in data.headers["cache-control"]
    etag = data.headers["etag"]
    assert fresh.get(f"/s/{token}/audio/{a1}/data", headers={"If-None-Match": etag}).status_code == 304
    assert fresh.head(f"/s/{token}/audio/{a1}/waveform").status_code == 200
