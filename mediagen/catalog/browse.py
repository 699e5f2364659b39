"""The model browser: search Replicate, look at a model, add it to the catalog or remove it.

Search goes to Replicate's `GET /v1/search` (models, each with its latest version's schema and
default example, and the collections that match) and, for the first matching collections,
`GET /v1/collections/{slug}`, whose models join the results. Each result says what it would make
here (`inference.build_entry` on its latest version) or why it cannot be added.

Adding is for an admin whose key reaches every client (a model is visible to everyone): the
model and its version are read from Replicate, turned into a catalog entry and stored in
`added_models` (`added.AddedModels`), which every process's catalog reads. A packaged model
cannot be added (it is there already) nor removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from mediagen.auth.service import Principal
from mediagen.catalog.added import AddedModels, AddedRecord, refresh_added
from mediagen.catalog.browse_schemas import (
    MODEL_ID,
    VERSION_ID,
    CandidateOut,
    CollectionOut,
    ExampleFile,
    PreviewOut,
    SearchOut,
)
from mediagen.catalog.inference import Built, Unsupported, build_entry, example_files, infer_kind, kind_of_url
from mediagen.catalog.registry import Catalog, ModelEntry
from mediagen.config import Settings
from mediagen.engines.replicate_wire import api_client
from mediagen.errors import Conflict, Forbidden, NotFound, Unavailable, invalid

__all__ = ["ModelBrowser", "ReplicateReader"]

MAX_QUERY = 200
_SHOWN = ("input_schema", "defaults", "request_map", "media_inputs")  # of an entry, on a preview
COLLECTIONS_FOLLOWED = 2  # matching collections whose models join a search's results
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class _Missing(Exception):
    """Replicate answered 404."""


class ReplicateReader:
    """Read-only calls to Replicate's HTTP API, failures as domain errors a person can act on."""

    def __init__(self, token: str, base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self._client = api_client(token, base_url, timeout=TIMEOUT, transport=transport)

    def __enter__(self) -> ReplicateReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise Unavailable(f"Replicate is not reachable: {type(exc).__name__}", retry_after=5) from exc
        if response.status_code == 404:
            raise _Missing(path)
        if response.status_code in (401, 403):
            raise Unavailable(
                f"Replicate refused the token ({response.status_code}): check REPLICATE_API_TOKEN"
            )
        if response.status_code == 429:
            wait = response.headers.get("retry-after") or response.headers.get("ratelimit-reset") or "5"
            retry = int(float(wait)) + 1 if re.fullmatch(r"\d+(\.\d+)?", wait) else 5
            raise Unavailable("Replicate is rate limiting us: try again shortly", retry_after=retry)
        if not response.is_success:
            raise Unavailable(f"Replicate answered {response.status_code} for GET /{path}", retry_after=5)
        try:
            return response.json()
        except ValueError as exc:
            raise Unavailable(f"Replicate's answer to GET /{path} is not JSON", retry_after=5) from exc


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _http(value: Any) -> str | None:
    """A link or image address from Replicate's answer, only if it is a plain http(s) URL."""
    text = _str(value)
    return text if text is not None and text.startswith(("https://", "http://")) else None


class ModelBrowser:
    """Search, preview, add, remove and refresh the models added from Replicate."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: AddedModels,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self._transport = transport

    def _reader(self) -> ReplicateReader:
        token = self.settings.replicate_api_token
        if not token:
            raise Unavailable(
                "the model browser needs Replicate: set REPLICATE_API_TOKEN on the server "
                "to search and add models"
            )
        return ReplicateReader(token, self.settings.replicate_base_url, self._transport)

    def _ours(self, model_id: str) -> ModelEntry | None:
        """The catalog's entry, as last read (no database check per search result)."""
        return self.catalog.entries.get(model_id) or self.catalog.added().get(model_id)

    def _in_catalog(self, model_id: str) -> str | None:
        if model_id in self.catalog.entries:
            return "built-in"
        return "added" if model_id in self.catalog.added() else None

    # search ----------------------------------------------------------------------------------
    def search(self, query: str, *, limit: int = 20) -> SearchOut:
        text = query.strip()
        if not text:
            raise invalid("q", "give something to search for")
        if len(text) > MAX_QUERY:
            raise invalid("q", f"at most {MAX_QUERY} characters")
        with self._reader() as replicate:
            found = replicate.get("search", {"query": text, "limit": limit})
            models: dict[str, CandidateOut] = {}
            for item in found.get("models") or []:
                model = item.get("model") if isinstance(item, Mapping) else None
                if isinstance(model, Mapping) and (candidate := self._candidate(model)) is not None:
                    models.setdefault(candidate.id, candidate)
            collections = [
                CollectionOut(
                    slug=str(c["slug"]),
                    name=str(c.get("name") or c["slug"]),
                    description=_str(c.get("description")),
                )
                for c in found.get("collections") or []
                if isinstance(c, Mapping) and isinstance(c.get("slug"), str)
            ]
            for collection in collections[:COLLECTIONS_FOLLOWED]:
                try:
                    members = replicate.get(f"collections/{collection.slug}").get("models") or []
                except _Missing:
                    continue
                for model in members:
                    if len(models) >= limit:
                        break
                    if isinstance(model, Mapping) and (candidate := self._candidate(model)) is not None:
                        models.setdefault(candidate.id, candidate).collections.append(collection.slug)
        rows = list(models.values())[:limit]
        return SearchOut(query=text, models=rows, collections=collections, count=len(rows))

    def _candidate(self, model: Mapping[str, Any]) -> CandidateOut | None:
        owner, name = _str(model.get("owner")), _str(model.get("name"))
        if owner is None or name is None:
            return None
        model_id = f"{owner}/{name}"
        ours = self._ours(model_id)  # in the catalog already: what it makes here is known
        kind, why = (ours.kind, None) if ours else self._would_make(model, model.get("latest_version"))
        run_count = model.get("run_count")
        return CandidateOut(
            id=model_id,
            owner=owner,
            name=name,
            description=_str(model.get("description")),
            url=_http(model.get("url")) or f"https://replicate.com/{model_id}",
            run_count=run_count if isinstance(run_count, int) else None,
            cover_image_url=_http(model.get("cover_image_url")),
            official=bool(model.get("is_official")),
            kind=kind,  # type: ignore[arg-type]
            why=why,
            in_catalog=self._in_catalog(model_id),  # type: ignore[arg-type]
        )

    def _would_make(self, model: Mapping[str, Any], version: Any) -> tuple[str, str | None]:
        if isinstance(version, Mapping) and isinstance(version.get("openapi_schema"), Mapping):
            try:
                built = build_entry(model, version, requested_version=None)
            except Unsupported as exc:
                return "unsupported", str(exc)
            return str(built.entry["kind"]), None
        example = model.get("default_example")
        output = example.get("output") if isinstance(example, Mapping) else None
        inferred = infer_kind(None, output, f"{model.get('owner')}/{model.get('name')}")
        return (inferred.kind, None) if inferred.kind else ("unsupported", inferred.why)

    # one model -------------------------------------------------------------------------------
    def _fetch(
        self, model_id: str, version: str | None, *, looking: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model and the version chosen. An unknown model is a 422 naming `model` to an add
        request, and a 404 to someone `looking` at it (a page or GET address that names nothing)."""
        if not re.fullmatch(MODEL_ID, model_id):
            if looking:
                raise NotFound(f"model {model_id!r} not found")
            raise invalid("model", "must be owner/name, as on replicate.com")
        if version is not None and not re.fullmatch(VERSION_ID, version):
            raise invalid("version", "must be a version id: 64 hex digits")
        owner, name = model_id.split("/", 1)
        with self._reader() as replicate:
            try:
                model = replicate.get(f"models/{owner}/{name}")
            except _Missing:
                if looking:
                    raise NotFound(f"Replicate has no public model {model_id!r}") from None
                raise invalid("model", f"Replicate has no public model {model_id}") from None
            latest = model.get("latest_version") if isinstance(model, Mapping) else None
            chosen = version or (latest.get("id") if isinstance(latest, Mapping) else None)
            if not chosen:
                raise invalid("model", f"{model_id} has no version on Replicate yet")
            if (
                version is None
                and isinstance(latest, Mapping)
                and isinstance(latest.get("openapi_schema"), Mapping)
            ):
                return dict(model), dict(latest)
            try:
                found = replicate.get(f"models/{owner}/{name}/versions/{chosen}")
            except _Missing:
                field = "version" if version else "model"
                raise invalid(field, f"{model_id} has no version {chosen}") from None
        return dict(model), dict(found)

    def build(self, model_id: str, version: str | None = None, kind: str | None = None) -> Built:
        """The entry `model_id` would have here, read from Replicate now (422 naming `model` when
        it cannot be added, saying why)."""
        model, found = self._fetch(model_id, version)
        try:
            return build_entry(model, found, requested_version=version, kind=kind)
        except Unsupported as exc:
            raise invalid("kind" if kind and "kind must" in str(exc) else "model", str(exc)) from exc

    def preview(self, model_id: str, version: str | None = None) -> PreviewOut:
        """A model as the browse page shows it: what it makes, its inputs and its example."""
        model, found = self._fetch(model_id, version, looking=True)
        candidate = self._candidate(model)
        if candidate is None:
            raise NotFound(f"model {model_id!r} not found")
        base = candidate.model_dump()
        example = model.get("default_example")
        output = example.get("output") if isinstance(example, Mapping) else None
        files = [ExampleFile(url=url, kind=kind_of_url(url)) for _k, url in example_files(output)][:8]
        example_input = example.get("input") if isinstance(example, Mapping) else None
        extra: dict[str, Any] = {
            "example_input": dict(example_input) if isinstance(example_input, Mapping) else None,
            "example_files": files,
            "version": _str(found.get("id")),
        }
        ours = self._ours(model_id) if version is None else None
        if ours is not None:  # in the catalog: its inputs as they are used here
            entry: dict[str, Any] = {k: getattr(ours, k) for k in ("kind", "version", *_SHOWN)}
            notes: list[str] = []
        else:
            try:
                built = build_entry(model, found, requested_version=version)
            except Unsupported as exc:
                base.update(kind="unsupported", why=str(exc))
                return PreviewOut(**base, **extra)
            entry, notes = built.entry, built.notes
        base.update(kind=entry["kind"], why=None)
        extra.update({k: entry[k] for k in _SHOWN}, version=entry["version"], notes=notes)
        return PreviewOut(**base, **extra)

    # add, remove, list, refresh ---------------------------------------------------------------
    @staticmethod
    def _check_admin(principal: Principal, what: str) -> None:
        if not principal.is_admin or principal.clients is not None:
            raise Forbidden(f"only an admin who reaches every client may {what} models", field="model")

    def add(
        self, principal: Principal, model_id: str, version: str | None = None, kind: str | None = None
    ) -> ModelEntry:
        self._check_admin(principal, "add")
        if self._in_catalog(model_id) == "built-in":
            raise Conflict(f"{model_id} is already in the catalog (built in)", field="model")
        if self.catalog.get(model_id) is not None:
            raise Conflict(
                f"{model_id} is already in the catalog (added); `mediagen models sync` refreshes it",
                field="model",
            )
        built = self.build(model_id, version, kind)
        entry = dict(built.entry)
        entry["source"] = {**entry["source"], "added_by_email": principal.email}
        self.store.insert(entry, added_by=principal.user_id or None)
        added = self.catalog.get(model_id)
        if added is None:  # the catalog re-reads on a miss, so this is a database that lost it
            raise Unavailable(f"{model_id} was stored but the catalog cannot read it back", retry_after=1)
        return added

    def remove(self, principal: Principal, model_id: str) -> None:
        self._check_admin(principal, "remove")
        if model_id in self.catalog.entries:
            raise Conflict(
                f"{model_id} is built in: only models added from Replicate can be removed", field="model"
            )
        if not self.store.remove(model_id):
            raise NotFound(f"model {model_id!r} not found")
        self.catalog.added(fresh=True)

    def added(self) -> list[AddedRecord]:
        return self.store.records()

    def refresh(self, model_ids: list[str] | None = None) -> list[str]:
        """`models sync` for added models: each re-read from Replicate; one line per model."""

        def fetch(model_id: str, version: str | None) -> dict[str, Any]:
            old = self.store.raw(model_id) or {}
            built = self.build(model_id, version, kind=str(old.get("kind") or "") or None)
            source = {
                **built.entry["source"],
                **{k: v for k, v in (old.get("source") or {}).items() if k == "added_by_email"},
            }
            return {**built.entry, "source": source}

        return list(refresh_added(self.store, fetch, model_ids))
