"""Full-text search over an asset's prompt, title, notes and tags, in each database's own engine:
FTS5 on SQLite (the `generations_fts` index that migration 0009 keeps in step with triggers) and
`tsvector` matching on PostgreSQL (against the expression of its GIN index).

What the user typed never reaches either engine as query syntax. On SQLite every word is quoted
as an FTS5 string, so `"`, `*`, `(`, `NEAR` or `-` are text, never operators, and cannot make a
query that fails to parse. On PostgreSQL `websearch_to_tsquery` reads it, which accepts any text.
The last word also matches as a prefix (`pian` finds piano), so a search box can answer while a
word is still being typed and `rain` still finds "rainy", as the old "prompt contains" did.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, select, table

from mediagen.generations.tables import Generation

# The indexed document on PostgreSQL: exactly the expression of `ix_generations_search` in
# migration 0009 (`PG_DOCUMENT` there; a test holds the two equal), or the index is not used.
PG_DOCUMENT = (
    "to_tsvector('english', coalesce(prompt, '') || ' ' || coalesce(title, '') || ' ' || "
    "coalesce(notes, '') || ' ' || coalesce(CAST(tags AS text), ''))"
)
FTS_TABLE = "generations_fts"
# bm25 column weights (prompt, title, notes, tags): a word in the title or the tags the team gave
# an asset says more about it than the same word somewhere in a long prompt.
FTS_WEIGHTS = (1.0, 4.0, 2.0, 3.0)
MAX_TERMS = 32  # words of one search; more say nothing a search box needs


def words(q: str) -> list[str]:
    """The search's words: split on white space, with control characters (a NUL ends an FTS5
    string early; PostgreSQL refuses it in text) and lone surrogates dropped."""
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in q)
    return cleaned.split()[:MAX_TERMS]


def prefixable(word: str) -> bool:
    """Whether a word is matched as a prefix: letters and digits ending in a letter. Numbers and
    codes match whole ("50%" must not find "500 items"), and nothing else can carry syntax."""
    return word[-1].isalpha() and all(ch.isalnum() for ch in word)


def fts5_query(q: str) -> str | None:
    """An FTS5 MATCH expression that finds rows containing every word (the last also as a prefix);
    None if nothing is left to search for."""
    terms = words(q)
    if not terms:
        return None
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    if prefixable(terms[-1]):
        quoted[-1] += "*"
    return " ".join(quoted)


@dataclass(frozen=True)
class TextSearch:
    """A search as SQL: `apply` narrows a statement over `generations` to the matches, and `rank`
    orders them best first (ascending)."""

    dialect: str
    match: Any  # what `apply` needs: an FTS subquery (SQLite) or a tsquery (PostgreSQL)
    rank: ColumnElement[Any]

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.dialect == "postgresql":
            return stmt.where(literal_column(PG_DOCUMENT).bool_op("@@")(self.match))
        # A join, not `id IN (…)` with a rank per row: FTS5 yields each match's bm25 once, while
        # a correlated rank re-ran the MATCH for every matching row (minutes on 100k rows).
        return stmt.join(self.match, self.match.c.id == Generation.id)


def text_search(dialect: str, q: str) -> TextSearch | None:
    """The search for `q` on this database, or None when `q` holds no words at all."""
    if not words(q):
        return None
    if dialect == "postgresql":
        tsquery = _pg_tsquery(q)
        rank = func.ts_rank(literal_column(PG_DOCUMENT), tsquery)
        return TextSearch(dialect, tsquery, rank.desc())
    expression = fts5_query(q)
    fts = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))
    hits = (
        select(
            fts.c.rowid.label("id"),
            func.bm25(literal_column(FTS_TABLE), *FTS_WEIGHTS).label("rank"),
        )
        .where(fts.c[FTS_TABLE].match(expression))
        .subquery("search")
    )
    return TextSearch(dialect, hits, hits.c.rank.asc())


def _pg_tsquery(q: str) -> ColumnElement[Any]:
    """`websearch_to_tsquery` of what was typed; a last word of letters and digits is matched as
    a prefix too (`to_tsquery` is given only such a word, so it never sees an operator)."""
    english: ColumnElement[Any] = literal_column("'english'::regconfig")
    terms = words(q)
    last = terms[-1]
    if not prefixable(last):
        return func.websearch_to_tsquery(english, " ".join(terms))
    prefix = func.to_tsquery(english, last + ":*")
    head = " ".join(terms[:-1])
    if not head:
        return prefix
    return func.websearch_to_tsquery(english, head).op("&&")(prefix)
