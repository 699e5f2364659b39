"""A gallery page as SQL: filters, order and the page, built once and run by the service (and
bare by bench/gallery.py, so the benchmark measures exactly what a request runs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select

from mediagen.auth.service import Principal
from mediagen.generations.presenters import PUBLIC_FIELDS
from mediagen.generations.tables import Generation
from mediagen.loudness import PRESETS

PUBLIC_COLUMNS = tuple(getattr(Generation, name) for name in PUBLIC_FIELDS)
GALLERY_FILTERS = ("model_id", "collection", "client_id", "campaign_id", "brief_id", "status")


def gallery_statements(
    principal: Principal, kind: str, filters: dict[str, Any], *, limit: int, offset: int, q: str | None = None
) -> tuple[Select[Any], Select[Any]]:
    """The count and page queries of a gallery page (also run bare by bench/gallery.py).

    The page selects plain public columns, not ORM entities: a page is read-only, and building
    tracked objects cost several times the queries themselves.
    """
    conds: list[ColumnElement[bool]] = [Generation.kind == kind]
    for name in GALLERY_FILTERS:
        value = filters.get(name)
        if value is not None:
            conds.append(getattr(Generation, name) == value)
    verdict = filters.get("loudness")
    if verdict is not None:
        conds.append(loudness_condition(*verdict))
    if q:
        # "Contains", literally: % and _ in what the user typed are not wildcards.
        literal = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(Generation.prompt.ilike(f"%{literal}%", escape="\\"))
    if principal.clients is not None:
        conds.append(Generation.client_id.in_(sorted(principal.clients)))
    count = select(func.count()).select_from(Generation).where(*conds)
    page = (
        select(*PUBLIC_COLUMNS)
        .where(*conds)
        .order_by(Generation.created_at.desc(), Generation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return count, page


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
