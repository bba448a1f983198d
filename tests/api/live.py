"""A live photosearch server for API and browser tests: real embedded DB, real indexed photos, uvicorn
on a free loopback port in a thread. Two users (alice: admin, bob: user), each with a library of
copied test photos, a password and an API key."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql

from photosearch.api.app import create_app, proxy_options
from photosearch.api.auth import hash_password
from photosearch.config import Settings
from photosearch.db.accounts import create_api_key, create_user
from photosearch.db.libraries import create_library
from photosearch.db.migrate import migrate
from photosearch.db.pool import Database, check_pgvector, connect_pool
from photosearch.db.server import ServerInfo, with_dbname

ALICE_PHOTOS = [
    "albums/nature/prairie_falcon.jpg",
    "albums/nature/wood_anemones.jpg",
    "albums/nature/el_torcal_rocks.jpg",
    "albums/nature/cyclamen_persicum.jpg",
    "albums/nature/silver_fir.jpg",
    "albums/nature/tanners_ridge.jpg",
    "albums/nature/notocactus_minimus.jpg",
    "metadata/gps-position/thompson-springs.jpg",
    "metadata/rating/mongolels.jpg",
    "formats/png/density_plot.png",
]
BOB_PHOTOS = [
    "albums/nature/polemonium_reptans.jpg",
    "albums/nature/orychophragmus_violaceus.jpg",
    "formats/webp/denali.webp",
]
PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}
UPLOAD_LIMIT = 2 * 1024 * 1024


@dataclass
class Person:
    user: dict
    password: str
    api_key: str
    library: dict
    root: Path
    assets: list[dict] = field(default_factory=list)

    @property
    def email(self) -> str:
        return self.user["email"]


@dataclass
class LiveServer:
    url: str
    settings: Settings
    db: Database
    app: Any
    alice: Person
    bob: Person
    tmp: Path
    photos: Path

    def client(self, who: Person | None = None, **kw: Any) -> httpx.Client:
        headers = {"x-api-key": who.api_key} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)

    @contextmanager
    def login(self, who: Person) -> Iterator[tuple[httpx.Client, str]]:
        """A client holding a session cookie, and its CSRF token."""
        with httpx.Client(base_url=self.url, timeout=60) as c:
            r = c.post("/api/auth/login", json={"email": who.email, "password": who.password})
            assert r.status_code == 200, r.text
            yield c, r.json()["csrf_token"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_photos(photos: Path, names: list[str], root: Path) -> None:
    """Copy the photos, plus a re-encoded copy of the first one (a near-duplicate with other bytes)."""
    from PIL import Image

    root.mkdir(parents=True)
    for name in names:
        shutil.copy2(photos / name, root / Path(name).name)
    with Image.open(photos / names[0]) as im:
        im.convert("RGB").save(root / f"copy-of-{Path(names[0]).stem}.jpg", "JPEG", quality=92)


def _assets_of(db: Database, owner_id: Any) -> list[dict]:
    from photosearch.db.assets import list_assets
    from photosearch.db.libraries import list_libraries

    out: list[dict] = []
    for lib in list_libraries(db, owner_id):
        out += list_assets(db, lib["id"], include_offline=False)
    return out


@contextmanager
def run_uvicorn(app: Any) -> Iterator[str]:
    port = free_port()
    options = proxy_options(app.state.ctx.settings)  # as `photosearch serve` runs it
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    )
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def live_server(pg_admin_dsn: str, tmp: Path, photos: Path, model_dir: Path) -> Iterator[LiveServer]:
    from photosearch.ingest import index_library

    name = f"t_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_dbname(pg_admin_dsn, name)
    check_pgvector(dsn)
    migrate(dsn)
    db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=8)
    settings = Settings(
        data_dir=tmp / "data", database_url=dsn, models_dir=model_dir.parent, model_name=model_dir.name, threads=1
    )
    settings.ensure_dirs()
    app = create_app(settings, db=db, max_upload_bytes=UPLOAD_LIMIT)
    model = app.state.ctx.model()
    people = {}
    for who, names, admin in (("alice", ALICE_PHOTOS, True), ("bob", BOB_PHOTOS, False)):
        user = create_user(db, who, f"{who}@example.org", is_admin=admin, password_hash=hash_password(PASSWORDS[who]))
        root = tmp / f"{who}-photos"
        _copy_photos(photos, names, root)
        lib = create_library(db, user["id"], f"{who}-lib", [str(root.resolve())])
        index_library(db, settings, lib, model=model)
        _, key = create_api_key(db, user["id"], "tests")
        people[who] = Person(user, PASSWORDS[who], key, lib, root.resolve(), _assets_of(db, user["id"]))
    try:
        with run_uvicorn(app) as url:
            yield LiveServer(url, settings, db, app, people["alice"], people["bob"], tmp, photos)
    finally:
        db.close()
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
