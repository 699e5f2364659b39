"""The rule-based planner: what a brief asks for becomes deliverables a server can run, priced."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from mediagen.campaigns.branding import colour_name, mentions
from mediagen.campaigns.channels import CHANNELS
from mediagen.errors import InvalidInput, Unavailable
from mediagen.kits.editing import checked
from mediagen.kits.plan import PlanDocument
from mediagen.kits.planner_rules import cutdown, split_durations
from mediagen.kits.planning import BriefFacts, draft_plan
from tests.kits.planner_kit import (
    ACME,
    BARE,
    BROADCAST,
    CATALOG,
    LEMONADE,
    OFFLINE,
    OFFLINE_DEFAULT,
    by_role,
    context,
    every_prompt,
    styled_prompts,
)


def expected_spots(brief: BriefFacts) -> set[tuple[str, str, float]]:
    """(channel, kind, length) the brief asks for, each length capped by its channel."""
    lengths = brief.lengths or (15.0, 30.0)
    out = set()
    for name in brief.channels or ("youtube",):
        channel = CHANNELS[name]
        for length in lengths:
            capped = min(length, channel.max_length) if channel.max_length else length
            out.add((name, channel.kind, capped))
    return out


@pytest.mark.parametrize("brief", [LEMONADE, BROADCAST, BARE], ids=lambda b: b.id)
def test_deliverables_match_the_channels_and_lengths(brief: BriefFacts) -> None:
    drafted = draft_plan(context(brief, ACME, planner="rules"))
    doc = drafted.document
    assert drafted.planner == "rules"
    spots = by_role(doc, "spot")
    assert {(d.channel, d.kind, d.length) for d in spots} == expected_spots(brief)
    assert len(spots) == len(expected_spots(brief))
    items = {d.id: d for d in doc.deliverables}
    music = by_role(doc, "music")
    assert sorted(d.length for d in music if d.length) == sorted({d.length for d in spots if d.length})
    for spot in spots:
        channel = CHANNELS[str(spot.channel)]
        assert spot.parameters["loudness"] == channel.loudness
        bed = items[spot.uses[-1]]
        assert bed.role == "music" and bed.length == spot.length
        if spot.kind == "video":
            assert spot.model == "post/compose"
            assert spot.aspect == channel.aspect == spot.parameters["aspect"]
            clips = [items[u] for u in spot.uses[:-1]]
            assert clips and all(c.role == "clip" for c in clips)
            scenes = [c.scene for c in clips]
            assert scenes == sorted(scenes) and scenes[0] == 1 and scenes[-1] == len(doc.scenes)
        else:
            assert spot.model == "post/master" and spot.uses == [bed.id]
    # Key visuals: one per aspect the video channels need, plus the brand's.
    needed = {CHANNELS[c].aspect for c in brief.channels or ("youtube",) if CHANNELS[c].aspect}
    assert {d.aspect for d in by_role(doc, "visual")} == needed | set(ACME.aspects)
    # Clips: one per scene, as long as it.
    clips = by_role(doc, "clip")
    assert [c.scene for c in clips] == [s.n for s in doc.scenes]
    assert [c.length for c in clips] == [s.duration for s in doc.scenes]
    longest_video = max(d.length or 0 for d in spots if d.kind == "video")
    assert sum(s.duration for s in doc.scenes) == pytest.approx(longest_video)
    # 3 to 5 scenes; more only when the clip model (seedance: 12 s at most) needs them.
    least = max(3, math.ceil(longest_video / 12))
    assert least <= len(doc.scenes) <= max(5, least)
    assert all(c.parameters["duration"] == c.length <= 12 for c in clips)
    assert PlanDocument.model_validate(doc.model_dump()) == doc


def test_scene_purposes_follow_the_brief() -> None:
    doc = draft_plan(context(LEMONADE, planner="rules")).document
    purposes = [s.purpose for s in doc.scenes]
    assert purposes == [
        "hook",
        "message: real lemons",
        "message: no added sugar, never dark",
        "product",
        "call to action",
    ]
    assert "the can and the logo" in doc.scenes[3].prompt
    assert "young adults in cities" in doc.scenes[0].prompt and "Playful tone" in doc.scenes[0].prompt
    assert [s.duration for s in doc.scenes] == [6, 6, 6, 6, 6]
    # A brief without structured fields still gets a story: its sentences become the messages.
    bare = draft_plan(context(BARE, planner="rules"))
    assert [s.purpose for s in bare.document.scenes] == [
        "hook",
        "message: Everything is 20% off",
        "message: Ends Sunday",
        "call to action",
    ]
    assert bare.note is not None and "names no channel" in bare.note
    # A sentence set inside a prompt reads as one: its opening word lowered, a name kept.
    told = draft_plan(
        context(dataclasses.replace(BARE, text="A bright summer drink. Acme is back."), planner="rules")
    )
    prompts = [s.prompt for s in told.document.scenes]
    assert any("Scene showing a bright summer drink" in p for p in prompts), prompts
    assert any("Scene showing Acme is back" in p for p in prompts), prompts
    aims = draft_plan(context(dataclasses.replace(LEMONADE, objective="drive trial"), planner="rules"))
    visual = next(d for d in aims.document.deliverables if d.role == "visual")
    assert ". Drive trial." in visual.prompt, visual.prompt  # its own sentence, capitalised


def test_a_shorter_spot_keeps_the_hook_and_the_call_to_action() -> None:
    doc = draft_plan(context(LEMONADE, planner="rules")).document
    items = {d.id: d for d in doc.deliverables}
    reel = {d.length: d for d in by_role(doc, "spot") if d.channel == "instagram-reel"}
    full = [items[u].scene for u in reel[30.0].uses[:-1]]
    cut = [items[u].scene for u in reel[15.0].uses[:-1]]
    assert full == [1, 2, 3, 4, 5]
    assert cut == [1, 4, 5]  # hook, product, call to action: 18 s of picture, cut to 15
    assert reel[15.0].parameters["length"] == 15.0
    assert sum(items[u].length or 0 for u in reel[15.0].uses[:-1]) >= 15.0


def test_brand_words_are_in_and_avoid_words_out_of_every_prompt() -> None:
    doc = draft_plan(context(LEMONADE, ACME, planner="rules")).document
    prompts = every_prompt(doc)
    assert any(mentions(p, "dark") for p in [*LEMONADE.key_messages, LEMONADE.text])  # the brief says it
    for prompt in prompts:
        for word in ACME.avoid:
            assert not mentions(prompt, word), (word, prompt)
        assert "no dark" not in prompt.lower()
    for prompt in styled_prompts(doc):
        for word in ACME.style_keywords:
            assert mentions(prompt, word), (word, prompt)
    # A spot's prompt is its title (a composition's name), which the brand does not style.
    titles = {d.prompt for d in by_role(doc, "spot")}
    assert "Summer lemonade · youtube · 15 s" in titles and not any(mentions(t, "sunny") for t in titles)
    palette = [colour_name(c) for c in ACME.palette]
    for d in doc.deliverables:
        if d.kind in ("image", "video") and d.role != "spot":
            assert all(mentions(d.prompt, name) for name in palette), d.prompt
    for bed in by_role(doc, "music"):
        assert all(mentions(bed.prompt, w) for w in ("house", "uplifting")) and "110–128 bpm" in bed.prompt
        assert bed.parameters == {"duration": bed.length}  # meta/musicgen has no tempo input
    # Without a brand the prompts carry no brand words.
    plain = draft_plan(context(LEMONADE, planner="rules")).document
    assert not any(mentions(p, "sunny") for p in every_prompt(plain))


def test_the_same_brief_gives_the_same_plan() -> None:
    first = draft_plan(context(BROADCAST, ACME, planner="rules"))
    second = draft_plan(context(BROADCAST, ACME, planner="rules"))
    assert first == second
    assert json.dumps(first.document.model_dump()) == json.dumps(second.document.model_dump())
    other = draft_plan(context(LEMONADE, ACME, planner="rules"))
    assert other.document != first.document


def test_every_deliverable_is_priced_from_the_catalog() -> None:
    doc = draft_plan(context(LEMONADE, ACME, planner="rules")).document
    for d in doc.deliverables:
        if d.role == "spot":
            assert d.estimate_usd == 0  # composed here
            continue
        entry = CATALOG.get(str(d.model))
        assert entry is not None
        inputs = {entry.request_map.get(k, k): v for k, v in d.parameters.items()}
        assert d.estimate_usd == pytest.approx(entry.estimate_cost(inputs)) and d.estimate_usd > 0
    beds = {d.length: d for d in by_role(doc, "music")}
    assert beds[15.0].estimate_usd == pytest.approx(0.0023 * 15)  # meta/musicgen, per second
    clip = by_role(doc, "clip")[0]
    assert clip.model == "bytedance/seedance-1-lite" and clip.estimate_usd == pytest.approx(0.036 * 6)
    assert by_role(doc, "visual")[0].estimate_usd == pytest.approx(0.039)  # google/nano-banana, per run


def test_every_deliverable_is_a_valid_request_for_its_model() -> None:
    """What the run will send passes the catalog's own input validation."""
    for brief in (LEMONADE, BROADCAST, BARE):
        doc = draft_plan(context(brief, ACME, planner="rules")).document
        ids = {d.id: n for n, d in enumerate(doc.deliverables, start=1)}
        for d in doc.deliverables:
            entry = CATALOG.get(str(d.model))
            assert entry is not None and entry.kind == d.kind
            params = dict(d.parameters)
            if d.model == "post/compose":
                params["clips"] = [{"video_id": ids[u]} for u in d.uses[:-1]]
                params["music"] = {"audio_id": ids[d.uses[-1]]}
            elif d.model == "post/master":
                params["music"] = {"audio_id": ids[d.uses[0]]}
            CATALOG.build_inputs(entry, {"prompt": d.prompt}, params)
        assert checked(doc, CATALOG) == doc  # the plan editor's checks and prices agree


def test_models_are_the_defaults_and_never_unavailable() -> None:
    offline = draft_plan(
        context(LEMONADE, ACME, available=OFFLINE, defaults=OFFLINE_DEFAULT, planner="rules")
    ).document
    assert {d.model for d in offline.deliverables if d.role != "spot"} == {
        "synth/music",
        "synth/image",
        "synth/video",
    }
    assert all(d.estimate_usd == 0 for d in offline.deliverables)
    tempo = by_role(offline, "music")[0].parameters
    assert tempo["bpm"] == 119  # synth/music takes a tempo: the middle of the brand's range
    # A 45 s bed is longer than the default (meta/musicgen, 30 s at most) makes: another hosted
    # music model that can is chosen; a 15 s bed keeps the default.
    long = BriefFacts(id="b-long", title="Long", channels=("youtube",), lengths=(15.0, 45.0))
    beds = {d.length: d for d in by_role(draft_plan(context(long, planner="rules")).document, "music")}
    assert beds[15.0].model == "meta/musicgen"
    assert beds[45.0].model == "stackadoc/stable-audio-open-1.0"
    assert beds[45.0].parameters == {"duration": 45}
    assert beds[45.0].estimate_usd == pytest.approx(0.0023 * 45)
    # The default video model is not available here: a full model that makes 6 s clips from a
    # prompt is chosen over the offline draft; one that needs a start image (kling) never is.
    video = ["kwaivgi/kling-v2.1", "local/wan2.1-t2v-1.3b", "synth/video", "post/compose"]
    here = {**OFFLINE, "video": video}
    doc = draft_plan(context(LEMONADE, available=here, planner="rules")).document
    clips = by_role(doc, "clip")
    assert {d.model for d in clips} == {"local/wan2.1-t2v-1.3b"}
    assert {d.parameters["duration"] for d in clips} == {6}
    assert clips[0].parameters["width"] == 464 and clips[0].parameters["height"] == 832  # 9:16
    for d in doc.deliverables:
        assert d.model in here[d.kind]
    here = {**OFFLINE, "video": ["kwaivgi/kling-v2.1", "synth/video", "post/compose"]}
    doc = draft_plan(context(LEMONADE, available=here, planner="rules")).document
    assert {d.model for d in by_role(doc, "clip")} == {"synth/video"}


def test_what_cannot_be_made_is_left_out_with_a_note() -> None:
    no_video = {"audio": ["synth/music", "post/master"], "image": ["synth/image"], "video": []}
    drafted = draft_plan(context(BROADCAST, available=no_video, defaults=OFFLINE_DEFAULT, planner="rules"))
    doc = drafted.document
    assert not by_role(doc, "clip") and not by_role(doc, "spot", "video")
    assert {d.channel for d in by_role(doc, "spot")} == {"radio"}
    assert drafted.note is not None
    assert "no video model is available" in drafted.note and "tiktok takes at most 60 s" in drafted.note
    with pytest.raises(Unavailable):
        draft_plan(context(BROADCAST, available={}, defaults=OFFLINE_DEFAULT, planner="rules"))
    everything = BriefFacts(
        id="b-all", title="All", channels=tuple(CHANNELS), lengths=(6, 10, 15, 20, 30, 60, 90)
    )
    with pytest.raises(InvalidInput) as too_big:
        draft_plan(context(everything, planner="rules"))
    assert too_big.value.field == "channels" and "a plan holds at most 60" in str(too_big.value)
    unknown = BriefFacts(id="b-x", title="X", channels=("youtube", "cinema"), lengths=(10.0,))
    note = draft_plan(context(unknown, planner="rules")).note
    assert note is not None and "unknown channel 'cinema'" in note


@pytest.mark.parametrize("length", [6.0, 7.5, 15.0, 30.0, 60.0, 90.0, 300.0])
def test_scenes_always_add_up_to_the_longest_spot(length: float) -> None:
    brief = BriefFacts(id="b-len", title="T", key_messages=("a", "b", "c", "d"), lengths=(length,))
    doc = draft_plan(context(brief, planner="rules", available=OFFLINE, defaults=OFFLINE_DEFAULT)).document
    assert 3 <= len(doc.scenes) <= 5
    assert sum(s.duration for s in doc.scenes) == pytest.approx(length)
    assert all(0 < s.duration <= 60 for s in doc.scenes)


def test_split_and_cutdown_helpers() -> None:
    assert split_durations(30, 5) == [6, 6, 6, 6, 6]
    assert split_durations(16, 3) == [5, 6, 5]  # the spare second goes to the middle
    assert split_durations(7.5, 3) == [2.5, 2.5, 2.5]
    doc = draft_plan(context(LEMONADE, planner="rules")).document
    clips = [(s, f"c{s.n}", s.duration) for s in doc.scenes]
    assert [c[1] for c in cutdown(clips, 30)] == ["c1", "c2", "c3", "c4", "c5"]
    assert [c[1] for c in cutdown(clips, 12)] == ["c1", "c5"]
    assert [c[1] for c in cutdown(clips, 20)] == ["c1", "c2", "c4", "c5"]


def test_auto_without_a_token_uses_the_rules() -> None:
    drafted = draft_plan(context(LEMONADE, planner="auto"))
    assert drafted.planner == "rules" and drafted.note is None
