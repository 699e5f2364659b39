"""Kit plans: drafted from a brief, edited and approved by the team, run as one tracked batch.

A plan belongs to its brief's client; a plan of a client the caller may not see is not found.

Its life: `draft` → (`approve`) → `approved` → (`run`) → `running` → `done` | `failed`.
- An edit is accepted in any state and bumps `version`; it sends the plan back to `draft` (an
  approval covers what will be made), so a plan edited after it ran is approved and run again.
  A deliverable that has started (an asset was asked for) cannot be changed or dropped (409).
- `approve` and `run` may name the `version` they saw: another one is a 409, so nobody approves or
  runs what they did not read.
- `run` needs an approved plan (or one that ran already: a re-run makes only what is missing and
  tries the failed deliverables again). The estimate of what is left must fit the campaign's
  remaining budget (409 saying by how much) unless an admin overrides it.
- `retry` makes a failed deliverable again, alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns.branding import brand_of
from mediagen.campaigns.service import CampaignService
from mediagen.campaigns.tables import Brief
from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import Conflict, Forbidden, MediagenError, NotFound, invalid, not_found
from mediagen.generations.downloads import DownloadService
from mediagen.generations.filenames import slug
from mediagen.generations.routing import EngineRouter
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.service import GenerationService
from mediagen.generations.tables import Generation
from mediagen.generations.zipstream import ZipMember, zip_blobs
from mediagen.kits import schemas as ks
from mediagen.kits.editing import checked, dump, edited, load, run_options, total_estimate
from mediagen.kits.plan import Scene
from mediagen.kits.planning import BriefFacts, PlanningContext, draft_plan
from mediagen.kits.progress import FAILED, Made, made_for, overlaid, remaining
from mediagen.kits.runner import KitRunner
from mediagen.kits.tables import Plan
from mediagen.storage.base import BlobStore
from mediagen.vocabulary import KINDS, Status

KIT_FOLDERS = {"music": "music", "visual": "visuals", "clip": "clips"}


class KitService:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        catalog: Catalog,
        router: EngineRouter,
        campaigns: CampaignService,
        generations: GenerationService,
        downloads: DownloadService,
        store: BlobStore,
        runner: KitRunner,
    ) -> None:
        self.settings, self.db, self.catalog, self.router = settings, db, catalog, router
        self.campaigns, self.generations, self.downloads, self.store = (
            campaigns,
            generations,
            downloads,
            store,
        )
        self.runner = runner

    # drafting -----------------------------------------------------------------------------------
    def _context(self, s: Session, brief: Brief) -> PlanningContext:
        """What the planner reads, taken inside the session; the planner itself then runs outside
        it (the LLM planner may wait a minute on Replicate, and must not hold a transaction)."""
        kinds = [str(k) for k in KINDS]
        available = {k: [m.id for m in self.router.models(k) if m.available] for k in kinds}
        return PlanningContext(
            settings=self.settings,
            catalog=self.catalog,
            available=available,
            defaults={k: self.router.default_model(k) for k in kinds},
            brief=BriefFacts.of(brief),
            brand=brand_of(s, brief.client_id),
        )

    def draft(self, principal: Principal, brief_id: str) -> ks.PlanOut:
        """A new plan for the brief, drafted by the planner the settings name, saved as a draft."""
        with self.db.read() as s:
            context = self._context(s, self._brief(s, principal, brief_id))
        drafted = draft_plan(context)
        doc = checked(drafted.document, self.catalog)
        with self.db.write() as s:
            brief = self._brief(s, principal, brief_id)
            plan = Plan(
                brief_id=brief.id,
                client_id=brief.client_id,
                campaign_id=brief.campaign_id,
                status="draft",
                planner=drafted.planner,
                document=dump(doc),
                estimate_usd=total_estimate(doc),
                version=1,
                note=drafted.note,
                created_by=principal.user_id,
            )
            s.add(plan)
            s.flush()
            plan_id = plan.id
        return self.get(principal, plan_id)

    # reading ------------------------------------------------------------------------------------
    @staticmethod
    def _brief(s: Session, principal: Principal, brief_id: str) -> Brief:
        brief = s.get(Brief, brief_id)
        if brief is None or not principal.can_see_client(brief.client_id):
            raise not_found("brief", brief_id)
        return brief

    @staticmethod
    def _plan(s: Session, principal: Principal, plan_id: int, *, lock: bool = False) -> Plan:
        plan = s.get(Plan, plan_id, with_for_update=lock)
        if plan is None or not principal.can_see_client(plan.client_id):
            raise not_found("plan", plan_id)
        return plan

    def plan_row(self, principal: Principal, plan_id: int) -> Plan:
        with self.db.read() as s:
            return self._plan(s, principal, plan_id)

    def get(self, principal: Principal, plan_id: int) -> ks.PlanOut:
        with self.db.read() as s:
            plan = self._plan(s, principal, plan_id)
            made = made_for(s, plan_id)
        return self._out(principal, plan, made)

    def _out(self, principal: Principal, plan: Plan, made: dict[str, Made]) -> ks.PlanOut:
        doc = overlaid(load(plan.document), made)
        items = [
            ks.DeliverableOut(
                **d.model_dump(),
                ids=list(made[d.id].ids) if d.id in made else [],
                review_status=made[d.id].review_status if d.id in made else None,
                progress=made[d.id].progress if d.id in made else None,
            )
            for d in doc.deliverables
        ]
        left = remaining(doc)
        url = f"/api/plans/{plan.id}"
        return ks.PlanOut(
            id=plan.id,
            brief_id=plan.brief_id,
            client_id=plan.client_id,
            campaign_id=plan.campaign_id,
            status=plan.status,  # type: ignore[arg-type]
            planner=plan.planner,  # type: ignore[arg-type]
            version=plan.version,
            note=plan.note,
            error=plan.error,
            estimate_usd=plan.estimate_usd,
            remaining_usd=left,
            budget=self._budget(principal, plan.campaign_id, left),
            deliverables=items,
            scenes=doc.scenes,
            created_by=plan.created_by,
            approved_by=plan.approved_by,
            approved_at=plan.approved_at,
            run_by=plan.run_by,
            run_started_at=plan.run_started_at,
            finished_at=plan.finished_at,
            created_at=plan.created_at,
            updated_at=plan.updated_at,
            url=url,
            kit_url=f"/plans/{plan.id}/kit",
            zip_url=f"{url}/kit.zip",
        )

    def _budget(self, principal: Principal, campaign_id: str | None, needed: float) -> ks.PlanBudget | None:
        if campaign_id is None:
            return None
        try:
            b = self.campaigns.budget(principal, campaign_id)
        except NotFound:  # the campaign went (its plans go with its briefs)
            return None
        over = max(0.0, needed - b.remaining_usd) if b.remaining_usd is not None else 0.0
        return ks.PlanBudget(
            budget_usd=b.budget_usd,
            spent_usd=b.spent_usd,
            committed_usd=b.committed_usd,
            remaining_usd=b.remaining_usd,
            needed_usd=needed,
            over_by_usd=round(over, 6),
        )

    def list_for_brief(self, principal: Principal, brief_id: str, *, limit: int, offset: int) -> ks.PlanList:
        with self.db.read() as s:
            self._brief(s, principal, brief_id)
            total = s.scalar(select(func.count()).select_from(Plan).where(Plan.brief_id == brief_id)) or 0
            rows = s.scalars(
                select(Plan)
                .where(Plan.brief_id == brief_id)
                .order_by(Plan.created_at.desc(), Plan.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            found = {p.id: made_for(s, p.id) for p in rows}
        plans = []
        for p in rows:
            doc = overlaid(load(p.document), found[p.id])
            plans.append(
                ks.PlanSummary(
                    id=p.id,
                    brief_id=p.brief_id,
                    status=p.status,  # type: ignore[arg-type]
                    planner=p.planner,  # type: ignore[arg-type]
                    version=p.version,
                    estimate_usd=p.estimate_usd,
                    deliverables=len(doc.deliverables),
                    done=sum(1 for d in doc.deliverables if d.status == "done"),
                    created_at=p.created_at,
                    url=f"/api/plans/{p.id}",
                )
            )
        return ks.PlanList(plans=plans, count=len(plans), total=total)

    # the team's moves ---------------------------------------------------------------------------
    @staticmethod
    def _check_version(plan: Plan, version: int | None) -> None:
        if version is not None and version != plan.version:
            raise Conflict(
                f"plan {plan.id} is at version {plan.version}, not {version}: read it again",
                field="version",
            )

    def edit(self, principal: Principal, plan_id: int, body: ks.PlanEdit) -> ks.PlanOut:
        with self.db.write() as s:
            plan = self._plan(s, principal, plan_id, lock=True)
            self._check_version(plan, body.version)
            made = made_for(s, plan_id)
            current = overlaid(load(plan.document), made)
            doc = edited(current, body, made.keys(), self.catalog)
            run = run_options(plan.document)
            plan.document = dump(doc, run)
            plan.estimate_usd = total_estimate(doc)
            plan.version += 1
            if plan.status != "draft":
                plan.status, plan.approved_by, plan.approved_at = "draft", None, None
        return self.get(principal, plan_id)

    def approve(self, principal: Principal, plan_id: int, body: ks.ApproveRequest) -> ks.PlanOut:
        with self.db.write() as s:
            plan = self._plan(s, principal, plan_id, lock=True)
            self._check_version(plan, body.version)
            if plan.status not in ("draft", "approved"):
                raise Conflict(f"plan {plan_id} is {plan.status}: edit it first (an edit makes it a draft)")
            if plan.status == "draft":
                plan.status, plan.approved_by, plan.approved_at = "approved", principal.user_id, utcnow()
        return self.get(principal, plan_id)

    def run(self, principal: Principal, plan_id: int, body: ks.RunRequest) -> ks.PlanOut:
        """Start (or resume) the run; the deliverables that can be made now are asked for at once,
        the rest as what they use is done (the worker heartbeat)."""
        if body.override_budget and not principal.is_admin:
            raise Forbidden("override_budget: only an admin may run a plan over its campaign's budget")
        with self.db.write() as s:
            plan = self._plan(s, principal, plan_id, lock=True)
            self._check_version(plan, body.version)
            if plan.status == "draft":
                raise Conflict(
                    f"plan {plan_id} is a draft: approve it first (POST /api/plans/{plan_id}/approve)"
                )
            doc = overlaid(load(plan.document), made_for(s, plan_id))
            if not body.override_budget:
                self.campaigns.check_budget(s, plan.campaign_id, remaining(doc))
            run = run_options(plan.document)
            failed = {d.id for d in doc.deliverables if d.status in FAILED}
            run["again"] = sorted(set(run.get("again") or []) | failed)
            run["override_budget"] = body.override_budget
            plan.document = dump(load(plan.document), run)
            plan.status, plan.error, plan.finished_at = "running", None, None
            plan.run_by, plan.run_started_at = principal.user_id, utcnow()
        self.runner.advance(plan_id)
        return self.get(principal, plan_id)

    def retry(self, principal: Principal, plan_id: int, item_id: str) -> ks.PlanOut:
        """A failed deliverable made again, alone (a new attempt; the failed one stays listed)."""
        with self.db.write() as s:
            plan = self._plan(s, principal, plan_id, lock=True)
            doc = overlaid(load(plan.document), made_for(s, plan_id))
            item = next((d for d in doc.deliverables if d.id == item_id), None)
            if item is None:
                raise not_found("deliverable", item_id)
            if item.status not in FAILED:
                raise Conflict(f"deliverable {item_id} is {item.status}: only a failed one is retried")
            if plan.status not in ("running", "failed"):
                raise Conflict(f"plan {plan_id} is {plan.status}: approve and run it again")
            run = run_options(plan.document)
            run["again"] = sorted({*(run.get("again") or []), item_id})
            run["override_budget"] = bool(run.get("override_budget")) and principal.is_admin
            plan.document = dump(load(plan.document), run)
            plan.status, plan.error, plan.finished_at, plan.run_by = "running", None, None, principal.user_id
        refused = self.runner.advance(plan_id)
        if item_id in refused:
            raise refused[item_id]
        return self.get(principal, plan_id)

    # the kit ------------------------------------------------------------------------------------
    def kit_zip(self, principal: Principal, plan_id: int) -> tuple[str, Iterator[bytes]]:
        """Every finished deliverable, in folders: spots by channel, then music, visuals, clips."""
        out = self.get(principal, plan_id)
        wanted = {d.asset.id: d for d in out.deliverables if d.asset is not None}
        with self.db.read() as s:
            rows = s.scalars(select(Generation).where(Generation.id.in_(sorted(wanted)))).all()
            brief = s.get(Brief, out.brief_id)
        ready = [
            r
            for r in rows
            if r.status == Status.COMPLETED and r.blob_key and principal.can_see_client(r.client_id)
        ]
        if not ready:
            raise Conflict(f"nothing in plan {plan_id}'s kit is finished yet")
        members = []
        for row in sorted(ready, key=lambda r: list(wanted).index(r.id)):
            d = wanted[row.id]
            folder = d.channel if d.role == "spot" and d.channel else KIT_FOLDERS.get(d.role, "spots")
            members.append(
                ZipMember(
                    f"{folder}/{self.downloads.filename(row)}",
                    row.blob_key or "",
                    row.size_bytes or 0,
                    row.completed_at or row.created_at,
                )
            )
        name = slug(brief.title) if brief is not None else ""
        return f"{name or 'kit'}-kit-{plan_id}.zip", zip_blobs(self.store, members)

    # images from a brief ------------------------------------------------------------------------
    def images_from_brief(
        self, principal: Principal, req: GenerateRequest, *, idempotency_key: str | None
    ) -> BriefImages:
        """One image per scene of the brief's latest plan (a rules draft, not saved, when it has
        none), with the request's model and parameters (default: the plan's key visual's)."""
        brief_id = req.brief_id or ""
        with self.db.read() as s:
            brief = s.get(Brief, brief_id)
            if brief is None or not principal.can_see_client(brief.client_id):
                raise invalid("brief_id", f"brief {brief_id!r} not found")
            plan = s.scalars(
                select(Plan).where(Plan.brief_id == brief_id).order_by(Plan.created_at.desc(), Plan.id.desc())
            ).first()
            document = load(plan.document) if plan is not None else None
            context = self._context(s, brief) if plan is None else None
        doc = draft_plan(context).document if context is not None else document
        assert doc is not None  # a plan's document, or a fresh draft
        if not doc.scenes:
            raise invalid("brief_id", f"brief {brief_id!r}'s plan has no scenes")
        visual = next((d for d in doc.deliverables if d.kind == "image"), None)
        model = req.model or (visual.model if visual else None) or self.router.default_model("image")
        base = dict(visual.parameters) if visual is not None and visual.model == model else {}
        images: list[tuple[Scene, Generation]] = []
        new: list[Generation] = []
        try:
            for scene in doc.scenes:
                one = req.model_copy(
                    update={"prompt": scene.prompt, "model": model, "parameters": {**base, **req.parameters}}
                )
                key = f"{idempotency_key}:scene-{scene.n}" if idempotency_key else None
                takes = self.generations.create_takes(principal, "image", one, idempotency_key=key)
                images += [(scene, row) for row in takes.rows]
                new += takes.rows if takes.created else []
        except MediagenError:
            for row in new:  # all or nothing, as an export is
                self.generations.delete(principal, row.kind, row.id)
            raise
        return BriefImages(images, bool(new), plan.id if plan is not None else None)


@dataclass(frozen=True)
class BriefImages:
    """The images made from a brief's scenes, in scene order; whether any is new (False: an
    Idempotency-Key replay); the plan whose scenes they are (None: a rules draft, not saved)."""

    images: list[tuple[Scene, Generation]]
    created: bool
    plan_id: int | None

    @property
    def rows(self) -> list[Generation]:
        return [row for _, row in self.images]


__all__ = ["BriefImages", "KitService"]
