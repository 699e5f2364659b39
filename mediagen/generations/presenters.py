"""The public JSON shapes of an asset, shared by the API and the web pages (which embed it for
their scripts), so both always agree. Built as plain dicts: a gallery page serialises 100 of
these, and going through a pydantic model per row cost more than the queries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from mediagen.vocabulary import ACTIVE, KindInfo, Status


class AssetRow(Protocol):
    """What presenting an asset reads: a `Generation` row, or a gallery page's column tuple."""

    id: int
    kind: str
    prompt: str
    model_id: str
    engine: str
    parameters: dict[str, Any]
    status: str
    error: str | None
    meta: dict[str, Any]
    collection: str | None
    client_id: str | None
    campaign_id: str | None
    brief_id: str | None
    duration: float | None
    width: int | None
    height: int | None
    content_type: str | None
    size_bytes: int | None
    download_attempted: bool
    download_retries: int
    download_error: str | None
    cost_usd: float
    actual_cost_usd: float | None
    compute_seconds: float | None
    prompt_sent: str | None
    views: int | None
    clicks: int | None
    conversions: int | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    progress: float | None
    progress_note: str | None
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range: float | None
    seed: int | None
    take_group: str | None
    title: str | None
    notes: str | None
    tags: list[str] | None
    favorite: bool
    rating: int | None
    review_status: str


# The columns an AssetRow has, in the order a gallery page selects them.
PUBLIC_FIELDS: tuple[str, ...] = tuple(AssetRow.__annotations__)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def loudness_json(row: AssetRow) -> dict[str, float | None] | None:
    if row.loudness_lufs is None and row.true_peak_dbtp is None:
        return None
    return {
        "integrated_lufs": row.loudness_lufs,
        "true_peak_dbtp": row.true_peak_dbtp,
        "lra": row.loudness_range,
    }


def ctr(clicks: int | None, views: int | None) -> float | None:
    """Click-through rate, derived and never stored: null without views to divide by."""
    if not views or clicks is None:
        return None
    return round(clicks / views, 6)


def prompt_sent(row: AssetRow) -> str | None:
    """What the model was given: the branded prompt when the brand changed it, else the prompt
    as typed; an upload was given to no model."""
    if row.prompt_sent is not None:
        return row.prompt_sent
    return None if (row.meta or {}).get("uploaded") else row.prompt


def asset_json(
    row: AssetRow,
    info: KindInfo,
    derivations: Iterable[str] | None = None,
    lineage: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The public shape of one asset (`GenerationOut`); `lineage` (made_from, used_in) is given
    for a single item, not for gallery pages."""
    base = f"/api/{info.path}/{row.id}"
    data_url = f"{base}/data" if row.status == Status.COMPLETED else None
    names = sorted(derivations if derivations is not None else (row.meta or {}).get("derivations", []))
    return {
        "id": row.id,
        info.id_field: row.id,
        "kind": row.kind,
        "prompt": row.prompt,
        "model_id": row.model_id,
        "engine": row.engine,
        "parameters": row.parameters,
        "status": row.status,
        "error": row.error,
        "progress": 1.0 if row.status == Status.COMPLETED else row.progress,
        "progress_note": row.progress_note if row.status in ACTIVE else None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "completed_at": iso(row.completed_at),
        "collection": row.collection,
        "metadata": row.meta or {},
        "download_attempted": row.download_attempted,
        "download_retries": row.download_retries,
        "download_error": row.download_error,
        "client_id": row.client_id,
        "campaign_id": row.campaign_id,
        "brief_id": row.brief_id,
        "duration": row.duration,
        "width": row.width,
        "height": row.height,
        "content_type": row.content_type,
        "size_bytes": row.size_bytes,
        "cost_usd": row.cost_usd,
        "actual_cost_usd": row.actual_cost_usd,
        "compute_seconds": row.compute_seconds,
        "prompt_sent": prompt_sent(row),
        "brand_applied": list((row.meta or {}).get("brand_applied") or []),
        "views": row.views,
        "clicks": row.clicks,
        "conversions": row.conversions,
        "ctr": ctr(row.clicks, row.views),
        "data_url": data_url,
        info.url_field: data_url,
        "derivations": names,
        "waveform_url": f"{base}/waveform" if "waveform" in names else None,
        "thumbnail_url": f"{base}/thumbnail" if "thumbnail" in names else None,
        "poster_url": f"{base}/poster" if "poster" in names else None,
        "files": {name: f"{base}/files/{name}" for name in names},
        "loudness": loudness_json(row),
        "seed": row.seed,
        "take_group": row.take_group,
        "title": row.title,
        "notes": row.notes,
        "tags": list(row.tags or []),
        "favorite": bool(row.favorite),
        "rating": row.rating,
        "review_status": row.review_status,
        **(dict(lineage) if lineage is not None else {}),
    }


ACCEPTED_META = ("engine_label", "requested_model", "notice", "ignored_inputs")


def accepted_json(row: AssetRow, info: KindInfo, ids: list[int] | None = None) -> dict[str, Any]:
    """The 202 body for a new generation (seed's `{<kind>_id, status, model}` plus where to poll,
    and any notice about the model actually used). `row` is the first take; `ids` lists every
    take of the request (default: just this one)."""
    return {
        info.id_field: row.id,
        "id": row.id,
        "ids": list(ids) if ids is not None else [row.id],
        "take_group": row.take_group,
        "status": row.status,
        "model": row.model_id,
        "engine": row.engine,
        "kind": info.kind,
        "url": f"/api/{info.path}/{row.id}",
        **{k: v for k, v in (row.meta or {}).items() if k in ACCEPTED_META},
    }
