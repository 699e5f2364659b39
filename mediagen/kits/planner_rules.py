"""The rule-based planner: a brief and its client's brand in, a priced kit plan out.

Offline and deterministic (the same brief, brand and models always give the same plan), so it is
the default, the fallback of the LLM planner, and the skeleton the LLM planner fills: `outline`
reads what the brief asks for (spots per channel and length, music beds, key visuals), and
`assemble` turns an outline, scenes and prompt writers into deliverables with models,
parameters and estimates. The LLM planner only writes different scenes and prompts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mediagen.campaigns.channels import CHANNELS, Channel
from mediagen.campaigns.schemas import Brand
from mediagen.errors import Unavailable, invalid
from mediagen.kits.plan import MAX_DELIVERABLES, Deliverable, PlanDocument, Scene
from mediagen.kits.plan import MAX_SCENES as MAX_PLAN_SCENES
from mediagen.kits.planner_models import choose, estimate, longest, parameters
from mediagen.kits.planner_types import BriefFacts, Drafted, PlanningContext
from mediagen.kits.prompts_brand import branded, clip, joined, without_avoided

DEFAULT_LENGTHS = (15.0, 30.0)
DEFAULT_CHANNEL = "youtube"
MIN_SCENES, MAX_SCENES = 3, 5
MIN_SCENE_SECONDS = 2.0
MAX_SCENE_SECONDS = 60.0
SPOT_MODEL, MASTER_MODEL = "post/compose", "post/master"
ASPECT_WORDS = {"16:9": "landscape 16:9", "9:16": "vertical 9:16", "1:1": "square 1:1", "4:5": "portrait 4:5"}
SETTINGS = ("at home", "out and about in the city", "with the people they love", "at work", "at the weekend")
CAMERA = {
    "hook": "Dynamic close-up, bold motion, striking first frame",
    "message": "Medium shot, natural light, clear storytelling",
    "product": "Clean hero shot, shallow depth of field, product in sharp focus",
    "lifestyle": "Handheld lifestyle shot, candid and natural",
    "call to action": "Steady wide shot, calm composition with space for the end card",
}


@dataclass(frozen=True)
class Outline:
    """What the brief asks for, before any prompt is written."""

    spots: list[tuple[Channel, float]]  # video channels × length (capped by the channel)
    masters: list[tuple[Channel, float]]  # audio channels × length
    music_lengths: list[float]
    aspects: list[str]  # key visuals
    clip_aspect: str
    story_length: float  # the scenes' total
    scene_seconds: float = MAX_SCENE_SECONDS  # the longest a scene may be (the clip model's longest)
    notes: list[str] = field(default_factory=list)

    @property
    def scene_range(self) -> tuple[int, int]:
        """How many scenes: 3 to 5, or more when the clip model's longest clip needs them."""
        least = max(MIN_SCENES, math.ceil(self.story_length / self.scene_seconds - 1e-9))
        return least, max(MAX_SCENES, least)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def outline(ctx: PlanningContext) -> Outline:
    brief, brand = ctx.brief, ctx.brand
    notes: list[str] = []
    channels: list[Channel] = []
    for name in brief.channels:
        channel = CHANNELS.get(name)
        if channel is None:
            notes.append(f"unknown channel {name!r} left out")
        elif channel not in channels:
            channels.append(channel)
    if not brief.channels:
        channels = [CHANNELS[DEFAULT_CHANNEL]]
        notes.append(f"the brief names no channel: planned for {DEFAULT_CHANNEL}")
    lengths = sorted({float(x) for x in brief.lengths if x > 0}) or list(DEFAULT_LENGTHS)
    spots: list[tuple[Channel, float]] = []
    masters: list[tuple[Channel, float]] = []
    for channel in channels:
        for length in lengths:
            capped = min(length, channel.max_length) if channel.max_length else length
            if capped < length:
                cut = f"its {_seconds(length)} spot is cut to it"
                notes.append(f"{channel.name} takes at most {_seconds(capped)}: {cut}")
            pair = (channel, capped)
            target = spots if channel.kind == "video" else masters
            if pair not in target:
                target.append(pair)
    music_lengths = sorted({length for _c, length in spots + masters}) or lengths
    video_aspects = [str(c.aspect) for c, _l in spots if c.aspect]
    brand_aspects: list[str] = list(brand.aspects) if brand else []
    aspects = list(dict.fromkeys(video_aspects + brand_aspects))
    if not aspects:
        aspects = ["1:1"] if masters else ["16:9"]
    counted = Counter(video_aspects or brand_aspects or aspects)
    clip_aspect = max(counted, key=lambda a: (counted[a], -aspects.index(a)))
    story = max((length for _c, length in spots), default=max(music_lengths))
    scene_seconds = MAX_SCENE_SECONDS
    video = choose(
        ctx, "video", [{"duration": min(story / MAX_SCENES, MAX_SCENE_SECONDS), "aspect": clip_aspect}]
    )
    if spots and video is not None:
        scene_seconds = min(MAX_SCENE_SECONDS, longest(video) or MAX_SCENE_SECONDS)
    if story > MAX_PLAN_SCENES * scene_seconds:
        notes.append(f"the scenes cover the first {_seconds(MAX_PLAN_SCENES * scene_seconds)}")
        story = MAX_PLAN_SCENES * scene_seconds
    return Outline(spots, masters, music_lengths, aspects, clip_aspect, story, scene_seconds, notes)


def split_durations(total: float, count: int) -> list[float]:
    """`count` durations summing to `total`: whole seconds where the total allows, the spare
    seconds to the middle scenes (the hook and the call to action stay short)."""
    if float(total).is_integer() and total >= count:
        base, spare = divmod(int(total), count)
        out = [float(base)] * count
        order = list(range(1, count - 1)) + [0, count - 1] if count > 2 else list(range(count))
        for i in order[:spare]:
            out[i] += 1
        return out
    each = round(total / count, 2)
    return [each] * (count - 1) + [round(total - each * (count - 1), 2)]


def _sentences(text: str, most: int) -> list[str]:
    found = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if len(s.strip()) > 3]
    return [clip(s.rstrip(".!?"), 200) for s in found[:most]]


def scene_purposes(brief: BriefFacts, total: float, scenes: tuple[int, int]) -> list[tuple[str, str]]:
    """(purpose, subject) per scene: a hook, one scene per key message, the product when there are
    must-haves, a call to action; `scenes` (least, most) of them, none much under two seconds.
    Extra scenes a long spot needs show the audience with the product."""
    least, most = scenes
    most = max(least, min(most, int(total // MIN_SCENE_SECONDS)))
    messages = [m.strip() for m in brief.key_messages if m.strip()] or _sentences(brief.text, 2)
    if not messages:
        messages = [brief.objective or brief.title]
    product = joined(list(brief.must_haves))
    slots = most - 2 - (1 if product else 0)
    product_in_cta = ""
    if slots < 1:  # no room for a product scene: its must-haves go into the call to action
        slots, product_in_cta, product = 1, product, ""
    if len(messages) > slots:
        messages = messages[: slots - 1] + ["; ".join(messages[slots - 1 :])]
    cta = brief.objective or brief.title
    out = [("hook", brief.title)] + [("message", m) for m in messages]
    if product:
        out.append(("product", product))
    out.append(("call to action", f"{cta}; featuring {product_in_cta}" if product_in_cta else cta))
    who = brief.audience.strip().rstrip(".") if brief.audience else "people"
    for i in range(least - len(out)):
        setting = SETTINGS[i % len(SETTINGS)]
        out.insert(-1, ("lifestyle", f"{who} {setting}, with {brief.title}"))
    return out


def _mid_sentence(text: str) -> str:
    """A sentence of the brief set inside ours: "A bright drink" -> "a bright drink". Only a
    common opening word is lowered; a name ("Acme") or a word in capitals keeps its case."""
    first, sep, rest = text.partition(" ")
    if first.lower() in _OPENERS and first[:1].isupper() and (len(first) == 1 or first[1:].islower()):
        return first.lower() + sep + rest
    return text


_OPENERS = frozenset({"a", "an", "the", "our", "your", "this", "these", "every", "each", "some", "new"})


def _audience(brief: BriefFacts) -> str:
    parts = []
    if brief.audience:
        parts.append(f"For {brief.audience.strip().rstrip('.')}.")
    if brief.tone:
        tone = brief.tone.strip().rstrip(".")
        parts.append(f"{tone[:1].upper()}{tone[1:]} tone.")
    return " ".join(parts)


def rule_scenes(brief: BriefFacts, brand: Brand | None, shape: Outline) -> list[Scene]:
    total = shape.story_length
    purposes = scene_purposes(brief, total, shape.scene_range)
    durations = split_durations(total, len(purposes))
    scenes: list[Scene] = []
    for n, ((purpose, subject), seconds) in enumerate(zip(purposes, durations, strict=True), start=1):
        if purpose == "hook":
            lead = f"Opening hook: {subject}"
        elif purpose == "message":
            lead = f"Scene showing {_mid_sentence(subject)}"
        elif purpose == "product":
            lead = f"Product hero shot featuring {_mid_sentence(subject)}"
        elif purpose == "lifestyle":
            lead = f"Lifestyle moment: {subject}"
        else:
            end = "the brand logo" if brand and brand.logo_image_id else "the brand name"
            lead = f"Closing call to action: {subject}, ending on {end}"
        text = f"{lead}. {CAMERA[purpose]}. {_audience(brief)}"
        label = purpose if purpose != "message" else f"message: {subject}"
        scenes.append(
            Scene(n=n, purpose=clip(label, 300), duration=seconds, prompt=branded(text, brand, "video"))
        )
    return scenes


def music_prompt(brief: BriefFacts, brand: Brand | None, length: float) -> str:
    """A music bed's prompt: the brand's genres, moods and tempo, the brief's tone and objective."""
    mood = brief.tone.strip().rstrip(".") if brief.tone else "upbeat"
    aim = brief.objective or brief.title
    text = f"Instrumental music bed for a {_seconds(length)} advertising spot, {mood} mood: {aim}. No vocals."
    return branded(text, brand, "audio")


def _sentence(text: str) -> str:
    """A phrase of the brief as a sentence of its own: "launch it" -> "Launch it."."""
    text = text.strip().rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."


def visual_prompt(brief: BriefFacts, brand: Brand | None, aspect: str) -> str:
    """A key visual's prompt: the campaign in one still, framed for the aspect."""
    parts = [f"Key visual, {ASPECT_WORDS.get(aspect, aspect)} frame: {brief.title}."]
    if brief.objective:
        parts.append(_sentence(brief.objective))
    if brief.key_messages:
        parts.append(_sentence(brief.key_messages[0]))
    if brief.must_haves:
        parts.append(f"Featuring {joined(list(brief.must_haves))}.")
    parts.append(_audience(brief))
    return branded(" ".join(parts), brand, "image")


def spot_prompt(brief: BriefFacts, brand: Brand | None, channel: Channel, length: float) -> str:
    """A spot's title (a composition's `prompt` names it; the brand does not style a title)."""
    return without_avoided(f"{brief.title} · {channel.name} · {_seconds(length)}", brand)


def cutdown(clips: Sequence[tuple[Scene, str, float]], length: float) -> list[tuple[Scene, str, float]]:
    """The clips a spot of `length` uses, in scene order. All of them when they fit; a shorter
    spot keeps the hook and the call to action (first and last) and adds the product, then the
    messages, until there is enough picture to cut to the length."""
    total = sum(seconds for _s, _i, seconds in clips)
    if total <= length + 0.01 or len(clips) <= 2:
        return list(clips)
    middle = list(clips[1:-1])
    middle.sort(key=lambda c: (0 if "product" in c[0].purpose.lower() else 1, c[0].n))
    chosen = [clips[0], clips[-1]]
    for clip_ in middle:
        if sum(seconds for _s, _i, seconds in chosen) >= length - 0.01:
            break
        chosen.append(clip_)
    return sorted(chosen, key=lambda c: c[0].n)


@dataclass
class _Builder:
    """Deliverables in the order a run makes them, numbered d1, d2, …"""

    ctx: PlanningContext
    items: list[Deliverable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **fields: object) -> str:
        ident = f"d{len(self.items) + 1}"
        self.items.append(Deliverable.model_validate({"id": ident, **fields}))
        return ident

    def available(self, kind: str, model_id: str) -> bool:
        return model_id in self.ctx.available.get(kind, [])

    def music(self, lengths: Sequence[float], text: Callable[[float], str]) -> dict[float, str]:
        brand = self.ctx.brand
        beds: dict[float, str] = {}
        for length in lengths:
            entry = choose(self.ctx, "audio", [{"duration": length}])
            if entry is None:
                self.notes.append("no music model is available: no music beds")
                break
            wanted: dict[str, object] = {"duration": length}
            if brand and brand.music and brand.music.bpm:
                wanted["bpm"] = round(sum(brand.music.bpm) / 2)
            params = parameters(entry, wanted)
            if params.get("duration") not in (None, length):
                most = _seconds(params["duration"])
                self.notes.append(f"{entry.id} makes at most {most} of music: longer spots loop it")
            beds[length] = self.add(
                kind="audio",
                role="music",
                model=entry.id,
                prompt=text(length),
                parameters=params,
                length=length,
                estimate_usd=estimate(entry, params),
            )
        return beds

    def visuals(self, aspects: Sequence[str], text: Callable[[str], str]) -> None:
        image = choose(self.ctx, "image", [{"aspect": a} for a in aspects])
        if image is None:
            self.notes.append("no image model is available: no key visuals")
            return
        for aspect in aspects:
            params = parameters(image, {"aspect": aspect})
            self.add(
                kind="image",
                role="visual",
                model=image.id,
                prompt=text(aspect),
                parameters=params,
                aspect=aspect,
                estimate_usd=estimate(image, params),
            )

    def clips(self, scenes: Sequence[Scene], aspect: str) -> list[tuple[Scene, str, float]]:
        """A clip per scene: (scene, deliverable id, the seconds its model will make)."""
        video = choose(self.ctx, "video", [{"duration": s.duration, "aspect": aspect} for s in scenes])
        if video is None:
            self.notes.append("no video model is available: no clips and no spots")
            return []
        made: list[tuple[Scene, str, float]] = []
        for scene in scenes:
            params = parameters(video, {"duration": scene.duration, "aspect": aspect})
            seconds = float(params.get("duration", scene.duration))
            ident = self.add(
                kind="video",
                role="clip",
                model=video.id,
                prompt=scene.prompt,
                parameters=params,
                aspect=aspect,
                length=seconds,
                scene=scene.n,
                estimate_usd=estimate(video, params),
            )
            made.append((scene, ident, seconds))
        if made and sum(m[2] for m in made) < sum(s.duration for s in scenes) - 0.01:
            self.notes.append(f"{video.id} makes clips shorter than the scenes: the spots are shorter")
        return made

    def spots(
        self,
        pairs: Sequence[tuple[Channel, float]],
        clips: list[tuple[Scene, str, float]],
        beds: dict[float, str],
    ) -> None:
        if not pairs or not clips:
            return
        if not self.available("video", SPOT_MODEL):
            self.notes.append(f"{SPOT_MODEL} is not available: no spots")
            return
        brief, brand = self.ctx.brief, self.ctx.brand
        for channel, length in pairs:
            chosen = cutdown(clips, length)
            material = sum(seconds for _s, _i, seconds in chosen)
            cut = min(length, material)
            uses = [ident for _s, ident, _l in chosen] + ([beds[length]] if length in beds else [])
            self.add(
                kind="video",
                role="spot",
                model=SPOT_MODEL,
                prompt=spot_prompt(brief, brand, channel, length),
                parameters={"aspect": channel.aspect, "length": cut, "loudness": channel.loudness},
                channel=channel.name,
                aspect=channel.aspect,
                length=length,
                uses=uses,
            )

    def masters(self, pairs: Sequence[tuple[Channel, float]], beds: dict[float, str]) -> None:
        pairs = [(c, n) for c, n in pairs if n in beds]
        if not pairs:
            return
        if not self.available("audio", MASTER_MODEL):
            self.notes.append(f"{MASTER_MODEL} is not available: no audio spots")
            return
        brief, brand = self.ctx.brief, self.ctx.brand
        for channel, length in pairs:
            self.add(
                kind="audio",
                role="spot",
                model=MASTER_MODEL,
                prompt=spot_prompt(brief, brand, channel, length),
                parameters={"length": length, "loudness": channel.loudness},
                channel=channel.name,
                length=length,
                uses=[beds[length]],
            )


def assemble(
    ctx: PlanningContext,
    shape: Outline,
    scenes: Sequence[Scene],
    music_text: Callable[[float], str],
    visual_text: Callable[[str], str],
) -> tuple[PlanDocument, list[str]]:
    """Deliverables for an outline and its scenes: music beds, key visuals, a clip per scene, a
    spot per video channel and length (its clips in scene order, then its music bed) and an audio
    master per audio channel and length. Every one has a model this server can run and its
    estimate; what could not be planned is said in the notes."""
    b = _Builder(ctx, notes=list(shape.notes))
    beds = b.music(shape.music_lengths, music_text)
    b.visuals(shape.aspects, visual_text)
    clips = b.clips(scenes, shape.clip_aspect) if shape.spots else []
    b.spots(shape.spots, clips, beds)
    b.masters(shape.masters, beds)
    if not b.items:
        raise Unavailable("no model that could make any part of this kit is available on this server")
    if len(b.items) > MAX_DELIVERABLES:
        many = f"{len(b.items)} deliverables; a plan holds at most {MAX_DELIVERABLES}"
        raise invalid("channels", f"the brief's channels and lengths ask for {many}: name fewer")
    return PlanDocument(deliverables=b.items, scenes=list(scenes)), list(dict.fromkeys(b.notes))


def plan_by_rules(ctx: PlanningContext) -> tuple[PlanDocument, list[str]]:
    """The rule-based plan and its notes (what the brief asked that could not be planned)."""
    brief, brand = ctx.brief, ctx.brand
    shape = outline(ctx)
    scenes = rule_scenes(brief, brand, shape)
    return assemble(
        ctx,
        shape,
        scenes,
        lambda length: music_prompt(brief, brand, length),
        lambda aspect: visual_prompt(brief, brand, aspect),
    )


def draft_by_rules(ctx: PlanningContext, note: str | None = None) -> Drafted:
    document, notes = plan_by_rules(ctx)
    text = "; ".join(([note] if note else []) + notes) or None
    return Drafted(document=document, planner="rules", note=text)


__all__ = [
    "Outline",
    "assemble",
    "draft_by_rules",
    "music_prompt",
    "outline",
    "plan_by_rules",
    "rule_scenes",
    "split_durations",
    "visual_prompt",
]
