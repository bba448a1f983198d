"""No request to any route gets a 5xx: every path, query and body parameter of the live server's OpenAPI
schema (and the web pages) with wrong types, huge or negative numbers, bad UUIDs, NUL bytes, odd unicode,
oversized bodies and broken multipart (tests/api/sweep.py). Its own server: the sweep creates keys, uploads
photos and empties the trash, which the shared server's tests must not see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.live import LiveServer, live_server
from api.sweep import sweep


@pytest.fixture(scope="module")
def own_live(pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory, photos_dir: Path, tiny_model_dir: Path
             ) -> Iterator[LiveServer]:  # fmt: skip
    with live_server(pg_admin_dsn, tmp_path_factory.mktemp("sweep"), photos_dir, tiny_model_dir) as server:
        yield server


@pytest.mark.parametrize("who", ["alice", "bob"])  # an administrator, and a user the admin routes refuse
def test_no_malformed_request_gets_a_server_error(own_live: LiveServer, who: str) -> None:
    person = getattr(own_live, who)
    ids = {"asset_id": str(person.assets[0]["id"]), "library_id": str(person.library["id"])}
    with own_live.client(person) as c:
        sent, failures = sweep(c, ids)
        assert c.get("/api/health").status_code == 200
    assert sent > 2000
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(failures[:40])
