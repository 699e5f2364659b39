"""Lists on pages: paging, the rows of a client/campaign/brief picker, and gallery cards."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.presenters import asset_json
from mediagen.services import Services
from mediagen.vocabulary import KindInfo
from mediagen.web.errors import PageError

LIST_PAGE_SIZE = 50  # clients / campaigns tables
MAX_PAGE = 10**9  # past any real list, and page x size stays far inside a 64-bit offset
PICKER_LIMIT = 100  # options in a client/campaign/brief <select> (the API's page cap)


@dataclass(frozen=True)
class Pager:
    number: int
    pages: int
    total: int
    prev_url: str | None
    next_url: str | None
    first: int  # 1-based index of the first row shown
    last: int


def page_url(path: str, params: Mapping[str, Any], number: int) -> str:
    """A list's URL at page `number`, keeping its filters (page 1 has no `page`)."""
    keep = {k: v for k, v in params.items() if v not in (None, "") and k != "page"}
    query = urlencode({**keep, **({"page": number} if number > 1 else {})})
    return f"{path}?{query}" if query else path


def pager(path: str, params: Mapping[str, Any], *, page: int, size: int, total: int) -> Pager:
    pages = max(1, math.ceil(total / size))

    def url(n: int) -> str:
        return page_url(path, params, n)

    first = (page - 1) * size + 1 if total else 0
    return Pager(
        number=page,
        pages=pages,
        total=total,
        # Past the end (an old link after deletions): "previous" leads back to the last real page.
        prev_url=url(min(page - 1, pages)) if page > 1 else None,
        next_url=url(page + 1) if page < pages else None,
        first=min(first, total),
        last=min(page * size, total),
    )


def page_number(page: str | None) -> int:
    """`?page=` as a page number: anything but a positive whole number is the first page, and a
    number past `MAX_PAGE` names no page (404), rather than an offset no database can hold."""
    if not page or not (page.isascii() and page.isdigit()):
        return 1  # also "²" and other digits int() cannot read
    digits = page.lstrip("0")
    if not digits:
        return 1
    if len(digits) > len(str(MAX_PAGE)) or int(digits) > MAX_PAGE:
        raise PageError(404, "Not found", f"There is no page {page[:20]}: pages go up to {MAX_PAGE}.")
    return int(digits)


def blank(value: str | None) -> str | None:
    """Form and query values: '' means 'not given'."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def by_name(rows: Iterable[Any], attr: str = "name") -> list[Any]:
    return sorted(rows, key=lambda r: str(getattr(r, attr)).lower())


def client_choices(services: Services, me: Principal) -> list[Any]:
    rows, _ = services.campaigns.list_clients(me, q=None, limit=PICKER_LIMIT, offset=0)
    return list(rows)


def campaign_choices(services: Services, me: Principal, client_id: str | None = None) -> list[Any]:
    rows, _ = services.campaigns.list_campaigns(
        me, client_id=client_id, status=None, q=None, limit=PICKER_LIMIT, offset=0
    )
    return list(rows)


def brief_choices(
    services: Services, me: Principal, client_id: str | None = None, campaign_id: str | None = None
) -> list[Any]:
    rows, _ = services.campaigns.list_briefs(
        me, client_id=client_id, campaign_id=campaign_id, limit=PICKER_LIMIT, offset=0
    )
    return list(rows)


def options_with(rows: list[Any], selected: str | None, make: Callable[[str], Any]) -> list[Any]:
    """A select's rows plus the selected id when it is not among them (beyond the first page)."""
    if selected and all(r.id != selected for r in rows):
        try:
            return [make(selected), *rows]
        except MediagenError:
            return rows
    return rows


def campaign_labels(campaigns: Iterable[Any], clients: Iterable[Any]) -> list[tuple[Any, str]]:
    """Each campaign with the name a picker shows: its own, or "Spring Launch — Acme" where two
    clients both have a "Spring Launch" (a picker of bare names would not tell them apart)."""
    rows = list(campaigns)
    client_names = {c.id: c.name for c in clients}
    seen: dict[str, set[str | None]] = {}
    for c in rows:
        seen.setdefault(str(c.name).casefold(), set()).add(c.client_id)
    return [
        (
            c,
            f"{c.name} — {client_names.get(c.client_id, c.client_id)}"
            if len(seen[str(c.name).casefold()]) > 1
            else str(c.name),
        )
        for c in rows
    ]


def name_of(getter: Callable[[Principal, str], Any], me: Principal, ident: str | None) -> Any:
    """A related record for display, or None when it is gone or outside the user's clients."""
    if not ident:
        return None
    try:
        return getter(me, ident)
    except MediagenError:
        return None


def card_items(services: Services, info: KindInfo, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows in the API's JSON shape (one derivations query per page), so cards and JS agree."""
    rows = list(rows)
    names = services.generations.derivation_names([r.id for r in rows])
    return [asset_json(r, info, names.get(r.id, [])) for r in rows]
