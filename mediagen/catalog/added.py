"""Models added to the catalog from Replicate at run time, kept in the `added_models` table.

The table, not a file, because every process of a deployment must see an addition: an API
process adds a model and a worker on another machine runs it. `AddedModels` is the catalog's
`AddedSource`: `stamp()` is one small aggregate query the catalog repeats at most once a second
(and at once when asked for an id it does not know), and only a changed stamp reads the rows.

A row's `entry` holds the catalog entry's JSON plus `source` (where it came from: the model page,
its cover and example, and the version asked for, if one was), which the catalog ignores.
`refresh_added` is the part of `mediagen models sync` that re-reads each added model from
Replicate: its schema, and its latest version unless a version was asked for when it was added.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mediagen.catalog.registry import ModelEntry, entry_from_json
from mediagen.catalog.tables import AddedModel
from mediagen.db.session import Database
from mediagen.errors import Conflict

__all__ = ["AddedModels", "AddedRecord", "refresh_added"]

log = logging.getLogger("mediagen.catalog.added")


@dataclass(frozen=True)
class AddedRecord:
    """One added model as the browse page and the API list it."""

    id: str
    kind: str
    version: str | None
    title: str
    description: str
    added_by: str | None
    created_at: datetime
    updated_at: datetime
    source: dict[str, Any]


def _record(row: AddedModel) -> AddedRecord:
    entry = row.entry or {}
    return AddedRecord(
        id=row.id,
        kind=row.kind,
        version=row.version,
        title=str(entry.get("title") or row.id),
        description=str(entry.get("description") or ""),
        added_by=row.added_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source=dict(entry.get("source") or {}),
    )


class AddedModels:
    """The `added_models` rows: the catalog's source of added entries, and their writes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # the catalog's AddedSource --------------------------------------------------------------
    def stamp(self) -> object:
        """Changes whenever a model is added, removed or refreshed (count and latest update)."""
        with self.db.read() as s:
            count, latest = s.execute(select(func.count(), func.max(AddedModel.updated_at))).one()
        return (int(count), latest)

    def load(self) -> list[ModelEntry]:
        with self.db.read() as s:
            rows = list(s.scalars(select(AddedModel).order_by(AddedModel.id)))
        entries: list[ModelEntry] = []
        for row in rows:
            try:
                entries.append(entry_from_json(row.entry))
            except (TypeError, ValueError) as exc:  # a row written by a newer version, say
                log.warning("ignoring added model %s: %s", row.id, exc)
        return entries

    # reads and writes -----------------------------------------------------------------------
    def records(self) -> list[AddedRecord]:
        with self.db.read() as s:
            return [_record(r) for r in s.scalars(select(AddedModel).order_by(AddedModel.created_at.desc()))]

    def raw(self, model_id: str) -> dict[str, Any] | None:
        with self.db.read() as s:
            row = s.get(AddedModel, model_id)
            return dict(row.entry) if row is not None else None

    def insert(self, entry: Mapping[str, Any], *, added_by: str | None) -> None:
        model_id = str(entry["id"])
        try:
            with self.db.write() as s:
                if s.get(AddedModel, model_id) is not None:
                    raise Conflict(f"{model_id} is already in the catalog (added)", field="model")
                s.add(
                    AddedModel(
                        id=model_id,
                        kind=str(entry["kind"]),
                        version=entry.get("version"),
                        entry=dict(entry),
                        added_by=added_by,
                    )
                )
        except IntegrityError as exc:  # added by another request at the same moment
            raise Conflict(f"{model_id} is already in the catalog (added)", field="model") from exc

    def update(self, entry: Mapping[str, Any]) -> bool:
        """Replace an added model's entry (a refresh); False when it is gone meanwhile."""
        with self.db.write() as s:
            row = s.get(AddedModel, str(entry["id"]))
            if row is None:
                return False
            row.kind = str(entry["kind"])
            row.version = entry.get("version")
            row.entry = dict(entry)
            return True

    def remove(self, model_id: str) -> bool:
        with self.db.write() as s:
            result = s.execute(delete(AddedModel).where(AddedModel.id == model_id))
            return isinstance(result, CursorResult) and result.rowcount > 0


def refresh_added(store: AddedModels, fetch: Any, model_ids: list[str] | None = None) -> Iterator[str]:
    """Re-read each added model (all, or those in `model_ids`) from Replicate through
    `fetch(model_id, version) -> entry JSON` (which raises MediagenError or ValueError with the
    reason); one line per model. A model that fails keeps its entry as it was."""
    try:
        records = store.records()
    except SQLAlchemyError as exc:
        yield f"added models: skipped: cannot read the database ({type(exc).__name__})"
        return
    wanted = [r for r in records if model_ids is None or r.id in model_ids]
    for record in sorted(wanted, key=lambda r: r.id):
        asked = record.source.get("requested_version")
        try:
            entry = fetch(record.id, asked if isinstance(asked, str) else None)
        except Exception as exc:  # noqa: BLE001 (every failure is reported, none stops the others)
            yield f"{record.id}: failed: {exc}"
            continue
        if entry["kind"] != record.kind:
            yield (
                f"{record.id}: failed: it now makes {entry['kind']}, not {record.kind}; "
                "remove it and add it again"
            )
            continue
        if not store.update(entry):
            yield f"{record.id}: skipped: removed meanwhile"
            continue
        new = entry.get("version")
        if entry.get("official"):
            note = "official (model endpoint)"
        elif new == record.version:
            note = f"version {(new or '-')[:12]} (unchanged{', as asked' if asked else ''})"
        else:
            note = f"version {(record.version or '-')[:12]} → {(new or '-')[:12]}"
        inputs = len((entry.get("input_schema") or {}).get("properties") or {})
        yield f"{record.id}: added model, {inputs} inputs, {note}"
