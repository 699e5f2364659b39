"""A client's brand on every generation filed under it: the words it adds and takes out, the prompt
the model really gets (the synth's own reading of it, and what the fake Replicate was sent), the
negative prompt where a model has one, `brand: false`, and the asset's JSON and page showing both
prompts."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from mediagen.auth.service import Principal
from mediagen.campaigns.branding import apply_brand, colour_name, merge_negative
from mediagen.campaigns.schemas import Brand
from mediagen.campaigns.tables import Client
from mediagen.errors import InvalidInput
from mediagen.generations.presenters import asset_json
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind, Status
from tests.conftest import LiveServer
from tests.generations.conftest import RUN_FOR, Hosted, reread
from tests.test_cli import mediagen
from tests.web.page_kit import PASSWORD, page_world
from tests.web.test_pages import csrf_of

ACME = {
    "palette": ["#ff6600", "#001f5b"],
    "style_keywords": ["bold", "sunny"],
    "avoid": ["dark", "low light"],
    "music": {"genres": ["house"], "moods": ["uplifting"], "bpm": [110, 128]},
}
STABLE_AUDIO = "stackadoc/stable-audio-open-1.0"  # has a negative prompt input
MUSICGEN = "meta/musicgen"  # has none


def set_brand(services: Services, client_id: str, brand: dict[str, Any] | None) -> None:
    with services.db.write() as s:
        row = s.get(Client, client_id)
        assert row is not None
        row.brand = Brand.model_validate(brand).model_dump(mode="json") if brand is not None else None


def said(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


# -- the words ----------------------------------------------------------------------------------


def test_audio_gets_style_genres_moods_and_tempo_and_loses_the_words_to_avoid() -> None:
    out = apply_brand(
        Brand.model_validate(ACME), "A Dark, moody piano at dawn", "audio", negative_input=False
    )
    assert out.prompt_sent == "A moody piano at dawn, house, uplifting, 110–128 bpm, bold, sunny style"
    assert out.negative_prompt is None
    assert out.applied == ["house, uplifting", "110–128 bpm", "bold, sunny style", "left out: dark"]


def test_images_and_videos_get_the_palette_as_colour_words_not_hex() -> None:
    brand = Brand.model_validate(ACME)
    for kind in ("image", "video"):
        out = apply_brand(brand, "a beach in low  light", kind, negative_input=True)
        assert out.prompt_sent == "a beach in, bold, sunny style, orange and navy colour palette"
        assert "#" not in out.prompt_sent and "bpm" not in out.prompt_sent
        assert out.negative_prompt == "dark, low light"
        assert "negative prompt: dark, low light" in out.applied
    assert (colour_name("#ff6600"), colour_name("#001f5b"), colour_name("#fafafa")) == (
        "orange",
        "navy",
        "white",
    )


def test_nothing_already_said_is_added_again_and_a_tempo_given_wins() -> None:
    out = apply_brand(
        Brand.model_validate(ACME), "Uplifting HOUSE groove at 122 bpm, Bold", "audio", negative_input=False
    )
    assert out.prompt_sent == "Uplifting HOUSE groove at 122 bpm, Bold, sunny style"
    assert out.applied == ["sunny style"]


def test_avoid_words_go_as_whole_words_and_never_as_no_x() -> None:
    brand = Brand.model_validate({**ACME, "avoid": ["dark", "neon"]})
    out = apply_brand(brand, "darkness falls, Dark neon; DARK city", "image", negative_input=False)
    assert not said(out.prompt_sent, "dark") and not said(out.prompt_sent, "neon")
    assert "darkness falls" in out.prompt_sent  # another word that starts alike stays
    assert not re.search(r"\bno\b|\bwithout\b", out.prompt_sent)
    # A colour whose name holds a word to avoid is given by its code instead.
    dark = apply_brand(
        Brand.model_validate({"palette": ["#00008b"], "avoid": ["navy"]}),
        "sea",
        "image",
        negative_input=False,
    )
    assert dark.prompt_sent == "sea, #00008b colour palette"


def test_an_article_agrees_with_the_word_that_follows_a_removed_one() -> None:
    brand = Brand.model_validate({"avoid": ["dark", "red"]})

    def sent(prompt: str) -> str:
        return apply_brand(brand, prompt, "image", negative_input=False).prompt_sent

    assert sent("a dark alley") == "an alley"
    assert sent("An dark, moody evening") == "A moody evening"
    assert sent("a red door by a dark, calm sea") == "a door by a calm sea"
    assert sent("a unicorn in an old red barn") == "a unicorn in an old barn"  # untouched articles stay


def test_the_same_brand_and_prompt_always_give_the_same_text() -> None:
    brand = Brand.model_validate(ACME)
    first, *more = [apply_brand(brand, "a calm sea at dusk", "video", negative_input=True) for _ in range(3)]
    assert all(run == first for run in more)
    assert merge_negative("blurry, Dark", "dark, low light") == "blurry, Dark, low light"
    assert merge_negative(merge_negative(None, "dark"), "dark") == "dark"


def test_a_prompt_only_of_words_to_avoid_keeps_the_brand_words() -> None:
    brand = Brand.model_validate({"avoid": ["dark"]})
    assert apply_brand(brand, "dark", "image", negative_input=False).prompt_sent == ""


# -- through the service, with the real synth engine ---------------------------------------------


def test_a_branded_track_sends_the_branded_prompt_and_the_synth_plays_it(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    set_brand(services, "acme", ACME)
    row, _ = services.generations.create(
        admin, "audio", GenerateRequest(prompt="a dark calm piano loop", duration=2, campaign_id="spring")
    )
    assert row.prompt == "a dark calm piano loop"  # as typed
    assert row.prompt_sent == "a calm piano loop, house, uplifting, 110–128 bpm, bold, sunny style"
    assert row.parameters["prompt"] == row.prompt_sent  # what the engine is given
    assert "negative_prompt" not in row.parameters  # the synth has none: the words are just left out
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    # The synth read the sent prompt: the brand's genre (house is its "edm" style) and a tempo
    # from the brand's range.
    assert done.meta["genre"] == "edm" and done.meta["bpm"] == 128

    shown = asset_json(done, KINDS[Kind.AUDIO])
    assert shown["prompt"] == "a dark calm piano loop"
    assert shown["prompt_sent"] == done.prompt_sent
    assert shown["brand_applied"] == [
        "house, uplifting",
        "110–128 bpm",
        "bold, sunny style",
        "left out: dark",
    ]


def test_brand_false_sends_the_prompt_as_typed_and_a_retry_keeps_it_off(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    set_brand(services, "acme", ACME)
    row, _ = services.generations.create(
        admin, "image", GenerateRequest(prompt="a dark alley", client_id="acme", brand=False)
    )
    assert row.prompt_sent is None and row.parameters["prompt"] == "a dark alley"
    shown = asset_json(row, KINDS[Kind.IMAGE])
    assert shown["prompt_sent"] == "a dark alley" and shown["brand_applied"] == []
    again = services.generations.retry(admin, "image", row.id)
    assert again.prompt_sent is None and again.parameters["prompt"] == "a dark alley"

    branded, _ = services.generations.create(
        admin, "image", GenerateRequest(prompt="a dark alley", client_id="acme")
    )
    assert branded.prompt_sent == "an alley, bold, sunny style, orange and navy colour palette"
    retried = services.generations.retry(admin, "image", branded.id)
    assert (retried.prompt, retried.prompt_sent) == (branded.prompt, branded.prompt_sent)


def test_no_client_or_no_brand_changes_nothing(services: Services, admin: Principal) -> None:
    set_brand(services, "acme", ACME)
    loose, _ = services.generations.create(admin, "image", GenerateRequest(prompt="a dark alley"))
    plain, _ = services.generations.create(
        admin, "image", GenerateRequest(prompt="a dark alley", client_id="globex")
    )
    for row in (loose, plain):
        assert row.prompt_sent is None and row.parameters["prompt"] == "a dark alley"
        assert "brand_applied" not in row.meta


def test_a_prompt_the_brand_takes_over_the_limit_is_refused_naming_prompt(
    services: Services, admin: Principal
) -> None:
    set_brand(services, "acme", {"style_keywords": [f"word{i:02d}" + "x" * 50 for i in range(20)]})
    with pytest.raises(InvalidInput) as refused:
        services.generations.create(admin, "image", GenerateRequest(prompt="p" * 1990, client_id="acme"))
    assert refused.value.field == "prompt" and "brand" in refused.value.message
    assert "brand: false" in refused.value.message
    ok, _ = services.generations.create(
        admin, "image", GenerateRequest(prompt="p" * 1990, client_id="acme", brand=False)
    )
    assert ok.prompt_sent is None


def test_a_prompt_made_only_of_words_to_avoid_is_refused(services: Services, admin: Principal) -> None:
    set_brand(services, "acme", {"avoid": ["dark"]})
    with pytest.raises(InvalidInput) as refused:
        services.generations.create(admin, "image", GenerateRequest(prompt="Dark", client_id="acme"))
    assert refused.value.field == "prompt" and "avoid" in refused.value.message


def test_a_composition_title_is_not_branded(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    set_brand(services, "acme", ACME)
    track, _ = services.generations.create(
        admin, "audio", GenerateRequest(prompt="bed", duration=1, brand=False)
    )
    queue.drain(services.pipeline)
    req = GenerateRequest(
        prompt="Dark master",
        model="post/master",
        client_id="acme",
        parameters={"music": {"audio_id": track.id}, "length": 1},
    )
    master, _ = services.generations.create(admin, "audio", req)
    assert master.prompt_sent is None and master.parameters["prompt"] == "Dark master"


def test_a_prompt_may_be_left_out_only_with_a_brief() -> None:
    with pytest.raises(ValidationError) as missing:
        GenerateRequest()
    (error,) = missing.value.errors()
    assert error["loc"] == ("prompt",) and "brief_id" in error["msg"]
    assert GenerateRequest(brief_id="b1").prompt is None
    with pytest.raises(ValidationError):
        GenerateRequest(prompt="")


# -- hosted models: what Replicate is sent ---------------------------------------------------------


@pytest.mark.timeout(60)
def test_avoid_words_are_the_negative_prompt_where_the_model_has_one(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    set_brand(services, "acme", ACME)
    req = GenerateRequest(
        prompt="dark ambient pad",
        model=STABLE_AUDIO,
        client_id="acme",
        parameters={"negative_prompt": "hiss"},
    )
    row, _ = services.generations.create(hosted.admin, "audio", req)
    (sent,) = fake.create_requests
    given = sent.json["input"]
    assert given["prompt"] == "ambient pad, house, uplifting, 110–128 bpm, bold, sunny style"
    assert given["negative_prompt"] == "hiss, dark, low light"  # the caller's own words first
    assert row.prompt == "dark ambient pad" and row.prompt_sent == given["prompt"]
    assert "negative prompt: dark, low light" in row.meta["brand_applied"]


@pytest.mark.timeout(60)
def test_a_model_without_a_negative_prompt_gets_the_words_left_out(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    set_brand(services, "acme", ACME)
    req = GenerateRequest(prompt="Dark techno in low light", model=MUSICGEN, client_id="acme", duration=4)
    row, _ = services.generations.create(hosted.admin, "audio", req)
    (sent,) = fake.create_requests
    given = sent.json["input"]
    assert "negative_prompt" not in given
    assert not said(given["prompt"], "dark") and not said(given["prompt"], "low light")
    assert not re.search(r"\bno\b", given["prompt"])
    assert given["prompt"].startswith("techno in, house, uplifting")
    fake.advance(RUN_FOR + 1)
    services.pipeline.refresh(row.id)
    hosted.queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED and done.prompt_sent == given["prompt"]


# -- the asset page --------------------------------------------------------------------------------


def test_the_asset_page_shows_the_brand_beside_the_typed_prompt(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    world = page_world(tmp_path_factory, "branding-page", limited=False)
    services, admin = world.services, world.admin
    try:
        set_brand(services, "acme", ACME)
        row, _ = services.generations.create(
            admin, "image", GenerateRequest(prompt="dark dunes", client_id="acme")
        )
        off, _ = services.generations.create(
            admin, "image", GenerateRequest(prompt="dark dunes", client_id="acme", brand=False)
        )
        with TestClient(world.app, base_url="http://testserver") as c:
            token = csrf_of(c.get("/login").text)
            c.post("/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token})
            page = c.get(f"/assets/image/{row.id}").text
            plain = c.get(f"/assets/image/{off.id}").text
        head = page[page.index('class="asset-prompt"') : page.index('class="status-line"')]
        assert ">dark dunes</h1>" in head
        assert (
            "Brand applied:" in head and "orange and navy colour palette" in head and "left out: dark" in head
        )
        assert (
            '<q data-field="prompt_sent">dunes, bold, sunny style, orange and navy colour palette</q>' in head
        )
        plain_head = plain[plain.index('class="asset-prompt"') : plain.index('class="status-line"')]
        assert "Brand applied" not in plain_head and "brand was turned off" in plain_head
    finally:
        services.db.dispose()


# -- the command line ------------------------------------------------------------------------------


def test_the_cli_sends_no_brand_and_override_budget(live_server: LiveServer, tmp_path: Path) -> None:
    env = {"MEDIAGEN_API_URL": live_server.url, "MEDIAGEN_API_KEY": live_server.admin_key or ""}
    with live_server.client() as api:
        assert api.post("/api/clients", json={"id": "brandco", "name": "Brand Co"}).status_code == 201
    # The brand straight into the server's database, as the client API stores it.
    db = sqlite3.connect(live_server.data_dir / "mediagen.db")
    try:
        db.execute("UPDATE clients SET brand = ? WHERE id = 'brandco'", (json.dumps(ACME),))
        db.commit()
    finally:
        db.close()
    ids = {}
    for name, flags in (("off", ["--no-brand"]), ("on", ["--override-budget"])):
        out = mediagen("generate", "image", "a dark alley", "--client", "brandco", *flags, "--no-wait",
                       cwd=tmp_path, env=env)  # fmt: skip
        assert out.returncode == 0, out.stderr
        ids[name] = int(out.stdout.split()[0])
    with live_server.client() as api:
        off = api.get(f"/api/images/{ids['off']}").json()
        on = api.get(f"/api/images/{ids['on']}").json()
    assert off["prompt_sent"] == "a dark alley" and off["brand_applied"] == []
    assert on["prompt"] == "a dark alley"
    assert on["prompt_sent"] == "an alley, bold, sunny style, orange and navy colour palette"
