"""The model catalog: one JSON file per model, and the checks every request passes before it runs.

An entry says which kind a model makes, which engine serves it by default, its input JSON Schema
(what the UI builds its form from and what we validate against), the `defaults` we send when the
caller leaves an input out (the seed's choices, so runs are reproducible even if a provider changes
its own defaults), how the unified request maps onto the model's inputs, and its price.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mediagen.catalog.hardware import HardwareTable, load_hardware
from mediagen.errors import invalid
from mediagen.vocabulary import Kind

log = logging.getLogger("mediagen.catalog")
MODELS_DIR = Path(__file__).parent / "models"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str
    engine: str
    title: str
    description: str
    input_schema: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    request_map: dict[str, str] = field(default_factory=dict)
    media_inputs: dict[str, str] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    price: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    official: bool = False
    version: str | None = None
    # Local models: {"repo_id", "family", "download_gb", "memory_gb"} (engines/local reads it).
    local: dict[str, Any] = field(default_factory=dict)

    def media_kind(self, path: str) -> str:
        """The kind of asset a media input takes, for a name or a concrete nested path
        (clips[2].video_id matches the pattern clips[].video_id)."""
        if path in self.media_inputs:
            return self.media_inputs[path]
        pattern = re.sub(r"\[\d+\]", "[]", path)
        return self.media_inputs[pattern]

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.input_schema.get("properties", {}))

    def public(self, *, engine: str | None = None) -> dict[str, Any]:
        owner, name = self.id.split("/", 1)
        return {
            "id": self.id,
            "owner": owner,
            "name": name,
            "kind": self.kind,
            "engine": engine or self.engine,
            "title": self.title,
            "description": self.description,
            "label": self.label,
            "price": self.price,
            "defaults": self.defaults,
            "media_inputs": self.media_inputs,
            "request_map": self.request_map,
            "input_schema": self.input_schema,
        }

    def estimate_cost(self, inputs: Mapping[str, Any]) -> float:
        usd = float(self.price.get("usd", 0.0))
        per = self.price.get("per", "run")
        if per == "second":
            # The model's own name for the length (Stable Audio's `seconds_total`), or the seed's.
            name = self.request_map.get("duration", "duration")
            seconds = inputs.get(name) or self.defaults.get(name) or 0
            return round(usd * float(seconds), 6)
        if per == "output":
            return round(usd * int(inputs.get("num_outputs") or 1), 6)
        return usd


def _steps(path: str) -> list[str | int]:
    """ "clips[2].video_id" -> ["clips", 2, "video_id"]."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            steps.append(int(index))
            rest = rest.removeprefix("[")
    return steps


def media_refs(inputs: Mapping[str, Any], pattern: str) -> list[tuple[str, Any]]:
    """The concrete places a media-input pattern names in `inputs`, with their values:
    "image" -> [("image", v)]; "clips[].video_id" -> [("clips[0].video_id", v), …] for every item
    that has the key; "music.audio_id" -> [("music.audio_id", v)] when music is an object with it."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any, parts: list[str], prefix: str) -> None:
        if not parts:
            found.append((prefix, value))
            return
        head, rest = parts[0], parts[1:]
        name, each = (head[:-2], True) if head.endswith("[]") else (head, False)
        if not isinstance(value, Mapping) or name not in value:
            return
        here = f"{prefix}.{name}" if prefix else name
        child = value[name]
        if each:
            if isinstance(child, list):
                for i, item in enumerate(child):
                    walk(item, rest, f"{here}[{i}]")
        else:
            walk(child, rest, here)

    walk(inputs, pattern.split("."), "")
    return found


def set_path(inputs: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a concrete path from `media_refs` (the container must exist)."""
    steps = _steps(path)
    target: Any = inputs
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


def error_path(path: Iterable[str | int]) -> str:
    """A JSON Schema error's path as a person writes it: clips[2].out."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


@dataclass(frozen=True)
class BuiltInputs:
    """Model inputs ready for an engine; media inputs still hold asset ids or URLs."""

    inputs: dict[str, Any]
    origin: dict[str, str]  # model input name -> the request field it came from (for error messages)
    media: dict[str, int]  # model input name (or nested path, clips[0].video_id) -> asset id to hand over


def _describe(error: ValidationError) -> str:
    v, arg = str(error.validator), error.validator_value
    if v == "maximum":
        return f"must be ≤ {arg}"
    if v == "minimum":
        return f"must be ≥ {arg}"
    if v == "exclusiveMaximum":
        return f"must be < {arg}"
    if v == "exclusiveMinimum":
        return f"must be > {arg}"
    if v == "enum":
        return "must be one of " + ", ".join(json.dumps(x) for x in (arg if isinstance(arg, list) else [arg]))
    if v == "type":
        names = [str(n) for n in (arg if isinstance(arg, list) else [arg]) if n != "null"]
        return "must be " + " or ".join(
            {
                "integer": "an integer",
                "number": "a number",
                "string": "a string",
                "boolean": "true or false",
                "array": "a list",
                "object": "an object",
            }.get(n, n)
            for n in names
        )
    if v == "maxLength":
        return f"must be at most {arg} characters"
    if v == "minLength":
        return "must not be empty" if arg == 1 else f"must be at least {arg} characters"
    if v == "required":
        return "field required"
    if v == "multipleOf":
        return f"must be a multiple of {arg}"
    if v in ("oneOf", "anyOf") and isinstance(arg, list) and all("required" in alt for alt in arg):
        keys = ", ".join(k for alt in arg for k in alt["required"])
        return f"give exactly one of {keys}" if v == "oneOf" else f"give one of {keys}"
    return error.message


ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelEntry))


def entry_from_json(raw: Mapping[str, Any]) -> ModelEntry:
    """A ModelEntry from stored JSON; keys it does not know (an added model's `source`) are
    ignored, so what we keep beside an entry never stops it loading."""
    return ModelEntry(**{k: v for k, v in raw.items() if k in ENTRY_FIELDS})


class AddedSource(Protocol):
    """Where models added at run time live (the `added_models` table, shared by every process).

    `stamp()` is cheap and changes whenever the set or any entry changes; `load()` reads them all.
    Either may raise; the catalog then keeps what it had.
    """

    def stamp(self) -> object: ...

    def load(self) -> list[ModelEntry]: ...


class Catalog:
    """The packaged entries (with `models sync` overrides), plus any added from Replicate.

    Added models are re-read from their source when its stamp changes, checked at most every
    `added_ttl_s` and at once on a miss, so a model added through one API process is usable in
    every other process and worker without a restart. A packaged entry always wins over an
    added one of the same id.
    """

    def __init__(
        self,
        entries: Iterable[ModelEntry],
        hardware: HardwareTable | None = None,
        *,
        added: AddedSource | None = None,
        added_ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.entries: dict[str, ModelEntry] = {e.id: e for e in entries}
        # Price per second of each hosted hardware SKU: what a time-billed prediction cost.
        self.hardware = hardware if hardware is not None else HardwareTable.packaged()
        self._validators = {e.id: Draft202012Validator(e.input_schema) for e in self.entries.values()}
        self._added_source = added
        self._added_ttl_s = added_ttl_s
        self._clock = clock
        self._added_lock = threading.Lock()
        self._added: dict[str, ModelEntry] = {}
        self._added_stamp: object = None
        self._added_checked = -float("inf")
        self._added_validators: dict[str, tuple[ModelEntry, Draft202012Validator]] = {}

    def added(self, *, fresh: bool = False) -> dict[str, ModelEntry]:
        """The added models as last read (re-read when stale or `fresh`), packaged ids left out."""
        source = self._added_source
        if source is None:
            return {}
        with self._added_lock:
            now = self._clock()
            if fresh or now - self._added_checked >= self._added_ttl_s:
                self._added_checked = now
                try:
                    stamp = source.stamp()
                    if stamp != self._added_stamp:
                        loaded = {e.id: e for e in source.load() if e.id not in self.entries}
                        self._added, self._added_stamp = loaded, stamp
                except Exception as exc:  # the database is away: keep serving what we had
                    log.warning("could not read the added models: %s", exc)
            return self._added

    @classmethod
    def load(
        cls, directory: Path = MODELS_DIR, overrides: Path | None = None, *, added: AddedSource | None = None
    ) -> Catalog:
        """The packaged entries, each replaced by a same-id file in `overrides` when there is one
        (`mediagen models sync` writes those into the data dir). A broken override is logged and
        skipped, so one bad file never stops the server or loses the packaged entry."""
        entries: dict[str, ModelEntry] = {}
        for path in sorted(directory.glob("*.json")):
            raw = json.loads(path.read_text())
            entry = ModelEntry(**raw)
            entries[entry.id] = entry
        if overrides is not None and overrides.is_dir():
            for path in sorted(overrides.glob("*.json")):
                try:
                    entry = ModelEntry(**json.loads(path.read_text()))
                    Draft202012Validator.check_schema(entry.input_schema)
                    if entry.kind not in set(Kind) or "/" not in entry.id:
                        raise ValueError(f"bad kind {entry.kind!r} or id {entry.id!r}")
                except Exception as exc:  # any malformed file: keep the packaged entry
                    log.warning("ignoring catalog override %s: %s", path, exc)
                    continue
                entries[entry.id] = entry
        return cls(entries.values(), load_hardware(overrides), added=added)

    def get(self, model_id: str) -> ModelEntry | None:
        found = self.entries.get(model_id)
        if found is not None or self._added_source is None:
            return found
        found = self.added().get(model_id)
        if found is None and "/" in model_id:  # added a moment ago elsewhere? one cheap check says
            found = self.added(fresh=True).get(model_id)
        return found

    def main_key_for(self, model_id: str) -> str | None:
        """Which key of an object output is the asset itself (riffusion: "audio")."""
        entry = self.get(model_id)
        main = entry.output.get("main_key") if entry else None
        return str(main) if main else None

    def list(self, kind: str | None = None) -> list[ModelEntry]:
        every = [*self.entries.values(), *self.added().values()]
        return [e for e in every if kind is None or e.kind == kind]

    def _validator(self, entry: ModelEntry) -> Draft202012Validator:
        if self.entries.get(entry.id) is entry:
            return self._validators[entry.id]
        with self._added_lock:
            cached = self._added_validators.get(entry.id)
            if cached is None or cached[0] is not entry:
                cached = (entry, Draft202012Validator(entry.input_schema))
                self._added_validators[entry.id] = cached
            return cached[1]

    def build_inputs(
        self, entry: ModelEntry, named: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> BuiltInputs:
        """Unified request (named fields + `parameters`) → validated model inputs.

        Named fields are the seed's request fields (prompt, duration, …); `parameters` may set any
        model input by its own name and wins over a named field. A named field the model does not
        take is an error rather than silently dropped: the caller asked for something we can't do.
        """
        props = entry.properties
        inputs: dict[str, Any] = {}
        origin: dict[str, str] = {}
        media: dict[str, int] = {}
        for name, value in named.items():
            if value is None:
                continue
            target = entry.request_map.get(name, name)
            if target not in props:
                raise invalid(name, f"not an input of {entry.id}")
            if target in inputs and origin[target] != name:
                raise invalid(name, f"conflicts with {origin[target]} (both set {target})")
            inputs[target], origin[target] = value, name
        for name, value in parameters.items():
            target = entry.request_map.get(name, name)
            if target not in props:
                raise invalid(f"parameters.{name}", f"not an input of {entry.id}")
            inputs[target], origin[target] = value, f"parameters.{name}"
        for name, value in entry.defaults.items():
            inputs.setdefault(name, value)
            origin.setdefault(name, f"parameters.{name}")
        # Media inputs given as an asset id (image_id, audio_id or an integer) are resolved later.
        for pattern in entry.media_inputs:
            if "." not in pattern and "[" not in pattern:
                continue
            # Nested references (a composition's clips) are asset ids, checked as such by the schema.
            for path, value in media_refs(inputs, pattern):
                if isinstance(value, int) and not isinstance(value, bool):
                    media[path] = value
                    origin[path] = f"parameters.{path}"
        for name, _kind in entry.media_inputs.items():
            if "." in name or "[" in name:
                continue
            value = inputs.get(name)
            if isinstance(value, bool):
                raise invalid(origin[name], "must be an asset id or a URL")
            if isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
                media[name] = int(value)
                inputs[name] = None
            elif isinstance(value, str) and not value.startswith(("http://", "https://", "data:")):
                raise invalid(origin[name], "must be a generated asset id, an http(s) URL or a data: URL")
        for name, value in list(inputs.items()):
            types = props.get(name, {}).get("type")
            types = types if isinstance(types, list) else [types]
            if "integer" in types and isinstance(value, float) and value.is_integer():
                inputs[name] = int(value)  # 10.0 from a float field is the integer 10 to the model
        # Asset ids stand in for URLs until the pipeline hands the bytes over; validate them as such.
        check = {k: (f"https://asset.invalid/{media[k]}" if k in media else v) for k, v in inputs.items()}
        errors = sorted(self._validator(entry).iter_errors(check), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            if err.validator == "required":
                missing = err.message.split("'")[1] if "'" in err.message else "input"
                field_name = next((k for k, v in entry.request_map.items() if v == missing), missing)
                raise invalid(field_name, "field required")
            if err.validator == "additionalProperties":
                raise invalid("parameters", err.message)
            key = str(err.path[0]) if err.path else "parameters"
            where = origin.get(key, f"parameters.{key}")
            if len(err.path) > 1:  # inside a structured input: name the exact place
                inner = error_path(list(err.path)[1:])
                where += inner if inner.startswith("[") else f".{inner}"
            raise invalid(where, _describe(err))
        inputs = {k: v for k, v in inputs.items() if v is not None or k in media}
        return BuiltInputs(inputs=inputs, origin=origin, media=media)


def check_model_kind(entry: ModelEntry | None, model_id: str, kind: str) -> ModelEntry:
    if entry is None:
        raise invalid("model", f"unknown model {model_id!r}; GET /api/models lists them")
    if entry.kind != kind:
        raise invalid("model", f"{model_id} makes {entry.kind}, not {kind}")
    return entry


__all__ = [
    "AddedSource",
    "BuiltInputs",
    "Catalog",
    "ModelEntry",
    "check_model_kind",
    "entry_from_json",
    "error_path",
    "media_refs",
    "set_path",
]
