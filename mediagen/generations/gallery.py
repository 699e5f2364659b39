"""A gallery page as SQL: filters, search, order and the page, built once and run by the service
(and bare by bench/gallery.py, so the benchmark measures exactly what a request runs)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, tuple_

from mediagen.auth.service import Principal
from mediagen.db.session import Database
from mediagen.errors import invalid
from mediagen.generations.presenters import PUBLIC_FIELDS, AssetRow
from mediagen.generations.search import TextSearch, text_search
from mediagen.generations.tables import AssetTag, Generation
from mediagen.loudness import PRESETS
from mediagen.vocabulary import MAX_ID

PUBLIC_COLUMNS = tuple(getattr(Generation, name) for name in PUBLIC_FIELDS)
# Filters that are plain equality on a column of the same name (each has a gallery index).
GALLERY_FILTERS = (
    "model_id",
    "client_id",
    "campaign_id",
    "brief_id",
    "status",
    "review_status",
    "take_group",
    "favorite",
)
# Every filter the service knows; any other name is refused rather than silently ignored.
FILTERS = frozenset({*GALLERY_FILTERS, "collection", "tag", "rating_min", "loudness"})
# `sort=` names: `name` ascending, `-name` descending. Nulls (an unrated asset, a pending one
# with no duration yet) go last either way.
SORTS: dict[str, Any] = {
    "created": Generation.created_at,
    "rating": Generation.rating,
    "duration": Generation.duration,
}
SORT_VALUES = tuple(f"{sign}{name}" for name in SORTS for sign in ("", "-"))
DEFAULT_SORT = "-created"
MAX_TAG = 64


def normalise_tag(tag: str) -> str:
    """How a tag is stored and looked up: trimmed and lower-case, so "Hero " and "hero" are one
    tag (the review service writes them this way, and the `tag=` filter reads them this way)."""
    return tag.strip().lower()


def gallery_statements(
    principal: Principal,
    kind: str,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
    q: str | None = None,
    sort: str | None = None,
    dialect: str = "sqlite",
) -> tuple[Select[Any], Select[Any]]:
    """The count and page queries of a gallery page (also run bare by bench/gallery.py).

    `sort` is one of SORT_VALUES; without it the page is newest first, or with a search `q` the
    best match first. Ties are broken by id, so paging never repeats or skips an item. An
    unknown filter or sort is an InvalidInput naming it.

    The page selects plain public columns, not ORM entities: a page is read-only, and building
    tracked objects cost several times the queries themselves.
    """
    conds = filter_conditions(principal, kind, filters)
    # A search of only white space (or control characters) has no words: it narrows nothing.
    search = text_search(dialect, q) if q else None
    count = select(func.count()).select_from(Generation)
    page = select(*PUBLIC_COLUMNS)
    if search is not None:
        count, page = search.apply(count), search.apply(page)
    count = count.where(*conds)
    page = page.where(*conds).order_by(*order_by(sort, search)).limit(limit).offset(offset)
    return count, page


def filter_conditions(principal: Principal, kind: str, filters: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The WHERE terms of a gallery: the kind, the caller's clients and every filter given (a
    None value is "any")."""
    unknown = sorted(set(filters) - FILTERS)
    if unknown:
        raise invalid(unknown[0], f"unknown filter; the filters are {', '.join(sorted(FILTERS))}")
    conds: list[ColumnElement[bool]] = [Generation.kind == kind]
    for name in GALLERY_FILTERS:
        value = filters.get(name)
        if value is not None:
            conds.append(getattr(Generation, name) == value)
    collection = filters.get("collection")
    if collection is not None:
        # Case-insensitive: "Moods" and "moods" are one shelf to a person. lower() on both sides,
        # so the two sides fold alike on every database.
        conds.append(func.lower(Generation.collection) == func.lower(collection))
    tag = filters.get("tag")
    if tag is not None:
        conds.append(
            exists().where(AssetTag.generation_id == Generation.id, AssetTag.tag == normalise_tag(tag))
        )
    rating_min = filters.get("rating_min")
    if rating_min is not None:
        conds.append(Generation.rating >= rating_min)
    verdict = filters.get("loudness")
    if verdict is not None:
        conds.append(loudness_condition(*verdict))
    if principal.clients is not None:
        conds.append(Generation.client_id.in_(sorted(principal.clients)))
    return conds


def order_by(sort: str | None, search: TextSearch | None = None) -> list[Any]:
    """ORDER BY terms for `sort` (see SORT_VALUES), ending in id so the order is total."""
    if sort is None and search is not None:
        return [search.rank, Generation.created_at.desc(), Generation.id.desc()]
    sort = sort or DEFAULT_SORT
    if sort not in SORT_VALUES:
        raise invalid("sort", f"unknown order {sort!r}; one of {', '.join(SORT_VALUES)}")
    descending = sort.startswith("-")
    key = SORTS[sort.removeprefix("-")]
    if key is Generation.created_at:
        # No NULLS LAST on a column that is never null: the (kind, created_at, id) indexes then
        # serve the order in either direction, on PostgreSQL too.
        first = key.desc() if descending else key.asc()
    else:
        first = (key.desc() if descending else key.asc()).nulls_last()
    return [first, Generation.id.desc() if descending else Generation.id.asc()]


def loudness_condition(preset_name: str, verdict: str) -> ColumnElement[bool]:
    """Assets whose measured loudness `meets` a delivery preset, or is `too_loud` / `too_quiet`
    for it (the same rule as `loudness.verdict`, in SQL)."""
    preset = PRESETS[preset_name]
    lufs, peak = Generation.loudness_lufs, Generation.true_peak_dbtp
    over_peak = and_(peak.is_not(None), peak > preset.ceiling_dbtp + 0.1)
    loud = or_(lufs > preset.target_lufs + preset.tolerance_lu, and_(lufs.is_not(None), over_peak))
    quiet = and_(lufs < preset.target_lufs - preset.tolerance_lu, not_(over_peak))
    if verdict == "too_loud":
        return loud
    if verdict == "too_quiet":
        return quiet
    return and_(lufs.is_not(None), not_(loud), not_(quiet))
