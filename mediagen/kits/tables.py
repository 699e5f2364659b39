"""Kit plans: the document a planner drafted from a brief and the team edits, approves and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mediagen.db.base import Base, UTCDateTime, utcnow


class Plan(Base):
    """One kit plan of a brief. `document` is `kits.plan.PlanDocument` as JSON (deliverables and
    scenes); each deliverable's asset is found through `generations.plan_id/plan_item`."""

    __tablename__ = "plans"
    __table_args__ = (
        Index("ix_plans_brief_created", "brief_id", "created_at"),
        Index("ix_plans_status", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brief_id: Mapped[str] = mapped_column(ForeignKey("briefs.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # draft -> approved -> running -> done | failed (an edit of an approved plan sends it back to draft)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    planner: Mapped[str] = mapped_column(String(8))  # rules | llm
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    estimate_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # Bumped by every edit: an approval or a run names the version it saw (no lost updates).
    version: Mapped[int] = mapped_column(Integer, default=1)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # e.g. why the LLM planner fell back
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Who started the run: the run acts with that user's scope when it advances in a worker.
    run_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    run_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
