"""Crash safety: SIGKILL a real `photosearch index` mid-run, several times; then nothing is duplicated or
half-written, and a final run finishes the job without redoing what was committed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

N_FILES = 120


def _make_photos(root: Path, n: int, seed: int = 7, prefix: str = "img") -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    old = time.time_ns() - 86_400 * 10**9
    for i in range(n):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)  # distinct content → distinct checksums
        img = Image.fromarray(small).resize((480, 360), Image.Resampling.BILINEAR)
        p = root / f"sub{i % 4}" / f"{prefix}_{i:04d}.jpg"
        p.parent.mkdir(exist_ok=True)
        img.save(p, quality=85)
        os.utime(p, ns=(old, old))


def _counts(db) -> dict:
    with db.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM assets) AS assets,"
            " (SELECT count(DISTINCT original_path) FROM assets) AS paths,"
            " (SELECT count(DISTINCT checksum) FROM assets) AS checksums,"
            " (SELECT count(*) FROM exif) AS exif, (SELECT count(*) FROM smart_search) AS embeddings,"
            " (SELECT count(*) FROM assets WHERE indexed_at IS NULL) AS unindexed"
        )
        return cur.fetchone()


@contextmanager
def slow_writes(db, seconds: float) -> Iterator[None]:
    """Every statement that inserts into `assets` takes `seconds` longer (a statement trigger with pg_sleep in
    the writer's own transaction), so a test that kills a run on its first committed batch always finds batches
    still to come, however fast the rest of the pipeline is on the day. Removed on exit."""
    with db.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION test_slow_writes() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END$$"
        )
        cur.execute(
            "CREATE TRIGGER test_slow_writes AFTER INSERT ON assets"
            " FOR EACH STATEMENT EXECUTE FUNCTION test_slow_writes()"
        )
    try:
        yield
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS test_slow_writes ON assets")
            cur.execute("DROP FUNCTION IF EXISTS test_slow_writes()")


def _consistent(c: dict) -> None:
    assert c["assets"] == c["paths"] == c["checksums"] == c["exif"] == c["embeddings"], c
    assert c["unindexed"] == 0, c


def test_sigkill_mid_run_then_resume(db, cli_env, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _make_photos(root, N_FILES)
    env = {**cli_env, "PHOTOSEARCH_INGEST_WORKERS": "2", "PHOTOSEARCH_INGEST_BATCH_SIZE": "8"}
    cmd = [sys.executable, "-m", "photosearch", "--json", "index", str(root)]
    rng = random.Random(1)
    kills, before, partial = 0, 0, []
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _counts(db)["assets"] > before:  # it is writing: kill it at a random moment from here
                time.sleep(rng.uniform(0, 0.4))
                break
            time.sleep(0.02)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: main process and its workers
            kills += 1
        proc.communicate(timeout=30)
        c = _counts(db)
        _consistent(c)
        assert c["assets"] >= before
        before = c["assets"]
        if killed:
            partial.append(before)
    assert kills >= 2, "the runs finished before they could be killed: make the corpus bigger"
    # At least one kill left the job half done (a fast box may finish it in the last run: resuming is then a no-op)
    assert any(0 < n < N_FILES for n in partial), partial

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["new"] == N_FILES - before  # resumed: committed photos were not redone
    assert summary["errors"] == 0
    c = _counts(db)
    _consistent(c)
    assert c["assets"] == N_FILES

    again = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120).stdout)
    assert (again["unchanged"], again["new"], again["embedded"]) == (N_FILES, 0, 0)
    listed = subprocess.run(
        [sys.executable, "-m", "photosearch", "--json", "errors"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
