"""Models added from Replicate, in-process against the fake Replicate: what a model's schema and
example make of it (kind, request map, media inputs, defaults, refusals with their reason), the
catalog of another process seeing an addition and a removal, a generation through the pipeline
on the pinned version or the official endpoint, and `models sync` refreshing an added model."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagen.auth.service import Principal
from mediagen.catalog.added import AddedModels
from mediagen.catalog.browse import ModelBrowser
from mediagen.catalog.hardware import LIST_PRICES
from mediagen.catalog.inference import Unsupported, build_entry, infer_kind, kind_of_url
from mediagen.catalog.registry import Catalog, ModelEntry
from mediagen.catalog.sync import sync_models
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services, build_services
from mediagen.vocabulary import Status
from tests.conftest import free_port
from tests.fakes.replicate_server import LLM_MODEL, FakeModel, FakeReplicate, Script
from tests.generations.conftest import make_seeded_services, reread

pytestmark = pytest.mark.timeout(90)

ACE = "lucataco/ace-step"  # community: tags as its prompt, a $ref enum, an audio input
SDXL = "bytedance/sdxl-lightning-4step"  # community image, list output
GPT_IMAGE = "openai/gpt-image-1"  # official, with a secret input
HAILUO = "minimax/video-01"  # official video with a first-frame image input
WHISPER = "openai/whisper"  # speech to text: structured output, no files
QUICK = Script(start_after=0.0, run_for=0.05)
A100 = LIST_PRICES["gpu-a100-large"][1]


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


def services_on(
    fake: FakeReplicate, data_dir: Path, **settings: Any
) -> tuple[Services, MemoryJobQueue, Principal]:
    return make_seeded_services(
        data_dir,
        replicate_api_token=fake.token,
        replicate_base_url=fake.base_url,
        download_allowed_hosts=[fake.delivery_allow_entry],
        **settings,
    )


@pytest.fixture
def world(fake: FakeReplicate, tmp_path: Path) -> Iterator[tuple[Services, MemoryJobQueue, Principal]]:
    made = services_on(fake, tmp_path / "data")
    yield made
    made[0].close()


def model_and_version(fake: FakeReplicate, model_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}) as c:
        model = c.get(f"/models/{model_id}").json()
    return model, model["latest_version"]


# -- what a schema and an example make of a model ----------------------------------------------------


def test_a_community_music_model_becomes_an_entry_the_form_and_pipeline_can_use(fake: FakeReplicate) -> None:
    model, version = model_and_version(fake, ACE)
    entry = build_entry(model, version, requested_version=None).entry
    assert entry["kind"] == "audio" and entry["engine"] == "replicate"
    assert entry["official"] is False and entry["version"] == fake.models[ACE].versions[0]  # pinned
    props = entry["input_schema"]["properties"]
    assert list(props) == ["tags", "lyrics", "duration", "scheduler", "reference_audio", "seed"]  # x-order
    assert props["scheduler"]["enum"] == ["euler", "heun", "pingpong"]  # the allOf $ref, resolved
    assert "allOf" not in props["scheduler"]
    assert entry["input_schema"]["additionalProperties"] is False
    # Our prompt fills its tags; an audio asset id or URL its reference audio.
    assert entry["request_map"] == {
        "prompt": "tags",
        "audio_id": "reference_audio",
        "input_audio": "reference_audio",
    }
    assert entry["media_inputs"] == {"reference_audio": "audio"}
    assert props["reference_audio"]["type"] == ["string", "integer", "null"]
    # Upstream defaults are pinned, except the prompt's, the seed's and a media input's.
    assert entry["defaults"] == {"lyrics": "[inst]", "duration": 60, "scheduler": "euler"}
    assert entry["source"]["example"]["files"] == [fake.example_url(fake.models[ACE])]
    assert props["scheduler"]["title"] == "Scheduler"  # upstream gave the enum a title, not the input
    # No price from Replicate's API: its example's 4 s at A100 prices, marked as such.
    assert entry["price"]["usd"] == pytest.approx(4.0 * A100) and entry["price"]["basis"] == "example"
    ModelEntry(**{k: v for k, v in entry.items() if k != "source"})  # a valid catalog entry


def test_an_official_model_runs_by_its_endpoint_and_loses_its_secret_input(fake: FakeReplicate) -> None:
    model, version = model_and_version(fake, GPT_IMAGE)
    built = build_entry(model, version, requested_version=None)
    assert (
        built.entry["kind"] == "image" and built.entry["official"] is True and built.entry["version"] is None
    )
    assert "openai_api_key" not in built.entry["input_schema"]["properties"]
    assert built.notes == ["secret input openai_api_key left out"]
    assert built.entry["input_schema"]["properties"]["aspect_ratio"]["enum"] == ["1:1", "3:2", "2:3"]
    # Asking for a version pins it, official or not (the version endpoint runs exactly it).
    pinned = build_entry(model, version, requested_version=version["id"]).entry
    assert pinned["official"] is False and pinned["version"] == version["id"]


def test_a_video_model_maps_the_start_image(fake: FakeReplicate) -> None:
    model, version = model_and_version(fake, HAILUO)
    entry = build_entry(model, version, requested_version=None).entry
    assert entry["kind"] == "video"
    # A URI input named like a kind of media takes an asset too; one that is not stays a URL.
    assert entry["media_inputs"] == {"first_frame_image": "image"}
    assert entry["input_schema"]["properties"]["subject_reference"]["type"] == "string"
    assert entry["request_map"] == {"image": "first_frame_image", "image_id": "first_frame_image"}


@pytest.mark.parametrize(
    ("model_id", "reason"),
    [
        (LLM_MODEL, "makes text (its output is a list of strings streamed token by token)"),
        (WHISPER, "makes structured data without files"),
    ],
)
def test_models_that_make_no_media_are_refused_saying_why(
    fake: FakeReplicate, model_id: str, reason: str
) -> None:
    model, version = model_and_version(fake, model_id)
    with pytest.raises(Unsupported, match=re.escape(reason)):
        build_entry(model, version, requested_version=None)
    with pytest.raises(Unsupported, match=re.escape(reason)):  # a kind given does not make text a video
        build_entry(model, version, requested_version=None, kind="video")


def test_a_required_secret_or_no_prompt_is_refused(fake: FakeReplicate) -> None:
    model, version = model_and_version(fake, GPT_IMAGE)
    secretive = copy.deepcopy(version)
    secretive["openapi_schema"]["components"]["schemas"]["Input"]["required"].append("openai_api_key")
    with pytest.raises(Unsupported, match="secret input openai_api_key"):
        build_entry(model, secretive, requested_version=None)
    promptless = copy.deepcopy(version)
    del promptless["openapi_schema"]["components"]["schemas"]["Input"]["properties"]["prompt"]
    with pytest.raises(Unsupported, match="takes no text prompt"):
        build_entry(model, promptless, requested_version=None)


def test_the_kind_comes_from_the_example_files() -> None:
    uri = {"type": "string", "format": "uri"}
    assert infer_kind(uri, "https://replicate.delivery/x/out.MP3?sig=1", "a/b").kind == "audio"
    assert infer_kind(uri, "data:video/mp4;base64,AAAA", "a/b").kind == "video"
    listed = infer_kind({"type": "array", "items": uri}, ["https://h/1.webp", "https://h/2.webp"], "a/b")
    assert (listed.kind, listed.main_key) == ("image", None)
    # An object with a track and its spectrogram: the track is the asset.
    obj = {"type": "object", "properties": {"spectrogram": uri, "audio": uri}}
    both = infer_kind(obj, {"spectrogram": "https://h/s.png", "audio": "https://h/a.wav"}, "a/b")
    assert (both.kind, both.main_key) == ("audio", "audio")
    # No example: a file key named like a kind still tells; a bare URI does not.
    assert infer_kind({"type": "object", "properties": {"video": uri}}, None, "a/b").kind == "video"
    unknown = infer_kind(uri, None, "a/b")
    assert unknown.kind is None and unknown.files and "give kind" in (unknown.why or "")
    assert kind_of_url("https://h/file") is None and kind_of_url("https://h/a.tar.gz") is None


def test_a_kind_given_stands_only_where_the_example_does_not_tell(fake: FakeReplicate) -> None:
    fake.models[SDXL].example_output = None  # no example: a list of URIs of unknown kind
    model, version = model_and_version(fake, SDXL)
    with pytest.raises(Unsupported, match="cannot tell"):
        build_entry(model, version, requested_version=None)
    assert build_entry(model, version, requested_version=None, kind="image").entry["kind"] == "image"


# -- adding, removing, and every process seeing it ---------------------------------------------------


def test_add_then_another_process_sees_it_and_the_removal(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal], tmp_path: Path
) -> None:
    services, _queue, admin = world
    # A second process on the same database: its own catalog, already warmed up (cached).
    second = build_services(services.settings.model_copy(), queue=MemoryJobQueue())
    try:
        assert second.catalog.get(ACE) is None and ACE not in {e.id for e in second.catalog.list("audio")}
        entry = services.model_browser.add(admin, ACE)
        assert entry.id == ACE and entry.kind == "audio"
        # A miss re-reads at once: the other process can run it the moment it is added.
        seen = second.catalog.get(ACE)
        assert seen is not None and seen.version == fake.models[ACE].versions[0]
        assert ACE in {m.id for m in second.router.models("audio")}
        assert second.router.describe(ACE).available
        services.model_browser.remove(admin, ACE)
        second.catalog.added(fresh=True)  # what the next check (at most a second on) reads
        assert second.catalog.get(ACE) is None and ACE not in {m.id for m in second.router.models()}
    finally:
        second.close()


def test_the_catalog_checks_its_source_at_most_once_per_ttl() -> None:
    class Source:
        def __init__(self) -> None:
            self.stamps = 0
            self.loads = 0
            self.version = 1

        def stamp(self) -> object:
            self.stamps += 1
            return self.version

        def load(self) -> list[ModelEntry]:
            self.loads += 1
            base = Catalog.load().get("meta/musicgen")
            assert base is not None
            return [ModelEntry(**{**base.__dict__, "id": f"added/m{self.version}"})]

    now = [0.0]
    source = Source()
    catalog = Catalog(Catalog.load().list(), added=source, added_ttl_s=1.0, clock=lambda: now[0])
    assert catalog.get("added/m1") is not None and (source.stamps, source.loads) == (1, 1)
    for _ in range(5):
        catalog.list("audio")
    assert source.stamps == 1  # within the TTL: no query
    source.version = 2
    now[0] = 1.5
    assert catalog.get("added/m2") is not None and catalog.get("added/m1") is None
    assert source.loads == 2
    assert catalog.get("meta/musicgen") is not None and source.stamps == 3  # built-ins: no query; m1 miss: 1


def test_refusals(fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]) -> None:
    services, _queue, admin = world
    browser = services.model_browser
    with pytest.raises(Conflict, match="built in"):
        browser.add(admin, "meta/musicgen")
    with pytest.raises(InvalidInput) as unknown:
        browser.add(admin, "nobody/nothing")
    assert unknown.value.field == "model" and "no public model" in unknown.value.message
    with pytest.raises(InvalidInput) as text:
        browser.add(admin, LLM_MODEL)
    assert text.value.field == "model" and "makes text" in text.value.message
    with pytest.raises(InvalidInput) as version:
        browser.add(admin, ACE, version="0" * 64)
    assert version.value.field == "version"
    member = Principal(user_id="u1", email="m@example.com", role="member", clients=None)
    limited = Principal(user_id="u2", email="l@example.com", role="admin", clients=frozenset({"acme"}))
    for who in (member, limited):
        with pytest.raises(Forbidden):
            browser.add(who, ACE)
    browser.add(admin, ACE)
    with pytest.raises(Conflict, match="already in the catalog"):
        browser.add(admin, ACE)
    with pytest.raises(Forbidden):
        browser.remove(member, ACE)
    with pytest.raises(Conflict, match="built in"):
        browser.remove(admin, "meta/musicgen")
    browser.remove(admin, ACE)
    with pytest.raises(NotFound):
        browser.remove(admin, ACE)
    assert len(fake.create_requests) == 0  # nothing was run on the way


def test_without_a_token_the_browser_says_what_to_set(tmp_path: Path) -> None:
    services, _queue, admin = make_seeded_services(tmp_path / "data")
    try:
        for call in (
            lambda: services.model_browser.search("music"),
            lambda: services.model_browser.add(admin, ACE),
        ):
            with pytest.raises(Unavailable, match="REPLICATE_API_TOKEN"):
                call()
    finally:
        services.close()


# -- generating with an added model ------------------------------------------------------------------


def finish(services: Services, queue: MemoryJobQueue, fake: FakeReplicate, gen_id: int) -> None:
    fake.wait_for(lambda: all(p.status == "succeeded" for p in fake.predictions.values()), timeout=10)
    services.pipeline.refresh(gen_id)
    queue.drain(services.pipeline)


def test_an_added_community_model_generates_on_its_pinned_version(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]
) -> None:
    services, queue, admin = world
    fake.scripts[ACE] = QUICK
    services.model_browser.add(admin, ACE)
    req = GenerateRequest(prompt="lofi piano, rain", model=ACE, duration=20, seed=7)
    row, created = services.generations.create(admin, "audio", req)
    assert created and row.model_id == ACE and row.engine == "replicate"
    assert row.cost_usd == pytest.approx(4.0 * A100)  # the estimate from its example run
    (create,) = fake.create_requests
    assert create.path == "/v1/predictions"
    assert create.json["version"] == fake.models[ACE].versions[0]
    sent = create.json["input"]
    assert sent["tags"] == "lofi piano, rain" and sent["duration"] == 20 and sent["seed"] == 7
    assert sent["scheduler"] == "euler" and sent["lyrics"] == "[inst]"  # pinned defaults
    finish(services, queue, fake, row.id)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    # The same validation as a built-in model: its own limits, unknown inputs named.
    with pytest.raises(InvalidInput) as too_long:
        services.generations.create(admin, "audio", GenerateRequest(prompt="x", model=ACE, duration=999))
    assert too_long.value.field == "duration" and "240" in too_long.value.message
    with pytest.raises(InvalidInput) as unknown:
        services.generations.create(
            admin, "audio", GenerateRequest(prompt="x", model=ACE, parameters={"steps": 3})
        )
    assert unknown.value.field == "parameters.steps"
    with pytest.raises(InvalidInput) as wrong_kind:
        services.generations.create(admin, "video", GenerateRequest(prompt="x", model=ACE))
    assert wrong_kind.value.field == "model"


def test_an_added_official_video_model_runs_by_its_endpoint_with_a_start_image(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]
) -> None:
    services, queue, admin = world
    fake.scripts[HAILUO] = QUICK
    services.model_browser.add(admin, HAILUO)
    req = GenerateRequest(
        prompt="a paper boat on a river", model=HAILUO, image="https://example.com/boat.png"
    )
    row, _ = services.generations.create(admin, "video", req)
    (create,) = fake.create_requests
    assert create.path == f"/v1/models/{HAILUO}/predictions" and "version" not in create.json
    assert create.json["input"]["first_frame_image"] == "https://example.com/boat.png"
    assert create.json["input"]["prompt_optimizer"] is True
    finish(services, queue, fake, row.id)
    assert reread(services, row.id).status == Status.COMPLETED


# -- models sync refreshes added models -------------------------------------------------------------


def test_models_sync_moves_an_added_model_to_its_new_version_unless_one_was_asked(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]
) -> None:
    services, _queue, admin = world
    old = fake.models[ACE].versions[0]
    services.model_browser.add(admin, ACE)
    services.model_browser.add(admin, SDXL, version=fake.models[SDXL].versions[0])  # pinned by hand
    new = "ab" * 32
    model: FakeModel = fake.models[ACE]
    model.versions.insert(0, new)
    model.input_schema = copy.deepcopy(model.input_schema)
    model.input_schema["properties"]["bpm"] = {"type": "integer", "minimum": 60, "maximum": 200, "x-order": 6}
    fake.models[SDXL].versions.insert(0, "cd" * 32)

    lines = list(sync_models(services.settings, [ACE, SDXL, "nobody/nothing"]))
    assert lines[0].startswith("nobody/nothing: skipped")
    ace = next(line for line in lines if line.startswith(ACE))
    assert f"version {old[:12]} → {new[:12]}" in ace and "7 inputs" in ace
    sdxl = next(line for line in lines if line.startswith(SDXL))
    assert "(unchanged, as asked)" in sdxl
    services.catalog.added(fresh=True)
    refreshed = services.catalog.get(ACE)
    assert refreshed is not None and refreshed.version == new and "bpm" in refreshed.properties
    kept = services.catalog.get(SDXL)
    assert kept is not None and kept.version == fake.models[SDXL].versions[1]
    # With no ids every added model is refreshed too (after the packaged ones).
    every = list(sync_models(services.settings, None))
    assert any(line.startswith(f"{ACE}: added model") for line in every)


def test_models_sync_reports_an_added_model_replicate_lost(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]
) -> None:
    services, _queue, admin = world
    services.model_browser.add(admin, ACE)
    del fake.models[ACE]
    (line,) = list(sync_models(services.settings, [ACE]))
    assert line.startswith(f"{ACE}: failed") and "no public model" in line
    assert services.catalog.get(ACE) is not None  # kept as it was


# -- the fake's browsing endpoints speak Replicate's shapes ------------------------------------------


def test_fake_search_collections_and_hardware(fake: FakeReplicate) -> None:
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}) as c:
        found = c.get("/search", params={"query": "music"}).json()
        assert set(found) == {"query", "models", "collections", "pages"} and found["query"] == "music"
        first = found["models"][0]
        assert set(first) == {"model", "metadata"} and first["model"]["latest_version"]["openapi_schema"]
        assert [co["slug"] for co in found["collections"]] == ["ai-music-generation"]
        assert c.get("/search").status_code == 422
        listed = c.get("/collections").json()
        assert listed["next"] is None and {"slug", "name", "description"} == set(listed["results"][0])
        video = c.get("/collections/text-to-video").json()
        assert HAILUO in {f"{m['owner']}/{m['name']}" for m in video["models"]}
        assert c.get("/collections/nope").status_code == 404
        hardware = c.get("/hardware").json()
        assert {"name": "Nvidia T4 GPU", "sku": "gpu-t4"} in hardware
        example = c.get(f"/models/{ACE}").json()["default_example"]["output"]
        assert httpx.get(example).headers["content-type"] == "audio/wav"
        assert (
            c.get("/search", headers={"Authorization": "Bearer nope"}, params={"query": "x"}).status_code
            == 401
        )


def test_search_results_say_what_each_model_would_be(
    fake: FakeReplicate, world: tuple[Services, MemoryJobQueue, Principal]
) -> None:
    services, _queue, admin = world
    services.model_browser.add(admin, ACE)
    found = services.model_browser.search("music", limit=10)
    by_id = {m.id: m for m in found.models}
    assert by_id[ACE].kind == "audio" and by_id[ACE].in_catalog == "added"
    assert by_id["meta/musicgen"].in_catalog == "built-in"
    # A packaged model is what the catalog says it is (riffusion's prompt_a is no prompt to us).
    assert (by_id["riffusion/riffusion"].kind, by_id["riffusion/riffusion"].why) == ("audio", None)
    assert by_id["google/lyria-2"].kind == "audio" and by_id["google/lyria-2"].in_catalog is None
    # The matching collection's models join the results, marked with it.
    assert "ai-music-generation" in by_id["stackadoc/stable-audio-open-1.0"].collections
    speech = {m.id: m for m in services.model_browser.search("speech").models}
    assert speech[WHISPER].kind == "unsupported" and "without files" in (speech[WHISPER].why or "")
    with pytest.raises(InvalidInput):
        services.model_browser.search("   ")


def test_a_browser_on_an_unreachable_replicate_is_unavailable(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        REPLICATE_API_TOKEN="r8_x",  # type: ignore[call-arg]
        replicate_base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
    )
    catalog = Catalog.load()
    browser = ModelBrowser(settings, catalog, AddedModels(Database(f"sqlite:///{tmp_path / 'x.db'}")))
    with pytest.raises(Unavailable, match="not reachable") as down:
        browser.search("music")
    assert down.value.retry_after == 5
