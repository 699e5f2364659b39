"""Comments on an asset: `at` within the asset's timeline (none on images), text bounds, authors,
who may delete, share-link reviewers' comments, and the events they raise."""

from __future__ import annotations

from typing import Any

import pytest

from mediagen.errors import InvalidInput, NotFound
from tests.studio.review_kit import Kit, fields_of, kit

__all__ = ["kit"]


def comment(k: Kit, kind: str, gen_id: int, body: dict[str, Any], **kw: Any) -> Any:
    return k.api.post(k.url(kind, gen_id, "/comments"), json=body, **kw)


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_time_coded_comments_run_from_zero_to_the_duration(kit: Kit, kind: str) -> None:
    gen_id = kit.add(kind, duration=12.5)
    made = [comment(kit, kind, gen_id, {"at": at, "text": f"at {at}"}) for at in (0, 3.25, 12.5)]
    assert [r.status_code for r in made] == [201, 201, 201]
    whole = comment(kit, kind, gen_id, {"text": "  love the ending \n"})
    assert (
        whole.status_code == 201 and whole.json()["at"] is None and whole.json()["text"] == "love the ending"
    )
    for at in (12.51, -0.1, 1e9):
        assert fields_of(comment(kit, kind, gen_id, {"at": at, "text": "x"})) == ["at"]
    listed = kit.api.get(kit.url(kind, gen_id, "/comments")).json()
    assert listed["count"] == 4
    assert [c["at"] for c in listed["comments"]] == [0, 3.25, 12.5, None]  # oldest first
    first = listed["comments"][0]
    assert first == made[0].json()
    assert (first["author_name"], first["author_user"], first["share_id"]) == (
        kit.admin.email,
        kit.admin.user_id,
        None,
    )
    assert first["created_at"].endswith("Z")
    events = kit.events(gen_id)
    assert [t for t, _ in events] == ["generation.commented"] * 4
    assert events[1][1]["at"] == 3.25 and events[1][1]["comment_id"] == made[1].json()["id"]


def test_images_take_no_at_and_unfinished_media_has_no_timeline_yet(kit: Kit) -> None:
    image = kit.add("image")
    assert fields_of(comment(kit, "image", image, {"at": 0, "text": "x"})) == ["at"]
    assert comment(kit, "image", image, {"text": "crop tighter"}).status_code == 201
    pending = kit.add("audio", status="pending", duration=None)
    r = comment(kit, "audio", pending, {"at": 1, "text": "x"})
    assert fields_of(r) == ["at"] and "no duration yet" in r.json()["detail"]
    assert comment(kit, "audio", pending, {"text": "waiting for it"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "bell\x07"}, "text"),
        ({"at": 1}, "text"),
        ({"at": "soon", "text": "x"}, "at"),
        ({"text": "x", "author": "me"}, "author"),
    ],
)
def test_bad_comments_are_a_422_naming_the_field(kit: Kit, body: dict[str, Any], field: str) -> None:
    gen_id = kit.add("audio")
    assert fields_of(comment(kit, "audio", gen_id, body)) == [field]
    assert kit.api.get(kit.url("audio", gen_id, "/comments")).json()["count"] == 0


def test_a_long_comment_keeps_its_lines(kit: Kit) -> None:
    gen_id = kit.add("audio")
    text = "line one\nline two\t(tab)\n" + "y" * 1970
    assert comment(kit, "audio", gen_id, {"text": text}).json()["text"] == text


def test_comments_are_as_hidden_as_their_asset(kit: Kit) -> None:
    theirs = kit.add("audio", client_id="globex")
    made = comment(kit, "audio", theirs, {"text": "globex only"}).json()
    acme = kit.as_acme()
    assert kit.api.get(kit.url("audio", theirs, "/comments"), headers=acme).status_code == 404
    assert comment(kit, "audio", theirs, {"text": "hi"}, headers=acme).status_code == 404
    gone = kit.api.delete(kit.url("audio", theirs, f"/comments/{made['id']}"), headers=acme)
    assert gone.status_code == 404
    # A comment id under another asset (even a visible one) is not found there.
    ours = kit.add("audio")
    assert kit.api.delete(kit.url("audio", ours, f"/comments/{made['id']}")).status_code == 404
    assert kit.api.get(kit.url("image", ours, "/comments")).status_code == 404  # not an image
    assert kit.api.get(kit.url("audio", theirs, "/comments")).json()["count"] == 1


def test_authors_and_admins_delete_comments_and_members_only_their_own(kit: Kit) -> None:
    svc = kit.services
    gen_id = kit.add("audio")
    user = svc.auth.create_user(
        email="member@example.com", password="correct horse", role="member", clients=["acme"]
    )
    member = svc.auth.principal_for_user(user)
    _, member_key = svc.auth.create_key(user_id=user.id, name="member")
    as_member = {"X-API-Key": member_key}
    by_admin = comment(kit, "audio", gen_id, {"text": "from the admin"}).json()
    by_member = svc.comments.add(member, "audio", gen_id, at=None, text="from a member")
    by_reviewer = svc.comments.add_as_reviewer(
        gen_id, at=4.0, text="from the client", author_name="Dana", share_id=3
    )
    url = kit.url("audio", gen_id, "/comments/{}")
    r = kit.api.delete(url.format(by_admin["id"]), headers=as_member)
    assert r.status_code == 403, r.text
    assert kit.api.delete(url.format(by_reviewer.id), headers=as_member).status_code == 204
    assert kit.api.delete(url.format(by_member.id)).status_code == 204  # an admin may delete any
    assert kit.api.delete(url.format(by_member.id)).status_code == 404  # already gone
    assert kit.api.delete(url.format(by_admin["id"])).status_code == 204
    assert svc.comments.list_for(gen_id) == []
    deleted = [d for t, d in kit.events(gen_id) if d.get("deleted")]
    assert sorted(d["comment_id"] for d in deleted) == sorted([by_admin["id"], by_member.id, by_reviewer.id])


def test_share_link_reviewers_comment_under_the_name_they_give(kit: Kit) -> None:
    svc = kit.services.comments
    gen_id = kit.add("video", duration=6.0)
    made = svc.add_as_reviewer(gen_id, at=5.5, text=" cut here ", author_name=" Dana (client) ", share_id=9)
    assert (made.author_name, made.author_user, made.share_id, made.text) == (
        "Dana (client)",
        None,
        9,
        "cut here",
    )
    listed = kit.api.get(kit.url("video", gen_id, "/comments")).json()["comments"]
    assert [(c["author_name"], c["share_id"], c["at"]) for c in listed] == [("Dana (client)", 9, 5.5)]
    assert [c.id for c in svc.list_for(gen_id)] == [made.id]
    for kw, field in (
        ({"at": 7.0, "text": "x", "author_name": "Dana"}, "at"),
        ({"at": None, "text": "", "author_name": "Dana"}, "text"),
        ({"at": None, "text": "x", "author_name": " "}, "author_name"),
        ({"at": None, "text": "x", "author_name": "D" * 201}, "author_name"),
    ):
        with pytest.raises(InvalidInput) as exc:
            svc.add_as_reviewer(gen_id, share_id=9, **kw)  # type: ignore[arg-type]
        assert exc.value.field == field
    with pytest.raises(NotFound):
        svc.add_as_reviewer(9_999_999, at=None, text="x", author_name="Dana", share_id=9)
