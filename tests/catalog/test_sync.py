"""`mediagen models sync` against the fake Replicate: schemas refreshed into the data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.catalog.registry import MODELS_DIR, Catalog
from mediagen.catalog.sync import schema_from_openapi, sync_models
from mediagen.config import Settings
from tests.conftest import ROOT
from tests.fakes.replicate_server import FakeReplicate

pytestmark = pytest.mark.timeout(60)

HOSTED = {
    "meta/musicgen",
    "riffusion/riffusion",
    "stackadoc/stable-audio-open-1.0",
    "bytedance/seedance-1-lite",
    "kwaivgi/kling-v2.1",
    "black-forest-labs/flux-schnell",
    "google/nano-banana",
}
NEW_VERSION = "f" * 64


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        # musicgen the way older Cog versions describe enums: allOf → $ref to a component.
        mg = server.models["meta/musicgen"]
        mg.versions = [NEW_VERSION, *mg.versions]
        mg.input_schema = {
            "type": "object",
            "title": "Input",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                "model_version": {
                    "allOf": [{"$ref": "#/components/schemas/model_version"}],
                    "default": "stereo-melody-large",
                    "description": "Model to use",
                    "x-order": 1,
                },
                "input_audio": {"type": "string", "format": "uri", "title": "Input Audio", "x-order": 2},
                "duration": {"type": "integer", "default": 8, "title": "Duration", "x-order": 3},
                "top_k": {"type": "integer", "default": 250, "title": "Top K", "x-order": 4},
                "output_format": {
                    "allOf": [{"$ref": "#/components/schemas/output_format"}],
                    "default": "wav",
                    "x-order": 5,
                },
                "seed": {"type": "integer", "nullable": True, "title": "Seed", "x-order": 6},
                "brand_new": {"type": "boolean", "default": False, "title": "New knob"},
            },
        }
        components = {
            "model_version": {
                "title": "model_version",
                "type": "string",
                "description": "An enumeration.",
                "enum": ["stereo-melody-large", "stereo-large"],
            },
            "output_format": {"title": "output_format", "type": "string", "enum": ["wav", "mp3"]},
        }
        original = server._version_json

        def with_components(model: Any, version: str) -> dict[str, Any]:
            out = original(model, version)
            out["openapi_schema"]["components"]["schemas"].update(components)
            return out

        server._version_json = with_components  # type: ignore[method-assign]
        yield server


def settings_for(fake: FakeReplicate, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        REPLICATE_API_TOKEN=fake.token,  # type: ignore[call-arg]
        replicate_base_url=fake.base_url,
    )


def test_sync_writes_overrides_into_the_data_dir(fake: FakeReplicate, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    before = {p.name: p.read_bytes() for p in MODELS_DIR.glob("*.json")}
    lines = list(sync_models(settings, None))
    assert len(lines) == len(HOSTED) and all(": failed" not in line for line in lines), lines
    assert {line.split(":", 1)[0] for line in lines} == HOSTED
    written = sorted(p.name for p in (settings.data_dir / "catalog").glob("*.json"))
    assert written == sorted(f"{m.replace('/', '__')}.json" for m in HOSTED)
    assert {p.name: p.read_bytes() for p in MODELS_DIR.glob("*.json")} == before  # package untouched

    line = next(line for line in lines if line.startswith("meta/musicgen"))
    assert "671ac645ce5e → ffffffffffff" in line and "new inputs: brand_new" in line
    assert "dropped default temperature" in line  # the upstream schema has no temperature any more

    raw = json.loads((settings.data_dir / "catalog" / "meta__musicgen.json").read_text())
    assert raw["version"] == NEW_VERSION and raw["official"] is False
    props = raw["input_schema"]["properties"]
    # allOf/$ref enums inlined, property's own default and description kept
    assert props["model_version"]["enum"] == ["stereo-melody-large", "stereo-large"]
    assert (
        props["model_version"]["type"] == "string" and props["model_version"]["description"] == "Model to use"
    )
    assert "allOf" not in json.dumps(raw["input_schema"]) and "nullable" not in json.dumps(
        raw["input_schema"]
    )
    assert props["seed"]["type"] == ["integer", "null"]
    # our media extension survives: an asset id may stand in for the URL
    assert "integer" in props["input_audio"]["type"] and props["input_audio"]["x-media"] == "audio"
    assert props["prompt"]["maxLength"] == 2000  # local guard rail kept
    assert all("x-order" in p for p in props.values()) and props["brand_new"]["x-order"] == 7
    assert list(props) == sorted(props, key=lambda k: props[k]["x-order"])
    assert raw["input_schema"]["additionalProperties"] is False
    # ours kept: defaults still valid upstream, request map, media inputs, price, title
    assert raw["defaults"] == {
        "model_version": "stereo-melody-large",
        "duration": 8,
        "top_k": 250,
        "output_format": "mp3",
    }
    assert raw["request_map"] == {"audio_id": "input_audio"} and raw["media_inputs"] == {
        "input_audio": "audio"
    }
    assert raw["title"] == "MusicGen (Meta)" and raw["price"]["per"] == "second"

    official = json.loads((settings.data_dir / "catalog" / "bytedance__seedance-1-lite.json").read_text())
    assert official["official"] is True and official["version"] is None


def test_catalog_load_reads_overrides(fake: FakeReplicate, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    list(sync_models(settings, ["meta/musicgen"]))
    catalog = Catalog.load(overrides=settings.data_dir / "catalog")
    entry = catalog.get("meta/musicgen")
    assert entry is not None and entry.version == NEW_VERSION and "brand_new" in entry.properties
    assert catalog.get("riffusion/riffusion") == Catalog.load().get("riffusion/riffusion")  # not synced
    # the refreshed entry validates requests: a new input is accepted, a dropped one refused
    built = catalog.build_inputs(entry, {"prompt": "x", "duration": 5}, {"brand_new": True, "seed": None})
    assert built.inputs == {
        "prompt": "x",
        "duration": 5,
        "brand_new": True,
        "model_version": "stereo-melody-large",
        "top_k": 250,
        "output_format": "mp3",
    }
    with pytest.raises(Exception, match="parameters.temperature"):
        catalog.build_inputs(entry, {"prompt": "x"}, {"temperature": 1.0})
    built = catalog.build_inputs(entry, {"prompt": "x", "audio_id": 12}, {})
    assert built.media == {"input_audio": 12}


def test_broken_override_is_skipped(tmp_path: Path) -> None:
    overrides = tmp_path / "catalog"
    overrides.mkdir()
    (overrides / "meta__musicgen.json").write_text("{not json")
    (overrides / "riffusion__riffusion.json").write_text(json.dumps({"id": "riffusion/riffusion"}))
    catalog = Catalog.load(overrides=overrides)
    assert catalog.get("meta/musicgen") == Catalog.load().get("meta/musicgen")
    assert catalog.get("riffusion/riffusion") == Catalog.load().get("riffusion/riffusion")


def test_selected_models_and_failures(fake: FakeReplicate, tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path)
    del fake.models["kwaivgi/kling-v2.1"]  # Replicate answers 404 for it
    lines = list(
        sync_models(settings, ["kwaivgi/kling-v2.1", "synth/music", "nobody/nothing", "riffusion/riffusion"])
    )
    assert len(lines) == 4
    assert lines[0].startswith("synth/music: skipped") and lines[1].startswith("nobody/nothing: skipped")
    assert lines[2].startswith("kwaivgi/kling-v2.1: failed") and "404" in lines[2]
    assert lines[3].startswith("riffusion/riffusion: ") and "(unchanged)" in lines[3]
    assert sorted(p.name for p in (settings.data_dir / "catalog").iterdir()) == ["riffusion__riffusion.json"]
    # riffusion's fake schema lacks seed_image_id: the default is dropped and the user told
    assert "dropped default seed_image_id" in lines[3]


def test_schema_from_openapi_handles_nullable_enums() -> None:
    schema = schema_from_openapi(
        {
            "components": {
                "schemas": {
                    "Input": {
                        "type": "object",
                        "properties": {
                            "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "nullable": True},
                            "tags": {"type": "array", "items": {"type": "string", "format": "uri"}},
                        },
                    },
                    "size": {"type": "string", "enum": ["s", "m"]},
                }
            }
        }
    )
    assert schema["properties"]["size"] == {
        "type": ["string", "null"],
        "enum": ["s", "m", None],
        "x-order": 0,
    }
    assert schema["properties"]["tags"]["x-order"] == 1 and "required" not in schema
    with pytest.raises(ValueError, match="Input"):
        schema_from_openapi({"components": {"schemas": {}}})


def test_cli_models_sync_and_server_use_the_override(fake: FakeReplicate, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGEN_", "REPLICATE_"))}
    env.update(
        {
            "MEDIAGEN_DATA_DIR": str(data),
            "REPLICATE_API_TOKEN": fake.token,
            "MEDIAGEN_REPLICATE_BASE_URL": fake.base_url,
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "models", "sync", "meta/musicgen"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("meta/musicgen: ") and (data / "catalog" / "meta__musicgen.json").exists()

    from mediagen.app import build_services

    services = build_services(Settings(data_dir=data))
    try:
        entry = services.catalog.get("meta/musicgen")
        assert entry is not None and entry.version == NEW_VERSION and "brand_new" in entry.properties
    finally:
        services.db.dispose()
