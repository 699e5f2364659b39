"""The LLM planner: a language model on Replicate writes the scenes and the prompts.

The model writes only what it is good at (the storyboard: 3–5 scenes with their purpose, a
generation prompt each, a music direction and a key-visual description). The rule planner's
skeleton supplies everything a run depends on: deliverables, models, parameters, spots and
their `uses`, estimates. So an answer that parses and validates always gives a runnable, priced
plan. The brand is enforced on every prompt the model wrote (style words in, avoid-words out),
whatever it was told.

Any failure (no token, an HTTP error, a failed or slow prediction, an answer that is not JSON or
does not match the schema) gives the rule-based plan instead, with a note saying why.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mediagen.campaigns.schemas import Brand
from mediagen.errors import Unavailable
from mediagen.kits.plan import MAX_PLAN_PROMPT, PlanDocument, Scene
from mediagen.kits.plan import MAX_SCENES as MAX_PLAN_SCENES
from mediagen.kits.planner_replicate import ReplicateText, TextModelError
from mediagen.kits.planner_rules import (
    ASPECT_WORDS,
    MAX_SCENE_SECONDS,
    Outline,
    assemble,
    draft_by_rules,
    music_prompt,
    outline,
    scene_purposes,
    split_durations,
    visual_prompt,
)
from mediagen.kits.planner_types import BriefFacts, Drafted, PlanningContext
from mediagen.kits.prompts_brand import branded, clip, without_avoided

log = logging.getLogger("mediagen.kits.planner")

MAX_TOKENS = 1500
TEMPERATURE = 0.4
MAX_BRIEF_CHARS = 4000  # of the brief's free text sent to the model

SYSTEM_PROMPT = """You are the creative director of an advertising agency. From a creative brief \
you write the storyboard of a short video spot and the prompts that image, video and music \
generation models will be given.

Answer with ONE JSON object and nothing else: no prose, no markdown. Its shape:
{"scenes": [{"purpose": "hook", "duration": 5, "prompt": "..."}, ...],
 "music_prompt": "...",
 "visual_prompt": "..."}

Rules:
- As many scenes as the brief asks for (3 to 5 unless it says otherwise), in order. purpose: \
what the scene does (hook, a key message, product, call to action). duration: seconds on \
screen; the durations add up to the spot's length.
- Each scene prompt describes one shot for a text-to-video model: subject, action, setting, camera, \
lighting and colours, concrete and visual, at most 60 words. No on-screen text, no dialogue.
- music_prompt: an instrumental track for the spot (genre, mood, instruments, tempo), at most 40 words.
- visual_prompt: the campaign's key visual as one still image, at most 60 words.
- Use the brand's style words and colours. Never use a word the brand avoids, not even as "no ..."."""


class LlmScene(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    purpose: str = Field(min_length=1, max_length=300)
    prompt: str = Field(min_length=1, max_length=MAX_PLAN_PROMPT)
    duration: float | None = Field(default=None, gt=0, le=MAX_SCENE_SECONDS)


class LlmPlan(BaseModel):
    """What the model must answer. Unknown keys are ignored; a missing music or visual prompt
    keeps the rule planner's."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    scenes: list[LlmScene] = Field(min_length=1, max_length=MAX_PLAN_SCENES)
    music_prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PLAN_PROMPT)
    visual_prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PLAN_PROMPT)


class PlanRejected(Exception):
    """The model's answer cannot be used; the message says why (for the plan's note)."""


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text`: models wrap answers in prose or ``` fences."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise PlanRejected("the model's answer holds no JSON object")


def _lines(brief: BriefFacts, brand: Brand | None) -> list[str]:
    lines = [f"Title: {brief.title}"]
    for label, value in (
        ("Objective", brief.objective),
        ("Audience", brief.audience),
        ("Tone", brief.tone),
        ("Key messages", "; ".join(brief.key_messages)),
        ("Must-haves", "; ".join(brief.must_haves)),
        ("Channels", ", ".join(brief.channels)),
    ):
        if value:
            lines.append(f"{label}: {value}")
    if brief.text.strip():
        lines.append(f"Brief: {clip(brief.text, MAX_BRIEF_CHARS)}")
    if brand is not None:
        if brand.style_keywords:
            lines.append(f"Brand style words: {', '.join(brand.style_keywords)}")
        if brand.palette:
            lines.append(f"Brand colours: {', '.join(brand.palette)}")
        if brand.music and (brand.music.genres or brand.music.moods):
            lines.append(f"Brand music: {', '.join([*brand.music.genres, *brand.music.moods])}")
        if brand.avoid:
            lines.append(f"Words the brand never uses: {', '.join(brand.avoid)}")
    return lines


def user_prompt(brief: BriefFacts, brand: Brand | None, shape: Outline) -> str:
    """The brief, the brand and the outline the rules would draw (for the model to improve on)."""
    purposes = scene_purposes(brief, shape.story_length, shape.scene_range)
    durations = split_durations(shape.story_length, len(purposes))
    outline_text = "; ".join(
        f"{purpose}: {subject} ({seconds:g} s)"
        for (purpose, subject), seconds in zip(purposes, durations, strict=True)
    )
    return "\n".join(
        [
            *_lines(brief, brand),
            f"Spot length: {shape.story_length:g} seconds, in {_count(shape)} scenes"
            f" of at most {shape.scene_seconds:g} seconds each.",
            f"A starting outline you may improve: {outline_text}.",
            "Answer with the JSON object only.",
        ]
    )


def _count(shape: Outline) -> str:
    least, most = shape.scene_range
    return f"{least}" if least == most else f"{least} to {most}"


def _whole(total: float, raw: list[float]) -> list[float]:
    """`raw` as whole seconds adding up to `total` (largest remainders get the spare seconds)."""
    floors = [math.floor(r) for r in raw]
    spare = round(total) - sum(floors)
    for i in sorted(range(len(raw)), key=lambda i: (floors[i] - raw[i], i))[:spare]:
        floors[i] += 1
    return [float(f) for f in floors]


def _durations(answer: LlmPlan, total: float, longest: float) -> list[float]:
    """The model's durations scaled to the spot's length (whole seconds when the length is); an
    even split when it gave none, or gave ones that do not fit a scene."""
    given = [s.duration for s in answer.scenes]
    count = len(given)
    if any(d is None for d in given):
        return split_durations(total, count)
    weights = [float(d) for d in given if d is not None]
    raw = [total * w / sum(weights) for w in weights]
    if float(total).is_integer():
        scaled = _whole(total, raw)
    else:
        scaled = [round(r, 2) for r in raw[:-1]]
        scaled.append(round(total - sum(scaled), 2))
    if any(not 0 < d <= longest for d in scaled):
        return split_durations(total, count)
    return scaled


def plan_from_answer(ctx: PlanningContext, shape: Outline, answer: LlmPlan) -> tuple[PlanDocument, list[str]]:
    """The rule skeleton filled with the model's scenes and prompts, the brand enforced."""
    brand = ctx.brand
    least, most = shape.scene_range
    if not least <= len(answer.scenes) <= most:
        raise PlanRejected(f"the model wrote {len(answer.scenes)} scenes; the spot needs {_count(shape)}")
    for what, text in [
        *((f"scenes.{i}.prompt", s.prompt) for i, s in enumerate(answer.scenes)),
        ("music_prompt", answer.music_prompt),
        ("visual_prompt", answer.visual_prompt),
    ]:
        if text is not None and brand is not None and not re.search(r"\w", without_avoided(text, brand)):
            raise PlanRejected(f"{what} holds nothing but words the brand avoids")
    durations = _durations(answer, shape.story_length, shape.scene_seconds)
    scenes = [
        Scene(n=n, purpose=s.purpose, duration=d, prompt=branded(s.prompt, brand, "video"))
        for n, (s, d) in enumerate(zip(answer.scenes, durations, strict=True), 1)
    ]
    music, visual = answer.music_prompt, answer.visual_prompt

    def music_text(length: float) -> str:
        if not music:
            return music_prompt(ctx.brief, brand, length)
        return branded(f"{music.rstrip('.')}. A {length:g}-second instrumental bed", brand, "audio")

    def visual_text(aspect: str) -> str:
        if not visual:
            return visual_prompt(ctx.brief, brand, aspect)
        return branded(f"{visual.rstrip('.')}. Framed {ASPECT_WORDS.get(aspect, aspect)}", brand, "image")

    return assemble(ctx, shape, scenes, music_text, visual_text)


def read_answer(text: str) -> LlmPlan:
    try:
        return LlmPlan.model_validate(first_json_object(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise PlanRejected(f"the model's plan does not match the schema ({where}: {first['msg']})") from exc


def model_inputs(brief: BriefFacts, brand: Brand | None, shape: Outline) -> Mapping[str, Any]:
    return {
        "prompt": user_prompt(brief, brand, shape),
        "system_prompt": SYSTEM_PROMPT,
        "max_tokens": MAX_TOKENS,
        "temperature": TEMPERATURE,
    }


def draft_by_llm(ctx: PlanningContext) -> Drafted:
    """The LLM's plan, or the rules' with a note saying why not."""
    settings = ctx.settings
    model_id = settings.planner_model
    if not settings.replicate_api_token:
        return draft_by_rules(ctx, "LLM planner not used: no Replicate token is set")
    shape = outline(ctx)
    try:
        with ReplicateText(token=settings.replicate_api_token, base_url=settings.replicate_base_url) as llm:
            text = llm.run(
                model_id,
                model_inputs(ctx.brief, ctx.brand, shape),
                timeout_s=settings.planner_timeout_seconds,
            )
        answer = read_answer(text)
        document, notes = plan_from_answer(ctx, shape, answer)
    except (TextModelError, PlanRejected) as exc:
        log.warning("LLM planner (%s) fell back to the rules: %s", model_id, exc)
        return draft_by_rules(ctx, f"LLM planner ({model_id}) fell back to the rules: {exc}")
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = f"{'.'.join(str(p) for p in first['loc']) or 'plan'}: {first['msg']}"
        log.warning("LLM planner (%s) made an invalid plan: %s", model_id, reason)
        fell_back = f"LLM planner ({model_id}) fell back to the rules: invalid plan ({reason})"
        return draft_by_rules(ctx, fell_back)
    except Unavailable:
        raise  # the rules could not plan it either
    except Exception as exc:  # any other failure: the team still gets a plan, and the log the cause
        log.exception("LLM planner (%s) failed", model_id)
        return draft_by_rules(ctx, f"LLM planner ({model_id}) fell back to the rules: {type(exc).__name__}")
    return Drafted(document=document, planner="llm", note="; ".join(notes) or None)


__all__ = ["SYSTEM_PROMPT", "LlmPlan", "draft_by_llm", "first_json_object", "read_answer", "user_prompt"]
