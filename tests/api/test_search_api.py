"""Search endpoints: text + filters, image upload checks, SQL metacharacters, bad input → 4xx, never 500."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from api.live import LiveServer

NASTY = [
    "' OR '1'='1",
    "'; DROP TABLE assets; --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "%' OR 1=1 --",
    "Canon\\'",
    "$1",
    "%s",
    "{}",
    "😀 ünïcødé",
    "a" * 200,
]
STRING_FILTERS = ["make", "model", "lens_model", "country", "state", "city", "file_name_contains", "ocr_text"]


def _count_assets(live: LiveServer) -> int:
    with live.db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM assets")
        return cur.fetchone()["n"]


def test_text_search_returns_own_assets_with_urls(live: LiveServer) -> None:
    own = {str(a["id"]) for a in live.alice.assets}
    with live.client(live.alice) as c:
        r = c.post("/api/search/smart", json={"query": "a bird of prey", "size": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) == 5 and body["next_page"] == 2
        assert {i["id"] for i in body["items"]} <= own
        distances = [i["distance"] for i in body["items"]]
        assert distances == sorted(distances)
        first = body["items"][0]
        assert first["thumbnail_url"].startswith(f"/api/assets/{first['id']}/thumbnail")
        assert body["plan"]["strategy"] in ("exact", "approximate")
        seen = [i["id"] for i in body["items"]]
        page = 2
        while page is not None:  # walk the pages: every asset exactly once
            r = c.post("/api/search/smart", json={"query": "a bird of prey", "size": 5, "page": page}).json()
            seen += [i["id"] for i in r["items"]]
            page = r["next_page"]
        assert sorted(seen) == sorted(own)


def _names(r) -> set[str]:  # noqa: ANN001
    assert r.status_code == 200, r.text
    return {i["original_file_name"] for i in r.json()["items"]}


def test_filters_narrow_results(live: LiveServer) -> None:
    """Each filter against the truth read from the index rows (not hard-coded)."""
    assets = live.alice.assets
    with live.client(live.alice) as c:
        smart = lambda **kw: c.post("/api/search/smart", json={"query": "a photo", "size": 200, **kw})  # noqa: E731
        assert _names(smart()) == {a["original_file_name"] for a in assets}
        with_gps = {a["original_file_name"] for a in assets if a["latitude"] is not None}
        assert with_gps and _names(smart(has_gps=True)) == with_gps
        assert _names(smart(has_gps=False)) == {a["original_file_name"] for a in assets} - with_gps
        gps = next(a for a in assets if a["latitude"] is not None)
        lat, lon = gps["latitude"], gps["longitude"]
        assert gps["original_file_name"] in _names(smart(near=[lat, lon, 5]))
        assert _names(smart(bbox=[lat - 0.1, lon - 0.1, lat + 0.1, lon + 0.1])) == {gps["original_file_name"]}
        assert _names(smart(bbox=[-10, -10, 10, 10])) == set()
        rated = {a["original_file_name"] for a in assets if (a["rating"] or 0) >= 1}
        assert rated and _names(smart(rating_min=1)) == rated
        assert _names(smart(file_name_contains="FALCON")) == {"prairie_falcon.jpg", "copy-of-prairie_falcon.jpg"}
        lib = smart(library_ids=[str(live.alice.library["id"])])
        assert len(lib.json()["items"]) == len(assets)
        fav = smart(is_favorite=True).json()
        assert fav["items"] == [] and fav["total_indexed"] == len(assets)
        assert smart(taken_after="2100-01-01T00:00:00").json()["items"] == []
        by_date = smart(order="date").json()["items"]
        dates = [i["local_date_time"] for i in by_date]
        assert dates == sorted(dates, reverse=True)
        close = smart(max_distance=0.0).json()["items"]
        assert close == []  # nothing is at distance 0 from a text query
        assert smart(rating=9).status_code == 422 and smart(bbox=[1, 2]).status_code == 422
        assert smart(bbox=[50, 0, 10, 0]).status_code in (400, 422)  # south > north
        assert smart(visibility=["public"]).status_code == 422
        assert smart(with_deleted=True, trashed_only=True).status_code in (400, 422)
        # A denormal coordinate made PostgreSQL's radians() underflow (a 500); coordinates count to ~1 cm.
        tiny = smart(near=[5e-324, 5e-324, 1])
        assert tiny.status_code == 200, tiny.text
        assert _names(tiny) == {
            a["original_file_name"]
            for a in assets
            if a["latitude"] is not None and abs(a["latitude"]) < 0.01 and abs(a["longitude"]) < 0.01
        }
        assert smart(near=[0, 0, 1e9]).status_code in (400, 422)


@pytest.mark.parametrize("field", STRING_FILTERS + ["query"])
def test_sql_metacharacters_are_harmless(live: LiveServer, field: str) -> None:
    before = _count_assets(live)
    with live.client(live.alice) as c:
        for value in NASTY:
            body = {"query": "photo", field: value}
            r = c.post("/api/search/smart", json=body)
            assert r.status_code == 200, (field, value, r.status_code, r.text)
            items = r.json()["items"]
            if field == "file_name_contains":  # taken literally: `%` and `_` are not wildcards
                assert all(value.lower() in i["original_file_name"].lower() for i in items), (value, items)
            elif field != "query":
                assert items == [], (field, value)  # no camera or place is called that
    assert _count_assets(live) == before


def test_sql_metacharacters_in_typed_fields_are_422(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        for body in (
            {"query": "x", "taken_after": "2020-01-01'; DROP TABLE assets; --"},
            {"query": "x", "library_ids": ["' OR 1=1 --"]},
            {"query": "x", "rating_min": "1 OR 1=1"},
            {"query": "x", "is_favorite": "true' --"},
            {"query": "x", "type": "IMAGE' OR '1'='1"},
            {"query": "x", "page": "1; DROP TABLE assets"},
        ):
            r = c.post("/api/search/smart", json=body)
            assert r.status_code == 422, (body, r.status_code)
            assert r.json()["message"]
        r = c.get("/api/assets/' OR 1=1 --")
        assert r.status_code in (404, 422)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"query": ""}, 422),
        ({"query": "x" * 1001}, 422),
        ({"query": "x", "size": 0}, 422),
        ({"query": "x", "size": 100000}, 422),
        ({"query": "x", "page": 0}, 422),
        ({"query": "x", "page": 500, "size": 200}, 422),  # deeper than the search service allows
        ({"query": "x", "rating_min": 9}, 422),
        ({"query": "x", "bogus": 1}, 422),
        ({"query": "nul\u0000byte"}, 422),
        ({"query": "x", "city": "nul\u0000"}, 422),
        ({"query": ["not", "a", "string"]}, 422),
    ],
)
def test_bad_search_bodies(live: LiveServer, body: dict, status: int) -> None:
    with live.client(live.alice) as c:
        r = c.post("/api/search/smart", json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert r.json()["message"] and r.json()["statusCode"] == status


def test_malformed_requests(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        r = c.post("/api/search/smart", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["message"]
        r = c.post("/api/search/smart", content=b"query=x", headers={"content-type": "text/plain"})
        assert r.status_code == 422
        r = c.post("/api/search/smart", content=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
        assert r.status_code in (400, 422) and r.json()["message"]  # too deep to parse
        r = c.post("/api/search/smart", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["message"]
        chunks = (b"x" * 65536 for _ in range(40))  # no Content-Length: cut off while streaming
        r = c.post("/api/search/smart", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["message"]
        assert c.get("/api/nope").status_code == 404 and "no such endpoint" in c.get("/api/nope").json()["message"]
        assert c.delete("/api/libraries").status_code == 405


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_image_upload_search(live: LiveServer) -> None:
    own = {str(a["id"]) for a in live.alice.assets}
    photo = (live.alice.root / "prairie_falcon.jpg").read_bytes()
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("x.bin", photo, "application/octet-stream")})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items and {i["id"] for i in items} <= own
        assert items[0]["original_file_name"] == "prairie_falcon.jpg"  # the same photo is its own nearest
        r = c.post(
            "/api/search/image",
            files={"file": ("q.jpg", photo)},
            data={"filters": json.dumps({"rating_min": 1}), "size": "3"},
        )
        assert [i["original_file_name"] for i in r.json()["items"]] == ["mongolels.jpg"]


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (b"just some text, not an image", 415, "not a supported image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "not a supported image"),
        (b"%PDF-1.4 fake", 415, "not a supported image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, 422, "cannot be decoded"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 422, "cannot be decoded"),
        (b"", 422, "empty"),
    ],
)
def test_bad_uploads(live: LiveServer, payload: bytes, status: int, words: str) -> None:
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("photo.jpg", payload, "image/jpeg")})
        assert r.status_code == status, (payload[:10], r.status_code, r.text)
        assert words in r.json()["message"]


def test_upload_form_errors(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        assert c.post("/api/search/image", data={"size": "5"}).status_code == 422  # no file
        r = c.post("/api/search/image", files={"file": ("q.jpg", _jpeg())}, data={"filters": "{nope"})
        assert r.status_code == 422 and "filters" in r.json()["message"]
        r = c.post("/api/search/image", files={"file": ("q.jpg", _jpeg())}, data={"filters": '{"rating_min": "x"}'})
        assert r.status_code == 422 and r.json()["message"].startswith("filters.rating_min:")
        r = c.post("/api/search/image", files={"file": ("q.jpg", _jpeg())}, data={"page": "-1"})
        assert r.status_code == 422
        limit = live.app.state.ctx.max_upload_bytes
        r = c.post("/api/search/image", files={"file": ("big.jpg", b"\xff\xd8\xff" + b"\0" * limit)})
        assert r.status_code == 413 and "limit" in r.json()["message"]

        def chunked_upload():  # no Content-Length: the limit must hold while streaming
            yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n\xff\xd8\xff'
            for _ in range(limit // 65536 + 40):
                yield b"\0" * 65536
            yield b"\r\n--B--\r\n"

        r = c.post(
            "/api/search/image", content=chunked_upload(), headers={"content-type": "multipart/form-data; boundary=B"}
        )
        assert r.status_code == 413 and "limit" in r.json()["message"]


def test_decompression_bomb_is_refused(live: LiveServer) -> None:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 Mpx, a few KB compressed
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("bomb.png", buf.getvalue())})
        assert r.status_code == 413 and "MP limit" in r.json()["message"]


def test_similar_paging_and_bad_params(live: LiveServer) -> None:
    aid = live.alice.assets[0]["id"]
    with live.client(live.alice) as c:
        r = c.get(f"/api/assets/{aid}/similar", params={"size": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert str(aid) not in {i["id"] for i in r.json()["items"]}
        assert c.get(f"/api/assets/{aid}/similar", params={"size": "x"}).status_code == 422
        assert c.get(f"/api/assets/{aid}/similar", params={"page": 0}).status_code == 422
        assert c.get("/api/assets/not-a-uuid/similar").status_code == 422


@pytest.mark.parametrize(
    "name",
    [
        "formats/heic/IMG_2682.heic",
        "formats/avif/8bit-sRGB.avif",
        "formats/jxl/8bit-sRGB.jxl",
        "formats/webp/denali.webp",
        "formats/png/density_plot.png",
        "metadata/faces/portrait-orientation-6.jpg",
    ],
)
def test_every_supported_format_is_accepted_as_a_query(live: LiveServer, name: str) -> None:
    with live.client(live.bob) as c:
        # The browser's Content-Type is ignored: the bytes decide.
        r = c.post("/api/search/image", files={"file": ("upload", (live.photos / name).read_bytes(), "text/plain")})
        assert r.status_code == 200, (name, r.text)
        assert len(r.json()["items"]) == c.get("/api/users/me").json()["assets"]  # other tests may add some


def test_text_in_photos_field(live: LiveServer) -> None:
    """`ocr_text` alone ranks by the text read in photos; with a query it filters; never another's photos."""
    mine = [a["id"] for a in live.alice.assets[:2]]
    theirs = live.bob.assets[0]["id"]
    rows = [(mine[0], "KIRIN beer\n一番搾り"), (mine[1], "TODO list\nIMPORTANT"), (theirs, "KIRIN too")]
    with live.db.connection() as conn:
        for aid, text in rows:
            conn.execute(
                "INSERT INTO asset_text (asset_id, checksum, text) SELECT id, checksum, %s FROM assets WHERE id = %s",
                (text, aid),
            )
    try:
        with live.client(live.alice) as c:
            r = c.post("/api/search/smart", json={"ocr_text": "kirin"})
            assert r.status_code == 200, r.text
            assert [i["id"] for i in r.json()["items"]] == [str(mine[0])]
            assert r.json()["plan"]["strategy"] == "text"
            r = c.post("/api/search/smart", json={"ocr_text": "搾り", "query": "a photo"})
            assert [i["id"] for i in r.json()["items"]] == [str(mine[0])]
            r = c.post("/api/search/smart", json={"ocr_text": "important list", "size": 1})
            assert [i["id"] for i in r.json()["items"]] == [str(mine[1])]
            assert c.post("/api/search/smart", json={}).status_code in (400, 422)
            assert c.post("/api/search/smart", json={"ocr_text": ""}).status_code == 422
    finally:
        with live.db.connection() as conn:
            conn.execute("DELETE FROM asset_text")


def test_resolve_duplicates(live: LiveServer) -> None:
    """The suggested keeper comes with each group; resolving trashes the others, only the caller's own."""
    with live.client(live.alice) as c:
        groups = c.get("/api/duplicates").json()["groups"]
        assert groups, "the live library holds a re-encoded copy of a photo"
        g = groups[0]
        ids = [a["id"] for a in g["assets"]]
        assert g["keep"] in ids
        others = [i for i in ids if i != g["keep"]]
        with live.client(live.bob) as b:  # another's photos: not found, nothing trashed
            r = b.post("/api/duplicates/resolve", json={"keep": g["keep"], "trash": others})
            assert r.status_code == 404, r.text
        r = c.post("/api/duplicates/resolve", json={"keep": g["keep"], "trash": [g["keep"]]})
        assert r.status_code == 400
        assert c.post("/api/duplicates/resolve", json={"keep": "x", "trash": others}).status_code == 422
        try:
            r = c.post("/api/duplicates/resolve", json={"keep": g["keep"], "trash": others})
            assert r.status_code == 200 and r.json()["trashed"] == len(others), r.text
            assert c.get("/api/duplicates").json()["groups"] == groups[1:]
        finally:
            c.post("/api/assets/bulk", json={"ids": others, "action": "restore"})


def test_query_arithmetic_fields(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        plain = c.post("/api/search/smart", json={"query": "a bird", "size": 5}).json()["items"]
        mixed = c.post(
            "/api/search/smart", json={"query": '"a bird" + "at night"', "subtract_text": ["people"], "size": 5}
        )
        assert mixed.status_code == 200, mixed.text
        assert [i["distance"] for i in mixed.json()["items"]] != [i["distance"] for i in plain]  # another vector
        like = c.post("/api/search/similar", json={"asset_id": str(live.alice.assets[0]["id"]), "add_text": ["snow"]})
        assert like.status_code == 200, like.text
        assert c.post("/api/search/smart", json={"query": '"a" + '}).status_code == 422
        assert c.post("/api/search/smart", json={"query": "beach - beach"}).status_code == 400
        assert c.post("/api/search/smart", json={"query": "x", "add_text": [""]}).status_code == 422
