"""`index --cluster auto` (a local Ray runtime started by the driver) when the driver is SIGKILLed mid-run: nothing
of the runtime outlives it, and a re-run resumes without duplicates or a stale library lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.ingest.test_crash import _consistent, _counts, _make_photos, slow_writes


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def _runtime_of(pid: int, out: list[psutil.Process]) -> list[psutil.Process]:
    """`out` plus the driver's descendants not in it yet; each one's name (`p.info`) read again while it lives (a
    process caught between fork and exec still has its parent's name)."""
    known = {p.pid: p for p in out}
    try:
        for p in psutil.Process(pid).children(recursive=True):
            p = known.setdefault(p.pid, p)
            try:
                p.info = {"name": p.name()}
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return [p for p in known.values() if hasattr(p, "info")]


def test_sigkill_driver_with_auto_runtime_then_resume(db, cli_env, tmp_path) -> None:
    n = 32
    root = tmp_path / "many"
    _make_photos(root, n, seed=5, prefix="auto")
    ray_tmp = Path(tempfile.mkdtemp(prefix="psauto-", dir="/tmp"))  # Ray's files for this test only (short: sockets)
    env = {**cli_env, "PHOTOSEARCH_INGEST_BATCH_SIZE": "8", "RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "photosearch", "--json", "index", "--cluster", "auto", str(root)]
    runtime: list[psutil.Process] = []
    try:
        with slow_writes(db, 2.0):  # batches still to come when the first one is seen committed
            pipe = subprocess.PIPE
            proc = subprocess.Popen(cmd, env=env, stdout=pipe, stderr=pipe, start_new_session=True)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None and _counts(db)["assets"] == 0:
                runtime = _runtime_of(proc.pid, runtime)
                time.sleep(0.05)
            runtime = _runtime_of(proc.pid, runtime)
            ended = proc.poll() is not None
            assert not ended, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
            names = {p.info["name"] for p in runtime}
            assert {"gcs_server", "raylet"} <= names, names  # the driver started its own runtime
            os.kill(proc.pid, signal.SIGKILL)  # the driver only, as the OOM killer would
        proc.communicate(timeout=30)
        t0 = time.monotonic()
        while _alive(runtime) and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        left = [(p.pid, p.info["name"]) for p in _alive(runtime)]
        assert not left, f"the Ray runtime outlived its driver: {left}"
        partial = _counts(db)
        _consistent(partial)
        assert 0 < partial["assets"] < n, partial

        # The re-run ends normally: its runtime goes with it too.
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runtime = []
        while proc.poll() is None:
            runtime = _runtime_of(proc.pid, runtime)
            time.sleep(0.1)
        stdout, stderr = proc.communicate()
        assert proc.returncode == 0, stderr
        summary = json.loads(stdout)
        assert "raylet" in {p.info["name"] for p in runtime}
        t0 = time.monotonic()
        while _alive(runtime) and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        assert not _alive(runtime), [(p.pid, p.info["name"]) for p in _alive(runtime)]
        final = _counts(db)
        _consistent(final)
        assert final["assets"] == n and summary["new"] == n - partial["assets"], (summary, partial)
    finally:
        for p in _alive(runtime):
            p.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
