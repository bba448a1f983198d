"""One search box on the synthetic library (which knows every photo's city, camera and file name): names in the
query become filters, file names are found as text, quoted phrases / NOT / OR work, and every page is what a numpy
brute force over the library's own arrays says it must be (complete: min(k, matches) rows)."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.config import Settings
from photosearch.db import Database
from photosearch.db.accounts import create_user
from photosearch.models import load_clip
from photosearch.search import SearchQuery, SearchService
from photosearch.search.query import SearchError
from photosearch.search.querytext import parse
from photosearch.search.synthetic import CAMERAS, CITIES, normalise
from tests.search.reference import reference_mask
from tests.search.test_cli_duplicates import _library


def test_parse_operators() -> None:
    p = parse('dog "KIRIN" -people NOT "fast food" OR cat t-shirt black or white')
    assert [b.text for b in p.branches] == ["dog KIRIN", "cat t-shirt black or white"]
    assert p.branches[0].phrases == ["KIRIN"] and p.excluded == ["people", "fast food"]
    assert parse("a dog").plain and not parse("-x").branches
    assert parse("dogs on the beach").branches[0].words() == ["dogs", "beach"]


@pytest.fixture
def box(db: Database, settings: Settings):
    lib, _ = _library(db, settings, n=800)
    model = load_clip(settings)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    return lib, model, SearchService(db, lambda: model), admin


def _vec(model, text: str, negative: str | None = None) -> np.ndarray:
    v = normalise(np.asarray(model.encode_text(text), dtype=np.float32))
    if negative:
        v = normalise(v - 0.5 * np.asarray(model.encode_text(negative), dtype=np.float32))
    return v


def _expected(lib, mask: np.ndarray, vec: np.ndarray, first: np.ndarray | None = None) -> list:
    """The brute-force order: photos in `first` (text matches), then the rest, each by cosine distance."""
    d = 1.0 - lib.embeddings @ vec
    tier = np.zeros(len(lib)) if first is None else (~first).astype(float)
    idx = [i for i in np.lexsort((d, tier)) if mask[i]]
    return [lib.ids[i] for i in idx]


def _ids(page) -> list:
    return [h.id for h in page.items]


def test_city_and_camera_become_filters_and_pages_are_complete(box) -> None:
    lib, model, service, admin = box
    counts = np.bincount(lib.city[lib.city >= 0], minlength=len(CITIES))
    city = CITIES[int(np.argmax(counts))][0]
    text = f"a dog in {city.lower()}"
    page = service.search(SearchQuery(text=text, k=30, understand=True), admin)
    assert page.plan.reason.startswith(f'understood: "{city}" as the city (filter)')
    assert ("place", "city", city) in [(u.kind, u.field, u.value) for u in page.understood]
    want = _expected(lib, reference_mask(lib, SearchQuery(text=text, city=city)), _vec(model, text))
    got = _ids(page) + _ids(service.search(SearchQuery(text=text, k=30, page=2, understand=True), admin))
    assert got == want[:60] and len(got) == min(60, len(want))

    cams = np.bincount(lib.camera[lib.camera >= 0], minlength=len(CAMERAS))
    make, model_name = CAMERAS[int(np.argmax(cams))][:2]
    for text, field, value in ((f"sunset {model_name}", "model", model_name), (f"shot on {make}", "make", make)):
        page = service.search(SearchQuery(text=text, k=40, understand=True), admin)
        assert f'"{value}" as the {field} (filter)' in page.plan.reason
        mask = reference_mask(lib, SearchQuery(text=text, **{field: value}))
        assert _ids(page) == _expected(lib, mask, _vec(model, text))[:40]
    assert not service.search(SearchQuery(text="apple tree", k=5, understand=True), admin).understood


def test_file_names_come_first_then_clip(box) -> None:
    lib, model, service, admin = box
    mask = reference_mask(lib, SearchQuery(text="x"))
    i = int(np.nonzero(mask)[0][17])
    stem = lib.file_names[i].rsplit(".", 1)[0]
    page = service.search(SearchQuery(text=stem, k=10, understand=True), admin)
    assert page.items[0].id == lib.ids[i] and len(page.items) == 10
    assert f'"{stem}" as the file name (1 photo)' in page.plan.reason
    prefix = stem[:-1]  # ten file names begin with it
    first = np.array([f.lower().startswith(prefix.lower()) for f in lib.file_names])
    want = _expected(lib, mask, _vec(model, prefix), first)
    pages = [service.search(SearchQuery(text=prefix, k=8, page=p, understand=True), admin) for p in (1, 2)]
    got = [h for page in pages for h in _ids(page)]
    assert got == want[:16] and 5 <= int((first & mask).sum()) <= 10

    quoted = service.search(SearchQuery(text=f'"{stem}"', k=10, understand=True), admin)  # must appear: a filter
    assert _ids(quoted) == [lib.ids[i]] and quoted.understood[0].field == "file_name_contains"
    nothing = service.search(SearchQuery(text='"no such words anywhere"', k=10, understand=True), admin)
    assert nothing.items == [] and "ocr text" in nothing.plan.reason


def test_not_rules_out_and_or_merges(box) -> None:
    lib, model, service, admin = box
    counts = np.bincount(lib.city[lib.city >= 0], minlength=len(CITIES))
    top = [CITIES[int(c)][0] for c in np.argsort(-counts)[:2]]
    base = reference_mask(lib, SearchQuery(text="x"))
    # NOT a place: none of its photos, and the page is still full and in CLIP order without them
    page = service.search(SearchQuery(text=f"dog -{top[0]}", k=50, understand=True), admin)
    mask = base & (lib.city != CITIES.index(next(c for c in CITIES if c[0] == top[0])))
    assert _ids(page) == _expected(lib, mask, _vec(model, "dog", top[0]))[:50]
    assert f'not "{top[0]}"' in page.plan.reason
    # OR: either city, each photo ranked by its own alternative's similarity
    a, b = f"dog in {top[0]}", f"cat in {top[1]}"
    page = service.search(SearchQuery(text=f"{a} OR {b}", k=40, understand=True), admin)
    d = np.full(len(lib), np.inf)
    for text, city in ((a, top[0]), (b, top[1])):
        m = reference_mask(lib, SearchQuery(text=text, city=city))
        d[m] = np.minimum(d[m], 1.0 - lib.embeddings[m] @ _vec(model, text))
    order = [lib.ids[i] for i in np.argsort(d, kind="stable") if np.isfinite(d[i])]
    assert _ids(page) == order[:40] and page.understood[0].kind == "or"
    assert {h.city for h in page.items} == set(top)
    with pytest.raises(SearchError, match="at most 8 alternatives"):  # each alternative is a search: bounded
        service.search(SearchQuery(text=" OR ".join(["dog"] * 9), understand=True), admin)
    long = service.search(SearchQuery(text=" ".join(f"w{i}x" for i in range(150)), k=5, understand=True), admin)
    assert len(long.items) == 5


def test_descriptions_by_word_and_cjk_substring(box, db: Database) -> None:
    lib, model, service, admin = box
    mask = reference_mask(lib, SearchQuery(text="x"))
    rows = [int(i) for i in np.nonzero(mask)[0][[3, 40, 41]]]
    with db.connection() as conn:
        for i, text in zip(rows, ("Grandma's birthday cake", "birthday at the lake", "京都の祇園祭"), strict=True):
            conn.execute("UPDATE exif SET description = %s WHERE asset_id = %s", (text, lib.ids[i]))
    page = service.search(SearchQuery(text="birthday cake", k=6, understand=True), admin)
    assert _ids(page)[:2] == [lib.ids[rows[0]], lib.ids[rows[1]]]  # both words, then one of them
    said = {(u.text, u.kind, u.matches) for u in page.understood}
    assert {("birthday", "description", 2), ("cake", "description", 1)} <= said
    first = np.zeros(len(lib), dtype=bool)
    first[rows[:2]] = True
    want = _expected(lib, mask, _vec(model, "birthday cake"), first)
    assert _ids(page)[2:] == [i for i in want if i not in _ids(page)[:2]][:4]  # then CLIP order
    cjk = service.search(SearchQuery(text="祇園", k=3, understand=True), admin)  # no word breaks: a substring
    assert _ids(cjk)[0] == lib.ids[rows[2]]


def test_a_word_in_too_many_photos_is_left_to_clip(box, monkeypatch: pytest.MonkeyPatch) -> None:
    from photosearch.search import hybrid

    lib, model, service, admin = box
    monkeypatch.setattr(hybrid, "LEX_MAX", 50)  # Allen's folder holds ~98 % of the library
    page = service.search(SearchQuery(text="Allen", k=20, understand=True), admin)
    assert [(u.text, u.kind) for u in page.understood] == [("Allen", "broad")]
    mask = reference_mask(lib, SearchQuery(text="x"))
    assert _ids(page) == _expected(lib, mask, _vec(model, "Allen"))[:20]  # plain CLIP order, no tier


def test_timings_keep_the_text_encoder_apart_from_reading_the_query(box, db: Database) -> None:
    """`understand` is the reading of the query (names, phrases, lexical lookups); the text encoder's time, its
    first model load included, is `vector`. A loader that takes 0.3 s shows up in `vector` only."""
    import time

    _, model, _, admin = box

    def slow_first_load(loaded: list = []):  # noqa: B006 - remembers the first call
        if not loaded:
            time.sleep(0.3)
            loaded.append(model)
        return model

    page = SearchService(db, slow_first_load).search(
        SearchQuery(text="a dog on the beach", k=5, understand=True), admin
    )
    t = page.plan.timings_ms
    assert t["vector"] >= 300 > t["understand"] > 0, t
