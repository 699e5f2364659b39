"""Takes through the API and the real core: `n` assets with distinct seeds in one take group,
reproducible with a seed and different without one (decoded from the synth's real output), one
rate-limit count, idempotent replays, regenerate into the group, the group's listing and scope,
and picking the winner."""

from __future__ import annotations

import io
from collections.abc import Iterator
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
from mediagen.errors import InvalidInput
from mediagen.generations.events import EventType
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Event, Generation
from mediagen.services import Services
from mediagen.studio.tables import ReviewEvent
from mediagen.vocabulary import Status
from tests.generations.conftest import Hosted, blob_bytes, make_seeded_services, reread

AUDIO = "/api/v2/generate/audio"
IMAGE = "/api/v2/generate/image"


class Studio:
    def __init__(self, services: Services, admin: Principal, api: TestClient, key: str) -> None:
        self.services, self.admin, self.api, self.key = services, admin, api, key

    def make(self, url: str = AUDIO, **body: Any) -> dict[str, Any]:
        short = {"duration": 1} if url == AUDIO else {}
        r = self.api.post(url, json={"prompt": "calm piano 90 bpm", **short, **body})
        assert r.status_code == 202, r.text
        return dict(r.json())

    def run(self, *ids: int) -> list[Generation]:
        """What a worker does: run each take's submit here, then read the rows back."""
        for gen_id in ids:
            self.services.pipeline.run(Step.SUBMIT, gen_id)
        rows = [reread(self.services, i) for i in ids]
        assert all(r.status == Status.COMPLETED for r in rows), [r.error for r in rows]
        return rows

    def bytes_of(self, row: Generation) -> bytes:
        return blob_bytes(self.services, row.blob_key or "")

    def key_for(self, clients: list[str]) -> TestClient:
        """A client on an admin key narrowed to `clients`."""
        _, token = self.services.auth.create_key(user_id=self.admin.user_id, name="narrow", clients=clients)
        return TestClient(self.api.app, headers={"X-API-Key": token})


def studio_for(tmp: Path, **settings: Any) -> Iterator[Studio]:
    services, _, admin = make_seeded_services(tmp / "data", **settings)
    _, token = services.auth.create_key(user_id=admin.user_id, name="t")
    with TestClient(create_app(services.settings, run_workers=False), headers={"X-API-Key": token}) as api:
        yield Studio(services, admin, api, token)
    services.close()


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    yield from studio_for(tmp_path)


def pcm(data: bytes) -> np.ndarray:
    """The decoded samples of an audio file (all channels, all frames)."""
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(frames, axis=1)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# -- n takes ------------------------------------------------------------------------------------------


def test_n_takes_are_n_assets_with_distinct_seeds_in_one_group_made_together(studio: Studio) -> None:
    for n in range(1, 9):
        made = studio.make(n=n) if n > 1 else studio.make()
        ids = made["ids"]
        assert len(ids) == n and ids[0] == made["id"] == made["audio_id"] and ids == sorted(ids)
        assert made["status"] == "pending" and made["model"] == "synth/music"
        rows = [reread(studio.services, i) for i in ids]
        seeds = [r.seed for r in rows]
        assert all(isinstance(s, int) and 1 <= s < 2**31 for s in seeds) and len(set(seeds)) == n
        assert [r.parameters["seed"] for r in rows] == seeds  # what the engine is given
        if n == 1:
            assert made["take_group"] is None and rows[0].take_group is None
        else:
            group = made["take_group"]
            assert group.startswith("tg_") and {r.take_group for r in rows} == {group}
        assert len({r.created_at for r in rows}) == 1  # one transaction
        item = studio.api.get(f"/api/audio/{ids[-1]}").json()
        assert item["seed"] == seeds[-1] and item["take_group"] == made["take_group"]
    with studio.services.db.read() as s:
        created = s.scalars(select(Event.generation_id).where(Event.type == EventType.CREATED)).all()
    assert len(created) == sum(range(1, 9)) == len(set(created))  # one creation event per take


@pytest.mark.parametrize("n", [0, 9, -1, "four"])
def test_n_out_of_range_is_a_422_naming_n(studio: Studio, n: Any) -> None:
    r = studio.api.post(AUDIO, json={"prompt": "x", "n": n})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["n"], r.text
    with studio.services.db.read() as s:
        assert s.scalar(select(Generation.id)) is None


def test_the_servers_max_takes_caps_n(tmp_path: Path) -> None:
    services, _, admin = make_seeded_services(tmp_path / "data", max_takes=3)
    try:
        with pytest.raises(InvalidInput) as exc:
            services.generations.create_takes(admin, "audio", GenerateRequest(prompt="x", n=4))
        assert exc.value.field == "n" and "at most 3" in exc.value.message
        assert (
            len(services.generations.create_takes(admin, "audio", GenerateRequest(prompt="x", n=3)).ids) == 3
        )
    finally:
        services.close()


# -- seeds: through the real synth engine, decoded -------------------------------------------------------


def test_a_seed_reproduces_the_bytes_and_no_seed_makes_new_ones(studio: Studio) -> None:
    a, b = (studio.make(seed=1234)["id"] for _ in range(2))
    c, d = (studio.make()["id"] for _ in range(2))  # the same prompt, no seed
    group = studio.make(seed=1234, n=2)["ids"]  # take i gets seed + i
    rows = studio.run(a, b, c, d, *group)
    ra, rb, rc, rd, g0, g1 = rows
    assert (ra.seed, rb.seed, g0.seed, g1.seed) == (1234, 1234, 1234, 1235)
    same, again = pcm(studio.bytes_of(ra)), pcm(studio.bytes_of(rb))
    assert same.shape[1] > 40_000 and np.array_equal(same, again)
    assert np.array_equal(pcm(studio.bytes_of(g0)), same)  # n = 2 with the seed: take 1 is that seed
    fresh_c, fresh_d, next_seed = pcm(studio.bytes_of(rc)), pcm(studio.bytes_of(rd)), pcm(studio.bytes_of(g1))
    for other in (fresh_c, fresh_d, next_seed):
        n = min(other.shape[1], same.shape[1])
        assert not np.allclose(other[:, :n], same[:, :n], atol=1e-3)
    n = min(fresh_c.shape[1], fresh_d.shape[1])
    assert not np.allclose(fresh_c[:, :n], fresh_d[:, :n], atol=1e-3)
    assert rc.seed != rd.seed and rc.blob_key != rd.blob_key


def test_image_takes_differ_and_a_seed_given_in_parameters_counts_as_given(studio: Studio) -> None:
    small = {"width": 96, "height": 64}
    takes = studio.make(IMAGE, prompt="a red fox in snow", n=3, **small)["ids"]
    pinned = studio.make(IMAGE, prompt="a red fox in snow", parameters={"seed": 77}, **small)["id"]
    named = studio.make(IMAGE, prompt="a red fox in snow", seed=77, **small)["id"]
    rows = studio.run(*takes, pinned, named)
    images = [pixels(studio.bytes_of(r)) for r in rows]
    assert all(img.shape == (64, 96, 3) for img in images)
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    assert rows[3].seed == rows[4].seed == 77 and np.array_equal(images[3], images[4])


def test_a_seed_too_large_for_n_takes_is_a_422_naming_seed(studio: Studio) -> None:
    r = studio.api.post(AUDIO, json={"prompt": "x", "seed": 2**32 - 2, "n": 3})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "seed", r.text


def test_a_model_without_a_seed_stores_none(studio: Studio) -> None:
    video = studio.make(url="/api/v2/generate/video", prompt="waves", n=2, duration=1)["ids"]
    assert all(reread(studio.services, i).seed is not None for i in video)  # synth/video has one
    entry = studio.services.catalog.get("post/master")
    assert entry is not None and "seed" not in entry.properties
    from mediagen.generations.takes import plan_seeds

    assert plan_seeds(entry, None, 3) == [None, None, None]


# -- rate limit and idempotency ----------------------------------------------------------------------------


def test_a_request_counts_once_against_the_rate_limit_whatever_its_n(tmp_path: Path) -> None:
    for studio in studio_for(tmp_path, generate_rate_limit_per_minute=2):
        assert len(studio.make(n=8)["ids"]) == 8
        assert len(studio.make(n=8)["ids"]) == 8
        r = studio.api.post(AUDIO, json={"prompt": "x", "n": 2})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_an_idempotent_replay_of_n_takes_answers_the_same_group(studio: Studio) -> None:
    body = {"prompt": "lofi", "duration": 1, "n": 4}
    first = studio.api.post(AUDIO, json=body, headers={"Idempotency-Key": "takes-1"})
    assert first.status_code == 202
    made = first.json()
    # A regenerate joins the group later; it is not part of the first request's answer.
    regen = studio.api.post(f"/api/audio/{made['ids'][1]}/retry")
    assert regen.status_code == 202 and regen.json()["take_group"] == made["take_group"]
    again = studio.api.post(AUDIO, json=body, headers={"Idempotency-Key": "takes-1"})
    assert again.status_code == 200
    assert again.json() == made
    with studio.services.db.read() as s:
        assert len(s.scalars(select(Generation.id)).all()) == 5
    other = studio.api.post(AUDIO, json={**body, "n": 3}, headers={"Idempotency-Key": "takes-1"})
    assert other.status_code == 409


# -- regenerate --------------------------------------------------------------------------------------------


def test_regenerate_makes_a_new_seed_in_the_group_and_same_seed_reproduces(studio: Studio) -> None:
    single = studio.make(seed=99)
    assert single["take_group"] is None
    fresh = studio.api.post(f"/api/audio/{single['id']}/retry")
    assert fresh.status_code == 202, fresh.text
    new = fresh.json()
    assert new["ids"] == [new["id"]] and new["take_group"].startswith("tg_")
    original = reread(studio.services, single["id"])
    assert original.take_group == new["take_group"]  # the group was made for both
    with studio.services.db.read() as s:
        moved = s.scalars(select(Event.data).where(Event.generation_id == original.id)).all()
    assert {"fields": ["take_group"]}.items() <= moved[-1].items()  # announced like any edit
    same_q = studio.api.post(f"/api/audio/{single['id']}/retry", params={"same_seed": "true"}).json()
    same_b = studio.api.post(f"/api/audio/{new['id']}/retry", json={"same_seed": True}).json()
    assert same_q["take_group"] == same_b["take_group"] == new["take_group"]
    orig, regen, same, same_body = studio.run(single["id"], new["id"], same_q["id"], same_b["id"])
    assert orig.seed == same.seed == 99 and regen.seed != 99 and same_body.seed == regen.seed
    assert same.blob_key == orig.blob_key and regen.blob_key != orig.blob_key
    assert np.array_equal(pcm(studio.bytes_of(same)), pcm(studio.bytes_of(orig)))
    group = studio.api.get(f"/api/takes/{new['take_group']}").json()
    assert [i["id"] for i in group["items"]] == [single["id"], new["id"], same_q["id"], same_b["id"]]
    assert studio.api.post(f"/api/audio/{single['id']}/retry", json={"same_seed": "maybe"}).status_code == 422


# -- the group, its scope and its winner -------------------------------------------------------------------


def test_a_take_group_lists_its_takes_in_order_to_those_who_may_see_them(studio: Studio) -> None:
    made = studio.make(n=3, client_id="acme")
    group = made["take_group"]
    body = studio.api.get(f"/api/takes/{group}").json()
    assert body["take_group"] == group and body["winner"] is None
    assert [i["id"] for i in body["items"]] == made["ids"]
    assert {i["take_group"] for i in body["items"]} == {group}
    assert all(i["review_status"] == "draft" and i["kind"] == "audio" for i in body["items"])
    with (
        studio.key_for(["globex"]) as globex,
        studio.key_for(["acme"]) as acme,
    ):
        hidden, missing = globex.get(f"/api/takes/{group}"), globex.get("/api/takes/tg_0000000000000000")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace(group, "X") == missing.json()["detail"].replace(
            "tg_0000000000000000", "X"
        )
        assert globex.post(f"/api/takes/{group}/winner", json={"id": made["ids"][0]}).status_code == 404
        assert globex.delete(f"/api/takes/{group}/winner").status_code == 404
        assert [i["id"] for i in acme.get(f"/api/takes/{group}").json()["items"]] == made["ids"]
    assert studio.api.get("/api/takes/not-a-group").status_code == 422
    # The gallery filters by group too (another part of the API).
    listed = studio.api.get("/api/audio", params={"take_group": group})
    if listed.status_code == 200:
        assert sorted(i["id"] for i in listed.json()["audio"]) == made["ids"]


def test_picking_a_winner_approves_it_rejects_the_rest_and_can_be_undone(studio: Studio) -> None:
    made = studio.make(n=3)
    group, (a, b, c) = made["take_group"], made["ids"]
    picked = studio.api.post(f"/api/takes/{group}/winner", json={"id": b})
    assert picked.status_code == 200, picked.text
    statuses = {i["id"]: i["review_status"] for i in picked.json()["items"]}
    assert statuses == {a: "rejected", b: "approved", c: "rejected"} and picked.json()["winner"] == b
    assert studio.api.get(f"/api/audio/{b}").json()["review_status"] == "approved"
    # Changing one's mind moves the approval; the history says who did it.
    moved = studio.api.post(f"/api/takes/{group}/winner", json={"id": c}).json()
    assert {i["id"]: i["review_status"] for i in moved["items"]} == {
        a: "rejected",
        b: "rejected",
        c: "approved",
    }
    with studio.services.db.read() as s:
        history = s.scalars(select(ReviewEvent).order_by(ReviewEvent.id)).all()
    assert [(h.generation_id, h.to_status) for h in history] == [
        (a, "rejected"), (b, "approved"), (c, "rejected"), (b, "rejected"), (c, "approved"),
    ]  # fmt: skip
    assert {h.actor_user for h in history} == {studio.admin.user_id}
    undone = studio.api.delete(f"/api/takes/{group}/winner")
    assert undone.status_code == 200 and undone.json()["winner"] is None
    assert {i["review_status"] for i in undone.json()["items"]} == {"in_review"}
    # Not a take of this group: a 422 naming `id`; nothing moves.
    stranger = studio.make()["id"]
    wrong = studio.api.post(f"/api/takes/{group}/winner", json={"id": stranger})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "id"
    assert studio.api.get(f"/api/audio/{stranger}").json()["review_status"] == "draft"


# -- creation and deletion events ------------------------------------------------------------------------


def test_delete_records_a_deleted_event_that_outlives_the_row(studio: Studio) -> None:
    gen_id = studio.make()["id"]
    assert studio.api.delete(f"/api/audio/{gen_id}").status_code == 204
    with studio.services.db.read() as s:
        types = s.scalars(select(Event.type).where(Event.generation_id == gen_id).order_by(Event.seq)).all()
    assert types[0] == EventType.CREATED and types[-1] == EventType.DELETED


# -- hosted models: every take submitted in the request ---------------------------------------------------


@pytest.mark.timeout(60)
def test_hosted_takes_are_each_submitted_with_their_own_seed(hosted: Hosted) -> None:
    req = GenerateRequest(prompt="x", model="meta/musicgen", duration=3, n=3)
    takes = hosted.services.generations.create_takes(hosted.admin, "audio", req)
    assert [r.status for r in takes.rows] == [Status.PROCESSING] * 3
    sent = [r.json["input"]["seed"] for r in hosted.fake.create_requests]
    assert sent == [r.seed for r in takes.rows] and len(set(sent)) == 3
    # The provider refusing the first take refuses the request; the other takes are not started.
    hosted.fake.fail_next_create(402)
    from mediagen.errors import ProviderRefused

    with pytest.raises(ProviderRefused):
        hosted.services.generations.create_takes(hosted.admin, "audio", req)
    with hosted.services.db.read() as s:
        failed = s.scalars(select(Generation).where(Generation.id > takes.ids[-1])).all()
    assert [r.status for r in failed] == [Status.FAILED] * 3
    assert len(hosted.fake.create_requests) == 4
