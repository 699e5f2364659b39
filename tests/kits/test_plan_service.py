"""Kit plans before they run: drafted from a brief, edited (what may change, how scenes move, what
the server owns), approved and refused to run, within the caller's clients and the campaign's budget."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from mediagen.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediagen.kits import schemas as ks
from tests.kits.plan_kit import Kits, editable, item, of_role

REEL = {"channels": ["instagram-reel", "radio"], "lengths": [6]}


def test_a_draft_plans_what_the_brief_asks_for(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    assert (plan.status, plan.planner, plan.version, plan.brief_id) == ("draft", "rules", 1, "b1")
    assert (plan.client_id, plan.campaign_id) == ("acme", "spring")
    spots = of_role(plan, "spot")
    assert sorted((s.channel, s.kind, s.length) for s in spots) == [
        ("instagram-reel", "video", 6.0),
        ("radio", "audio", 6.0),
    ]
    reel = next(s for s in spots if s.channel == "instagram-reel")
    clips = of_role(plan, "clip")
    assert [c.scene for c in clips] == [s.n for s in plan.scenes] and clips
    # A spot cuts its clips in scene order, then lays its music bed.
    assert reel.uses[: len(clips)] == [c.id for c in clips]
    assert item(plan, reel.uses[-1]).role == "music"
    assert all(d.status == "planned" and d.asset is None and d.model for d in plan.deliverables)
    assert plan.estimate_usd == pytest.approx(sum(d.estimate_usd for d in plan.deliverables))
    listed = kits.services.kits.list_for_brief(kits.admin, "b1", limit=10, offset=0)
    assert [p.id for p in listed.plans] == [plan.id] and listed.plans[0].deliverables == len(
        plan.deliverables
    )


def test_another_tenants_brief_and_plan_are_not_found(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    globex = replace(kits.admin, role="member", clients=frozenset({"globex"}))
    with pytest.raises(NotFound):
        kits.services.kits.draft(globex, "b1")
    for call in (
        lambda: kits.services.kits.get(globex, plan.id),
        lambda: kits.services.kits.edit(globex, plan.id, ks.PlanEdit()),
        lambda: kits.services.kits.approve(globex, plan.id, ks.ApproveRequest()),
        lambda: kits.services.kits.run(globex, plan.id, ks.RunRequest()),
        lambda: kits.services.kits.retry(globex, plan.id, "d1"),
        lambda: kits.services.kits.kit_zip(globex, plan.id),
        lambda: kits.services.kits.list_for_brief(globex, "b1", limit=10, offset=0),
    ):
        with pytest.raises(NotFound):
            call()
    assert kits.services.kits.get(kits.admin, plan.id).version == 1  # nothing moved


def test_an_edit_changes_prompts_drops_and_adds_and_ignores_what_the_server_owns(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    body = editable(plan)
    visual = next(d for d in body["deliverables"] if d["role"] == "visual")
    visual["prompt"] = "A glass of lemonade on a sunny table"
    visual["status"], visual["asset"] = "done", {"kind": "image", "id": 99}  # the server's: ignored
    body["deliverables"].append(
        {"id": "extra", "kind": "audio", "role": "music", "model": "synth/music", "prompt": "a jingle",
         "parameters": {"duration": 4}, "length": 4}
    )  # fmt: skip
    body["status"] = "done"
    edited = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    assert (edited.version, edited.status) == (2, "draft")
    got = item(edited, visual["id"])
    assert (got.prompt, got.status, got.asset) == ("A glass of lemonade on a sunny table", "planned", None)
    assert (
        item(edited, "extra").estimate_usd == 0.0 and len(edited.deliverables) == len(plan.deliverables) + 1
    )

    # Dropping one: leave it out. A spot's music bed is used, so it cannot go alone.
    kept = [d for d in editable(edited)["deliverables"] if d["id"] != "extra"]
    dropped = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit(version=2, deliverables=kept))
    assert "extra" not in {d.id for d in dropped.deliverables} and dropped.version == 3
    bed = of_role(dropped, "music")[0].id
    without_bed = [d for d in editable(dropped)["deliverables"] if d["id"] != bed]
    with pytest.raises(InvalidInput) as refused:
        kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit(deliverables=without_bed))
    assert refused.value.field == "deliverables" and bed in refused.value.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"model": "synth/music"}, "model", "makes audio, not image"),
        ({"model": "acme/nothing"}, "model", "unknown model"),
        ({"model": "post/compose"}, "model", "makes video"),
        ({"kind": "video"}, "kind", "a visual is image"),
        ({"prompt": ""}, "prompt", "at least 1 character"),
        ({"surprise": 1}, "surprise", "unknown field"),
        ({"uses": ["nope"]}, "deliverables", "unknown deliverables"),
    ],
)
def test_a_bad_edit_names_the_field(kits: Kits, change: dict[str, object], field: str, words: str) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    body = editable(plan)
    index = next(i for i, d in enumerate(body["deliverables"]) if d["role"] == "visual")
    body["deliverables"][index].update(change)
    with pytest.raises((InvalidInput, ValidationError)) as refused:
        kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    expected = field if field == "deliverables" else f"deliverables[{index}].{field}"
    if isinstance(refused.value, ValidationError):  # the schema's own (the API answers 422 naming it)
        err = refused.value.errors()[0]
        place = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        assert place == expected and (words in err["msg"] or err["type"] == "extra_forbidden")
    else:
        assert refused.value.field == expected and words in refused.value.message
    assert kits.services.kits.get(kits.admin, plan.id).version == 1


def test_moving_a_scene_renumbers_its_clip_and_reorders_every_spot(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    first, *rest = plan.scenes
    order = [*rest, first]  # the opening scene goes last
    clip_of = {c.scene: c.id for c in of_role(plan, "clip")}
    moved = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit(scenes=order))
    assert [s.n for s in moved.scenes] == list(range(1, len(order) + 1))
    assert [s.prompt for s in moved.scenes] == [s.prompt for s in order]
    assert item(moved, clip_of[first.n]).scene == len(order)
    reel = next(s for s in of_role(moved, "spot") if s.channel == "instagram-reel")
    assert reel.uses[: len(order)] == [clip_of[s.n] for s in order]


def test_versions_guard_approval_and_an_edit_sends_an_approved_plan_back(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    with pytest.raises(Conflict) as stale:
        kits.services.kits.approve(kits.admin, plan.id, ks.ApproveRequest(version=7))
    assert stale.value.field == "version" and "version 1" in stale.value.message
    with pytest.raises(Conflict, match="approve it first"):
        kits.services.kits.run(kits.admin, plan.id, ks.RunRequest())
    approved = kits.approved(plan)
    assert (approved.status, approved.approved_by) == ("approved", kits.admin.user_id)
    assert approved.approved_at is not None
    again = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit(scenes=list(reversed(plan.scenes))))
    assert (again.status, again.approved_by, again.version) == ("draft", None, 2)
    with pytest.raises(Conflict):
        kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit(version=1))


def test_a_run_over_the_campaigns_budget_is_refused_saying_by_how_much(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    body = editable(plan)
    clip = next(d for d in body["deliverables"] if d["role"] == "clip")
    clip["model"] = "bytedance/seedance-1-lite"  # priced per second: 0.036 × 2 s
    priced = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    assert priced.estimate_usd == pytest.approx(0.072)
    kits.budget(0.05)
    approved = kits.approved(priced)
    assert approved.budget is not None and approved.budget.over_by_usd == pytest.approx(0.022)
    before = kits.generation_count()
    with pytest.raises(Conflict) as over:
        kits.services.kits.run(kits.admin, plan.id, ks.RunRequest())
    assert "0.022" in over.value.message and over.value.field == "campaign_id"
    member = replace(kits.admin, role="member")
    with pytest.raises(Forbidden):
        kits.services.kits.run(member, plan.id, ks.RunRequest(override_budget=True))
    assert kits.generation_count() == before
    assert kits.services.kits.get(kits.admin, plan.id).status == "approved"
    # An admin may override: the run starts.
    started = kits.services.kits.run(kits.admin, plan.id, ks.RunRequest(override_budget=True))
    assert started.status == "running" and started.run_by == kits.admin.user_id
    assert kits.generation_count() > before
