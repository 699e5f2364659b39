"""Gallery lists: every filter, every order in both directions, and full-text search with its
ranking, on SQLite (FTS5) and PostgreSQL (tsvector), through the service; and the list API's
own rules (unknown parameters are a 422 naming them) in-process.

The database is shared by a module's tests: each test files its assets under a client of its
own and lists that client, so no test sees another's."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from mediagen.api.routes.generations import SortOrder
from mediagen.app import create_app
from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.errors import InvalidInput
from mediagen.generations import search
from mediagen.generations.gallery import SORT_VALUES, gallery_statements
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.studio.schemas import AssetPatch
from mediagen.vocabulary import Status
from tests.conftest import PostgresDatabase, postgres_available
from tests.generations.conftest import make_seeded_services

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, 0)
_clients = itertools.count(1)


@dataclass
class Gallery:
    services: Services
    admin: Principal
    dialect: str

    def client(self) -> str:
        """A new client of its own for one test's assets."""
        ident = f"c{next(_clients)}"
        self.services.campaigns.create_client(self.admin, sc.ClientCreate(id=ident, name=ident))
        return ident

    def add(
        self, client: str, minute: int, *, prompt: str = "an asset", kind: str = "audio", **columns: Any
    ) -> int:
        tags = columns.pop("tags", None)
        with self.services.db.write() as s:
            row = Generation(
                kind=kind,
                prompt=prompt,
                model_id="synth/music",
                engine="synth",
                parameters={},
                meta={},
                status=columns.pop("status", Status.COMPLETED),
                client_id=client,
                created_at=T0 + timedelta(minutes=minute),
                updated_at=T0,
                **columns,
            )
            s.add(row)
            s.flush()
            gen_id = row.id
        if tags is not None:
            self.services.review.update(self.admin, kind, gen_id, AssetPatch(tags=tags))
        return gen_id

    def ids(
        self,
        client: str,
        *,
        q: str | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
        **filters: Any,
    ) -> list[int]:
        return self.page(client, q=q, sort=sort, limit=limit, offset=offset, **filters)[0]

    def page(
        self,
        client: str,
        *,
        q: str | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
        **filters: Any,
    ) -> tuple[list[int], int]:
        rows, total = self.services.generations.list(
            self.admin,
            filters.pop("kind", "audio"),
            filters={"client_id": client, **filters},
            limit=limit,
            offset=offset,
            q=q,
            sort=sort,
        )
        return [r.id for r in rows], total

    def walk(self, client: str, *, limit: int, sort: str | None = None, **query: Any) -> list[list[int]]:
        """Every page from the first, each started after the previous page's next_cursor."""
        pages: list[list[int]] = []
        cursor = None
        kind, filters = query.pop("kind", "audio"), {"client_id": client, **query.pop("filters", {})}
        while True:
            found = self.services.generations.page(
                self.admin, kind, filters, limit=limit, sort=sort, cursor=cursor, **query
            )
            pages.append([r.id for r in found.rows])
            assert len(pages) < 100, "the cursors never end"
            if found.next_cursor is None:
                return pages
            assert len(found.rows) == limit  # only a full page has a page after it
            cursor = found.next_cursor


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def gallery(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    settings: dict[str, Any] = {}
    pg = None
    if request.param == "postgresql":
        if not postgres_available():
            pytest.skip("PostgreSQL is not reachable")
        pg = PostgresDatabase()
        settings["database_url"] = pg.url
    services, _, admin = make_seeded_services(tmp_path_factory.mktemp(request.param) / "data", **settings)
    try:
        yield Gallery(services, admin, request.param)
    finally:
        services.close()
        if pg is not None:
            pg.drop()


# -- filters ---------------------------------------------------------------------------------------


def test_every_review_filter(gallery: Gallery) -> None:
    c = gallery.client()
    add = gallery.add
    a = add(
        c, 1, review_status="approved", favorite=True, rating=5, take_group="tg_one", tags=["Hero", "night"]
    )
    b = add(c, 2, review_status="approved", rating=3, take_group="tg_one", tags=["night"])
    d = add(c, 3, review_status="rejected", favorite=True, rating=1, collection="Moods")
    e = add(c, 4, status=Status.FAILED, collection="moods")
    add(c, 5, kind="image", review_status="approved", favorite=True, tags=["hero"])
    ids = gallery.ids
    assert ids(c) == [e, d, b, a]
    assert ids(c, review_status="approved") == [b, a]
    assert ids(c, review_status="draft") == [e]
    assert ids(c, favorite=True) == [d, a]
    assert ids(c, favorite=False) == [e, b]
    assert ids(c, tag="hero") == [a]
    assert ids(c, tag=" HERO ") == [a]  # tags are stored and looked up trimmed and lower-case
    assert ids(c, tag="night") == [b, a]
    assert ids(c, tag="her") == []
    assert ids(c, rating_min=3) == [b, a]
    assert ids(c, rating_min=5) == [a]
    assert ids(c, rating_min=1) == [d, b, a]  # unrated is not "at least 1"
    assert ids(c, take_group="tg_one") == [b, a]
    assert ids(c, status="failed") == [e]
    assert ids(c, collection="MOODS") == [e, d]  # any case
    assert ids(c, collection="mood") == []
    assert ids(c, review_status="approved", favorite=True, tag="hero", rating_min=3, take_group="tg_one") == [
        a
    ]
    assert gallery.page(c, favorite=True, limit=1) == ([d], 2)


def test_unknown_filters_and_orders_are_refused(gallery: Gallery) -> None:
    c = gallery.client()
    for filters, sort, field in (
        ({"colour": "red"}, None, "colour"),
        ({}, "size", "sort"),
        ({}, "--rating", "sort"),
    ):
        with pytest.raises(InvalidInput) as exc:
            gallery.ids(c, sort=sort, **filters)
        assert exc.value.field == field


# -- order ----------------------------------------------------------------------------------------


def test_every_order_both_ways_with_nulls_last_and_ties_by_id(gallery: Gallery) -> None:
    c = gallery.client()
    add = gallery.add
    a = add(c, 1, rating=3, duration=8.0)
    b = add(c, 2, rating=None, duration=2.0)
    d = add(c, 3, rating=5, duration=None)
    e = add(c, 3, rating=3, duration=8.0)  # the same minute as d: ties go by id
    f = add(c, 0, rating=None, duration=None)
    ids = gallery.ids
    assert ids(c) == ids(c, sort="-created") == [e, d, b, a, f]
    assert ids(c, sort="created") == [f, a, b, d, e]
    assert ids(c, sort="-rating") == [d, e, a, f, b]
    assert ids(c, sort="rating") == [a, e, d, b, f]
    assert ids(c, sort="-duration") == [e, a, b, f, d]
    assert ids(c, sort="duration") == [b, a, e, d, f]
    # Pages of any order put together are the whole list, each item once.
    for sort in SORT_VALUES:
        pages = [gallery.ids(c, sort=sort, limit=2, offset=o) for o in (0, 2, 4)]
        assert [i for p in pages for i in p] == ids(c, sort=sort), sort


# -- cursors --------------------------------------------------------------------------------------


def _ties_and_nulls(gallery: Gallery, c: str) -> None:
    """Eleven assets: ties in every sort key (and in created_at), nulls in rating and duration."""
    for minute, rating, duration in [
        (1, 3, 8.0), (2, None, 2.0), (3, 5, None), (3, 3, 8.0), (0, None, None), (3, 5, 2.5),
        (7, None, 8.0), (7, 1, None), (5, 3, 0.5), (3, None, 2.0), (9, 5, 8.0),
    ]:  # fmt: skip
        gallery.add(c, minute, rating=rating, duration=duration, favorite=minute % 2 == 1)


def test_cursor_pages_walk_every_row_once_in_every_order(gallery: Gallery) -> None:
    c = gallery.client()
    _ties_and_nulls(gallery, c)
    gallery.add(c, 4, kind="image")  # another kind is never on the page
    for sort in (None, *SORT_VALUES):
        whole = gallery.ids(c, sort=sort)
        assert len(whole) == 11
        for limit in (1, 2, 3, 4, 11, 50):
            pages = gallery.walk(c, limit=limit, sort=sort)
            assert [i for p in pages for i in p] == whole, (sort, limit)
            assert len(pages) == max(1, -(-11 // limit)), (sort, limit)  # no empty page at the end


def test_cursor_pages_keep_to_the_filters_and_a_sorted_search(gallery: Gallery) -> None:
    c = gallery.client()
    _ties_and_nulls(gallery, c)
    for extra in ({"favorite": True}, {"rating_min": 3}, {"favorite": True, "rating_min": 3}):
        for sort in SORT_VALUES:
            whole = gallery.ids(c, sort=sort, **extra)
            assert whole, extra
            pages = gallery.walk(c, limit=2, sort=sort, filters=extra)
            assert [i for p in pages for i in p] == whole, (sort, extra)
    d = gallery.client()
    for minute in range(7):
        gallery.add(
            d, minute // 2, prompt="piano loop" if minute != 3 else "drums", rating=minute % 3 or None
        )
    for sort in SORT_VALUES:
        whole = gallery.ids(d, q="piano", sort=sort)
        assert len(whole) == 6
        assert [i for p in gallery.walk(d, limit=4, sort=sort, q="piano") for i in p] == whole


def test_a_search_ranked_by_relevance_pages_by_offset_only(gallery: Gallery) -> None:
    c = gallery.client()
    for minute in range(3):
        gallery.add(c, minute, prompt="kazoo solo")
    ranked = gallery.services.generations.page(gallery.admin, "audio", {"client_id": c}, limit=1, q="kazoo")
    assert (len(ranked.rows), ranked.total, ranked.next_cursor) == (1, 3, None)
    cursor = gallery.services.generations.page(gallery.admin, "audio", {"client_id": c}, limit=1).next_cursor
    with pytest.raises(InvalidInput) as exc:
        gallery.services.generations.page(
            gallery.admin, "audio", {"client_id": c}, limit=1, q="kazoo", cursor=cursor
        )
    assert exc.value.field == "cursor"
    # With a sort, a search pages by cursor; a search of no words is no search (newest first).
    assert gallery.services.generations.page(
        gallery.admin, "audio", {"client_id": c}, limit=1, q="kazoo", sort="-created", cursor=cursor
    ).rows
    assert gallery.services.generations.page(
        gallery.admin, "audio", {"client_id": c}, limit=1, q=" \t ", cursor=cursor
    ).next_cursor


def test_a_cursor_does_not_repeat_or_skip_rows_when_new_ones_arrive(gallery: Gallery) -> None:
    c = gallery.client()
    old = [gallery.add(c, minute) for minute in range(5)]
    first = gallery.services.generations.page(gallery.admin, "audio", {"client_id": c}, limit=2)
    assert [r.id for r in first.rows] == old[:2:-1]
    gallery.add(c, 10)  # newer than all: an offset page would now repeat old[2]
    rest = gallery.services.generations.page(
        gallery.admin, "audio", {"client_id": c}, limit=10, cursor=first.next_cursor
    )
    assert [r.id for r in rest.rows] == old[2::-1]
    assert (rest.total, rest.next_cursor) == (6, None)


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    ["x", "!!!!", "====", "\u00e9t\u00e9", _cursor("-created", "2026-01-01T00:00:00+00:00"),
     base64.urlsafe_b64encode(b"\xff\xfe").decode(), base64.urlsafe_b64encode(b"not json").decode(),
     _cursor("-created", "yesterday", 1), _cursor("-created", None, 1), _cursor("-created", 5, 1),
     _cursor("-created", "2026-01-01T00:00:00", 2**63), _cursor("-created", "2026-01-01T00:00:00", -1),
     _cursor("-created", "2026-01-01T00:00:00", True), _cursor("-created", "2026-01-01T00:00:00", 1.5),
     _cursor("-created", "2026-01-01T00:00:00", "1"), _cursor("size", 1, 1), _cursor(["-created"], 1, 1),
     _cursor("-rating", 2**63, 1), _cursor("-rating", 2.5, 1), _cursor("-rating", "5", 1),
     _cursor("-rating", True, 1), _cursor("duration", "1.0", 1), _cursor("duration", 10**400, 1),
     base64.urlsafe_b64encode(b'["duration", NaN, 1]').decode(),
     base64.urlsafe_b64encode(b'["duration", Infinity, 1]').decode(),
     base64.urlsafe_b64encode(b'{"a": 1, "b": 2, "c": 3}').decode(), _cursor("-created") * 40,
     _cursor("created", "2026-01-01T00:00:00+00:00", 1), _cursor("rating", None, 1)],
)  # fmt: skip
def test_a_malformed_cursor_or_one_of_another_order_is_refused(gallery: Gallery, cursor: str) -> None:
    c = gallery.client()
    with pytest.raises(InvalidInput) as exc:
        gallery.services.generations.page(gallery.admin, "audio", {"client_id": c}, limit=5, cursor=cursor)
    assert exc.value.field == "cursor"


def test_a_cursor_with_an_offset_is_refused(gallery: Gallery) -> None:
    c = gallery.client()
    cursor = _cursor("-created", "2026-01-01T00:00:00+00:00", 1)
    assert gallery.services.generations.page(gallery.admin, "audio", {}, limit=5, offset=0, cursor=cursor)
    with pytest.raises(InvalidInput) as exc:
        gallery.services.generations.page(
            gallery.admin, "audio", {"client_id": c}, limit=5, offset=1, cursor=cursor
        )
    assert exc.value.field == "cursor"


def test_a_cursor_page_seeks_in_the_gallery_index(gallery: Gallery) -> None:
    """Newest first after a cursor is a range of a (kind, [filter,] created_at, id) index read in
    its order: no sort step and nothing stepped over, so a deep page costs what the first does.
    (SQLite's plan names the index; PostgreSQL picks among them by its statistics.)"""
    cursor = _cursor("-created", "2026-01-01T00:00:00+00:00", 1)
    for filters, index in (
        ({}, "ix_generations_kind_created"),
        ({"campaign_id": "x"}, "ix_generations_kind_campaign_id_created"),
    ):
        _, page = gallery_statements(
            gallery.admin, "audio", filters, limit=50, offset=0, cursor=cursor, dialect=gallery.dialect
        )
        with gallery.services.db.read() as s:
            sql = page.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
            if gallery.dialect == "sqlite":
                plan = "\n".join(str(r[-1]) for r in s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
                assert f"USING INDEX {index} (kind=? AND" in plan and "created_at<?)" in plan, plan
                assert "TEMP B-TREE" not in plan, plan
            else:
                s.execute(text("SET LOCAL enable_seqscan = off"))
                plan = "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {sql}")))
                assert "Index Cond:" in plan and "ROW(created_at, id) < ROW(" in plan, plan
                assert "Sort" not in plan, plan


# -- search ---------------------------------------------------------------------------------------


def test_search_finds_words_in_prompt_title_notes_and_tags(gallery: Gallery) -> None:
    c = gallery.client()
    add = gallery.add
    in_prompt = add(c, 1, prompt="calm piano over rain", title="Take 1")
    in_title = add(c, 2, prompt="something else", title="Piano Sketch")
    in_notes = add(c, 3, prompt="a loop", notes="needs more piano in bar 2")
    in_tags = add(c, 4, prompt="another loop", tags=["piano"])
    other = add(c, 5, prompt="drums only", title="Beat")
    ids = gallery.ids
    assert set(ids(c, q="piano")) == {in_prompt, in_title, in_notes, in_tags}
    assert set(ids(c, q="PIANO")) == {in_prompt, in_title, in_notes, in_tags}
    assert ids(c, q="piano rain") == [in_prompt]  # every word
    assert ids(c, q="rain piano") == [in_prompt]  # in any order
    assert set(ids(c, q="pian")) == {in_prompt, in_title, in_notes, in_tags}  # the last word as a prefix
    assert ids(c, q="sketch") == [in_title]
    assert ids(c, q="drums") == [other]
    assert ids(c, q="violin") == []
    assert len(ids(c, q=" \t ")) == 5  # no words: no search
    assert gallery.page(c, q="loop") == ([in_tags, in_notes], 2)
    # An explicit order wins over the ranking.
    assert ids(c, q="piano", sort="created") == [in_prompt, in_title, in_notes, in_tags]
    assert ids(c, q="piano", sort="-created", limit=2, offset=1) == [in_notes, in_title]
    assert ids(c, q="piano", review_status="approved") == []


def test_search_ranks_the_best_match_first(gallery: Gallery) -> None:
    c = gallery.client()
    best = gallery.add(c, 1, prompt="solo piano, gentle", title="Piano", notes="piano only", tags=["piano"])
    once = gallery.add(
        c, 2, prompt="a long prompt about strings, brass and a little piano somewhere at the end"
    )
    assert gallery.ids(c, q="piano") == [best, once]  # newest first would be the other way round
    assert gallery.ids(c, q="piano", sort="-created") == [once, best]


@pytest.mark.parametrize(
    "q",
    ['"', '""', "*", "(", ")", "NEAR", "a NEAR b", "NEAR(piano rain)", '"unclosed piano', "piano AND",
     "OR", "NOT piano", "-", "-piano", "piano:", "prompt:piano", "^piano", "piano*", "(piano)", "\\",
     "'", "''", "&|!", "<->", "piano <-> rain", "\x00piano", "🎹", "{piano}", "+", "a:b:c", "%", "_"],
)  # fmt: skip
def test_search_syntax_in_what_was_typed_is_never_an_error(gallery: Gallery, q: str) -> None:
    c = gallery.client()
    piano = gallery.add(c, 1, prompt="calm piano over rain")
    found = gallery.ids(c, q=q)
    assert found in ([], [piano])
    if q in ("(piano)", "piano*", "{piano}", "\x00piano", "^piano"):
        assert found == [piano], q


def test_a_search_stays_within_the_callers_clients(gallery: Gallery) -> None:
    mine, theirs = gallery.client(), gallery.client()
    ours = gallery.add(mine, 1, prompt="kumquat jingle")
    gallery.add(theirs, 2, prompt="kumquat jingle")
    limited = Principal(user_id="u", email="u@example.com", role="member", clients=frozenset({mine}))
    rows, total = gallery.services.generations.list(
        limited, "audio", filters={}, limit=10, offset=0, q="kumquat"
    )
    assert ([r.id for r in rows], total) == ([ours], 1)


def test_postgres_search_uses_the_gin_index(gallery: Gallery) -> None:
    """The query's document is the index's expression, so the planner can use the index (with
    nothing else to filter on, and sequential scans off, it must)."""
    if gallery.dialect != "postgresql":
        pytest.skip("the GIN expression index is PostgreSQL's")
    found = search.text_search("postgresql", "piano ra")
    assert found is not None
    stmt = found.apply(select(func.count()).select_from(Generation))
    with gallery.services.db.read() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in s.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_generations_search" in plan, plan


def test_the_search_document_is_the_indexed_expression() -> None:
    path = ROOT / "mediagen/db/migrations/versions/0009_studio.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert search.PG_DOCUMENT == migration.PG_DOCUMENT


def test_fts5_queries_quote_every_word() -> None:
    assert search.fts5_query('piano "x" (NEAR*') == '"piano" """x""" "(NEAR*"'
    assert search.fts5_query("calm pian") == '"calm" "pian"*'
    assert search.fts5_query("50%") == '"50%"'  # numbers and codes match whole
    assert search.fts5_query(" \x00 \t ") is None


# -- the list API ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Gallery]]:
    services, _, admin = make_seeded_services(tmp_path_factory.mktemp("api") / "data")
    _, token = services.auth.create_key(user_id=admin.user_id, name="t")
    with TestClient(create_app(services.settings, run_workers=False), headers={"X-API-Key": token}) as client:
        yield client, Gallery(services, admin, "sqlite")
    services.close()


def test_the_list_api_filters_sorts_and_searches(api: tuple[TestClient, Gallery]) -> None:
    http, g = api
    c = g.client()
    a = g.add(c, 1, prompt="hero theme", rating=4, favorite=True, review_status="approved", take_group="tg_x")
    b = g.add(c, 2, prompt="hero sting", rating=2, tags=["Final"], collection="Cuts")

    def ids(**params: Any) -> list[int]:
        r = http.get("/api/audio", params={"client_id": c, **params})
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["audio"]]

    assert ids() == [b, a]
    assert ids(sort="-rating") == [a, b] and ids(sort="rating") == [b, a]
    assert ids(favorite="true") == [a] and ids(favorite="false") == [b]
    assert ids(review_status="approved") == [a]
    assert ids(tag="final") == [b] and ids(rating_min=3) == [a] and ids(take_group="tg_x") == [a]
    assert ids(collection="cuts") == [b]
    assert ids(q="hero theme") == [a] and ids(q='"(NEAR*') == []
    assert ids(q="hero", sort="created") == [a, b]


def test_the_list_api_pages_by_cursor(api: tuple[TestClient, Gallery]) -> None:
    http, g = api
    c = g.client()
    made = [g.add(c, minute // 2, rating=minute % 3 or None) for minute in range(7)]
    for sort in ("-created", "rating", "-rating"):
        seen: list[int] = []
        params: dict[str, Any] = {"client_id": c, "sort": sort, "limit": 3}
        while True:
            r = http.get("/api/audio", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["total"], body["offset"], body["count"]) == (7, 0, len(body["audio"]))
            seen += [item["id"] for item in body["audio"]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert sorted(seen) == sorted(made) and len(seen) == 7, sort
        assert seen == [
            i["id"] for i in http.get("/api/audio", params={"client_id": c, "sort": sort}).json()["audio"]
        ]
    # An empty cursor is the first page; the whole list on one page has no next one.
    first = http.get("/api/audio", params={"client_id": c, "cursor": "", "limit": 7}).json()
    assert (len(first["audio"]), first["next_cursor"]) == (7, None)
    assert http.get("/api/audio", params={"client_id": c, "limit": 6}).json()["next_cursor"]
    ranked = http.get("/api/audio", params={"client_id": c, "q": "asset", "limit": 1}).json()
    assert (ranked["total"], ranked["next_cursor"]) == (7, None)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"cursor": "nonsense"}, "not a cursor"),
        ({"cursor": "x" * 201}, ""),
        ({"cursor": _cursor("-created", "2026-01-01T00:00:00+00:00", 1), "sort": "created"}, "sort=-created"),
        ({"cursor": _cursor("rating", None, 1)}, "sort=rating"),
        ({"cursor": _cursor("-created", "2026-01-01T00:00:00+00:00", 1), "offset": "5"}, "offset"),
        ({"cursor": _cursor("-created", "2026-01-01T00:00:00+00:00", 1), "q": "hero"}, "relevance"),
    ],
)
def test_the_list_api_refuses_a_bad_cursor_naming_it(
    api: tuple[TestClient, Gallery], params: dict[str, str], needle: str
) -> None:
    http, _ = api
    r = http.get("/api/audio", params=params)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["cursor"]
    assert needle in r.json()["detail"]


def test_the_api_offers_exactly_the_orders_the_service_knows() -> None:
    assert sorted(get_args(SortOrder)) == sorted(SORT_VALUES)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"page": "2"}, "page"),
        ({"sort": "size"}, "sort"),
        ({"sort": "+rating"}, "sort"),
        ({"rating_min": "0"}, "rating_min"),
        ({"rating_min": "6"}, "rating_min"),
        ({"favorite": "maybe"}, "favorite"),
        ({"review_status": "done"}, "review_status"),
        ({"tag": ""}, "tag"),
        ({"tag": "x" * 65}, "tag"),
        ({"take_group": "x" * 33}, "take_group"),
    ],
)
def test_the_list_api_refuses_unknown_parameters_and_bad_values(
    api: tuple[TestClient, Gallery], params: dict[str, str], field: str
) -> None:
    http, _ = api
    r = http.get("/api/images", params=params)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
