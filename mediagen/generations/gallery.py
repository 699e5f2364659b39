"""A gallery page as SQL: filters, search, order and the page, built once and run by the service
(and bare by bench/gallery.py, so the benchmark measures exactly what a request runs)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, tuple_

from mediagen.auth.service import Principal
from mediagen.db.session import Database
from mediagen.errors import invalid
from mediagen.generations.presenters import PUBLIC_FIELDS, AssetRow
from mediagen.generations.search import TextSearch, text_search, words
from mediagen.generations.tables import AssetTag, Generation
from mediagen.loudness import PRESETS
from mediagen.vocabulary import MAX_ID

# The table's own columns, not the ORM attributes: run as Core (`read_page`), a cached statement's
# result columns are matched to this statement's by identity, where ORM attributes were compared
# with `==`, each comparison building an SQL expression (a fifth of the page's time).
PUBLIC_COLUMNS = tuple(getattr(Generation, name).property.columns[0] for name in PUBLIC_FIELDS)
# Built once: a statement of 45 columns cost a quarter of a millisecond to build per request.
PAGE = select(*PUBLIC_COLUMNS)
COUNT = select(func.count()).select_from(Generation)
# A page's row: a plain named tuple of the public columns, positionally. Reading 45 attributes
# off each of 50 SQLAlchemy rows cost more than the page's query (bench/gallery.py).
PageRow = namedtuple("PageRow", PUBLIC_FIELDS)  # type: ignore[misc]
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


@dataclass(frozen=True)
class GalleryPage:
    """One page of a gallery: its rows, the count of every match (the page aside), and the cursor
    of the page after it (None on the last page, and for a search ranked by relevance)."""

    rows: list[AssetRow]
    total: int
    next_cursor: str | None


class PageQuery(TypedDict, total=False):
    """Which page of a gallery (the arguments of `read_page` after the filters)."""

    limit: Required[int]
    offset: int
    q: str | None
    sort: str | None
    cursor: str | None


def read_page(
    db: Database,
    principal: Principal,
    kind: str,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int = 0,
    q: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
) -> GalleryPage:
    """Run a gallery page (see `gallery_statements`) on one read session."""
    dialect = db.read_engine.dialect.name
    count_stmt, page_stmt = gallery_statements(
        principal, kind, filters, limit=limit, offset=offset, q=q, sort=sort, cursor=cursor, dialect=dialect
    )
    with db.read() as s:
        # Core execution on the session's connection: these are plain column selects, and the
        # ORM's per-statement and per-row machinery cost more than the queries here.
        conn = s.connection()
        total = conn.scalar(count_stmt) or 0
        rows = [PageRow._make(row) for row in conn.execute(page_stmt).all()]
    order = page_sort(sort, ranked=sort is None and bool(q and words(q)))
    after = None
    if len(rows) > limit and order is not None:
        after = encode_cursor(order, rows[limit - 1])
    # Tuples named like the row's attributes: exactly what AssetRow describes.
    return GalleryPage(cast(list[AssetRow], rows[:limit]), total, after)


def gallery_statements(
    principal: Principal,
    kind: str,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
    q: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
    dialect: str = "sqlite",
) -> tuple[Select[Any], Select[Any]]:
    """The count and page queries of a gallery page (also run bare by bench/gallery.py).

    `sort` is one of SORT_VALUES; without it the page is newest first, or with a search `q` the
    best match first. Ties are broken by id, so paging never repeats or skips an item. An
    unknown filter or sort is an InvalidInput naming it.

    The page starts after `cursor` (a `next_cursor` of the same order) or skips `offset` rows,
    never both. It reads one row more than `limit`: that row tells whether a next page exists.
    A cursor is a keyset condition, `(created_at, id) < (?, ?)` for newest first, which the
    gallery indexes answer by seeking, so a deep page costs what the first does; an offset
    steps over every row it skips.

    The page selects plain public columns, not ORM entities: a page is read-only, and building
    tracked objects cost several times the queries themselves.
    """
    conds = filter_conditions(principal, kind, filters)
    # A search of only white space (or control characters) has no words: it narrows nothing.
    search = text_search(dialect, q) if q else None
    order = page_sort(sort, ranked=sort is None and search is not None)
    count, page = COUNT, PAGE
    if search is not None:
        count, page = search.apply(count), search.apply(page)
    count = count.where(*conds)
    page = page.where(*conds)
    if cursor is not None:
        if offset:
            raise invalid("cursor", "page by cursor or by offset, not both: give offset=0 with a cursor")
        if order is None:
            raise invalid(
                "cursor", "a search ranked by relevance pages by offset; add a sort to page by cursor"
            )
        page = page.where(after_condition(order, decode_cursor(cursor, order)))
    page = page.order_by(*order_by(sort, search)).limit(limit + 1).offset(offset)
    return count, page


def page_sort(sort: str | None, *, ranked: bool) -> str | None:
    """The order a page is in (one of SORT_VALUES), or None for a search ranked by relevance."""
    if ranked:
        return None
    sort = sort or DEFAULT_SORT
    if sort not in SORT_VALUES:
        raise invalid("sort", f"unknown order {sort!r}; one of {', '.join(SORT_VALUES)}")
    return sort


# -- cursors ----------------------------------------------------------------------------------------
# A cursor is opaque to callers: URL-safe base64 (unpadded) of the JSON [sort, key, id], the order it
# belongs to and the last row's sort key (an ISO time for `created`; null for an unrated or
# unmeasured row) and id. Nothing in it is trusted: every part is checked before it reaches SQL.
CURSOR_MAX = 200  # characters; a real cursor is under 100


def encode_cursor(sort: str, row: Any) -> str:
    """The cursor of the page after `row` (a page row, or anything with the sort key and id)."""
    key = getattr(row, SORTS[sort.removeprefix("-")].key)
    if isinstance(key, datetime):
        key = (key if key.tzinfo is not None else key.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    raw = json.dumps([sort, key, row.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    """The (sort key, id) a cursor of `sort` points after; InvalidInput("cursor") for anything
    this service did not hand out, or a cursor of another order."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        their_sort, key, ident = json.loads(raw)
        if their_sort not in SORT_VALUES or type(ident) is not int or not 0 <= ident <= MAX_ID:
            raise ValueError
        key = _cursor_key(their_sort, key)
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise invalid("cursor", "not a cursor from this list: pass next_cursor as it was given") from None
    if their_sort != sort:
        raise invalid("cursor", f"this cursor pages sort={their_sort}, not sort={sort}")
    return key, ident


def _cursor_key(sort: str, key: Any) -> Any:
    """A cursor's sort key as the column's type; ValueError if it cannot be one."""
    name = sort.removeprefix("-")
    if name == "created":
        if not isinstance(key, str):
            raise ValueError
        when = datetime.fromisoformat(key)
        return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).astimezone(UTC)
    if key is None:
        return None
    if name == "rating" and type(key) is int and abs(key) <= MAX_ID:
        return key
    if name == "duration" and type(key) in (int, float) and math.isfinite(float(key)):
        return float(key)
    raise ValueError


def after_condition(sort: str, after: tuple[Any, int]) -> ColumnElement[bool]:
    """The rows after (key, id) in `sort`'s order (see `order_by`): a keyset condition."""
    key, ident = after
    descending = sort.startswith("-")
    column = SORTS[sort.removeprefix("-")]
    if column is Generation.created_at:
        # A row value: the (kind, [filter,] created_at, id) indexes seek straight to it.
        pair, point = tuple_(Generation.created_at, Generation.id), tuple_(key, ident)
        return pair < point if descending else pair > point
    later_id = Generation.id < ident if descending else Generation.id > ident
    if key is None:  # nulls come last: only nulls follow a null
        return and_(column.is_(None), later_id)
    later_key = column < key if descending else column > key
    return or_(later_key, and_(column == key, later_id), column.is_(None))


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
    order = page_sort(sort, ranked=sort is None and search is not None)
    if order is None:
        assert search is not None
        return [search.rank, Generation.created_at.desc(), Generation.id.desc()]
    descending = order.startswith("-")
    key = SORTS[order.removeprefix("-")]
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
