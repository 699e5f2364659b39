"""PATCH /api/{kind}/{id}: every field, its validation, the review history, re-filing within the
caller's scope, and the tag index and events written with each change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mediagen.errors import InvalidInput, NotFound
from mediagen.generations.tables import AssetTag
from mediagen.studio.tables import ReviewEvent
from mediagen.vocabulary import ReviewStatus
from tests.studio.review_kit import Kit, fields_of, kit

__all__ = ["kit"]


def tags_index(k: Kit, gen_id: int) -> list[str]:
    with k.services.db.read() as s:
        return sorted(s.scalars(select(AssetTag.tag).where(AssetTag.generation_id == gen_id)))


def test_patch_sets_every_field_and_answers_the_item_as_get_does(kit: Kit) -> None:
    gen_id = kit.add("audio")
    body = {
        "title": "  Hero theme ",
        "notes": "Loop the\nsecond bar.",
        "tags": [" Hero", "summer", "hero", "SUMMER", "night drive"],
        "favorite": True,
        "rating": 4,
        "review_status": "in_review",
        "collection": "Moods",
    }
    r = kit.api.patch(kit.url("audio", gen_id), json=body)
    assert r.status_code == 200, r.text
    item = r.json()
    assert item == kit.api.get(kit.url("audio", gen_id)).json()
    assert {k: item[k] for k in body} == {
        "title": "Hero theme",
        "notes": "Loop the\nsecond bar.",
        "tags": ["hero", "summer", "night drive"],  # trimmed, lower-case, once each, in order
        "favorite": True,
        "rating": 4,
        "review_status": "in_review",
        "collection": "Moods",
    }
    assert tags_index(kit, gen_id) == ["hero", "night drive", "summer"]
    # One transaction wrote the change and its events: what changed, then the review move.
    events = kit.events(gen_id)
    assert [t for t, _ in events] == ["generation.updated", "generation.review"]
    assert events[0][1]["fields"] == ["title", "notes", "tags", "favorite", "rating", "collection"]
    assert events[1][1]["review_status"] == "in_review" and events[1][1]["from"] == "draft"


def test_null_and_empty_clear_and_a_repeat_changes_nothing(kit: Kit) -> None:
    gen_id = kit.add("image", title="Old", notes="n", rating=2, tags=["a"], collection="c")
    patch: dict[str, Any] = {"title": "", "notes": None, "rating": None, "tags": None, "collection": ""}
    item = kit.api.patch(kit.url("image", gen_id), json=patch).json()
    assert [item[k] for k in ("title", "notes", "rating", "tags", "collection")] == [
        None,
        None,
        None,
        [],
        None,
    ]
    assert tags_index(kit, gen_id) == []
    before = kit.events(gen_id)
    again = kit.api.patch(kit.url("image", gen_id), json={"title": None, "favorite": False})
    assert again.status_code == 200
    assert kit.events(gen_id) == before  # nothing changed, so no event


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"title": "x" * 201}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"notes": "x" * 5001}, "notes"),
        ({"notes": "nul\x00"}, "notes"),
        ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
        ({"tags": ["x" * 65]}, "tags[0]"),
        ({"tags": ["ok", "  "]}, "tags[1]"),
        ({"tags": "hero"}, "tags"),
        ({"favorite": None}, "favorite"),
        ({"favorite": "yes"}, "favorite"),
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 2.5}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": "4"}, "rating"),
        ({"review_status": "done"}, "review_status"),
        ({"review_status": None}, "review_status"),
        ({"collection": "x" * 129}, "collection"),
        ({"client_id": ""}, "client_id"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_each_bad_field_is_a_422_naming_it(kit: Kit, body: dict[str, Any], field: str) -> None:
    gen_id = kit.add("audio", title="kept")
    assert fields_of(kit.api.patch(kit.url("audio", gen_id), json=body)) == [field]
    assert kit.row(gen_id).title == "kept" and kit.events(gen_id) == []


def test_a_hidden_missing_or_other_kind_asset_is_a_404(kit: Kit) -> None:
    theirs = kit.add("audio", client_id="globex")
    ours = kit.add("audio")
    assert (
        kit.api.patch(kit.url("audio", theirs), json={"rating": 1}, headers=kit.as_acme()).status_code == 404
    )
    assert kit.api.patch(kit.url("image", ours), json={"rating": 1}).status_code == 404
    assert kit.api.patch(kit.url("audio", 9_999_999), json={"rating": 1}).status_code == 404
    assert kit.api.get(kit.url("audio", theirs, "/history"), headers=kit.as_acme()).status_code == 404
    assert kit.row(theirs).rating is None


def test_every_review_move_is_kept_in_the_history(kit: Kit) -> None:
    gen_id = kit.add("video")
    for status in ("approved", "approved", "rejected", "draft", "in_review"):  # any move, even skipping
        r = kit.api.patch(kit.url("video", gen_id), json={"review_status": status})
        assert r.status_code == 200 and r.json()["review_status"] == status
    kit.services.review.set_status(gen_id, ReviewStatus.APPROVED, actor_name="Dana (client)", share_id=7)
    kit.services.review.set_status(
        gen_id, ReviewStatus.APPROVED, actor_name="Dana again", share_id=7
    )  # no-op
    history = kit.api.get(kit.url("video", gen_id, "/history")).json()
    moves = [(h["from"], h["to"]) for h in history["history"]]
    assert moves == [
        ("draft", "approved"),
        ("approved", "rejected"),
        ("rejected", "draft"),
        ("draft", "in_review"),
        ("in_review", "approved"),
    ]
    assert history["count"] == 5
    team, reviewer = history["history"][0], history["history"][-1]
    assert team["actor_user"] == kit.admin.user_id and team["actor_name"] == kit.admin.email
    assert team["share_id"] is None and team["at"].endswith("Z")
    assert (reviewer["actor_user"], reviewer["actor_name"], reviewer["share_id"]) == (
        None,
        "Dana (client)",
        7,
    )
    assert [t for t, _ in kit.events(gen_id)] == ["generation.review"] * 5
    assert kit.api.get(kit.url("video", gen_id)).json()["review_status"] == "approved"


def test_set_status_refuses_what_is_not_a_status_or_not_an_asset(kit: Kit) -> None:
    gen_id = kit.add("audio")
    with pytest.raises(InvalidInput):
        kit.services.review.set_status(gen_id, "finished")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        kit.services.review.set_status(9_999_999, ReviewStatus.APPROVED)
    with kit.services.db.read() as s:
        assert s.scalars(select(ReviewEvent).where(ReviewEvent.generation_id == gen_id)).all() == []


def test_refiling_follows_the_rules_of_generate(kit: Kit) -> None:
    gen_id = kit.add("audio", client_id=None)
    url = kit.url("audio", gen_id)

    def filing(body: dict[str, Any]) -> tuple[Any, ...]:
        item = kit.api.patch(url, json=body)
        assert item.status_code == 200, item.text
        return tuple(item.json()[k] for k in ("client_id", "campaign_id", "brief_id", "collection"))

    assert filing({"brief_id": "jingle"}) == ("acme", "spring", "jingle", None)  # a brief brings the rest
    assert filing({"brief_id": None}) == ("acme", "spring", None, None)  # the campaign stays
    assert filing({"brief_id": "jingle", "collection": "Finals"}) == ("acme", "spring", "jingle", "Finals")
    assert filing({"client_id": "acme"}) == ("acme", "spring", "jingle", "Finals")  # not a move
    assert filing({"campaign_id": "autumn"}) == ("globex", "autumn", None, "Finals")  # the brief stays behind
    assert filing({"client_id": "acme"}) == ("acme", None, None, "Finals")
    assert filing({"client_id": None, "collection": None}) == (None, None, None, None)
    r = kit.api.patch(url, json={"client_id": "acme", "campaign_id": "autumn"})
    assert fields_of(r) == ["client_id"]
    assert fields_of(kit.api.patch(url, json={"campaign_id": "nope"})) == ["campaign_id"]
    assert [e[1]["fields"] for e in kit.events(gen_id)][:2] == [
        ["client_id", "campaign_id", "brief_id"],
        ["brief_id"],
    ]


def test_a_key_limited_to_acme_cannot_file_anything_under_globex(kit: Kit) -> None:
    gen_id = kit.add("audio", campaign_id="spring")
    url, acme = kit.url("audio", gen_id), kit.as_acme()
    for body, field in (
        ({"client_id": "globex"}, "client_id"),
        ({"campaign_id": "autumn"}, "campaign_id"),
        ({"brief_id": "harvest"}, "brief_id"),
        ({"client_id": "globex", "title": "moved"}, "client_id"),
    ):
        assert fields_of(kit.api.patch(url, json=body, headers=acme)) == [field]
    row = kit.row(gen_id)
    assert (row.client_id, row.campaign_id, row.title) == ("acme", "spring", None)
    # Leaving the client empty would hide it from the key: it stays under the key's one client.
    item = kit.api.patch(url, json={"campaign_id": None}, headers=acme).json()
    assert (item["client_id"], item["campaign_id"]) == ("acme", None)
    # The unrestricted key may move it to globex, after which the limited key no longer sees it.
    assert kit.api.patch(url, json={"brief_id": "harvest"}).json()["client_id"] == "globex"
    assert kit.api.patch(url, json={"rating": 5}, headers=acme).status_code == 404
