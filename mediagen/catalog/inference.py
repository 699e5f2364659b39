"""A Replicate model as a catalog entry: what it makes, and how our request maps onto its inputs.

Replicate describes every model version with Cog's OpenAPI document: `components.schemas.Input`
(the inputs) and `components.schemas.Output`. The output schema says whether the model makes
files (a URI, a list of URIs, an object holding some) or text; it does not say which kind of
file, so the kind comes from the model's `default_example` output (its file extensions). A model
that makes text, or something we cannot store as audio, an image or a video, is refused with the
reason, as is one that takes no text prompt (every request carries one) or needs a secret input.

The entry built here is the same JSON a packaged `catalog/models/*.json` file holds, so an added
model goes through the same forms, validation and pipeline as the built-in ones.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mediagen.catalog.hardware import LIST_PRICES
from mediagen.catalog.sync import schema_from_openapi
from mediagen.vocabulary import Kind

__all__ = [
    "EXTENSIONS",
    "Built",
    "Inferred",
    "Unsupported",
    "build_entry",
    "example_files",
    "infer_kind",
    "kind_of_url",
]

EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(("wav", "mp3", "flac", "ogg", "oga", "m4a", "aac", "opus", "aiff", "aif"), "audio"),
    **dict.fromkeys(("png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "avif", "heic"), "image"),
    **dict.fromkeys(("mp4", "webm", "mov", "mkv", "m4v", "avi"), "video"),
}
# When an object output holds several files, the asset is the richest one: a music model's
# spectrogram image or a video model's thumbnail is a by-product.
PRIORITY = ("video", "audio", "image")
LABEL = "added from Replicate"
ESTIMATE_SKU = "gpu-a100-large"  # what an added model's estimate assumes it runs on

# Our request's named fields and the model input names each may stand for, first match wins.
PROMPT_NAMES = (
    "prompt",
    "text",
    "tags",
    "caption",
    "text_prompt",
    "prompt_text",
    "description",
    "input_text",
)
DURATION_NAMES = (
    "duration",
    "seconds_total",
    "duration_seconds",
    "seconds",
    "length",
    "total_seconds",
    "audio_length",
    "num_seconds",
)
SEED_NAMES = ("seed", "random_seed", "noise_seed")
NEGATIVE_NAMES = ("negative_prompt", "negative", "neg_prompt", "negative_text")
MEDIA_HINTS: tuple[tuple[str, str], ...] = (
    ("video", "video"),
    ("clip", "video"),
    ("audio", "audio"),
    ("song", "audio"),
    ("music", "audio"),
    ("melody", "audio"),
    ("voice", "audio"),
    ("sound", "audio"),
    ("image", "image"),
    ("img", "image"),
    ("frame", "image"),
    ("photo", "image"),
    ("picture", "image"),
    ("mask", "image"),
)
# The request fields (GenerateRequest) that name a media input, per kind of media.
MEDIA_FIELDS = {"image": ("image", "image_id"), "audio": ("audio_id", "input_audio")}


class Unsupported(ValueError):
    """The model cannot be added; the message says why (shown beside the `model` field)."""


@dataclass(frozen=True)
class Inferred:
    kind: str | None  # audio, image, video; None when it makes something else or cannot be told
    main_key: str | None  # the key of an object output that holds the asset
    why: str | None  # why kind is None
    files: bool = True  # it makes files (so a kind given by the caller may stand)


def kind_of_url(url: str) -> str | None:
    """The kind of file a URL (or a data: URL) holds, from its extension or media type."""
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0].split(",", 1)[0].lower()
        major = mime.split("/", 1)[0]
        return major if major in ("audio", "image", "video") else None
    path = urlsplit(url).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return EXTENSIONS.get(ext)


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", "data:"))


def example_files(output: Any) -> list[tuple[str | None, str]]:
    """The file URLs of an example output, each with the object key it sits under (or None)."""
    if _is_url(output):
        return [(None, str(output))]
    if isinstance(output, list):
        return [(None, str(v)) for v in output if _is_url(v)]
    if isinstance(output, Mapping):
        found: list[tuple[str | None, str]] = []
        for key, value in output.items():
            found.extend((str(key), url) for _k, url in example_files(value))
        return found
    return []


def _is_uri(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("format") == "uri"


def _pick(kinds: dict[str | None, str]) -> tuple[str | None, str | None]:
    for kind in PRIORITY:
        for key, found in kinds.items():
            if found == kind:
                return kind, key
    return None, None


def infer_kind(output_schema: Any, example_output: Any, model_id: str) -> Inferred:
    """What the model makes, from its Output schema and its default example's files."""
    schema = output_schema if isinstance(output_schema, Mapping) else {}
    kind_type = schema.get("type")
    file_keys: list[str] = []
    if kind_type == "string" and not _is_uri(schema):
        return Inferred(
            None,
            None,
            f"{model_id} makes text (its output is a string), not audio, an image or a video",
            False,
        )
    if kind_type == "array" and not _is_uri(schema.get("items")):
        return Inferred(
            None,
            None,
            f"{model_id} makes text (its output is a list of strings"
            f"{' streamed token by token' if schema.get('x-cog-array-type') == 'iterator' else ''}), "
            "not audio, an image or a video",
            False,
        )
    if kind_type == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        file_keys = [
            str(k)
            for k, v in props.items()
            if _is_uri(v) or (isinstance(v, Mapping) and _is_uri(v.get("items")))
        ]
        if not file_keys and not example_files(example_output):
            return Inferred(
                None,
                None,
                f"{model_id} makes structured data without files (an object of "
                f"{', '.join(map(str, props)) or 'no fields'}), not audio, an image or a video",
                False,
            )
    files = example_files(example_output)
    kinds = {key: found for key, url in files if (found := kind_of_url(url)) is not None}
    kind, key = _pick(kinds)
    if kind is None and file_keys:  # no example to go by: a key named like a kind says it
        by_name: dict[str | None, str] = {}
        for k in file_keys:
            hint = next((h for word, h in MEDIA_HINTS if word in k.lower()), None)
            if hint is not None:
                by_name[k] = hint
        kind, key = _pick(by_name)
    if kind is None:
        seen = ", ".join(sorted({urlsplit(u).path.rsplit("/", 1)[-1] for _k, u in files})) or "none"
        return Inferred(
            None,
            None,
            f"cannot tell whether {model_id} makes audio, an image or a video: its example output "
            f"files ({seen}) name no known kind; give kind",
        )
    main_key = key if (kind_type == "object" or file_keys) and key is not None else None
    return Inferred(kind, main_key, None)


def _first(props: Mapping[str, Any], names: tuple[str, ...], types: tuple[str, ...]) -> str | None:
    for name in names:
        prop = props.get(name)
        if not isinstance(prop, Mapping):
            continue
        declared = prop.get("type")
        declared = declared if isinstance(declared, list) else [declared]
        if any(t in declared for t in types):
            return name
    return None


def _media_kind(name: str, prop: Mapping[str, Any]) -> str | None:
    """An input that takes one file (a URI) named like a kind of media is a media input."""
    declared = prop.get("type")
    declared = declared if isinstance(declared, list) else [declared]
    if prop.get("format") != "uri" or "string" not in declared:
        return None
    lowered = name.lower()
    return next((kind for word, kind in MEDIA_HINTS if word in lowered), None)


@dataclass(frozen=True)
class Built:
    entry: dict[str, Any]  # a catalog entry's JSON (ModelEntry's fields), plus `source`
    notes: list[str]


def _secret(prop: Mapping[str, Any]) -> bool:
    return bool(prop.get("x-cog-secret"))


def build_entry(
    model: Mapping[str, Any],
    version: Mapping[str, Any],
    *,
    requested_version: str | None,
    kind: str | None = None,
) -> Built:
    """The catalog entry of a Replicate model at `version` (a version object with its
    `openapi_schema`); raises Unsupported with the reason when it cannot be added.

    `kind` is taken only where the model makes files whose kind the example does not tell."""
    owner, name = str(model.get("owner") or ""), str(model.get("name") or "")
    model_id = f"{owner}/{name}"
    openapi = version.get("openapi_schema")
    if not isinstance(openapi, Mapping):
        raise Unsupported(f"Replicate gives no OpenAPI schema for {model_id}'s version {version.get('id')}")
    schemas = (openapi.get("components") or {}).get("schemas") or {}
    example = model.get("default_example")
    example_output = example.get("output") if isinstance(example, Mapping) else None
    inferred = infer_kind(schemas.get("Output"), example_output, model_id)
    if inferred.kind is None:
        if kind is None or not inferred.files:
            raise Unsupported(inferred.why or f"{model_id}: unknown output")
        if kind not in set(Kind):
            raise Unsupported(f"kind must be audio, image or video, not {kind!r}")
        inferred = Inferred(kind, None, None)
    try:
        schema = schema_from_openapi(openapi)
    except ValueError as exc:
        raise Unsupported(f"{model_id}'s input schema is unusable: {exc}") from exc
    props: dict[str, Any] = schema["properties"]
    required = [r for r in schema.get("required", []) if r in props]
    notes: list[str] = []
    secrets_ = [n for n, p in props.items() if _secret(p)]
    for secret in secrets_:
        if secret in required:
            raise Unsupported(
                f"{model_id} needs the secret input {secret} (a key of another service), "
                "which Mediagen cannot send"
            )
        del props[secret]
        notes.append(f"secret input {secret} left out")

    for input_name, prop in props.items():  # a label for the form where upstream gives none
        prop.setdefault("title", re.sub(r"[_-]+", " ", input_name).strip().capitalize() or input_name)
    prompt = _first(props, PROMPT_NAMES, ("string",))
    if prompt is None:
        raise Unsupported(
            f"{model_id} takes no text prompt (no input named {', '.join(PROMPT_NAMES[:4])} …): "
            "every generation here starts from one"
        )
    request_map: dict[str, str] = {}
    for field, target in (
        ("prompt", prompt),
        ("duration", _first(props, DURATION_NAMES, ("integer", "number"))),
        ("seed", _first(props, SEED_NAMES, ("integer",))),
        ("negative_prompt", _first(props, NEGATIVE_NAMES, ("string",))),
    ):
        if target is not None and target != field:
            request_map[field] = target
    media_inputs: dict[str, str] = {}
    for input_name, prop in props.items():
        media = _media_kind(input_name, prop)
        if media is None:
            continue
        media_inputs[input_name] = media
        # A generated asset id stands in for the URL until the pipeline hands the bytes over.
        types = prop.get("type", "string")
        types = list(types) if isinstance(types, list) else [types]
        prop["type"] = [*types, *(t for t in ("integer", "null") if t not in types)]
        prop["x-media"] = media
    for media, fields in MEDIA_FIELDS.items():
        target = next((n for n, m in media_inputs.items() if m == media), None)
        for field in fields:
            if target is not None and field not in props and target != field:
                request_map[field] = target
    skip = {prompt, request_map.get("seed", "seed"), *media_inputs}
    defaults: dict[str, Any] = {}
    for input_name, prop in props.items():
        value = prop.get("default")
        if input_name in skip or value is None:
            continue
        if not list(Draft202012Validator(prop).iter_errors(value)):
            defaults[input_name] = copy.deepcopy(value)
    input_schema: dict[str, Any] = {"type": "object"}
    if required:
        input_schema["required"] = required
    input_schema["additionalProperties"] = False  # an unknown input is refused, naming it
    input_schema["properties"] = props
    try:
        Draft202012Validator.check_schema(input_schema)
    except SchemaError as exc:
        raise Unsupported(f"{model_id}'s input schema is unusable: {exc.message}") from exc

    official = bool(model.get("is_official"))
    version_id = str(version.get("id") or "") or None
    # An official model runs through its model endpoint (always its current version) unless a
    # version was asked for; any other model runs its pinned version.
    by_endpoint = official and requested_version is None
    description = str(model.get("description") or "").strip()
    entry: dict[str, Any] = {
        "id": model_id,
        "kind": inferred.kind,
        "engine": "replicate",
        "title": _title(name, owner),
        "description": description or f"{model_id} on Replicate",
        "label": LABEL,
        "official": by_endpoint,
        "version": None if by_endpoint else version_id,
        "price": _price(example),
        "defaults": defaults,
        "request_map": request_map,
        "media_inputs": media_inputs,
        "output": {"main_key": inferred.main_key},
        "input_schema": input_schema,
        "source": {
            "url": model.get("url") or f"https://replicate.com/{model_id}",
            "cover_image_url": model.get("cover_image_url"),
            "run_count": model.get("run_count"),
            "is_official": official,
            "requested_version": requested_version,
            "version": version_id,
            "example": {
                "input": example.get("input") if isinstance(example, Mapping) else None,
                "files": [url for _k, url in example_files(example_output)][:8],
            },
        },
    }
    return Built(entry, notes)


def _price(example: Any) -> dict[str, Any]:
    """An estimate per run from the default example's compute time at A100 prices: Replicate's
    API says neither which hardware a model runs on nor what an official model charges. `basis`
    says where the figure came from, so a caller can tell it from a price list's."""
    metrics = example.get("metrics") if isinstance(example, Mapping) else None
    seconds = metrics.get("predict_time") if isinstance(metrics, Mapping) else None
    name, per_second = LIST_PRICES[ESTIMATE_SKU]
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
        usd = round(float(seconds) * per_second, 6)
        return {
            "usd": usd,
            "per": "run",
            "basis": "example",
            "note": f"estimate: its example ran {seconds:g} s, ${usd:g} on an {name}; "
            "Replicate's API gives neither its hardware nor its price",
        }
    return {
        "usd": 0.0,
        "per": "run",
        "basis": "unknown",
        "note": "unknown: Replicate's API gives neither its hardware nor its price (see replicate.com)",
    }


def _title(name: str, owner: str) -> str:
    words = re.sub(r"[-_]+", " ", name).strip()
    return f"{words[:1].upper()}{words[1:]} ({owner})"
