"""Findings of an outside review, each on the real server and embedded database: hostile query images, the
login throttle, symlinks out of a library, edge input that must get a 4xx, what a 500 does to the connection,
and what a search plan tells a user who is not an administrator."""

from __future__ import annotations

import io
import logging
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

from api.live import UPLOAD_LIMIT, LiveServer, run_uvicorn
from photosearch.api.app import create_app
from photosearch.db.accounts import create_api_key, create_user
from photosearch.db.libraries import create_library
from photosearch.ingest import index_library

LOGIN = "/api/auth/login"


def _app(live: LiveServer, **overrides: object):
    """Another app on the live server's database, with some settings changed."""
    return create_app(live.settings.model_copy(update=overrides), db=live.db, max_upload_bytes=UPLOAD_LIMIT)


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A tiny JPEG whose header claims width × height (the pixels after it are missing)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "grey").save(buf, "JPEG", quality=50)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[: min(len(data), 631)])


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, "PNG")
    return buf.getvalue()


@contextmanager
def rss_sampled(proc: psutil.Process) -> Iterator[list[int]]:
    """This process's RSS every 10 ms while the block runs: the first entry is the RSS at the start."""
    peak, stop = [proc.memory_info().rss], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak.append(proc.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        stop.set()
        watcher.join()


def test_hostile_query_images_keep_memory_bounded_and_health_answering(live: LiveServer) -> None:
    jpeg_bomb = _jpeg_claiming(13_000, 13_000)
    png_bomb = _png(13_300, 13_300)  # 177 MP, under Pillow's own 179 MP limit
    big_ok = _png(6_000, 6_000)  # 36 MP: allowed, decoded at reduced size
    assert len(jpeg_bomb) <= 631 and len(png_bomb) < UPLOAD_LIMIT
    proc = psutil.Process()
    with live.client(live.alice) as c:
        photo = (live.photos / "albums/nature/silver_fir.jpg").read_bytes()
        assert c.post("/api/search/image", files={"file": ("q.jpg", photo)}).status_code == 200  # model loaded
        health, stop = [], threading.Event()

        def poll_health() -> None:
            with httpx.Client(base_url=live.url, timeout=10) as h:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    health.append((h.get("/api/health").status_code, time.perf_counter() - t0))
                    time.sleep(0.05)

        def upload(data: bytes) -> int:
            return c.post("/api/search/image", files={"file": ("q", data)}).status_code

        poller = threading.Thread(target=poll_health, daemon=True)
        with rss_sampled(proc) as peak:
            poller.start()
            try:
                with ThreadPoolExecutor(12) as pool:
                    codes = list(pool.map(upload, [jpeg_bomb] * 6 + [png_bomb] * 4 + [big_ok] * 2))
            finally:
                stop.set()
                poller.join()
        base, after = peak[0], proc.memory_info().rss
    assert codes == [413] * 10 + [200] * 2, codes
    growth = (max(peak) - base) / 2**20
    slowest = max(t for _, t in health)
    stayed = (after - base) / 2**20
    print(f"RSS peak +{growth:.0f} MB, after +{stayed:.0f} MB; {len(health)} health checks, slowest {slowest:.3f} s")
    assert growth < 300, f"RSS grew {growth:.0f} MB"
    assert (after - base) / 2**20 < 150, f"RSS stayed {(after - base) / 2**20:.0f} MB higher"
    assert health and all(code == 200 for code, _ in health)
    assert max(t for _, t in health) < 2.0, max(t for _, t in health)


def test_query_image_over_the_pixel_cap_says_so(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("q.jpg", _jpeg_claiming(13_000, 13_000))})
    assert r.status_code == 413 and "169 MP" in r.json()["message"] and "50 MP limit" in r.json()["message"]


def test_login_throttle_holds_for_every_spelling_and_forged_address(live: LiveServer) -> None:
    """Variants of one address share one count; X-Forwarded-For from a client that is not a configured proxy is
    ignored; the lock lifts after its window and the right password works then."""
    app = _app(live, login_max_failures=5, login_client_max_failures=1000, login_lockout_seconds=3)
    email = live.bob.email
    variants = [email, f"  {email}", f"{email}\t", email.upper(), f" {email.title()} \n"]
    with run_uvicorn(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        for i, v in enumerate(variants):
            r = c.post(LOGIN, json={"email": v, "password": "wrong"}, headers={"X-Forwarded-For": f"10.0.0.{i}"})
            assert r.status_code == 401
        for i, v in enumerate(variants):
            r = c.post(
                LOGIN, json={"email": v, "password": live.bob.password}, headers={"X-Forwarded-For": f"10.1.{i}.1"}
            )
            assert r.status_code == 429, (v, r.status_code)
            assert 1 <= int(r.headers["retry-after"]) <= 3
        time.sleep(3.2)
        r = c.post(LOGIN, json={"email": f" {email.upper()}", "password": live.bob.password})
        assert r.status_code == 200


def test_login_throttle_per_client_behind_a_configured_proxy(live: LiveServer) -> None:
    """Behind a trusted proxy each forwarded address has its own count: a sprayer of random emails is locked,
    another client logs in; an account locked by one client opens to the right password from another client
    once the window passes."""
    app = _app(
        live,
        forwarded_allow_ips="127.0.0.1",
        login_max_failures=3,
        login_client_max_failures=6,
        login_lockout_seconds=2,
    )
    attacker, user = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.20"}
    with run_uvicorn(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        codes = [
            c.post(LOGIN, json={"email": f"{uuid.uuid4().hex}@x.org", "password": "p"}, headers=attacker).status_code
            for _ in range(7)
        ]
        assert codes == [401] * 6 + [429]
        ok = {"email": live.alice.email, "password": live.alice.password}
        assert c.post(LOGIN, json=ok, headers=attacker).status_code == 429  # the client is locked
        assert c.post(LOGIN, json=ok, headers=user).status_code == 200  # others are not
        time.sleep(2.2)
        bad = {"email": live.bob.email, "password": "guess"}
        assert [c.post(LOGIN, json=bad, headers=attacker).status_code for _ in range(3)] == [401] * 3
        good = {"email": live.bob.email, "password": live.bob.password}
        assert c.post(LOGIN, json=good, headers=user).status_code == 429  # the account is locked for everyone
        time.sleep(2.2)
        assert c.post(LOGIN, json=good, headers=user).status_code == 200


def test_edge_input_gets_a_4xx_with_a_message(live: LiveServer) -> None:
    resident = live.app.state.ctx.search_service().resident
    if resident is not None:  # the overflow happened only while the in-memory copy was loaded
        resident.request()
        resident.wait(30)
    with live.client(live.alice) as c:
        for field, value in (
            ("taken_after", "0001-01-01"),
            ("taken_before", "9999-12-31T23:59:59"),
            ("created_after", "0001-01-01T00:00:00+05:00"),
            ("created_before", "9999-12-31T23:59:59"),
        ):
            r = c.post("/api/search/smart", json={"query": "flowers", field: value})
            assert r.status_code == 422 and field in r.json()["message"], (field, r.status_code, r.text)
        r = c.post("/api/search/smart", json={"query": "flowers", "taken_after": "1850-01-01"})
        assert r.status_code == 200
        photo = (live.photos / "albums/nature/silver_fir.jpg").read_bytes()
        deep = "[" * 5000 + "]" * 5000
        r = c.post("/api/search/image", files={"file": ("q.jpg", photo)}, data={"filters": deep})
        assert r.status_code == 422 and "filters" in r.json()["message"]
        for path in ("/" + "a" * 5000, "/tmp/" + "b" * 300 + "/c", "~root", "~", "relative/dir"):
            r = c.post("/api/libraries", json={"name": "edge", "import_paths": [path]})
            assert r.status_code == 422 and "import_paths" in r.json()["message"], (path[:20], r.status_code)
        r = c.post("/api/search/image", files={"file": ("q.jpg", b"\xff\xd8\xff" + b"\0" * (3 * 2**20))})
        assert r.status_code == 413 and "2 MB limit" in r.json()["message"], r.json()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_500_closes_the_connection_cleanly_and_is_logged_once(live: LiveServer) -> None:
    app = _app(live)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/test-boom", boom)
    records = _Records()
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "photosearch")]
    with run_uvicorn(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        for lg in loggers:
            lg.addHandler(records)
        try:
            r = c.get("/api/test-boom")
            assert r.status_code == 500 and r.headers.get("connection") == "close"
            assert "internal server error" in r.json()["message"] and r.headers.get("x-content-type-options")
            assert c.get("/api/health").status_code == 200  # the client's next request works
        finally:
            for lg in loggers:
                lg.removeHandler(records)
    errors = {id(r): r for r in records.records if r.levelno >= logging.ERROR}  # one record, however many loggers
    assert len(errors) == 1, [r.getMessage() for r in errors.values()]


@contextmanager
def _user_with_library(live: LiveServer, root: Path, admin: bool = False) -> Iterator[tuple[dict, dict, str]]:
    name = f"u{uuid.uuid4().hex[:8]}"
    user = create_user(live.db, name, f"{name}@example.org", is_admin=admin)
    lib = create_library(live.db, user["id"], f"{name}-lib", [str(root)])
    _, key = create_api_key(live.db, user["id"], "tests")
    yield user, lib, key


def test_symlinks_out_of_a_library_are_neither_indexed_nor_served(live: LiveServer, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    root = tmp_path / "library"
    (root / "real").mkdir(parents=True)
    src = live.photos / "albums/nature"
    for name, target in (
        ("silver_fir.jpg", outside / "secret.jpg"),
        ("tanners_ridge.jpg", outside / "folder" / "secret2.jpg"),
        ("wood_anemones.jpg", root / "real" / "inside.jpg"),
        ("prairie_falcon.jpg", root / "becomes-link.jpg"),
    ):
        target.write_bytes((src / name).read_bytes())
    (root / "file-link.jpg").symlink_to(outside / "secret.jpg")
    (root / "folder-link").symlink_to(outside / "folder", target_is_directory=True)
    (root / "inside-file-link.jpg").symlink_to(root / "real" / "inside.jpg")
    (root / "inside-folder-link").symlink_to(root / "real", target_is_directory=True)
    model = live.app.state.ctx.model()
    with _user_with_library(live, root) as (user, lib, key):
        index_library(live.db, live.settings, lib, model=model)
        from photosearch.db.assets import list_assets

        assets = list_assets(live.db, lib["id"])
        real = {Path(a["original_path"]).resolve().relative_to(root).as_posix(): a for a in assets}
        assert len(assets) == 2 and set(real) == {"real/inside.jpg", "becomes-link.jpg"}  # inside links: once
        # A file indexed inside, later replaced by a link out (or a library indexed before links were checked):
        # no size of it is served.
        linked = real["becomes-link.jpg"]
        (root / "becomes-link.jpg").unlink()
        (root / "becomes-link.jpg").symlink_to(outside / "secret.jpg")
        with httpx.Client(base_url=live.url, headers={"x-api-key": key}, timeout=30) as c:
            inside = real["real/inside.jpg"]["id"]
            for size in ("thumb", "preview"):
                assert c.get(f"/api/assets/{inside}/thumbnail", params={"size": size}).status_code == 200
                r = c.get(f"/api/assets/{linked['id']}/thumbnail", params={"size": size})
                assert r.status_code == 404, (size, r.status_code)
            assert c.get(f"/api/assets/{inside}/original").status_code == 200
            assert c.get(f"/api/assets/{linked['id']}/original").status_code == 404
        # the next scan does not follow it either: the asset goes offline
        index_library(live.db, live.settings, lib, model=model)
        offline = {a["original_path"]: a["is_offline"] for a in list_assets(live.db, lib["id"])}
        assert offline[str(root / "becomes-link.jpg")] is True


def test_a_plan_shown_to_a_user_counts_nothing_of_other_users(live: LiveServer) -> None:
    """A make only alice's photos have: bob's plan must not reveal that some exist."""
    from photosearch.db.asset_access import filter_options

    makes = filter_options(live.db, live.alice.user["id"]).get("make") or []
    query = {"query": "flowers", "make": sorted(makes)[0] if makes else "Nowhere"}
    with live.client(live.bob) as bob, live.client(live.alice) as alice:
        plan = bob.post("/api/search/smart", json=query).json()["plan"]
        admin_plan = alice.post("/api/search/smart", json=query).json()["plan"]
    leaked = {"estimated_matches", "total_embeddings", "reason", "lists", "probes", "nearest_list_score", "fallback"}
    assert plan and not leaked & set(plan), plan
    assert admin_plan.get("total_embeddings") is not None  # an administrator still sees the whole plan


def test_concurrent_large_uploads_keep_memory_bounded(live: LiveServer) -> None:
    """/api/uploads checks and indexes in the server process: 177 MP PNGs (under ingest's limit, so stored) are
    decoded once each, one upload at a time, and the memory goes back afterwards."""
    pngs = []
    for i in range(4):
        im = Image.new("L", (13_300, 13_300), 128)
        im.putpixel((i, 0), 7)  # four different photos, not duplicates
        buf = io.BytesIO()
        im.save(buf, "PNG")
        pngs.append(buf.getvalue())
    del im
    name = f"u{uuid.uuid4().hex[:8]}"
    user = create_user(live.db, name, f"{name}@example.org")
    _, key = create_api_key(live.db, user["id"], "tests")
    proc = psutil.Process()
    with httpx.Client(base_url=live.url, headers={"x-api-key": key}, timeout=300) as c:
        with rss_sampled(proc) as peak, ThreadPoolExecutor(4) as pool:
            sent = pool.map(lambda d: c.post("/api/uploads", files={"file": ("big.png", d)}), pngs)
            codes = [r.status_code for r in sent]
        base, after = peak[0], proc.memory_info().rss
    growth, stayed = (max(peak) - base) / 2**20, (after - base) / 2**20
    print(f"uploads: RSS peak +{growth:.0f} MB, after +{stayed:.0f} MB")
    assert codes == [201] * 4, codes
    assert growth < 300, f"RSS grew {growth:.0f} MB"
    assert stayed < 150, f"RSS stayed {stayed:.0f} MB higher"


def test_messages_for_bad_query_images_and_dates_are_in_words(live: LiveServer) -> None:
    """No exception class names or pydantic's own phrasing in a 4xx; a file cut short says so."""
    photo = (live.photos / "albums/nature/silver_fir.jpg").read_bytes()
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("q.jpg", photo[: len(photo) // 2])})
        assert r.status_code == 422 and "ends early" in r.json()["message"], r.json()
        r = c.post("/api/search/image", files={"file": ("q.jpg", b"\xff\xd8\xff" + b"x" * 300)})
        assert r.status_code == 422 and "Error" not in r.json()["message"], r.json()
        r = c.post("/api/search/smart", json={"query": "flowers", "taken_after": "0001-01-01"})
        assert r.status_code == 422 and r.json()["message"].startswith("taken_after must"), r.json()


def test_query_images_waiting_for_a_decode_are_not_held_in_memory(live: LiveServer, tmp_path: Path) -> None:
    """Many large (allowed) query images at once: each is read into memory only when its decode starts; the
    others wait in the multipart parser's spooled files, so memory does not grow with the number waiting."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    big = tmp_path / "big.jpg"
    big.write_bytes(buf.getvalue())
    del buf
    assert big.stat().st_size > 8 * 2**20
    app = create_app(live.settings, db=live.db, max_upload_bytes=32 * 2**20)
    proc = psutil.Process()  # the client streams from the file: what grows is the server

    def send(c: httpx.Client) -> int:
        with big.open("rb") as f:
            return c.post("/api/search/image", files={"file": ("q.jpg", f)}).status_code

    key = {"x-api-key": live.alice.api_key}
    with run_uvicorn(app) as url, httpx.Client(base_url=url, headers=key, timeout=300) as c:
        assert send(c) == 200  # the model is loaded
        with rss_sampled(proc) as peak, ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(lambda _: send(c), range(24)))
    growth = (max(peak) - peak[0]) / 2**20
    print(f"24 query images of {big.stat().st_size / 2**20:.0f} MB: RSS peak +{growth:.0f} MB")
    assert codes == [200] * 24, codes
    assert growth < 300, f"RSS grew {growth:.0f} MB"
