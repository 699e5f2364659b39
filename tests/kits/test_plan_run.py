"""Kit plans running through the real pipeline (synth engine, post-production engine): every
deliverable made once, spots composed from the clips and the music bed for their channel, a re-run
that adds nothing, a failed step retried alone, a crash between asking and marking healed, and the
kit as one zip."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select, update

from mediagen.errors import Conflict, InvalidInput
from mediagen.generations.tables import Generation, Source
from mediagen.kits import schemas as ks
from mediagen.vocabulary import Status
from tests.kits.plan_kit import Kits, editable, item, of_role

REEL = {"channels": ["instagram-reel"], "lengths": [6]}
RADIO = {"channels": ["radio"], "lengths": [5]}


def run(kits: Kits, plan: ks.PlanOut) -> ks.PlanOut:
    approved = kits.approved(plan)
    return kits.services.kits.run(kits.admin, plan.id, ks.RunRequest(version=approved.version))


def test_edit_approve_run_makes_every_deliverable_once_and_composes_the_spot(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**REEL))
    body = editable(plan)
    clip = next(d for d in body["deliverables"] if d["role"] == "clip")
    clip["prompt"] = "Sunlight through a glass of lemonade, slow push in"
    plan = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))

    started = run(kits, plan)
    assert started.status == "running" and started.run_started_at is not None
    # What needs nothing is asked for at once; the spot waits for its clips and music.
    spot = of_role(started, "spot")[0]
    assert spot.status == "planned" and all(
        d.status == "running" for d in started.deliverables if d.role != "spot"
    )

    done = kits.settle(plan.id)
    assert done.status == "done" and done.finished_at is not None and done.error is None
    assert all(d.status == "done" and d.asset is not None and len(d.ids) == 1 for d in done.deliverables)
    made = {d.id: kits.row(d.asset.id) for d in done.deliverables if d.asset}
    assert all(r.status == Status.COMPLETED and r.plan_id == plan.id for r in made.values())
    assert {r.plan_item for r in made.values()} == {d.id for d in done.deliverables}
    assert made[clip["id"]].prompt == "Sunlight through a glass of lemonade, slow push in"
    assert all(r.brief_id == "b1" and r.campaign_id == "spring" for r in made.values())

    # The spot: the clips in scene order and the music bed, framed, cut and mastered for the reel.
    spot = item(done, spot.id)
    composed = made[spot.id]
    assert (composed.model_id, composed.kind) == ("post/compose", "video")
    clips = sorted(of_role(done, "clip"), key=lambda c: c.scene or 0)
    recipe = composed.parameters
    assert [c["video_id"] for c in recipe["clips"]] == [c.asset.id for c in clips if c.asset]
    music = of_role(done, "music")[0]
    assert recipe["music"]["audio_id"] == music.asset.id if music.asset else False
    assert (recipe["aspect"], recipe["loudness"]) == ("9:16", "social")
    assert (composed.width, composed.height) == (1080, 1920)
    assert composed.duration == pytest.approx(6.0, abs=0.1)
    with kits.services.db.read() as s:
        sources = set(s.scalars(select(Source.source_id).where(Source.generation_id == composed.id)))
    assert sources == {c.asset.id for c in clips if c.asset} | {music.asset.id if music.asset else 0}

    # Running again adds nothing: every deliverable is finished.
    count = kits.generation_count()
    again = kits.services.kits.run(kits.admin, plan.id, ks.RunRequest())
    assert again.status == "done" and kits.generation_count() == count and kits.queue.pending() == 0
    assert kits.services.kits.runner.advance_running() == 0

    # The kit: spots by channel, then the material.
    name, chunks = kits.services.kits.kit_zip(kits.admin, plan.id)
    names = zipfile.ZipFile(io.BytesIO(b"".join(chunks))).namelist()
    assert name == f"sunny-launch-kit-{plan.id}.zip"
    assert len(names) == len(done.deliverables)
    assert sum(n.startswith("instagram-reel/") for n in names) == 1
    assert {n.split("/")[0] for n in names} == {"instagram-reel", "music", "visuals", "clips"}


def test_a_failed_step_is_retried_alone(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**RADIO))
    bed = of_role(plan, "music")[0]
    started = run(kits, plan)
    first = item(started, bed.id).ids[0]
    kits.services.generations.cancel(kits.admin, "audio", first)  # the music bed fails
    failed = kits.settle(plan.id)
    assert failed.status == "failed" and bed.id in (failed.error or "")
    assert item(failed, bed.id).status == "canceled"
    master = of_role(failed, "spot")[0]
    assert item(failed, master.id).status == "planned"  # it waits on the bed
    others = {d.id: list(d.ids) for d in failed.deliverables if d.id != bed.id}

    retried = kits.services.kits.retry(kits.admin, plan.id, bed.id)
    assert retried.status == "running"
    second = item(retried, bed.id).ids
    assert len(second) == 2 and second[0] == first
    with pytest.raises(Conflict, match="only a failed one"):
        kits.services.kits.retry(kits.admin, plan.id, bed.id)
    done = kits.settle(plan.id)
    assert done.status == "done"
    assert item(done, bed.id).asset is not None and item(done, bed.id).asset.id == second[1]
    master_row = kits.row(item(done, master.id).asset.id)  # type: ignore[union-attr]
    assert (master_row.model_id, master_row.kind) == ("post/master", "audio")
    assert master_row.parameters["music"]["audio_id"] == second[1]
    # Nothing else was made again.
    assert {d.id: list(d.ids) for d in done.deliverables if d.id not in (bed.id, master.id)} == {
        k: v for k, v in others.items() if k != master.id
    }


def test_a_refused_step_says_why_and_runs_once_its_model_is_fixed(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**RADIO))
    body = editable(plan)
    bed = next(d for d in body["deliverables"] if d["role"] == "music")
    bed["model"] = "local/musicgen-small"  # no weights on this machine: refused before any row
    plan = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    failed = kits.settle(run(kits, plan).id)
    refused = item(failed, bed["id"])
    assert failed.status == "failed" and refused.status == "failed" and refused.ids == []
    assert refused.error and "musicgen" in refused.error.lower()
    with pytest.raises(InvalidInput):
        kits.services.kits.retry(kits.admin, plan.id, bed["id"])  # the same model: refused again

    # Not started, so it may still change; the plan is then approved and run again.
    body = editable(failed)
    next(d for d in body["deliverables"] if d["id"] == bed["id"])["model"] = "synth/music"
    fixed = kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    assert fixed.status == "draft"
    done = kits.settle(run(kits, fixed).id)
    assert done.status == "done" and all(len(d.ids) == 1 for d in done.deliverables)


def test_a_started_deliverable_cannot_change(kits: Kits) -> None:
    plan = kits.services.kits.draft(kits.admin, kits.brief(**RADIO))
    started = run(kits, plan)
    body = editable(started)
    bed = next(d for d in body["deliverables"] if d["role"] == "music")
    bed["prompt"] = "something else"
    with pytest.raises(Conflict, match="has started: only deliverables not started"):
        kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    body["deliverables"] = [d for d in body["deliverables"] if d["role"] == "visual"]  # the bed goes
    with pytest.raises(Conflict, match="has started: it cannot be dropped"):
        kits.services.kits.edit(kits.admin, plan.id, ks.PlanEdit.model_validate(body))
    assert kits.services.kits.get(kits.admin, plan.id).status == "running"


def test_a_request_asked_for_but_not_marked_is_found_again_not_made_twice(kits: Kits) -> None:
    """A process that died between asking for a deliverable and marking its rows."""
    plan = kits.services.kits.draft(kits.admin, kits.brief(**RADIO))
    started = run(kits, plan)
    bed = of_role(started, "music")[0]
    with kits.services.db.write() as s:
        s.execute(
            update(Generation).where(Generation.plan_id == plan.id).values(plan_id=None, plan_item=None)
        )
    count = kits.generation_count()
    healed = kits.services.kits.runner.advance(plan.id)
    assert healed == {} and kits.generation_count() == count
    assert item(kits.services.kits.get(kits.admin, plan.id), bed.id).ids == bed.ids
    assert kits.settle(plan.id).status == "done"
