"""The catalog in-process: the packaged model files, overrides, and the checks every request passes.

Everything runs against the real JSON files in `mediagen/catalog/models/`; edge cases the packaged
models do not exercise use a small model of our own loaded through `Catalog.load(overrides=...)`,
the same path `mediagen models sync` output takes.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from mediagen.catalog.registry import MODELS_DIR, Catalog, ModelEntry, check_model_kind
from mediagen.errors import InvalidInput, MediagenError

EDGE_ID = "test/edge"


def edge_model(**changes: Any) -> dict[str, Any]:
    """A model whose schema uses every constraint `_describe` phrases, plus a media input."""
    raw: dict[str, Any] = {
        "id": EDGE_ID,
        "kind": "image",
        "engine": "synth",
        "title": "Edge cases",
        "description": "A test model",
        "price": {"usd": 0.5, "per": "output"},
        "defaults": {"count": 1, "mode": "a"},
        "request_map": {"duration": "seconds", "image_id": "source", "image": "source"},
        "media_inputs": {"source": "image"},
        "input_schema": {
            "type": "object",
            "required": ["prompt"],
            "additionalProperties": False,
            "properties": {
                "prompt": {"type": "string", "minLength": 1},
                "seconds": {"type": "number", "minimum": 1, "maximum": 30},
                "count": {"type": "integer", "minimum": 1, "maximum": 4},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "step": {"type": "integer", "multipleOf": 8},
                "label": {"type": "string", "minLength": 3, "maxLength": 5},
                "code": {"type": "string", "pattern": "^[a-z]+$"},
                "flag": {"type": "boolean"},
                "tags": {"type": "array"},
                "opts": {"type": "object"},
                "mode": {"enum": ["a", "b"]},
                "source": {"type": ["string", "integer", "null"], "default": None},
            },
        },
    }
    raw.update(changes)
    return raw


def write_model(directory: Path, raw: dict[str, Any] | str, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"{raw['id'].replace('/', '__')}.json")  # type: ignore[index]
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return path


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, ModelEntry]:
    overrides = tmp_path_factory.mktemp("catalog")
    write_model(overrides, edge_model())
    cat = Catalog.load(overrides=overrides)
    entry = cat.get(EDGE_ID)
    assert entry is not None
    return cat, entry


def build(cat: Catalog, model_id: str, named: dict[str, Any], parameters: dict[str, Any] | None = None):
    entry = cat.get(model_id)
    assert entry is not None, model_id
    return cat.build_inputs(entry, named, parameters or {})


def rejected(cat: Catalog, model_id: str, named: dict[str, Any], parameters: dict[str, Any] | None = None):
    with pytest.raises(InvalidInput) as info:
        build(cat, model_id, named, parameters)
    err = info.value
    assert isinstance(err, MediagenError)
    assert err.detail == f"{err.field}: {err.message}"
    return err.field, err.message


# loading ---------------------------------------------------------------------------------------


def test_every_packaged_file_loads_with_its_id_and_a_valid_kind(catalog: Catalog) -> None:
    files = sorted(MODELS_DIR.glob("*.json"))
    assert len(files) == len(catalog.entries) >= 10
    for path in files:
        raw = json.loads(path.read_text())
        # The file name is the id with "/" spelled "__" (what `mediagen models sync` writes).
        assert path.stem == raw["id"].replace("/", "__")
        entry = catalog.get(raw["id"])
        assert entry is not None and entry.kind in ("audio", "image", "video")
        # Every default and every request_map target is a real input, so defaults never 422.
        assert set(entry.defaults) <= set(entry.properties), entry.id
        assert set(entry.request_map.values()) <= set(entry.properties), entry.id
        # A media input is an input, or a place inside one (a composition's clips[].video_id).
        assert {re.split(r"[\[.]", m)[0] for m in entry.media_inputs} <= set(entry.properties), entry.id
    assert {e.id for e in catalog.list("audio")} == {
        "meta/musicgen",
        "riffusion/riffusion",
        "stackadoc/stable-audio-open-1.0",
        "synth/music",
        "local/musicgen-small",
        "local/musicgen-medium",
        "local/musicgen-large",
        "local/musicgen-melody",
        "local/stable-audio-open",
        "local/riffusion",
        "post/master",
    }
    # Local entries name their weights and a family the local engine knows.
    from mediagen.engines.local.families import FAMILIES

    for entry in catalog.list():
        assert (entry.engine == "local") == bool(entry.local), entry.id
        if entry.local:
            assert entry.local["family"] in FAMILIES and "/" in entry.local["repo_id"], entry.id
    assert {e.kind for e in catalog.list()} == {"audio", "image", "video"}
    assert catalog.get("nobody/nothing") is None


def test_an_override_replaces_the_packaged_entry_and_can_add_models(tmp_path: Path) -> None:
    packaged = Catalog.load().get("synth/music")
    assert packaged is not None
    raw = json.loads((MODELS_DIR / "synth__music.json").read_text())
    raw["title"] = "Synced title"
    raw["defaults"] = {**raw["defaults"], "duration": 12}
    write_model(tmp_path, raw)
    write_model(tmp_path, edge_model())

    cat = Catalog.load(overrides=tmp_path)
    entry = cat.get("synth/music")
    assert entry is not None and entry.title == "Synced title" and entry.defaults["duration"] == 12
    assert cat.get(EDGE_ID) is not None
    assert len(cat.entries) == len(Catalog.load().entries) + 1
    assert build(cat, "synth/music", {"prompt": "x"}).inputs["duration"] == 12
    # A missing overrides directory is simply no overrides.
    assert Catalog.load(overrides=tmp_path / "absent").get("synth/music") == packaged


@pytest.mark.parametrize(
    "broken",
    [
        "{not json",
        json.dumps({**edge_model(id="synth/music"), "unexpected_key": 1}),
        json.dumps(edge_model(id="synth/music", kind="podcast")),
        json.dumps(edge_model(id="nonamespace")),
        json.dumps(edge_model(id="synth/music", input_schema={"type": "no-such-type"})),
    ],
    ids=["bad-json", "unknown-field", "bad-kind", "id-without-owner", "invalid-schema"],
)
def test_a_broken_override_is_logged_and_the_packaged_entry_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    path = write_model(tmp_path, broken, name="synth__music.json")
    with caplog.at_level(logging.WARNING, logger="mediagen.catalog"):
        cat = Catalog.load(overrides=tmp_path)
    assert cat.get("synth/music") == Catalog.load().get("synth/music")
    assert "nonamespace" not in cat.entries
    assert any(
        str(path) in r.getMessage() and "ignoring catalog override" in r.getMessage() for r in caplog.records
    )


# build_inputs: defaults, request_map, unknown names --------------------------------------------


def test_defaults_fill_what_the_caller_left_out(catalog: Catalog) -> None:
    built = build(catalog, "synth/music", {"prompt": "lofi", "duration": None})
    assert built.inputs == {"prompt": "lofi", "duration": 8, "seed": 0, "output_format": "mp3"}
    assert built.origin == {
        "prompt": "prompt",
        "duration": "parameters.duration",
        "seed": "parameters.seed",
        "output_format": "parameters.output_format",
    }
    assert built.media == {}
    # A value the caller gives wins over the default, and only inputs with a value are sent.
    built = build(catalog, "bytedance/seedance-1-lite", {"prompt": "waves", "duration": 10})
    assert built.inputs == {
        "prompt": "waves",
        "duration": 10,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "fps": 24,
        "camera_fixed": False,
    }
    assert built.origin["duration"] == "duration"


def test_request_map_renames_the_seeds_duration(catalog: Catalog) -> None:
    built = build(catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "rain", "duration": 20})
    assert built.inputs["seconds_total"] == 20 and "duration" not in built.inputs
    assert built.origin["seconds_total"] == "duration"
    # Errors about the renamed input name the field the caller sent.
    assert rejected(catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "rain", "duration": 100}) == (
        "duration",
        "must be ≤ 47",
    )
    # A parameter may use either name; the error names what was sent.
    assert rejected(catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "rain"}, {"duration": 0}) == (
        "parameters.duration",
        "must be ≥ 1",
    )
    assert (
        build(catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "r"}, {"seconds_total": 3}).inputs[
            "seconds_total"
        ]
        == 3
    )


def test_a_missing_required_input_is_named_as_the_request_field(catalog: Catalog) -> None:
    # riffusion takes prompt_a; the request field is `prompt`.
    assert rejected(catalog, "riffusion/riffusion", {"prompt": None}) == ("prompt", "field required")
    assert build(catalog, "riffusion/riffusion", {"prompt": "funk"}).inputs["prompt_a"] == "funk"
    # kling needs a start image: named after the first request field that maps onto it.
    assert rejected(catalog, "kwaivgi/kling-v2.1", {"prompt": "x"}) == ("image", "field required")
    assert rejected(catalog, "synth/image", {}) == ("prompt", "field required")


def test_unknown_inputs_are_rejected_naming_the_field(catalog: Catalog) -> None:
    assert rejected(catalog, "synth/music", {"prompt": "x"}, {"foo": 1}) == (
        "parameters.foo",
        "not an input of synth/music",
    )
    # A seed request field the model does not take is an error, not silently dropped.
    assert rejected(catalog, "synth/music", {"prompt": "x", "image_id": 4}) == (
        "image_id",
        "not an input of synth/music",
    )
    assert rejected(catalog, "black-forest-labs/flux-schnell", {"prompt": "x", "duration": 5}) == (
        "duration",
        "not an input of black-forest-labs/flux-schnell",
    )


def test_a_parameter_wins_over_the_named_field_for_the_same_input(catalog: Catalog) -> None:
    built = build(catalog, "synth/music", {"prompt": "x", "duration": 5}, {"duration": 20})
    assert built.inputs["duration"] == 20 and built.origin["duration"] == "parameters.duration"
    # So an error about that input names the parameter, not the overridden field.
    assert rejected(catalog, "synth/music", {"prompt": "x", "duration": 5}, {"duration": 999}) == (
        "parameters.duration",
        "must be ≤ 300",
    )
    # Through request_map too: `duration` is seconds_total on Stable Audio.
    built = build(
        catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "x", "duration": 5}, {"seconds_total": 9}
    )
    assert built.inputs["seconds_total"] == 9 and built.origin["seconds_total"] == "parameters.seconds_total"


def test_two_named_fields_for_the_same_input_conflict(catalog: Catalog) -> None:
    # kling maps both `image` and `image_id` onto start_image.
    assert rejected(
        catalog, "kwaivgi/kling-v2.1", {"prompt": "x", "image": "https://example.com/a.png", "image_id": 3}
    ) == ("image_id", "conflicts with image (both set start_image)")


# build_inputs: JSON Schema violations, phrased per _describe ------------------------------------


@pytest.mark.parametrize(
    ("model", "named", "parameters", "field", "message"),
    [
        ("synth/music", {"prompt": "x", "duration": 301}, {}, "duration", "must be ≤ 300"),
        ("synth/music", {"prompt": "x", "duration": 0.5}, {}, "duration", "must be ≥ 1"),
        ("synth/music", {"prompt": "x"}, {"output_format": "ogg"}, "parameters.output_format",
         'must be one of "mp3", "wav"'),
        ("kwaivgi/kling-v2.1", {"prompt": "x", "image_id": 1, "duration": 7}, {}, "duration",
         "must be one of 5, 10"),
        ("synth/music", {"prompt": "x", "duration": "long"}, {}, "duration", "must be a number"),
        ("synth/image", {"prompt": "x"}, {"width": "big"}, "parameters.width", "must be an integer"),
        ("synth/image", {"prompt": "x"}, {"width": 512.5}, "parameters.width", "must be an integer"),
        ("synth/image", {"prompt": 5}, {}, "prompt", "must be a string"),
        ("synth/image", {"prompt": ""}, {}, "prompt", "must not be empty"),
        ("synth/image", {"prompt": "x" * 2001}, {}, "prompt", "must be at most 2000 characters"),
        ("synth/video", {"prompt": "x"}, {"soundtrack": "yes"}, "parameters.soundtrack",
         "must be true or false"),
        ("google/nano-banana", {"prompt": "x"}, {"image_input": "https://e.com/a.png"},
         "parameters.image_input", "must be a list"),
        # An error inside a list names the item.
        ("google/nano-banana", {"prompt": "x"}, {"image_input": [1]}, "parameters.image_input[0]",
         "must be a string"),
    ],
)  # fmt: skip
def test_schema_violations_name_the_field_and_say_what_is_allowed(
    catalog: Catalog,
    model: str,
    named: dict[str, Any],
    parameters: dict[str, Any],
    field: str,
    message: str,
) -> None:
    assert rejected(catalog, model, named, parameters) == (field, message)


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({"ratio": 1}, "parameters.ratio", "must be < 1"),
        ({"ratio": 0}, "parameters.ratio", "must be > 0"),
        ({"step": 12}, "parameters.step", "must be a multiple of 8"),
        ({"label": "ab"}, "parameters.label", "must be at least 3 characters"),
        ({"label": "abcdef"}, "parameters.label", "must be at most 5 characters"),
        ({"opts": []}, "parameters.opts", "must be an object"),
        ({"flag": 1}, "parameters.flag", "must be true or false"),
        ({"mode": "c"}, "parameters.mode", 'must be one of "a", "b"'),
        ({"count": 5}, "parameters.count", "must be ≤ 4"),
        # A nullable input says what it must be without mentioning null.
        ({"source": 1.5}, "parameters.source", "must be a string or an integer"),
        # Constraints _describe does not phrase keep jsonschema's own message.
        ({"code": "A1"}, "parameters.code", "'A1' does not match '^[a-z]+$'"),
    ],
)
def test_every_phrasing_of_describe(
    edge: tuple[Catalog, ModelEntry], parameters: dict[str, Any], field: str, message: str
) -> None:
    cat, _ = edge
    assert rejected(cat, EDGE_ID, {"prompt": "x"}, parameters) == (field, message)


def test_the_first_error_by_input_name_is_reported(catalog: Catalog) -> None:
    # Both width (< 64) and output_format are wrong; errors are sorted by input name.
    assert rejected(catalog, "synth/image", {"prompt": "x"}, {"width": 10, "output_format": "gif"}) == (
        "parameters.output_format",
        'must be one of "png", "jpg", "webp"',
    )


def test_a_whole_float_for_an_integer_input_becomes_an_integer(catalog: Catalog) -> None:
    built = build(catalog, "synth/image", {"prompt": "x"}, {"width": 512.0})
    assert built.inputs["width"] == 512 and type(built.inputs["width"]) is int
    # A number input keeps its float.
    built = build(catalog, "synth/music", {"prompt": "x", "duration": 7.5})
    assert built.inputs["duration"] == 7.5


# build_inputs: media inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("asset", [7, "7"])
def test_a_media_input_given_as_an_asset_id_is_resolved_later(catalog: Catalog, asset: int | str) -> None:
    built = build(catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": asset})
    assert built.media == {"image": 7}
    assert "image" in built.inputs and built.inputs["image"] is None
    assert built.origin["image"] == "image_id"


@pytest.mark.parametrize(
    "url", ["https://example.com/start.png", "http://10.0.0.2/a.jpg", "data:image/png;base64,iVBORw0KGgo="]
)
def test_a_media_input_given_as_a_url_is_passed_through(catalog: Catalog, url: str) -> None:
    built = build(catalog, "kwaivgi/kling-v2.1", {"prompt": "x", "image": url})
    assert built.inputs["start_image"] == url and built.media == {}
    # As a parameter under the model's own name, the same.
    built = build(catalog, "bytedance/seedance-1-lite", {"prompt": "x"}, {"last_frame_image": url})
    assert built.inputs["last_frame_image"] == url and built.media == {}


def test_media_inputs_that_are_neither_an_id_nor_a_url_are_rejected(catalog: Catalog) -> None:
    msg = "must be a generated asset id, an http(s) URL or a data: URL"
    assert rejected(catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": "ftp://h/a.png"}) == (
        "image_id",
        msg,
    )
    assert rejected(catalog, "bytedance/seedance-1-lite", {"prompt": "x"}, {"image": "/etc/passwd"}) == (
        "parameters.image",
        msg,
    )
    assert rejected(catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": True}) == (
        "image_id",
        "must be an asset id or a URL",
    )
    assert rejected(catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": 2.5}) == (
        "image_id",
        "must be a string or an integer",
    )


def test_several_media_inputs_are_resolved_independently(
    catalog: Catalog, edge: tuple[Catalog, ModelEntry]
) -> None:
    built = build(
        catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": 3}, {"last_frame_image": "9"}
    )
    assert built.media == {"image": 3, "last_frame_image": 9}
    assert built.origin["last_frame_image"] == "parameters.last_frame_image"
    # Our own model maps `image` and `image_id` to one input: giving both is a conflict.
    cat, _ = edge
    assert rejected(cat, EDGE_ID, {"prompt": "x", "image": "https://e.com/a.png", "image_id": 1}) == (
        "image_id",
        "conflicts with image (both set source)",
    )


def test_a_non_decimal_digit_string_is_an_invalid_input(catalog: Catalog) -> None:
    field, _ = rejected(catalog, "bytedance/seedance-1-lite", {"prompt": "x", "image_id": "²"})
    assert field == "image_id"


# model and kind ---------------------------------------------------------------------------------


def test_check_model_kind(catalog: Catalog) -> None:
    entry = catalog.get("synth/music")
    assert check_model_kind(entry, "synth/music", "audio") is entry
    with pytest.raises(InvalidInput) as info:
        check_model_kind(entry, "synth/music", "video")
    assert (info.value.field, info.value.message) == ("model", "synth/music makes audio, not video")
    with pytest.raises(InvalidInput) as info:
        check_model_kind(catalog.get("acme/nothing"), "acme/nothing", "audio")
    assert info.value.field == "model"
    assert info.value.message == "unknown model 'acme/nothing'; GET /api/models lists them"
    assert info.value.detail == "model: unknown model 'acme/nothing'; GET /api/models lists them"


# cost and public view ---------------------------------------------------------------------------


def test_estimate_cost_per_second_output_and_run(catalog: Catalog, edge: tuple[Catalog, ModelEntry]) -> None:
    seedance = catalog.get("bytedance/seedance-1-lite")
    assert seedance is not None
    assert seedance.estimate_cost({"duration": 10}) == pytest.approx(0.36)
    assert seedance.estimate_cost({}) == pytest.approx(0.18)  # the default 5 s
    built = build(catalog, "bytedance/seedance-1-lite", {"prompt": "x"})
    assert seedance.estimate_cost(built.inputs) == pytest.approx(0.18)

    flux = catalog.get("black-forest-labs/flux-schnell")
    assert flux is not None
    assert flux.estimate_cost({"num_outputs": 4}) == pytest.approx(0.012)
    assert flux.estimate_cost({}) == pytest.approx(0.003)

    banana = catalog.get("google/nano-banana")
    assert banana is not None and banana.estimate_cost({"anything": 1}) == pytest.approx(0.039)
    synth = catalog.get("synth/music")
    assert synth is not None and synth.estimate_cost({"duration": 300}) == 0.0

    _, entry = edge
    assert entry.estimate_cost({"num_outputs": 3}) == pytest.approx(1.5)


def test_estimate_cost_of_a_per_second_model_whose_duration_is_renamed(catalog: Catalog) -> None:
    entry = catalog.get("stackadoc/stable-audio-open-1.0")
    assert entry is not None
    built = build(catalog, "stackadoc/stable-audio-open-1.0", {"prompt": "x", "duration": 30})
    assert entry.estimate_cost(built.inputs) == pytest.approx(0.0023 * 30)


def test_public_view(catalog: Catalog) -> None:
    entry = catalog.get("kwaivgi/kling-v2.1")
    assert entry is not None
    view = entry.public()
    assert view["id"] == "kwaivgi/kling-v2.1"
    assert (view["owner"], view["name"]) == ("kwaivgi", "kling-v2.1")
    assert (view["kind"], view["engine"], view["title"]) == ("video", "replicate", "Kling 2.1 (Kuaishou)")
    assert view["defaults"] == {"mode": "standard", "duration": 5}
    assert view["request_map"] == {"image": "start_image", "image_id": "start_image"}
    assert view["media_inputs"] == {"start_image": "image", "end_image": "image"}
    assert view["input_schema"]["required"] == ["prompt", "start_image"]
    assert view["price"]["per"] == "second"
    assert view["label"] is None
    # The engine actually serving it (a Cog route, the synth fallback) replaces the default.
    assert entry.public(engine="cog")["engine"] == "cog"
    synth = catalog.get("synth/image")
    assert synth is not None and synth.public()["label"] == "offline procedural"
    # Only what the UI and API need: no provider version pin, no output mapping.
    assert set(view) == {
        "id",
        "owner",
        "name",
        "kind",
        "engine",
        "title",
        "description",
        "label",
        "price",
        "defaults",
        "media_inputs",
        "request_map",
        "input_schema",
    }
    json.dumps(view)  # serialisable as is
