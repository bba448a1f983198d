"""One search box: a text query is read for what it names (search/understand.py: places and cameras become
filters), its operators (search/querytext.py: "phrases", -word / NOT word, a OR b), and its words are also looked up
as text — in the photo (OCR), its description, its file name, its folder (db/lexical.py). Results fuse the two:

  * photos matching words as text come first, more words matched first, then by CLIP similarity;
  * then every other photo, by CLIP similarity.

Why a tiered boost and not reciprocal-rank fusion: a text match here is exact evidence the user typed (a file name,
the word on a sign), while CLIP's rank is fuzzy; RRF gives the first CLIP hit as much weight as the first text match,
so a page interleaves them (on the synthetic library, precision@10 of queries naming the prefix of 10 file names:
boost 1.00, RRF 0.60 — benchmarks/hybrid_bench.py). The boost also keeps pages exact and complete: the order is a
total order over the filtered photos, so a page holds min(k, matches) rows and matches a brute-force reference
(tests/search/test_hybrid.py).

Quoted phrases must appear: as text in the photo when some photo shows it, else in a file name (a filter, so the
search stays complete). NOT terms steer the CLIP vector away (as negative_text) and rule out the photos whose text,
file name, folder, place or camera they name; the CLIP ranking is read deep enough to fill the page without them.
OR runs each alternative (each with its own derived filters) and merges them, each photo at its best key."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import numpy as np
from pydantic import BaseModel

from photosearch.db import lexical
from photosearch.db import search as sq
from photosearch.search.arithmetic import is_arithmetic
from photosearch.search.query import MAX_DEPTH, MAX_K, SearchError, SearchQuery
from photosearch.search.querytext import Branch, parse
from photosearch.search.understand import derive_camera, derive_places, folder_named, names_in_scope

if TYPE_CHECKING:
    from photosearch.search.service import SearchHit, SearchPage, SearchService

LEX_MAX = 1000  # photos a word may match as text and still come first (more: "broad", left to CLIP)
EXCLUDE_MAX = MAX_DEPTH  # photos a NOT can rule out and still keep a page complete
MAX_ALTERNATIVES = 8  # a OR b OR ...: each runs a search of its own
MAX_TERMS = 16  # words of one alternative looked up as text, and NOT terms (a long sentence: its first words)
_NAME_LIKE = re.compile(r"[\d_.]")  # a word that may begin a file name: IMG_2682, DSC0001, 2024-05-01

Kind = Literal["place", "camera", "text", "file name", "folder", "description", "not", "or", "broad"]


class Understood(BaseModel):
    """One part of the query and what it became: a filter (`field` = `value`) or text looked up (`matches`)."""

    text: str
    kind: Kind
    field: str | None = None
    value: str | None = None
    matches: int | None = None


def _page_type():
    from photosearch.search.service import SearchPage

    class UnderstoodPage(SearchPage):
        understood: list[Understood] = []

    return UnderstoodPage


_Page = None


def page_type():
    """SearchPage plus `understood` (made lazily: search/service.py imports this module's callers)."""
    global _Page
    if _Page is None:
        _Page = _page_type()
    return _Page


class _Alternative:
    """One OR alternative, ready to run: its query (derived filters set, vector given), lexical terms, exclusions."""

    def __init__(
        self, query: SearchQuery, terms: list[lexical.LexicalTerm], said: list[Understood], vector_ms: float
    ) -> None:
        self.query, self.terms, self.said, self.vector_ms = query, terms, said, vector_ms


def _alternative(conn, service, query: SearchQuery, branch: Branch, excluded: list[str], scope, names) -> _Alternative:
    said: list[Understood] = []
    update: dict = {"text": branch.text, "understand": False}
    for kind, found in (("place", derive_places(branch.text, names)), ("camera", derive_camera(branch.text, names))):
        for field, value in found.items():
            if getattr(query, field) is None:
                update[field] = value
                said.append(Understood(text=value, kind=kind, field=field, value=value))
    ocr, name = [], None
    for phrase in branch.phrases:
        where = lexical.phrase_fields(conn, scope, phrase)
        if "file name" in where and "text" not in where and name is None:
            name = phrase
            said.append(Understood(text=phrase, kind="file name", field="file_name_contains", value=phrase))
        else:
            ocr.append(phrase)
    if ocr and query.ocr_text is None:
        update["ocr_text"] = " ".join(ocr)
        said.append(Understood(text=" ".join(ocr), kind="text", field="ocr_text", value=update["ocr_text"]))
    if name is not None and query.file_name_contains is None:
        update["file_name_contains"] = name
    if excluded:
        update["negative_text"] = ", ".join([*excluded, *([query.negative_text] if query.negative_text else [])])
    used = {v.casefold() for u in said if u.value for v in (u.value, *u.value.split())}
    words = [w for w in branch.words() if w.casefold() not in used and not any(w in p for p in branch.phrases)]
    terms = [_term(w, names) for w in [*words, *branch.phrases][:MAX_TERMS]]
    broad = lexical.broad_terms(conn, scope, terms, LEX_MAX)
    said += [Understood(text=terms[i].text, kind="broad") for i in sorted(broad)]
    terms = [t for i, t in enumerate(terms) if i not in broad]
    sub = query.model_copy(update=update)
    t0 = time.perf_counter()
    vec, _ = service.query_vector(conn, sub, scope)  # encoded once: the CLIP search below is given the vector
    vector_ms = (time.perf_counter() - t0) * 1000
    clip = sub.model_copy(
        update={"text": None, "negative_text": None, "add_text": None, "subtract_text": None, "vector": vec.tolist()}
    )
    return _Alternative(clip, terms, said, vector_ms)


def _term(word: str, names: dict) -> lexical.LexicalTerm:
    name_like = bool(_NAME_LIKE.search(word)) and " " not in word
    return lexical.LexicalTerm(word, name=name_like, folder=folder_named(word, names))


def _exclusions(excluded: list[str], names: dict) -> tuple[list[lexical.LexicalTerm], dict[str, list[str]], list]:
    """NOT terms: as text to rule out, as place/camera names to rule out, and what the plan says of them."""
    terms, metadata, said = [], {}, []
    for word in excluded:
        terms.append(_term(word, names))
        for found in (derive_places(word, names), derive_camera(word, names) or derive_camera(f"{word} camera", names)):
            for field, value in found.items():
                metadata.setdefault(field, []).append(value)
        said.append(Understood(text=word, kind="not"))
    return terms, metadata, said


def _clip_top(service: SearchService, query: SearchQuery, user: dict, n: int) -> tuple[list[SearchHit], SearchPage]:
    """The first n CLIP hits under the query's filters (with relevant_only: every relevant one, up to MAX_K)."""
    if query.relevant_only:
        page = service.search(query.model_copy(update={"k": MAX_K, "page": 1, "order": "relevance"}), user)
        return page.items, page
    k = min(MAX_K, max(n, 1))
    hits: list[SearchHit] = []
    first = None
    for p in range(1, MAX_DEPTH // k + 1):
        page = service.search(query.model_copy(update={"k": k, "page": p, "order": "relevance"}), user)
        first = first or page
        hits += page.items
        if len(hits) >= n or page.next_page is None:
            break
    assert first is not None
    return hits, first


def understood_search(service: SearchService, query: SearchQuery, user: dict) -> SearchPage:
    from photosearch.search.service import _autocommit

    assert query.text is not None
    t0 = time.perf_counter()
    if is_arithmetic(query.text):  # '"beach" + "sunset"': its quotes are terms, not phrases to find
        page = service.search(query.model_copy(update={"understand": False}), user)
        page.plan.reason = "arithmetic: the terms are not read for names; " + page.plan.reason
        return page
    parsed = parse(query.text)
    if not parsed.branches:
        raise SearchError("the query needs something to look for besides what it rules out")
    if len(parsed.branches) > MAX_ALTERNATIVES:
        raise SearchError(f"at most {MAX_ALTERNATIVES} alternatives (OR) in one query")
    parsed.excluded = parsed.excluded[:MAX_TERMS]
    with service.db.connection() as conn, _autocommit(conn):
        scope = service.owner_scope(conn, query, user)
        names = names_in_scope(conn, scope, query.text)
        not_terms, not_meta, said = _exclusions(parsed.excluded, names)
        alts = [_alternative(conn, service, query, b, parsed.excluded, scope, names) for b in parsed.branches]
        found = [_matches(conn, a, scope, not_terms, not_meta) for a in alts]
    vector_ms = sum(a.vector_ms for a in alts)  # the text encoder's time (its first load included), not reading
    page = _assemble(service, query, user, alts, found, said, (time.perf_counter() - t0) * 1000 - vector_ms)
    page.plan.timings_ms = {**page.plan.timings_ms, "vector": round(vector_ms, 3)}
    return page


def _matches(conn, alt: _Alternative, scope, not_terms, not_meta) -> tuple[list, set[UUID]]:
    """(text matches, ruled-out ids) of one alternative, under its filters."""
    where = sq.compile_filters(alt.query, scope)
    vec = np.asarray(alt.query.vector, dtype=np.float32)
    out = set()
    if not_terms:
        out = lexical.excluded(conn, where, scope, not_terms, not_meta, EXCLUDE_MAX)
    hits = lexical.lexical_matches(conn, where, scope, alt.terms, vec, alt.query.distance, LEX_MAX)
    return [h for h in hits if h[0] not in out], out


def _assemble(service, query, user, alts, found, said, understand_ms) -> SearchPage:
    from photosearch.search.service import SearchHit, _autocommit, score_of

    keys: dict[UUID, tuple[float, float]] = {}  # id -> (-share of words matched, distance): smaller is better
    hits: dict[UUID, SearchHit] = {}
    plan = None
    for alt, (matches, out) in zip(alts, found, strict=True):
        n_terms = max(len(alt.terms), 1)
        for aid, terms, _fields, dist in matches:
            key = (-len(terms) / n_terms, dist)
            keys[aid] = min(keys.get(aid, key), key)
        top, page = _clip_top(service, alt.query, user, query.depth + len(matches) + len(out))
        plan = plan or page.plan
        for h in top:
            if h.id not in out:
                hits.setdefault(h.id, h)
                keys[h.id] = min(keys.get(h.id, (0.0, h.distance)), (0.0, h.distance))
        said = said + alt.said + _lexical_said(alt, matches)
    missing = [i for i in keys if i not in hits]
    if missing:
        with service.db.connection() as conn, _autocommit(conn):
            rows = sq.hydrate(conn, missing)
        for i in missing:
            if i in rows:
                d = keys[i][1]
                hits[i] = SearchHit(**rows[i], distance=d, score=score_of(query.distance, d))
    ranked = sorted((i for i in keys if i in hits), key=lambda i: (*keys[i], str(i)))
    return _page(query, [hits[i] for i in ranked], plan, said, len(alts), understand_ms)


def _lexical_said(alt: _Alternative, matches: list) -> list[Understood]:
    out = []
    for i, term in enumerate(alt.terms):
        fields: dict[str, int] = {}
        for _, terms, where, _ in matches:
            if i in terms:
                for f in where:
                    fields[f] = fields.get(f, 0) + 1
        for f, n in sorted(fields.items(), key=lambda kv: -kv[1]):
            out.append(Understood(text=term.text, kind=f, matches=n))  # type: ignore[arg-type]
    return out


def _page(query: SearchQuery, ranked: list, plan, said: list[Understood], alternatives: int, ms: float) -> SearchPage:
    if query.relevant_only and query.order in ("date", "date_asc"):
        ranked.sort(key=lambda h: h.local_date_time, reverse=query.order == "date")
    items = ranked[query.offset : query.offset + query.k]
    if not query.relevant_only and query.order in ("date", "date_asc"):
        items.sort(key=lambda h: h.local_date_time, reverse=query.order == "date")
    if alternatives > 1:
        said = [Understood(text=f"{alternatives} alternatives", kind="or"), *said]
    plan.reason = f"understood: {describe(said)}; " + plan.reason if said else plan.reason
    plan.rows = len(items)
    plan.timings_ms = {**plan.timings_ms, "understand": round(ms, 3)}
    more = len(items) == query.k and query.depth + query.k <= MAX_DEPTH
    if query.relevant_only:
        more = query.offset + query.k < len(ranked)
    return page_type()(
        items=items, page=query.page, k=query.k, next_page=query.page + 1 if more else None, plan=plan, understood=said
    )


def describe(said: list[Understood]) -> str:
    """The plan's words: '"Kyoto" as the city (filter), "KIRIN" as text in the photo (3 photos)'."""
    parts = []
    for u in said:
        if u.kind == "not":
            parts.append(f'not "{u.text}"')
        elif u.kind == "broad":
            parts.append(f'"{u.text}" in over {LEX_MAX} photos (not brought first)')
        elif u.kind == "or":
            parts.append(u.text)
        elif u.field is not None:
            parts.append(f'"{u.text}" as the {u.field.replace("_", " ")} (filter)')
        else:
            where = "text in the photo" if u.kind == "text" else f"the {u.kind}"
            parts.append(f'"{u.text}" as {where} ({u.matches} photo{"" if u.matches == 1 else "s"})')
    return ", ".join(parts)
