"""Shared set-up for the planner tests: the packaged catalog, a server's view of its models, briefs."""

from __future__ import annotations

from typing import Any

from mediagen.campaigns.schemas import Brand
from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.generations.routing import HOSTED_DEFAULTS, OFFLINE_DEFAULTS
from mediagen.kits.plan import Deliverable, PlanDocument
from mediagen.kits.planning import BriefFacts, PlanningContext

CATALOG = Catalog.load()
KINDS = ("audio", "image", "video")


def server_models(*engines: str) -> dict[str, list[str]]:
    """What a server with these engines can run, per kind (post always runs here)."""
    wanted = {*engines, "post"}
    return {k: [e.id for e in CATALOG.list(k) if e.engine in wanted] for k in KINDS}


HOSTED = server_models("replicate", "synth")
HOSTED_DEFAULT = {str(k): v for k, v in HOSTED_DEFAULTS.items()}
OFFLINE = server_models("synth")
OFFLINE_DEFAULT = {str(k): v for k, v in OFFLINE_DEFAULTS.items()}

ACME = Brand.model_validate(
    {
        "palette": ["#ff6600", "#003366"],
        "style_keywords": ["bold", "sunny"],
        "avoid": ["dark", "gloomy"],
        "music": {"genres": ["house"], "moods": ["uplifting"], "bpm": [110, 128]},
        "aspects": ["9:16", "16:9"],
        "loudness": "social",
        "fonts": ["Inter"],
    }
)

LEMONADE = BriefFacts(
    id="b-lemon",
    title="Summer lemonade",
    text="Launch the new sparkling lemonade. Nothing dark or gloomy about it.",
    objective="Drive trial of the new sparkling lemonade",
    audience="young adults in cities",
    key_messages=("real lemons", "no added sugar, never dark"),
    tone="playful",
    channels=("instagram-reel", "youtube"),
    lengths=(15.0, 30.0),
    must_haves=("the can", "the logo"),
    client_id="acme",
)
BROADCAST = BriefFacts(
    id="b-bank",
    title="Savings made simple",
    text="A calm, trustworthy launch for the new savings account.",
    objective="Open savings accounts",
    audience="families",
    key_messages=("instant access", "no fees", "a bonus rate for a year"),
    tone="warm, reassuring",
    channels=("tv-eu", "radio", "tiktok"),
    lengths=(30.0, 90.0),
    client_id="bank",
)
BARE = BriefFacts(id="b-bare", title="Spring sale", text="Everything is 20% off. Ends Sunday.")


def settings(**values: Any) -> Settings:
    values.setdefault("REPLICATE_API_TOKEN", None)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def context(
    brief: BriefFacts,
    brand: Brand | None = None,
    *,
    available: dict[str, list[str]] | None = None,
    defaults: dict[str, str] | None = None,
    **setting_values: Any,
) -> PlanningContext:
    return PlanningContext(
        settings=settings(**setting_values),
        catalog=CATALOG,
        available=available if available is not None else HOSTED,
        defaults=defaults if defaults is not None else HOSTED_DEFAULT,
        brief=brief,
        brand=brand,
    )


def by_role(doc: PlanDocument, role: str, kind: str | None = None) -> list[Deliverable]:
    return [d for d in doc.deliverables if d.role == role and (kind is None or d.kind == kind)]


def every_prompt(doc: PlanDocument) -> list[str]:
    return [d.prompt for d in doc.deliverables] + [s.prompt for s in doc.scenes]


def styled_prompts(doc: PlanDocument) -> list[str]:
    """The prompts the brand styles: all but the spots', which are titles."""
    return [d.prompt for d in doc.deliverables if d.role != "spot"] + [s.prompt for s in doc.scenes]
