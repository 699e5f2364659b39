"""`mediagen models sync`: refresh hosted models' input schemas (and versions) from Replicate.

Replicate describes every model version with Cog's OpenAPI document; its
`components.schemas.Input` is the model's input JSON schema (Replicate's HTTP API docs, "versions"). Sync
reads it for each hosted catalog entry and writes an override file into the data dir,
`<data_dir>/catalog/<owner>__<name>.json`, never into the installed package (which may be
read-only, and is replaced on upgrade). `Catalog.load(overrides=…)` reads those files at start-up,
so a restart picks the refreshed schemas up.

What the override keeps from our packaged entry, and why:
- `defaults`, `request_map`, `media_inputs`, `output`, `price`, `title`, `description`, `label`:
  they are our decisions (the seed's defaults, how the unified request maps onto the model), not
  Replicate's. A default or a request-map target the model no longer takes is dropped or reported,
  because sending an input the model does not take is a 422 on every request.
- Media inputs keep our asset-id extension (`integer` in their type, `x-media`): a request may name
  a generated asset by id and the pipeline hands its bytes over as a URL.
- A few local guard rails the upstream property lacks (`maxLength`/`minLength` on the prompt).

Upstream's schema is OpenAPI 3.0 flavoured; it is rewritten into the JSON Schema 2020-12 our
validator speaks: `allOf: [{$ref}]` enums (an older Cog convention) are inlined, and
`nullable: true` becomes a `"null"` in the type list. Every property gets an `x-order`.

Non-official models run a pinned version (`POST /predictions` needs one), so sync records
`latest_version.id`; official models run through the model endpoint and keep no version.

Models added from Replicate (the model browser, `mediagen models add`) live in the database's
`added_models`, not in files: sync re-reads each of them too (`catalog/added.py`), moving it to
its latest version unless a version was asked for when it was added.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mediagen.catalog.hardware import refresh_hardware
from mediagen.catalog.registry import MODELS_DIR, Catalog, ModelEntry
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.engines.base import EngineError

__all__ = [
    "OVERRIDES_DIRNAME",
    "overrides_dir",
    "override_path",
    "schema_from_openapi",
    "sync_hardware",
    "sync_models",
]

log = logging.getLogger("mediagen.catalog.sync")

OVERRIDES_DIRNAME = "catalog"
# Keys of our own property kept when the upstream property does not set them.
_LOCAL_KEYS = ("maxLength", "minLength", "x-media")
# OpenAPI keys that mean nothing to a JSON Schema validator (or to us) and are dropped.
_OPENAPI_ONLY = ("nullable", "allOf")
_ENTRY_FIELDS = (
    "id",
    "kind",
    "engine",
    "title",
    "description",
    "label",
    "official",
    "version",
    "price",
    "defaults",
    "request_map",
    "media_inputs",
    "output",
    "input_schema",
)


def overrides_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / OVERRIDES_DIRNAME


def override_path(directory: Path, model_id: str) -> Path:
    owner, name = model_id.split("/", 1)
    return directory / f"{owner}__{name}.json"


# -- schema conversion ------------------------------------------------------------------------


def _resolve_ref(ref: str, components: Mapping[str, Any]) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    target = components.get(ref[len(prefix) :])
    if not isinstance(target, Mapping):
        raise ValueError(f"$ref {ref!r} points at nothing")
    return dict(target)


def _convert_property(spec: Mapping[str, Any], components: Mapping[str, Any]) -> dict[str, Any]:
    """One upstream property → JSON Schema 2020-12 (refs inlined, nullable as a type)."""
    prop: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    refs = list(spec.get("allOf") or [])
    if "$ref" in spec:
        refs.append({"$ref": spec["$ref"]})
    for part in refs:
        if isinstance(part, Mapping) and "$ref" in part:
            target = _resolve_ref(str(part["$ref"]), components)
            # The enum component's own title/description name the type, not the input: the
            # property's own keys win below.
            merged.update({k: v for k, v in target.items() if k not in ("title", "description")})
        elif isinstance(part, Mapping):
            merged.update(part)
    merged.update({k: v for k, v in spec.items() if k not in ("allOf", "$ref")})
    for key, value in merged.items():
        if key in _OPENAPI_ONLY:
            continue
        if key in ("items",) and isinstance(value, Mapping):
            prop[key] = _convert_property(value, components)
        else:
            prop[key] = copy.deepcopy(value)
    if merged.get("nullable") or ("default" in merged and merged["default"] is None):
        types = prop.get("type")
        if types is not None:
            types = list(types) if isinstance(types, list) else [types]
            if "null" not in types:
                types.append("null")
            prop["type"] = types
        if "enum" in prop and None not in prop["enum"]:
            prop["enum"] = [*prop["enum"], None]
    return prop


def schema_from_openapi(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """`components.schemas.Input` of a Cog OpenAPI document as a JSON Schema 2020-12 object."""
    components = (openapi.get("components") or {}).get("schemas") or {}
    raw = components.get("Input")
    if not isinstance(raw, Mapping):
        raise ValueError("the version's openapi_schema has no components.schemas.Input")
    properties = raw.get("properties") or {}
    converted: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        if isinstance(spec, Mapping):
            converted[str(name)] = _convert_property(spec, components)
    # Keep upstream's order; number whatever has no x-order after the ones that do.
    ordered = sorted(
        converted.items(), key=lambda kv: (kv[1].get("x-order") is None, kv[1].get("x-order", 0))
    )
    for position, (_name, prop) in enumerate(ordered):
        prop.setdefault("x-order", position)
    out: dict[str, Any] = {"type": "object"}
    required = [r for r in raw.get("required") or [] if r in converted]
    if required:
        out["required"] = required
    out["properties"] = dict(ordered)
    return out


# -- merging with our entry -------------------------------------------------------------------


def _merge(entry: ModelEntry, upstream: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Our entry with `upstream` as its input schema; returns (entry dict, notes for the user)."""
    notes: list[str] = []
    ours = entry.properties
    props: dict[str, Any] = upstream["properties"]
    for name, prop in props.items():
        old = ours.get(name) or {}
        for key in _LOCAL_KEYS:
            if key in old and key not in prop:
                prop[key] = old[key]
        if name in entry.media_inputs:
            # A generated asset id stands in for the URL until the pipeline hands the bytes over.
            types = prop.get("type", "string")
            types = list(types) if isinstance(types, list) else [types]
            for extra in ("integer", "null"):
                if extra not in types:
                    types.append(extra)
            prop["type"] = types
            prop.setdefault("x-media", entry.media_inputs[name])
    schema: dict[str, Any] = {"type": "object"}
    if upstream.get("required"):
        schema["required"] = upstream["required"]
    # Unknown inputs are refused with a 422 naming them rather than silently dropped.
    schema["additionalProperties"] = False
    schema["properties"] = props
    Draft202012Validator.check_schema(schema)

    added = sorted(set(props) - set(ours))
    removed = sorted(set(ours) - set(props))
    if added:
        notes.append("new inputs: " + ", ".join(added))
    if removed:
        notes.append("inputs gone upstream: " + ", ".join(removed))

    defaults: dict[str, Any] = {}
    for name, value in entry.defaults.items():
        if name not in props:
            notes.append(f"dropped default {name} (not an input any more)")
            continue
        errors = list(Draft202012Validator(props[name]).iter_errors(value))
        if errors:
            notes.append(f"dropped default {name}={value!r} ({errors[0].message})")
            continue
        defaults[name] = value
    for field_name, target in entry.request_map.items():
        if target not in props:
            notes.append(f"request field {field_name} maps to {target}, which the model no longer takes")
    data: dict[str, Any] = {k: getattr(entry, k) for k in _ENTRY_FIELDS}
    data["defaults"] = defaults
    data["input_schema"] = schema
    return data, notes


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a server starting meanwhile reads the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(version: str | None) -> str:
    return version[:12] if version else "-"


def sync_models(settings: Settings, model_ids: list[str] | None = None) -> Iterator[str]:
    """Refresh each hosted model (all of them, or `model_ids`); yield one line per model.

    The packaged entry is always the base, so syncing twice gives the same file and an upgrade's
    new defaults are picked up by the next sync. A model that fails (unknown upstream, network)
    is reported and skipped; its previous override, if any, is left as it was.
    """
    if not settings.replicate_api_token:
        raise ValueError("REPLICATE_API_TOKEN is not set")
    from mediagen.engines.replicate import ReplicateEngine

    base = Catalog.load(MODELS_DIR)
    hosted = [e for e in base.list() if e.engine == "replicate"]
    added_db, added_ids = _added_models(settings)
    later: list[str] = []  # added models named: refreshed after the packaged ones
    if model_ids:
        wanted: list[ModelEntry] = []
        for model_id in model_ids:
            entry = base.get(model_id)
            if entry is None and model_id in added_ids:
                later.append(model_id)
            elif entry is None:
                yield f"{model_id}: skipped: not in the catalog (mediagen models list shows it)"
            elif entry.engine != "replicate":
                yield f"{model_id}: skipped: runs on {entry.engine}, not a hosted model"
            else:
                wanted.append(entry)
        hosted = wanted
    target_dir = overrides_dir(settings)
    with ReplicateEngine(
        token=settings.replicate_api_token,
        base_url=settings.replicate_base_url,
        max_attempts=3,
        retry_budget_s=20.0,
    ) as engine:
        for entry in hosted:
            owner, name = entry.id.split("/", 1)
            try:
                model = engine.get_model(owner, name)
                latest = model.get("latest_version") or {}
                openapi = latest.get("openapi_schema")
                if not isinstance(openapi, Mapping):
                    version_id = latest.get("id")
                    if not version_id:
                        raise ValueError("Replicate lists no version for it")
                    openapi = engine.get_version(owner, name, str(version_id)).get("openapi_schema") or {}
                upstream = schema_from_openapi(openapi)
                data, notes = _merge(entry, upstream)
            except EngineError as exc:
                yield f"{entry.id}: failed: {exc}"
                continue
            except (ValueError, SchemaError) as exc:
                yield f"{entry.id}: failed: unusable schema from Replicate: {exc}"
                continue
            official = model.get("is_official")
            if isinstance(official, bool):
                data["official"] = official
            old_version = entry.version
            if not data["official"]:
                version_id = latest.get("id")
                if not isinstance(version_id, str) or not version_id:
                    yield f"{entry.id}: failed: not an official model and Replicate lists no version"
                    continue
                data["version"] = version_id
            path = override_path(target_dir, entry.id)
            _write_json(path, data)
            if data["official"]:
                version_note = "official (model endpoint)"
            elif data["version"] == old_version:
                version_note = f"version {_short(data['version'])} (unchanged)"
            else:
                version_note = f"version {_short(old_version)} → {_short(data['version'])}"
            line = f"{entry.id}: {len(upstream['properties'])} inputs, {version_note} → {path}"
            if notes:
                line += "; " + "; ".join(notes)
            yield line
    if added_db is not None:
        try:
            if added_ids and (not model_ids or later):
                yield from _refresh_added(settings, added_db, later or None)
        finally:
            added_db.dispose()


def _added_models(settings: Settings) -> tuple[Database | None, set[str]]:
    """The server's database and the models added to it from Replicate (`added_models`); none
    when there is no database yet (sync never makes one) or it cannot be read."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mediagen.catalog.tables import AddedModel

    url = settings.resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:") or not Path(str(parsed.database)).is_file():
            return None, set()
    db = Database(url)
    try:
        with db.read() as s:
            return db, set(s.scalars(select(AddedModel.id)))
    except SQLAlchemyError as exc:
        log.info("no added models to refresh: %s", exc)
        db.dispose()
        return None, set()


def _refresh_added(settings: Settings, db: Database, model_ids: list[str] | None) -> Iterator[str]:
    from mediagen.catalog.added import AddedModels
    from mediagen.catalog.browse import ModelBrowser

    store = AddedModels(db)
    catalog = Catalog.load(MODELS_DIR, overrides_dir(settings), added=store)
    yield from ModelBrowser(settings, catalog, store).refresh(model_ids)


def _listed_hardware(settings: Settings) -> list[dict[str, Any]]:
    """Replicate's hardware list (`GET /v1/hardware`: `[{name, sku}]`)."""
    import httpx

    url = f"{settings.replicate_base_url.rstrip('/')}/hardware"
    headers = {"Authorization": f"Bearer {settings.replicate_api_token}", "Accept": "application/json"}
    try:
        response = httpx.get(url, headers=headers, timeout=httpx.Timeout(20.0, connect=10.0))
    except httpx.HTTPError as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise ValueError(f"Replicate answered {response.status_code} for GET /hardware")
    try:
        listed = response.json()
    except ValueError as exc:
        raise ValueError("Replicate's hardware list is not JSON") from exc
    if not isinstance(listed, list):
        raise ValueError("Replicate's hardware list is not a list")
    return [dict(item) for item in listed if isinstance(item, Mapping)]


def sync_hardware(settings: Settings) -> Iterator[str]:
    """Refresh the hardware SKUs (prices stay ours: Replicate's API lists none) and say which
    SKUs, and which catalog entries' hardware, have no price, so their actual cost is unknown."""
    if not settings.replicate_api_token:
        raise ValueError("REPLICATE_API_TOKEN is not set")
    directory = overrides_dir(settings)
    try:
        listed = _listed_hardware(settings)
    except ValueError as exc:
        yield f"hardware: failed: {exc}"
        return
    table, notes = refresh_hardware(directory, listed)
    priced = len(table.skus) - len(table.unpriced())
    yield f"hardware: {len(listed)} SKUs listed, {priced} with a price → {directory / 'hardware'}"
    yield from notes
    for entry in Catalog.load(MODELS_DIR, directory).list():
        sku = entry.price.get("hardware")
        if sku and table.price(str(sku)) is None:
            yield f"{entry.id}: runs on {sku}, which has no price: its actual cost stays unknown"
