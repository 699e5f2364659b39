"""POST /api/bulk: every action, all or nothing (one bad item changes nothing), options that go
with their action only, and a delete that frees the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from mediagen.generations.tables import AssetTag, Generation
from mediagen.studio.tables import ReviewEvent
from tests.studio.review_kit import Kit, fields_of, kit

__all__ = ["kit"]


def bulk(
    k: Kit, items: list[tuple[str, int]], action: str, headers: dict[str, str] | None = None, **options: Any
) -> Any:
    body = {"items": [{"kind": kind, "id": gen_id} for kind, gen_id in items], "action": action, **options}
    return k.api.post("/api/bulk", json=body, headers=headers)


def state(k: Kit, ids: list[int]) -> list[tuple[Any, ...]]:
    """What a bulk action may change, for each asset (and its history and tag rows)."""
    with k.services.db.read() as s:
        rows = s.execute(
            select(
                Generation.id,
                Generation.review_status,
                Generation.favorite,
                Generation.tags,
                Generation.client_id,
                Generation.campaign_id,
                Generation.collection,
            )
            .where(Generation.id.in_(ids))
            .order_by(Generation.id)
        ).all()
        history = s.scalar(
            select(func.count()).select_from(ReviewEvent).where(ReviewEvent.generation_id.in_(ids))
        )
        tags = s.scalar(select(func.count()).select_from(AssetTag).where(AssetTag.generation_id.in_(ids)))
    return [tuple(r) for r in rows] + [("history", history), ("tags", tags)]


def test_approve_many_records_each_move_once(kit: Kit) -> None:
    a, b, c = kit.add("audio"), kit.add("image"), kit.add("video", review_status="approved")
    items = [("audio", a), ("image", b), ("video", c), ("audio", a)]  # a twice: once is enough
    r = bulk(kit, items, "approve")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "action": "approve",
        "count": 3,
        "items": [{"kind": "audio", "id": a}, {"kind": "image", "id": b}, {"kind": "video", "id": c}],
    }
    for kind, gen_id in items[:3]:
        assert kit.api.get(kit.url(kind, gen_id)).json()["review_status"] == "approved"
    assert [len(kit.api.get(kit.url(k, i, "/history")).json()["history"]) for k, i in items[:3]] == [1, 1, 0]
    for action, status in (("reject", "rejected"), ("in_review", "in_review"), ("draft", "draft")):
        assert bulk(kit, items[:2], action).status_code == 200
        assert kit.row(a).review_status == kit.row(b).review_status == status
    assert [t for t, _ in kit.events(a)] == ["generation.review"] * 4


def test_one_missing_or_hidden_item_is_a_404_naming_it_and_changes_nothing(kit: Kit) -> None:
    mine = [kit.add("audio"), kit.add("audio")]
    theirs = kit.add("audio", client_id="globex")
    ids = [*mine, theirs]
    before = state(kit, ids)
    for items, who, where in (
        ([("audio", mine[0]), ("audio", mine[1]), ("audio", 9_999_999)], None, "items[2]"),
        ([("audio", mine[0]), ("image", mine[1])], None, "items[1]"),  # not an image
        ([("audio", mine[0]), ("audio", theirs), ("audio", mine[1])], kit.as_acme(), "items[1]"),
    ):
        for action, options in (("approve", {}), ("tag", {"tag": "x"}), ("delete", {})):
            r = bulk(kit, items, action, headers=who, **options)
            assert r.status_code == 404, r.text
            assert r.json()["errors"][0]["field"] == where
    # A move the key may not make fails the same way: nothing moves.
    r = bulk(kit, [("audio", mine[0]), ("audio", mine[1])], "move", client_id="globex", headers=kit.as_acme())
    assert fields_of(r) == ["client_id"]
    assert state(kit, ids) == before


def test_favorite_and_tags(kit: Kit) -> None:
    a, b = kit.add("audio"), kit.add("audio", tags=["keep"])
    with kit.services.db.write() as s:
        s.add(AssetTag(generation_id=b, tag="keep"))
    items = [("audio", a), ("audio", b)]
    assert bulk(kit, items, "favorite").status_code == 200
    assert kit.row(a).favorite and kit.row(b).favorite
    assert bulk(kit, [("audio", a)], "unfavorite").status_code == 200
    assert not kit.row(a).favorite and kit.row(b).favorite
    assert bulk(kit, items, "tag", tag=" Hero ").status_code == 200
    assert (kit.row(a).tags, kit.row(b).tags) == (["hero"], ["keep", "hero"])
    assert bulk(kit, items, "tag", tag="hero").status_code == 200  # already there: no change
    listed = kit.api.get("/api/audio", params={"tag": "HERO", "limit": 100}).json()["audio"]
    assert {item["id"] for item in listed} >= {a, b}
    assert bulk(kit, items, "untag", tag="keep").status_code == 200
    assert (kit.row(a).tags, kit.row(b).tags) == (["hero"], ["hero"])
    assert kit.api.get("/api/audio", params={"tag": "keep"}).json()["total"] == 0
    updates = [d["fields"] for t, d in kit.events(b) if t == "generation.updated"]
    assert updates == [["favorite"], ["tags"], ["tags"]]


def test_an_asset_with_all_its_tags_cannot_take_another(kit: Kit) -> None:
    full = [f"t{i}" for i in range(32)]
    a = kit.add("image")
    b = kit.add("image")
    assert kit.api.patch(kit.url("image", b), json={"tags": full}).status_code == 200
    r = bulk(kit, [("image", a), ("image", b)], "tag", tag="one-more")
    assert fields_of(r) == ["items[1]"]
    assert kit.row(a).tags is None
    assert bulk(kit, [("image", a), ("image", b)], "tag", tag="t0").status_code == 200  # b has it


def test_move_refiles_each_item_like_patch(kit: Kit) -> None:
    a = kit.add("audio", brief_id="jingle", campaign_id="spring")
    b = kit.add("audio", client_id=None)
    items = [("audio", a), ("audio", b)]
    r = bulk(kit, items, "move", campaign_id="autumn", collection="Harvest cuts")
    assert r.status_code == 200, r.text
    for gen_id in (a, b):
        row = kit.row(gen_id)
        assert (row.client_id, row.campaign_id, row.brief_id, row.collection) == (
            "globex",
            "autumn",
            None,
            "Harvest cuts",
        )
    assert bulk(kit, items, "move", collection=None).status_code == 200
    assert kit.row(a).collection is None and kit.row(a).campaign_id == "autumn"
    assert fields_of(bulk(kit, items, "move", brief_id="nope")) == ["brief_id"]


@pytest.mark.parametrize(
    ("action", "options", "field"),
    [
        ("tag", {}, "tag"),
        ("untag", {"tag": ""}, "tag"),
        ("approve", {"tag": "x"}, "tag"),
        ("move", {}, "action"),
        ("favorite", {"campaign_id": "spring"}, "campaign_id"),
        ("publish", {}, "action"),
        ("approve", {"items": []}, "items"),
        ("approve", {"items": [{"kind": "audio", "id": 1}] * 501}, "items"),
        ("approve", {"items": [{"kind": "sound", "id": 1}]}, "items[0].kind"),
        ("approve", {"items": [{"kind": "audio", "id": 0}]}, "items[0].id"),
        ("approve", {"items": [{"kind": "audio", "id": 1, "x": 1}]}, "items[0].x"),
        ("approve", {"extra": True}, "extra"),
    ],
)
def test_bad_requests_are_a_422_naming_the_field(
    kit: Kit, action: str, options: dict[str, Any], field: str
) -> None:
    gen_id = kit.add("audio")
    body = {"items": [{"kind": "audio", "id": gen_id}], "action": action, **options}
    before = state(kit, [gen_id])
    assert fields_of(kit.api.post("/api/bulk", json=body)) == [field]
    assert state(kit, [gen_id]) == before


def wav(path: Path, hz: float) -> Path:
    t = np.arange(4410) / 22050
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t), 22050, subtype="PCM_16")
    return path


def test_delete_removes_every_item_and_frees_bytes_nothing_else_uses(kit: Kit, tmp_path: Path) -> None:
    svc = kit.services

    def upload(hz: float) -> Generation:
        return svc.generations.create_upload(
            kit.admin, "audio", wav(tmp_path / f"{hz}.wav", hz), title=f"tone {hz}", client_id="acme",
            campaign_id=None, brief_id=None, collection=None,
        )  # fmt: skip

    gone, twin, kept = upload(330), upload(330), upload(550)  # twin: the same bytes as `gone`
    other = kit.add("image")
    assert gone.blob_key == twin.blob_key and gone.blob_key is not None and kept.blob_key is not None
    r = bulk(kit, [("audio", gone.id), ("audio", kept.id), ("image", other)], "delete")
    assert r.status_code == 200 and r.json()["count"] == 3
    for kind, gen_id in (("audio", gone.id), ("audio", kept.id), ("image", other)):
        assert kit.api.get(kit.url(kind, gen_id)).status_code == 404
        assert [t for t, _ in kit.events(gen_id)][-1:] == ["generation.deleted"]
    assert svc.store.stat(kept.blob_key) is None  # nothing else used it
    assert svc.store.stat(twin.blob_key) is not None  # the twin still does
    assert kit.api.get(kit.url("audio", twin.id, "/data")).status_code == 200
