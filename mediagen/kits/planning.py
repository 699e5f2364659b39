"""Drafting a kit plan from a brief: which planner, per `MEDIAGEN_PLANNER`.

`rules` is offline and deterministic; `llm` asks a language model on Replicate for the scenes and
prompts (and falls back to the rules, with a note, on any failure); `auto` is `llm` when a
Replicate token is set. Either way every deliverable has a model this server can run and an
estimate.
"""

from __future__ import annotations

from mediagen.kits.planner_llm import draft_by_llm
from mediagen.kits.planner_rules import draft_by_rules
from mediagen.kits.planner_types import BriefFacts, Drafted, PlannerName, PlanningContext


def planner_for(ctx: PlanningContext) -> PlannerName:
    """The planner the settings ask for (`auto`: the LLM when a Replicate token is set)."""
    mode = ctx.settings.planner
    if mode == "auto":
        return "llm" if ctx.settings.replicate_api_token else "rules"
    return mode


def draft_plan(ctx: PlanningContext) -> Drafted:
    """A plan for `ctx.brief`. Raises `Unavailable` only when no model could make any part of it."""
    if planner_for(ctx) == "llm":
        return draft_by_llm(ctx)
    return draft_by_rules(ctx)


__all__ = ["BriefFacts", "Drafted", "PlanningContext", "draft_plan", "planner_for"]
