"""Single-photo reads (asset details, thumbnails, originals, a photo's page) from a real streaming replica of an
embedded server: served by the replica; a photo deleted, trashed, re-owned or moved out of its library's roots on the
primary is never served while the replica lags (replay paused); with the replica down, the primary answers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from api.live import LiveServer, live_server, run_uvicorn
from photosearch.api.app import create_app
from photosearch.db.replica import create_replica, start_replica, stop_replica
from photosearch.db.server import start_embedded, stop_embedded
from tests.search.test_replica import _caught_up


@dataclass
class Replicated:
    live: LiveServer
    url: str
    replica: str
    replica_dir: Path
    app: object

    @property
    def primary(self) -> str:
        return self.live.settings.database_url

    def client(self, who) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": who.api_key}, timeout=60)

    @property
    def served(self):
        return self.app.state.ctx.replicas().served


@pytest.fixture(scope="module")
def rep(tmp_path_factory, photos_dir: Path, tiny_model_dir: Path) -> Iterator[Replicated]:
    base = Path(tempfile.mkdtemp(prefix="psrr-", dir="/tmp"))  # short: the servers' sockets live in these folders
    admin = start_embedded(base / "p")
    try:
        with live_server(admin, tmp_path_factory.mktemp("replica-api"), photos_dir, tiny_model_dir) as live:
            replica = create_replica(live.settings.database_url, base / "r")
            settings = live.settings.model_copy(update={"database_replica_urls": [replica]})
            app = create_app(settings, db=live.db)
            with run_uvicorn(app) as url:
                yield Replicated(live, url, replica, base / "r", app)
    finally:
        stop_replica(base / "r")
        stop_embedded(base / "p")
        shutil.rmtree(base, ignore_errors=True)


def _get(c: httpx.Client, asset_id, what: str = "") -> httpx.Response:
    r = c.get(f"/api/assets/{asset_id}{what}")
    assert r.status_code < 500, r.text
    return r


def test_single_photo_reads_come_from_the_replica_and_never_outrun_the_primary(rep: Replicated) -> None:
    alice, bob = rep.live.alice, rep.live.bob
    a = [x["id"] for x in alice.assets]
    fav, gone, trashed, moved = a[0], a[1], a[2], a[3]
    _caught_up(rep.primary, rep.replica)
    with rep.client(alice) as c:
        for aid in a[:4]:
            assert _get(c, aid).status_code == 200 and _get(c, aid, "/thumbnail").status_code == 200
        assert _get(c, fav, "/original").content == (alice.root / alice.assets[0]["original_file_name"]).read_bytes()
        total_before = c.get("/api/timeline/buckets").json()["total"]
    assert rep.served["replica"] >= 10 and not rep.served["no replica"]

    # The replica lags. On the primary: a photo marked favorite (the replica's stale answer shows who served it), one
    # deleted, one trashed, one given to Bob, and Bob's library narrowed so that none of his files is inside it.
    with psycopg.connect(rep.replica, autocommit=True) as r:
        r.execute("SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(rep.primary, autocommit=True) as p:
            p.execute("UPDATE assets SET is_favorite = true WHERE id = %s", (fav,))
            p.execute("DELETE FROM assets WHERE id = %s", (gone,))
            p.execute("UPDATE assets SET deleted_at = now() WHERE id = %s", (trashed,))
            p.execute("UPDATE assets SET owner_id = %s WHERE id = %s", (bob.user["id"], moved))
            p.execute("UPDATE libraries SET import_paths = ARRAY['/nonexistent'] WHERE id = %s", (bob.library["id"],))
        with psycopg.connect(rep.replica) as r:  # the replica still has the old state
            old = r.execute("SELECT count(*) FROM assets WHERE id = ANY(%s) AND deleted_at IS NULL", (a[:4],))
            assert old.fetchone()[0] == 4
        before = dict(rep.served)
        with rep.client(alice) as c:
            # Month counts name no photo: the replica's stand, a lag old (it still counts the deleted photo).
            assert c.get("/api/timeline/buckets").json()["total"] == total_before
            assert _get(c, fav).json()["is_favorite"] is False  # the replica's copy: it served the read
            for aid in (gone, trashed, moved):
                for what in ("", "/thumbnail", "/original", "/similar"):
                    assert _get(c, aid, what).status_code == 404, (aid, what)
        with rep.client(bob) as c:
            assert _get(c, moved).status_code == 200  # not Bob's on the replica: asked the primary
            bob_photo = bob.assets[0]["id"]
            assert _get(c, bob_photo).status_code == 200  # metadata stays visible
            assert _get(c, bob_photo, "/original").status_code == 404  # its file is outside the roots now
        assert rep.served["replica"] > before["replica"]
        assert rep.served["primary confirmed otherwise"] - before.get("primary confirmed otherwise", 0) >= 14
        assert rep.served["not on the replica"] >= 1
    finally:
        with psycopg.connect(rep.replica, autocommit=True) as r:
            r.execute("SELECT pg_wal_replay_resume()")
    _caught_up(rep.primary, rep.replica)
    with rep.client(alice) as c:
        assert _get(c, fav).json()["is_favorite"] is True
        assert _get(c, gone).status_code == _get(c, trashed).status_code == _get(c, moved).status_code == 404
        assert c.get("/api/timeline/buckets").json()["total"] == total_before - 3


def test_replica_down_reads_fall_back_to_the_primary(rep: Replicated) -> None:
    alice = rep.live.alice
    ids = [x["id"] for x in alice.assets[4:]]
    stop_replica(rep.replica_dir)
    try:
        with rep.client(alice) as c:
            for aid in ids:
                for what in ("", "/thumbnail", "/original"):
                    assert _get(c, aid, what).status_code == 200, (aid, what)
            assert len(c.get("/api/assets", params={"size": 5}).json()["items"]) == 5
        assert rep.served["no replica"] >= 3 * len(ids)
    finally:
        start_replica(rep.replica_dir)
