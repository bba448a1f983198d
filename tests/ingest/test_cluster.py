"""`photosearch index --cluster` on a real 2-node Ray cluster (head + one worker, one CPU each, on loopback):
the database afterwards equals a local run's, and a SIGKILLed driver leaves it consistent and resumable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from photosearch.db.accounts import default_user
from photosearch.db.libraries import create_library
from photosearch.db.migrate import migrate
from photosearch.db.pool import check_pgvector, connect_pool
from photosearch.db.server import ServerInfo, with_dbname
from photosearch.ingest import index_library
from photosearch.ingest.cluster import plan_for
from tests.conftest import _create_database, _drop_database
from tests.ingest.test_crash import _consistent, _counts, _make_photos, slow_writes
from tests.ray_local import LocalRayCluster

# A subset of the shared photos that covers every decoder and the metadata cases (CI time: ~2 photos/s).
SUBSET = [
    "el_torcal_rocks.jpeg",
    "IMG_2682.heic",
    "8bit-sRGB.avif",
    "8bit-sRGB.jxl",
    "denali.webp",
    "density_plot.png",
    "portrait-orientation-6.jpg",
    "thompson-springs.jpg",
    "mongolels.jpg",
    "japanese-shop.jpg",
]


@pytest.fixture(scope="module")
def ray_cluster():
    with LocalRayCluster(workers=1, cpus_per_node=1) as cluster:
        cluster.wait_for_nodes()
        yield cluster


def _library_dir(photos_dir: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in SUBSET:
        src = next(photos_dir.rglob(name))
        shutil.copy2(src, dst / f"{src.parent.name}-{name}")
    (dst / "notes.jpg").write_text("not a photo")  # an error row in both runs
    return dst


def _snapshot(dsn: str, thumbs_dir: Path) -> dict[str, dict]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT a.original_path, a.checksum, a.width, a.height, a.thumbhash, a.file_created_at, a.local_date_time,"
            " a.thumbnail_path, a.preview_path, e.make, e.model, e.latitude, e.longitude, e.orientation,"
            " s.embedding::text FROM assets a JOIN exif e ON e.asset_id = a.id JOIN smart_search s ON s.asset_id = a.id"
        ).fetchall()
        errors = conn.execute("SELECT path, reason FROM ingest_errors ORDER BY path").fetchall()
    out = {}
    for r in rows:
        thumb, preview = Path(r[7]), Path(r[8])
        assert thumb.is_relative_to(thumbs_dir) and preview.is_relative_to(thumbs_dir), (r[7], thumbs_dir)
        out[r[0]] = {
            "fields": r[1:7] + r[9:14],
            "embedding": np.array(json.loads(r[14]), dtype=np.float64),
            "thumb": thumb.read_bytes(),
            "preview": preview.read_bytes(),
        }
    return {"assets": out, "errors": errors}


def _env(cli_env: dict, cluster: LocalRayCluster) -> dict:
    return {**cli_env, **{k: v for k, v in cluster.env.items() if k.startswith("RAY_") or k == "PYTHONPATH"}}


def test_cluster_run_equals_local_run(
    ray_cluster, db, settings, cli_env, photos_dir, tiny_model, pg_admin_dsn, tmp_path
) -> None:
    lib_dir = _library_dir(photos_dir, tmp_path / "photos")
    # Reference: a local run into a database of its own.
    name = _create_database(pg_admin_dsn)
    try:
        local_dsn = with_dbname(pg_admin_dsn, name)
        check_pgvector(local_dsn)
        migrate(local_dsn)
        local_settings = settings.model_copy(update={"data_dir": tmp_path / "local", "database_url": local_dsn})
        with connect_pool(ServerInfo(local_dsn, False, None), max_size=2) as local_db:
            lib = create_library(local_db, default_user(local_db)["id"], "lib", [str(lib_dir)])
            index_library(local_db, local_settings, lib, model=tiny_model)
        local = _snapshot(local_dsn, local_settings.thumbs_dir)
    finally:
        _drop_database(pg_admin_dsn, name)

    cmd = [sys.executable, "-m", "photosearch", "--json", "index", "--cluster", ray_cluster.address, str(lib_dir)]
    out = subprocess.run(cmd, env=_env(cli_env, ray_cluster), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["new"] == len(local["assets"]) and summary["errors"] == len(local["errors"]) == 1, summary
    remote = _snapshot(db.dsn, settings.thumbs_dir)

    assert remote["errors"] == local["errors"]
    assert set(remote["assets"]) == set(local["assets"]) and len(local["assets"]) == len(SUBSET)
    for path, want in local["assets"].items():
        got = remote["assets"][path]
        assert got["fields"] == want["fields"], path
        cos = float(got["embedding"] @ want["embedding"]) / (
            np.linalg.norm(got["embedding"]) * np.linalg.norm(want["embedding"])
        )
        assert cos >= 0.99999, (path, cos)
        assert got["thumb"] == want["thumb"] and got["preview"] == want["preview"], path

    # Unchanged library: the cluster run decodes nothing (the same incremental rules as a local run).
    again = subprocess.run(cmd, env=_env(cli_env, ray_cluster), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == len(SUBSET)


def test_sigkill_driver_then_resume(ray_cluster, db, cli_env, tmp_path) -> None:
    n = 72
    root = tmp_path / "many"
    _make_photos(root, n, seed=11, prefix="cl")
    env = {**_env(cli_env, ray_cluster), "PHOTOSEARCH_INGEST_BATCH_SIZE": "8"}
    cmd = [sys.executable, "-m", "photosearch", "--json", "index", "--cluster", ray_cluster.address, str(root)]
    with slow_writes(db, 2.0):  # batches still to come when the first one is seen committed
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and _counts(db)["assets"] == 0:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    partial = _counts(db)
    _consistent(partial)
    assert 0 < partial["assets"] < n, partial

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    final = _counts(db)
    _consistent(final)
    assert final["assets"] == n and summary["new"] == n - partial["assets"], (summary, partial)


def test_actor_lost_mid_run(ray_cluster, db, cli_env, tmp_path) -> None:
    """An embedding actor's process killed as soon as it starts: Ray Data restarts the actor and retries its batch,
    so the run ends normally, with every photo once and clean `--json` output; a re-run finds nothing to do."""
    n = 48
    root = tmp_path / "actor"
    _make_photos(root, n, seed=13, prefix="ac")
    env = {**_env(cli_env, ray_cluster), "PHOTOSEARCH_INGEST_BATCH_SIZE": "8"}
    cmd = [sys.executable, "-m", "photosearch", "--json", "index", "--cluster", ray_cluster.address, str(root)]
    with slow_writes(db, 2.0):  # the run cannot have written everything by the time its actor is killed
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline, actors = time.monotonic() + 180, []
        while time.monotonic() < deadline and proc.poll() is None and not actors:
            actors = [p for p in ray_cluster.processes() if "MapWorker" in " ".join(_cmdline(p))]
            time.sleep(0.05)
        assert proc.poll() is None and actors, "no actor to kill while the run went on"
        actors[0].kill()
        at_kill = _counts(db)["assets"]
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    summary = json.loads(stdout)  # nothing but the summary on stdout
    final = _counts(db)
    _consistent(final)
    assert at_kill < n and final["assets"] == summary["new"] == summary["embedded"] == n, (at_kill, summary)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == n, again.stderr


def _cmdline(p) -> list[str]:
    try:
        return p.cmdline()
    except Exception:  # noqa: BLE001 - psutil.Error: the process ended meanwhile
        return []


def test_plan_follows_resources() -> None:
    assert plan_for({"CPU": 2.0}).actors == 2 and plan_for({"CPU": 2.0}).gpus_per_actor == 0
    gpu = plan_for({"CPU": 16.0, "GPU": 2.0})
    assert gpu.actors == 2 and gpu.gpus_per_actor == 1 and gpu.batch_size > plan_for({"CPU": 1.0}).batch_size


def test_actors_run_the_derived_variable_batch_image_graph(tiny_model_dir, tmp_path) -> None:
    """An immich export (batch 1) is shipped as the local run's verified variable-batch derivation: an actor
    embeds a whole batch in one call, and its embeddings equal the local model's."""
    from photosearch.config import Settings
    from photosearch.ingest.cluster import Embedder, visual_graph
    from photosearch.models import derive
    from photosearch.models.clip import _normalize, load_clip
    from photosearch.models.runtime import SessionConfig, create_session

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "tiny-clip")
    for tower in ("visual", "textual"):
        shutil.copyfile(fixtures / "tiny-clip-b1" / tower / "model.onnx", model_dir / tower / "model.onnx")
    model = load_clip(Settings(models_dir=tmp_path, model_name="tiny-clip", threads=1))
    graph = visual_graph(model)
    assert graph == derive.read_state(model_dir, "visual").path(model_dir, "visual") != model.visual.path
    assert derive.fixed_batch(create_session(graph, SessionConfig(threads=1))) is None
    actor = Embedder(graph.read_bytes(), model.name)
    pixels = np.random.default_rng(3).standard_normal((5, 3, model.image_size, model.image_size)).astype(np.float32)
    assert actor.tower.fixed_batch is None
    got = _normalize(actor.tower.run(pixels))  # the batch of 5 in one call
    want = model.encode_pixels(pixels)
    assert np.allclose(got, want, atol=1e-5)
