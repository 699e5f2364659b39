"""The LLM planner against the fake Replicate: its scenes and prompts when the answer is good, the
rule-based plan (with a note saying why) on any failure."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mediagen.campaigns.branding import mentions
from mediagen.kits.plan import PlanDocument
from mediagen.kits.planner_llm import first_json_object
from mediagen.kits.planning import Drafted, draft_plan
from tests.fakes.replicate_server import FakePrediction, FakeReplicate, Script
from tests.kits.planner_kit import ACME, LEMONADE, by_role, context, every_prompt, styled_prompts

pytestmark = pytest.mark.timeout(60)

LLM = "meta/meta-llama-3-8b-instruct"
CREATE_PATH = f"/v1/models/{LLM}/predictions"

GOOD = {
    "scenes": [
        {
            "purpose": "hook",
            "duration": 4,
            "prompt": "Golden-hour rooftop party, a hand cracks open an ice-cold can, fizz in slow motion",
        },
        {
            "purpose": "real lemons",
            "duration": 8,
            "prompt": "Macro shot of lemons sliced on a wooden board, juice spraying, dark shadows",
        },
        {
            "purpose": "product",
            "duration": 10,
            "prompt": "The can on a sunlit cafe table with the logo turned to camera, condensation beading",
        },
        {
            "purpose": "call to action",
            "duration": 8,
            "prompt": "Friends raise their cans in a toast on a city rooftop as the sun sets",
        },
    ],
    "music_prompt": "Funky disco house with slap bass and bright brass stabs",
    "visual_prompt": "A lemonade can bursting out of a splash of lemon slices on a sky-blue background",
}


def tokens(text: str, size: int = 7) -> list[str]:
    """A text model's streamed output: the answer in small pieces."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        assert server.models[LLM].official
        yield server


def answer(fake: FakeReplicate, text: str | Callable[[FakePrediction], Any], **script: Any) -> None:
    output = text if callable(text) else (lambda _p: tokens(text))
    fake.scripts[LLM] = Script(start_after=0.02, run_for=0.05, output=output, **script)


def draft(fake: FakeReplicate, **values: Any) -> Drafted:
    values.setdefault("planner", "llm")
    ctx = context(
        LEMONADE,
        ACME,
        REPLICATE_API_TOKEN=fake.token,
        replicate_base_url=fake.base_url,
        **values,
    )
    return draft_plan(ctx)


def rules_plan() -> PlanDocument:
    return draft_plan(context(LEMONADE, ACME, planner="rules")).document


def test_a_good_answer_writes_the_scenes_and_prompts(fake: FakeReplicate) -> None:
    answer(
        fake, "Sure! Here is the plan:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nEnjoy {not json}"
    )
    drafted = draft(fake)
    assert drafted.planner == "llm" and drafted.note is None
    doc = drafted.document
    assert PlanDocument.model_validate(doc.model_dump()) == doc
    assert [s.purpose for s in doc.scenes] == ["hook", "real lemons", "product", "call to action"]
    assert "Golden-hour rooftop party" in doc.scenes[0].prompt
    assert [s.duration for s in doc.scenes] == [4, 8, 10, 8]  # they add up to the 30 s spot
    clips = by_role(doc, "clip")
    assert [c.prompt for c in clips] == [s.prompt for s in doc.scenes]
    assert [c.parameters["duration"] for c in clips] == [4, 8, 10, 8]
    assert all("Funky disco house" in m.prompt for m in by_role(doc, "music"))
    assert all("bursting out of a splash" in v.prompt for v in by_role(doc, "visual"))
    # The brand is enforced on what the model wrote: avoid-words out, style words in.
    for prompt in every_prompt(doc):
        assert not any(mentions(prompt, w) for w in ACME.avoid), prompt
    for prompt in styled_prompts(doc):
        assert all(mentions(prompt, w) for w in ACME.style_keywords), prompt

    # The skeleton is the rule planner's: the same deliverables, models, channels and lengths
    # (a clip per scene: 4 here, where the rules drew 5).
    def skeleton(plan: PlanDocument) -> list[tuple[Any, ...]]:
        return [
            (d.role, d.kind, d.model, d.channel, d.aspect, d.length)
            for d in plan.deliverables
            if d.role != "clip"
        ]

    assert skeleton(doc) == skeleton(rules_plan())
    assert len(clips) == 4 and len(by_role(rules_plan(), "clip")) == 5
    assert all(d.estimate_usd > 0 for d in doc.deliverables if d.role != "spot")
    items = {d.id: d for d in doc.deliverables}
    short = next(d for d in by_role(doc, "spot") if d.channel == "youtube" and d.length == 15)
    assert [items[u].scene for u in short.uses[:-1]] == [1, 3, 4]  # hook, product, call to action
    # One prediction of the official model, waited for, with the brief and the brand in it.
    (create,) = fake.requests_to("POST", CREATE_PATH)
    assert create.headers["prefer"].startswith("wait=")
    sent = create.json["input"]
    assert "JSON" in sent["system_prompt"]
    for fact in ("Summer lemonade", "young adults in cities", "real lemons", "instagram-reel", "gloomy"):
        assert fact in sent["prompt"]
    assert "30 seconds" in sent["prompt"]


def test_the_model_is_a_setting(fake: FakeReplicate) -> None:
    answer(fake, json.dumps(GOOD))
    drafted = draft(fake, planner="auto", planner_model=LLM)  # auto: a token is set
    assert drafted.planner == "llm"
    other = draft(fake, planner_model="meta/no-such-model")
    assert other.planner == "rules"
    assert other.note is not None and "meta/no-such-model" in other.note and "404" in other.note


def assert_fell_back(drafted: Drafted, *reasons: str) -> None:
    assert drafted.planner == "rules"
    assert drafted.note is not None and drafted.note.startswith(f"LLM planner ({LLM}) fell back to the rules")
    for reason in reasons:
        assert reason in drafted.note, drafted.note
    assert drafted.document == rules_plan()


def test_an_answer_that_is_not_json_falls_back(fake: FakeReplicate) -> None:
    answer(fake, "I would open on a rooftop {party} and end with the can.")
    assert_fell_back(draft(fake), "holds no JSON object")


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"scenes": "a rooftop"}, "does not match the schema (scenes"),
        ({"scenes": [{"purpose": "hook"}] * 4}, "does not match the schema (scenes.0.prompt"),
        ({"storyboard": GOOD["scenes"]}, "does not match the schema (scenes: Field required"),
        ({**GOOD, "scenes": GOOD["scenes"][:2]}, "the model wrote 2 scenes; the spot needs 3 to 5"),
        (
            {**GOOD, "scenes": [*GOOD["scenes"][:3], {"purpose": "x", "prompt": "Dark, gloomy."}]},
            "scenes.3.prompt holds nothing but words the brand avoids",
        ),
    ],
    ids=["not-a-list", "no-prompt", "no-scenes", "too-few", "only-avoid-words"],
)
def test_an_answer_that_does_not_match_the_schema_falls_back(
    fake: FakeReplicate, plan: dict[str, Any], reason: str
) -> None:
    answer(fake, json.dumps(plan))
    assert_fell_back(draft(fake), reason)


def test_a_failed_prediction_falls_back(fake: FakeReplicate) -> None:
    answer(fake, json.dumps(GOOD), status="failed", error="CUDA out of memory")
    assert_fell_back(draft(fake), "prediction failed: CUDA out of memory")


def test_a_refused_create_falls_back(fake: FakeReplicate) -> None:
    answer(fake, json.dumps(GOOD))
    fake.fail_next_create(402)
    assert_fell_back(draft(fake), "no credit (402)")
    fake.fail_next_create(500)
    assert_fell_back(draft(fake), "server error (500)")
    assert len(fake.predictions) == 0  # never retried blind: nothing was made


def test_a_slow_model_is_canceled_at_the_deadline(fake: FakeReplicate) -> None:
    answer(fake, json.dumps(GOOD))
    fake.scripts[LLM].run_for = 120
    started = time.monotonic()
    drafted = draft(fake, planner_timeout_seconds=1.5)
    assert time.monotonic() - started < 8
    assert_fell_back(drafted, f"{LLM} did not answer within 1.5 s")
    (prediction,) = fake.predictions.values()
    fake.wait_for(lambda: prediction.status == "canceled")
    (create,) = fake.requests_to("POST", CREATE_PATH)
    assert create.headers["cancel-after"] == "5s"


def test_a_create_held_past_the_deadline_falls_back(fake: FakeReplicate) -> None:
    answer(fake, json.dumps(GOOD))
    fake.slow_next_create(6.0)
    started = time.monotonic()
    drafted = draft(fake, planner_timeout_seconds=1)
    assert time.monotonic() - started < 5
    assert_fell_back(drafted, f"{LLM} did not answer within 1 s")


def test_no_token_means_no_llm(fake: FakeReplicate) -> None:
    drafted = draft_plan(context(LEMONADE, ACME, planner="llm"))
    assert drafted.planner == "rules"
    assert drafted.note == "LLM planner not used: no Replicate token is set"
    assert not fake.requests


def test_durations_are_scaled_to_the_spot(fake: FakeReplicate) -> None:
    halves = {**GOOD, "scenes": [{**s, "duration": s["duration"] / 2} for s in GOOD["scenes"]]}
    answer(fake, json.dumps(halves))
    assert [s.duration for s in draft(fake).document.scenes] == [4, 8, 10, 8]
    odd = {
        **GOOD,
        "scenes": [{**s, "duration": d} for s, d in zip(GOOD["scenes"], [3, 3, 3, 4], strict=True)],
    }
    answer(fake, json.dumps(odd))
    assert [s.duration for s in draft(fake).document.scenes] == [7, 7, 7, 9]  # whole seconds, 30 in all
    # No durations (nor music or visual prompts): an even split, and the rules' music and visuals.
    bare = {"scenes": [{k: v for k, v in s.items() if k != "duration"} for s in GOOD["scenes"]]}
    answer(fake, json.dumps(bare))
    doc = draft(fake).document
    assert [s.duration for s in doc.scenes] == [7, 8, 8, 7]
    rules = rules_plan()
    assert [d.prompt for d in by_role(doc, "music")] == [d.prompt for d in by_role(rules, "music")]
    assert [d.prompt for d in by_role(doc, "visual")] == [d.prompt for d in by_role(rules, "visual")]


def test_the_first_json_object_is_found() -> None:
    assert first_json_object('x {"a": "}{"} y {"b": 1}') == {"a": "}{"}
    assert first_json_object('{broken {"a": {"b": [1, 2]}} tail') == {"a": {"b": [1, 2]}}
    assert first_json_object('```json\n{"scenes": []}\n```') == {"scenes": []}
