"""Running a kit plan: each deliverable made as an ordinary generation, in dependency order.

`advance(plan_id)` looks at where a running plan stands and asks for every deliverable that can be
made now (nothing made for it yet, and everything it uses done): music beds, key visuals and clips
through `GenerationService.create_takes` like any request, spots as compositions (`post/compose`,
or `post/master` for an audio channel) of the clips and the music bed, framed, cut and mastered for
their channel. Then it writes the plan's status: done when every deliverable is, failed when what
is left cannot be made without a retry.

It is safe to call at any time, from any number of processes, again and again (the worker
heartbeat calls it for every running plan, a run and a retry call it at once):

- every request carries the Idempotency-Key `plan:{plan}:{item}:{attempt}`, unique per plan (the
  run acts as a key of its own, `plan-{plan}`, so whoever starts or resumes it, a second process
  asking for the same deliverable gets the first one's rows back instead of new ones);
- the rows are then marked with `plan_id`/`plan_item`, which is how a deliverable finds its
  assets; rows left unmarked by a crash in between are found again by their key;
- a retry is a new attempt (a new key), asked for through the plan's stored `again` list, so it
  survives a restart and is made once.

The run acts for the user who started it (`run_by`), limited to the plan's client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mediagen.auth.service import AuthService, Principal
from mediagen.campaigns.channels import CHANNELS
from mediagen.catalog.registry import Catalog
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import Conflict, MediagenError, RateLimited, Unavailable, invalid
from mediagen.generations.compose import ComposeRequest
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.service import GenerationService, idempotency_scope
from mediagen.generations.tables import Generation
from mediagen.kits.editing import dependency_order, dump, load, run_options
from mediagen.kits.plan import Deliverable, PlanDocument
from mediagen.kits.planner_models import aspect_parameters, target
from mediagen.kits.progress import FAILED, Made, made_for, overlaid, ready, settled
from mediagen.kits.tables import Plan

log = logging.getLogger("mediagen.kits")
IMAGE_SECONDS = 3.0  # a key visual in a spot, when no scene says how long


def plan_key_id(plan_id: int) -> str:
    """The key a run acts as: its requests' idempotency keys are unique per plan."""
    return f"plan-{plan_id}"


def item_key(plan_id: int, item_id: str, attempt: int) -> str:
    return f"plan:{plan_id}:{item_id}:{attempt}"


class KitRunner:
    def __init__(
        self, db: Database, auth: AuthService, generations: GenerationService, catalog: Catalog
    ) -> None:
        self.db, self.auth, self.generations, self.catalog = db, auth, generations, catalog

    # who acts -----------------------------------------------------------------------------------
    def acting(self, plan: Plan) -> Principal:
        """The user who started the run, limited to the plan's client, as the plan's own key."""
        user = self.auth.get_user(plan.run_by) if plan.run_by else None
        if user is None:
            raise Conflict("the user who started this run no longer exists: run the plan again")
        principal = AuthService.principal_for_user(user)
        if not principal.can_see_client(plan.client_id):
            raise Conflict("the user who started this run can no longer reach its client: run it again")
        return replace(principal, clients=frozenset({plan.client_id}), key_id=plan_key_id(plan.id))

    # the loop -----------------------------------------------------------------------------------
    def advance_running(self) -> int:
        """Advance every running plan (the worker heartbeat); returns how many there were."""
        with self.db.read() as s:
            ids = list(s.scalars(select(Plan.id).where(Plan.status == "running").order_by(Plan.id)))
        for plan_id in ids:
            try:
                self.advance(plan_id)
            except Exception:  # one plan's trouble must not stop the others
                log.exception("kit plan %s: advancing failed; will try again", plan_id)
        return len(ids)

    def advance(self, plan_id: int) -> dict[str, MediagenError]:
        """Ask for every deliverable that can be made now, then settle the plan's status. Returns
        the deliverables refused this time, with why (a retry answers with its own)."""
        with self.db.read() as s:
            plan = s.get(Plan, plan_id)
            if plan is None or plan.status != "running":
                return {}
        try:
            principal = self.acting(plan)
        except MediagenError as exc:
            self._stop(plan_id, str(exc))
            return {}
        self._mark_orphans(plan_id)
        doc = load(plan.document)
        again = set(run_options(plan.document).get("again") or [])
        override = bool(run_options(plan.document).get("override_budget"))
        with self.db.read() as s:
            made = made_for(s, plan_id)
        states = {d.id: d for d in overlaid(doc, made).deliverables}
        refused: dict[str, MediagenError] = {}
        asked: set[str] = set()
        for d in dependency_order(list(states.values())):
            wanted = d.status == "planned" or (d.id in again and d.status in FAILED)
            if not wanted or not ready(d, states):
                continue
            attempt = (made[d.id].attempts + 1) if d.id in made else 1
            try:
                kind, request = self._request(plan, doc, d, made, override)
                takes = self.generations.create_takes(
                    principal, kind, request, idempotency_key=item_key(plan_id, d.id, attempt)
                )
            except (RateLimited, Unavailable) as exc:
                log.info("kit plan %s: %s waits (%s)", plan_id, d.id, exc)
                break  # the next heartbeat goes on from here
            except MediagenError as exc:
                refused[d.id] = exc
                states[d.id] = d.model_copy(update={"status": "failed", "error": exc.detail})
                continue
            self._mark(plan_id, d.id, [r.id for r in takes.rows])
            asked.add(d.id)
            states[d.id] = d.model_copy(update={"status": "running"})
        self._settle(plan_id, refused, done_again=asked | set(refused))
        return refused

    # one request --------------------------------------------------------------------------------
    def _request(
        self, plan: Plan, doc: PlanDocument, d: Deliverable, made: dict[str, Made], override: bool
    ) -> tuple[str, GenerateRequest]:
        filing: dict[str, Any] = {
            "client_id": plan.client_id,
            "campaign_id": plan.campaign_id,
            "brief_id": plan.brief_id,
        }
        if d.role == "spot":
            return self._spot(doc, d, made, filing, override)
        entry = self.catalog.get(d.model or "")
        if entry is None:
            raise invalid("model", f"unknown model {d.model!r}")
        params = dict(d.parameters)
        for used in d.uses:  # a clip started from a key visual, say: the model's input of that kind
            asset = made[used].asset if used in made else None
            name = next(
                (
                    n
                    for n, kind in entry.media_inputs.items()
                    if asset is not None and kind == asset.kind and "." not in n and "[" not in n
                ),
                None,
            )
            if asset is not None and name is not None and name not in params:
                params[name] = asset.id
        length = d.length or next((s.duration for s in doc.scenes if s.n == d.scene), None)
        duration = target(entry, "duration")
        if length and duration and not ({"duration", duration} & params.keys()):
            params["duration"] = length
        if d.aspect and not ({"aspect_ratio", "aspect", "width", "height"} & params.keys()):
            params.update(aspect_parameters(entry, d.aspect))
        try:
            request = GenerateRequest.model_validate(
                {
                    "prompt": d.prompt,
                    "model": d.model,
                    "n": d.takes,
                    "parameters": params,
                    "override_budget": override,
                    **filing,
                }
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            place = ".".join(str(p) for p in err.get("loc", ()))
            raise invalid(place or "parameters", str(err.get("msg"))) from None
        return d.kind, request

    def _spot(
        self, doc: PlanDocument, d: Deliverable, made: dict[str, Made], filing: dict[str, Any], override: bool
    ) -> tuple[str, GenerateRequest]:
        """A composition of what the spot uses: clips (and visuals) in order, then the music bed,
        framed and mastered for its channel; cut to its length when the material is longer."""
        channel = CHANNELS.get(d.channel or "")
        options = dict(d.parameters)
        music_options = options.pop("music", None)
        wanted_length = options.pop("length", None) or d.length
        clips: list[dict[str, Any]] = []
        material = 0.0
        music: int | None = None
        scene_of = {x.id: x.scene for x in doc.deliverables}
        for used in d.uses:
            m = made.get(used)
            if m is None or m.asset is None:
                continue
            if m.asset.kind == "video":
                clips.append({"video_id": m.asset.id})
                material += m.duration or 0.0
            elif m.asset.kind == "image":
                seconds = next((s.duration for s in doc.scenes if s.n == scene_of.get(used)), IMAGE_SECONDS)
                clips.append({"image_id": m.asset.id, "duration": seconds, "zoom": True})
                material += seconds
            elif m.asset.kind == "audio" and music is None:
                music = m.asset.id
        transition = options.get("transition") or {}
        if isinstance(transition, dict) and transition.get("type") == "crossfade" and clips:
            material -= float(transition.get("duration") or 0) * (len(clips) - 1)
        if d.kind == "video" and wanted_length and wanted_length >= material - 0.05:
            wanted_length = None  # the clips make less: the spot is as long as they are
        body: dict[str, Any] = {
            "aspect": d.aspect or (channel.aspect if channel else None),
            "loudness": channel.loudness if channel else None,
            **options,
            "length": wanted_length,
            "title": d.prompt,
            **filing,
        }
        if d.kind == "video":
            body["clips"] = clips
        if music is not None:
            body["music"] = {"audio_id": music, "loop": True, **(music_options or {})}
        try:
            compose = ComposeRequest.model_validate({k: v for k, v in body.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            place = ".".join(str(p) for p in err.get("loc", ()))
            raise invalid(f"parameters.{place}" if place else "parameters", str(err.get("msg"))) from None
        kind, request = compose.as_generation()
        return kind, request.model_copy(update={"n": d.takes, "override_budget": override})

    # rows and the plan --------------------------------------------------------------------------
    def _mark(self, plan_id: int, item_id: str, ids: list[int]) -> None:
        with self.db.write() as s:
            s.execute(
                update(Generation)
                .where(Generation.id.in_(ids), Generation.plan_id.is_(None))
                .values(plan_id=plan_id, plan_item=item_id)
            )

    def _mark_orphans(self, plan_id: int) -> None:
        """Rows a run asked for but did not get to mark (a crash in between), found by their key;
        the other takes of such a request by its take group."""
        scope = idempotency_scope(
            Principal(user_id="", email="", role="", clients=None, key_id=plan_key_id(plan_id))
        )
        with self.db.read() as s:
            found = s.execute(
                select(Generation.id, Generation.idempotency_key, Generation.take_group).where(
                    Generation.idempotency_scope == scope, Generation.plan_id.is_(None)
                )
            ).all()
        for gen_id, key, group in found:
            item = str(key).split(":")[2] if str(key).count(":") >= 3 else None
            if item is None:
                continue
            ids = [gen_id]
            if group:
                with self.db.read() as s:
                    ids += list(s.scalars(select(Generation.id).where(Generation.take_group == group)))
            self._mark(plan_id, item, ids)

    def _settle(self, plan_id: int, refused: dict[str, MediagenError], *, done_again: Iterable[str]) -> None:
        """Write each deliverable's state into the document and the plan's status (in one
        transaction, with the plan locked: an edit or another process may be at it too). A tick
        that changed nothing writes nothing: every running plan is looked at on every heartbeat."""
        with self.db.read() as s:
            if self._settled(s, s.get(Plan, plan_id), refused, done_again) is None:
                return
        with self.db.write() as s:
            plan = s.get(Plan, plan_id, with_for_update=True)
            found = self._settled(s, plan, refused, done_again)
            if plan is None or found is None:
                return
            plan.document, plan.status, plan.error = found
            if plan.status in ("done", "failed"):
                plan.finished_at = utcnow()

    @staticmethod
    def _settled(
        s: Session, plan: Plan | None, refused: dict[str, MediagenError], done_again: Iterable[str]
    ) -> tuple[dict[str, Any], str, str | None] | None:
        """(document, status, error) as they should be now, or None when the plan has stopped
        running or is already so."""
        if plan is None or plan.status != "running":
            return None
        doc = load(plan.document)
        for item_id, exc in refused.items():
            doc = _with_item(doc, item_id, status="failed", error=exc.detail)
        doc = overlaid(doc, made_for(s, plan.id))
        run = run_options(plan.document)
        gone = set(done_again)
        run["again"] = [i for i in run.get("again") or [] if i not in gone]
        status, error = settled(doc, run["again"])
        document = dump(doc, run)
        if (document, status, error) == (plan.document, plan.status, plan.error):
            return None
        return document, status, error

    def _stop(self, plan_id: int, error: str) -> None:
        with self.db.write() as s:
            plan = s.get(Plan, plan_id, with_for_update=True)
            if plan is not None and plan.status == "running":
                plan.status, plan.error, plan.finished_at = "failed", error, utcnow()


def _with_item(doc: PlanDocument, item_id: str, **changes: Any) -> PlanDocument:
    items = [d.model_copy(update=changes) if d.id == item_id else d for d in doc.deliverables]
    return doc.model_copy(update={"deliverables": items})


__all__ = ["KitRunner", "item_key", "plan_key_id"]
