"""What the kit plan tests share: the real services in-process on a seeded SQLite (acme with its
"spring" campaign, globex) with an in-memory job queue the tests run themselves, and a brief with
structured direction to plan from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.campaigns.tables import Brief, Campaign
from mediagen.generations.tables import Generation
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.kits import schemas as ks
from mediagen.services import Services


@dataclass
class Kits:
    services: Services
    queue: MemoryJobQueue
    admin: Principal

    def brief(self, brief_id: str = "b1", **direction: Any) -> str:
        """A brief in acme's "spring" campaign with structured direction (columns set as stored)."""
        self.services.campaigns.create_brief(
            self.admin,
            sc.BriefCreate(
                id=brief_id, campaign_id="spring", title="Sunny launch", text="A bright summer drink"
            ),
        )
        with self.services.db.write() as s:
            row = s.get(Brief, brief_id)
            assert row is not None
            for name, value in direction.items():
                setattr(row, name, value)
        return brief_id

    def budget(self, usd: float | None) -> None:
        with self.services.db.write() as s:
            campaign = s.get(Campaign, "spring")
            assert campaign is not None
            campaign.budget_usd = usd

    def approved(self, plan: ks.PlanOut) -> ks.PlanOut:
        return self.services.kits.approve(self.admin, plan.id, ks.ApproveRequest(version=plan.version))

    def settle(self, plan_id: int, *, rounds: int = 10) -> ks.PlanOut:
        """What workers and the heartbeat do: run every queued step, advance the plan; until it
        stops running (or `rounds` pass)."""
        out = self.services.kits.get(self.admin, plan_id)
        for _ in range(rounds):
            self.queue.drain(self.services.pipeline)
            self.services.kits.runner.advance(plan_id)
            out = self.services.kits.get(self.admin, plan_id)
            if out.status != "running":
                break
        return out

    def generation_count(self) -> int:
        with self.services.db.read() as s:
            return s.scalar(select(func.count()).select_from(Generation)) or 0

    def row(self, gen_id: int) -> Generation:
        with self.services.db.read() as s:
            found = s.get(Generation, gen_id)
        assert found is not None
        return found


def item(plan: ks.PlanOut, item_id: str) -> ks.DeliverableOut:
    return next(d for d in plan.deliverables if d.id == item_id)


def of_role(plan: ks.PlanOut, role: str) -> list[ks.DeliverableOut]:
    return [d for d in plan.deliverables if d.role == role]


def editable(plan: ks.PlanOut) -> dict[str, Any]:
    """The plan as a client sends it back: what it read, server fields and all."""
    return plan.model_dump(mode="json")
