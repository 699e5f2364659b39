"""Jinja filters: dates, durations, sizes and prices as the pages show them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def fmt_datetime(value: datetime | str | None) -> str:
    """UTC on the server; app.js rewrites it in the reader's own time zone."""
    dt = _as_datetime(value)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


def iso(value: datetime | str | None) -> str:
    dt = _as_datetime(value)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else ""


def fmt_duration(seconds: float | None) -> str:
    """m:ss everywhere (0:08, 1:05, 1:02:03): cards, details, players and comment times read
    alike. Rounded half up, as app.js's fmtDuration does (Python's round() would round halves
    to even and disagree with the browser on 2.5 s)."""
    if seconds is None:
        return "—"
    total = max(0, math.floor(seconds + 0.5))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_ago(value: datetime | str | None, now: datetime | None = None) -> str:
    """A time as "2 h ago", for a review history; review.js keeps the same wording as time passes."""
    dt = _as_datetime(value)
    if dt is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - dt).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def fmt_size(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_price(price: Mapping[str, Any] | None) -> str:
    usd = float((price or {}).get("usd", 0.0))
    basis = (price or {}).get("basis")  # models added from Replicate: our guess, or none
    if basis == "unknown":
        return "Price unknown"
    if usd == 0:
        return "Free"
    per = (price or {}).get("per", "run")
    return f"about ${usd:g} per {per} (from an example run)" if basis else f"${usd:g} per {per}"


def fmt_usd(value: float | None) -> str:
    value = value or 0.0
    if value == 0:
        return "$0"
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


FILTERS = {
    "datetime": fmt_datetime,
    "iso": iso,
    "duration": fmt_duration,
    "ago": time_ago,
    "filesize": fmt_size,
    "price": fmt_price,
    "usd": fmt_usd,
}
