"""What a planner reads and what it hands back (kits/planning.py re-exports these).

Kept apart from the planners so the rule and LLM planners and the chooser share them without
importing each other in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mediagen.campaigns.schemas import Brand
from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.kits.plan import PlanDocument

PlannerName = Literal["rules", "llm"]


class BriefRow(Protocol):
    """The brief columns a plan is drafted from (campaigns.tables.Brief has them)."""

    id: str
    title: str
    text: str
    objective: str | None
    audience: str | None
    key_messages: list[str] | None
    tone: str | None
    channels: list[str] | None
    lengths: list[float] | None
    must_haves: list[str] | None
    client_id: str
    campaign_id: str | None


@dataclass(frozen=True)
class BriefFacts:
    """A brief as plain values: a planner never touches a session or a row."""

    id: str
    title: str
    text: str = ""
    objective: str | None = None
    audience: str | None = None
    key_messages: Sequence[str] = ()
    tone: str | None = None
    channels: Sequence[str] = ()
    lengths: Sequence[float] = ()
    must_haves: Sequence[str] = ()
    client_id: str | None = None
    campaign_id: str | None = None

    @classmethod
    def of(cls, row: BriefRow) -> BriefFacts:
        return cls(
            id=row.id,
            title=row.title,
            text=row.text or "",
            objective=row.objective,
            audience=row.audience,
            key_messages=tuple(row.key_messages or ()),
            tone=row.tone,
            channels=tuple(row.channels or ()),
            lengths=tuple(float(x) for x in row.lengths or ()),
            must_haves=tuple(row.must_haves or ()),
            client_id=row.client_id,
            campaign_id=row.campaign_id,
        )


@dataclass(frozen=True)
class PlanningContext:
    """Everything a planner may use. `available` lists, per kind, the model ids this server can
    run now (the router's view); `defaults` names the default model per kind. A planner never
    picks a model outside `available`."""

    settings: Settings
    catalog: Catalog
    available: dict[str, list[str]]
    defaults: dict[str, str]
    brief: BriefFacts
    brand: Brand | None = None


@dataclass(frozen=True)
class Drafted:
    """A drafted plan, who drafted it, and a note for the team (e.g. why the LLM planner fell
    back to the rules)."""

    document: PlanDocument
    planner: PlannerName
    note: str | None = None
