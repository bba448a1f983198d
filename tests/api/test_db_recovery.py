"""The embedded PostgreSQL killed under a running server: the server notices, answers 503 at once meanwhile,
restarts the database itself and resumes (this test's own data dir and postmaster only)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from api.live import run_uvicorn
from photosearch.api.app import create_app
from photosearch.config import Settings
from photosearch.db.server import _postmaster_pid, start_embedded


def test_a_killed_postmaster_is_restarted_by_the_running_server(server_data_dir: Path, tiny_model_dir: Path) -> None:
    settings = Settings(
        data_dir=server_data_dir, models_dir=tiny_model_dir.parent, model_name=tiny_model_dir.name, threads=1
    )
    pgdata = settings.pgdata_dir
    # Baseline: this machine's cold start of the same cluster (initdb, start, memory settings), which is more work
    # than the restart after a crash. The recovery bound scales with it, so a loaded machine does not fail the
    # test while a watch that waits on a pool timeout (30 s) or never restarts still does.
    t0 = time.monotonic()
    settings.ensure_dirs()
    start_embedded(pgdata, settings.embedded_tuning)
    limit = max(15.0, 5 * (time.monotonic() - t0))
    app = create_app(settings)  # as `photosearch serve`: the embedded server in this data dir (attached to)
    with run_uvicorn(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/server/config").status_code == 200
        pid = _postmaster_pid(pgdata)
        assert pid is not None and psutil.Process(pid).cwd() == str(pgdata.resolve())
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        seen: list[tuple[int, float]] = []
        while True:
            t0 = time.monotonic()
            r = c.get("/api/health")
            seen.append((r.status_code, time.monotonic() - t0))
            if r.status_code == 200 and any(code == 503 for code, _ in seen):
                break
            assert time.monotonic() - killed < limit, seen[-5:]
            time.sleep(0.05)
        back = time.monotonic() - killed
        worst = max(t for code, t in seen if code == 503)
        n503 = sum(code == 503 for code, _ in seen)
        print(f"back after {back:.1f} s (limit {limit:.1f} s); {n503} 503s, slowest {worst * 1000:.0f} ms")
        assert back < limit
        slow = [t for code, t in seen if code == 503 and t > 2.0]  # not the pool's 30 s timeout
        assert not slow, f"503s took up to {max(slow):.1f} s"
        assert {code for code, _ in seen} <= {200, 503}
        assert c.get("/api/server/config").status_code == 200  # queries run again through the pool
        new_pid = _postmaster_pid(pgdata)
        assert new_pid is not None and new_pid != pid
        assert app.state.ctx.db_watch.restarts >= 1
