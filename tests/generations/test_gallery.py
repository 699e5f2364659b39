"""Gallery lists: every filter, every order in both directions, and full-text search with its
ranking, on SQLite (FTS5) and PostgreSQL (tsvector), through the service; and the list API's
own rules (unknown parameters are a 422 naming them) in-process.

The database is shared by a module's tests: each test files its assets under a client of its
own and lists that client, so no test sees another's."""

from __future__ import annotations

import importlib.util
import itertools
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
from mediagen.generations.gallery import SORT_VALUES
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
