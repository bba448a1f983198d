"""One live server with indexed photos for all API tests (indexing once keeps the suite fast)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.live import LiveServer, live_server


@pytest.fixture(scope="session")
def live(
    pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory, photos_dir: Path, tiny_model_dir: Path
) -> Iterator[LiveServer]:
    with live_server(pg_admin_dsn, tmp_path_factory.mktemp("api"), photos_dir, tiny_model_dir) as server:
        yield server
