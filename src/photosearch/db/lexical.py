"""SQL for the one search box (search/hybrid.py): the names a query may mention (places, cameras, folders of the
photos in scope) and the photos whose text matches a query's words — text read in the photo (OCR), description,
file name, folder. Always scoped to the owners in scope; every value a bound parameter.

Matching, per term: OCR text and descriptions by their words (to_tsvector 'simple', GIN indexes) or as a
substring (scripts without word breaks, parts of words); a file name by its beginning (migration 085's
B-tree: "IMG_2682" finds IMG_2682.heic); a folder by its exact name (from the cached list of folder names)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from photosearch.db.search import OPERATORS, Where, like_pattern, set_local

FIELDS = ("text", "description", "file name", "folder")  # where a term can be found, as the plan names them
_OWNED = "(%(_o)s::uuid[] IS NULL OR {a}.owner_id = ANY(%(_o)s::uuid[]))"
# Scripts written without spaces between words: a term in them is also looked for inside words (substring).
_NO_WORD_BREAKS = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@dataclass(frozen=True)
class LexicalTerm:
    """A word or quoted phrase to look up; `name`: may be the beginning of a file name; `folder`: the name of a
    folder of the photos in scope."""

    text: str
    name: bool = False
    folder: str | None = None


# A photo's folder name (the last folder of its path), as migration 086 indexes it lower-cased.
FOLDER = "substring({a}.original_path from '([^/\\\\]+)[/\\\\][^/\\\\]*$')"
NAMED = ("city", "state", "country", "make", "model")


def names_named(
    conn: psycopg.Connection, scope: list[UUID] | None, candidates: list[str], make_words: list[str]
) -> dict[str, list[str]]:
    """Which of the candidates (lower-cased words and runs of words of a query) are the city, state, country,
    camera make or model, or folder name of a photo in scope; each as the photos spell it. `make_words`: first
    words of a camera maker's name ("nikon" for NIKON CORPORATION). One statement of index probes (the place and
    camera indexes of migration 070, the folder index of 086): no scan of the library, nothing to cache."""
    makers = _makers_said(conn, make_words) if make_words else []
    params: dict[str, Any] = {"_o": scope, "_c": candidates, "_m": candidates + makers}
    parts = [
        sql.SQL(
            "SELECT {kind}, (SELECT c.{col} FROM search_ivf c WHERE lower(c.{col}) = x AND c.{col} IS NOT NULL"
            " AND {owned} LIMIT 1) FROM unnest({values}::text[]) x"
        ).format(
            kind=sql.Literal(col),
            col=sql.Identifier(col),
            owned=sql.SQL(_OWNED.format(a="c")),
            values=sql.Placeholder("_m" if col == "make" else "_c"),
        )
        for col in NAMED
    ]
    folder = FOLDER.format(a="a")
    parts.append(
        sql.SQL(
            "SELECT 'folder', (SELECT {folder} FROM assets a WHERE lower({folder}) = x AND a.deleted_at IS NULL"
            " AND {owned} LIMIT 1) FROM unnest(%(_c)s::text[]) x"
        ).format(folder=sql.SQL(folder), owned=sql.SQL(_OWNED.format(a="a")))
    )
    with conn.transaction():  # a probe that finds nothing must not become a scan (LIMIT 1 over a guessed 1/16)
        set_local(conn, {"enable_seqscan": "off"})
        rows = conn.execute(sql.SQL(" UNION ALL ").join(parts), params).fetchall()
    out: dict[str, list[str]] = {kind: [] for kind in (*NAMED, "folder")}
    for kind, name in rows:
        if name and name not in out[kind]:
            out[kind].append(name)
    return out


def _makers_said(conn: psycopg.Connection, words: list[str]) -> list[str]:
    """Camera makers (lower-cased) whose first word is one of `words` ("nikon" -> "nikon corporation"): the
    distinct makers, read by a loose scan of the maker index (one probe per maker, not a scan of the photos)."""
    rows = conn.execute(
        "WITH RECURSIVE m(v) AS (SELECT min(lower(make)) FROM search_ivf WHERE make IS NOT NULL"
        " UNION ALL SELECT (SELECT min(lower(make)) FROM search_ivf WHERE make IS NOT NULL AND lower(make) > m.v)"
        " FROM m WHERE m.v IS NOT NULL) SELECT v FROM m WHERE v IS NOT NULL"
    ).fetchall()
    return [r[0] for r in rows if r[0].split()[0] in words]


def _term_matches(term: LexicalTerm, i: int, params: dict[str, Any]) -> list[sql.Composable]:
    """One SELECT (asset_id, term, field) per place the term may be found."""
    params[f"_q{i}"] = term.text
    params[f"_l{i}"] = like_pattern(term.text)
    substring = bool(_NO_WORD_BREAKS.search(term.text))
    parts = [
        f"SELECT t.asset_id, {i} AS term, 0 AS field FROM asset_text t JOIN assets a ON a.id = t.asset_id"  # noqa: S608
        f" WHERE (t.words @@ plainto_tsquery('simple', %(_q{i})s)"
        + (f" OR t.text ILIKE %(_l{i})s ESCAPE '\\'" if substring else "")
        + ") AND "
        + _OWNED.format(a="a"),
        f"SELECT e.asset_id, {i}, 1 FROM exif e JOIN assets a ON a.id = e.asset_id"  # noqa: S608
        f" WHERE (to_tsvector('simple', coalesce(e.description, '')) @@ plainto_tsquery('simple', %(_q{i})s)"
        + (f" OR (e.description <> '' AND e.description ILIKE %(_l{i})s ESCAPE '\\')" if substring else "")
        + ") AND "
        + _OWNED.format(a="a"),
    ]
    if term.name:
        params[f"_n{i}"] = like_pattern(term.text.lower())[1:]  # the beginning of the name: 'img\_2682%'
        parts.append(
            f"SELECT a.id, {i}, 2 FROM assets a WHERE lower(a.original_file_name) LIKE %(_n{i})s ESCAPE '\\'"  # noqa: S608
            " AND " + _OWNED.format(a="a")
        )
    if term.folder:
        params[f"_f{i}"] = term.folder.lower()
        parts.append(
            f"SELECT a.id, {i}, 3 FROM assets a WHERE lower({FOLDER.format(a='a')}) = %(_f{i})s"  # noqa: S608
            " AND " + _OWNED.format(a="a")
        )
    return [sql.SQL(p) for p in parts]


def broad_terms(conn: psycopg.Connection, scope: list[UUID] | None, terms: Sequence[LexicalTerm], cap: int) -> set[int]:
    """Indexes of the terms found in more than `cap` photos in scope (a folder holding the whole library, a word on
    every receipt): too many to bring first. Each count stops at cap + 1."""
    if not terms:
        return set()
    params: dict[str, Any] = {"_o": scope, "_cap": cap + 1}
    counts = [
        sql.SQL("SELECT {i}, count(*) FROM (SELECT 1 FROM ({union}) u LIMIT %(_cap)s) x").format(
            i=sql.Literal(i), union=sql.SQL(" UNION ALL ").join(_term_matches(t, i, params))
        )
        for i, t in enumerate(terms)
    ]
    rows = conn.execute(sql.SQL(" UNION ALL ").join(counts), params).fetchall()
    return {int(i) for i, n in rows if n > cap}


def lexical_matches(
    conn: psycopg.Connection,
    where: Where,
    scope: list[UUID] | None,
    terms: Sequence[LexicalTerm],
    vec: np.ndarray,
    metric: str,
    limit: int,
) -> list[tuple[UUID, frozenset[int], frozenset[str], float]]:
    """Photos matching the filters (`where`, over smart_search) whose text, description, file name or folder
    matches at least one term: (id, indexes of the terms matched, fields matched, distance to `vec`), most terms
    matched first, then nearest. At most `limit`."""
    if not terms:
        return []
    params: dict[str, Any] = {**where.params, "_o": scope, "_vec": vec, "_lim": limit}
    selects = [p for i, t in enumerate(terms) for p in _term_matches(t, i, params)]
    query = sql.SQL(
        "WITH m AS ({union}), g AS (SELECT asset_id, array_agg(DISTINCT term) AS terms,"
        " array_agg(DISTINCT field) AS fields FROM m GROUP BY asset_id)"
        " SELECT s.asset_id, g.terms, g.fields, s.embedding {op} %(_vec)s AS distance"
        " FROM {from_} JOIN g ON g.asset_id = s.asset_id WHERE {clause}"
        " ORDER BY cardinality(g.terms) DESC, distance, s.asset_id LIMIT %(_lim)s"
    ).format(
        union=sql.SQL(" UNION ALL ").join(selects),
        op=sql.SQL(OPERATORS[metric]),
        from_=where.from_clause,
        clause=where.clause,
    )
    rows = conn.execute(query, params).fetchall()
    return [(r[0], frozenset(r[1]), frozenset(FIELDS[f] for f in r[2]), float(r[3])) for r in rows]


def excluded(
    conn: psycopg.Connection,
    where: Where,
    scope: list[UUID] | None,
    terms: Sequence[LexicalTerm],
    metadata: dict[str, list[str]],
    limit: int,
) -> set[UUID]:
    """Photos matching the filters that a NOT term rules out: its text is in the photo's text, description, file
    name or folder, or it names the photo's place or camera (`metadata`: field -> names). At most `limit`."""
    params: dict[str, Any] = {**where.params, "_o": scope, "_lim": limit}
    selects = [p for i, t in enumerate(terms) for p in _term_matches(t, i, params)]
    for j, (column, names) in enumerate(sorted(metadata.items())):
        params[f"_m{j}"] = [n.lower() for n in names]
        selects.append(
            sql.SQL("SELECT asset_id, 0, 0 FROM search_ivf c WHERE lower(c.{col}) = ANY(%(_m{j})s) AND {owned}").format(
                col=sql.Identifier(column), j=sql.SQL(str(j)), owned=sql.SQL(_OWNED.format(a="c"))
            )
        )
    if not selects:
        return set()
    query = sql.SQL(
        "WITH m AS ({union}) SELECT DISTINCT s.asset_id FROM {from_} JOIN m ON m.asset_id = s.asset_id"
        " WHERE {clause} LIMIT %(_lim)s"
    ).format(union=sql.SQL(" UNION ALL ").join(selects), from_=where.from_clause, clause=where.clause)
    return {r[0] for r in conn.execute(query, params).fetchall()}


def phrase_fields(conn: psycopg.Connection, scope: list[UUID] | None, phrase: str) -> set[str]:
    """Where the photos in scope have this exact text: "text" (OCR), "file name" (anywhere in it)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM asset_text t JOIN assets a ON a.id = t.asset_id"  # noqa: S608 - constant SQL
        " WHERE t.text ILIKE %(_l)s ESCAPE '\\' AND " + _OWNED.format(a="a") + "),"
        " EXISTS (SELECT 1 FROM assets a WHERE a.original_file_name ILIKE %(_l)s ESCAPE '\\' AND "
        + _OWNED.format(a="a")
        + ")",
        {"_l": like_pattern(phrase), "_o": scope},
    ).fetchone()
    return {name for name, found in zip(("text", "file name"), row, strict=True) if found}
