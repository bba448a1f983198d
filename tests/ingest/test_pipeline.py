"""The process pool and the index maintenance: a worker killed mid-run, HNSW after a bulk first load."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from photosearch.db.assets import asset_counts, list_ingest_errors
from photosearch.db.embedding import vector_index_exists
from photosearch.ingest import IngestProgress, index_library, pipeline

from .test_crash import _make_photos


def test_a_worker_killed_mid_run(db, settings, tiny_model, make_library, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _make_photos(root, 40)
    lib = make_library(root)
    cfg = settings.model_copy(update={"ingest_workers": 2, "ingest_batch_size": 4})
    killed: list[int] = []

    def kill_a_worker(p: IngestProgress) -> None:
        if p.phase == "index" and p.done >= 5 and not killed:
            servers = [c for c in psutil.Process().children() if "forkserver" in " ".join(c.cmdline())]
            workers = [w for srv in servers for w in srv.children()]
            if workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)

    s = index_library(db, cfg, lib, model=tiny_model, progress=kill_a_worker)
    assert killed
    assert s.new + s.errors == 40 and set(s.error_reasons) <= {"worker died"}
    # the casualties are transient: the next run indexes them
    s2 = index_library(db, cfg, lib, model=tiny_model)
    assert (s2.new, s2.errors) == (s.errors, 0)
    assert asset_counts(db, lib["id"])["embedded"] == 40
    assert list_ingest_errors(db, library_id=lib["id"]) == []


def test_bulk_first_load_builds_the_vector_index_after(
    db, settings, tiny_model, make_library, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(pipeline, "BULK_MIN", 10)  # the real threshold is 1000 files
    root = tmp_path / "photos"
    _make_photos(root, 12)
    lib = make_library(root)
    s = index_library(db, settings, lib, model=tiny_model)
    assert s.bulk_index_rebuild and s.new == 12
    with db.connection() as conn:
        assert vector_index_exists(conn)
    # a small increment goes into the live index (no rebuild)
    _make_photos(root, 2, seed=8, prefix="more")
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.bulk_index_rebuild, s.new, s.errors) == (False, 2, 0)
    with db.connection() as conn:
        assert vector_index_exists(conn)
        n = conn.execute("SELECT count(*) FROM smart_search").fetchone()[0]
        # statistics refreshed after a run that changed >= 10 %: the search planner estimates from them
        reltuples = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'smart_search'::regclass").fetchone()[0]
    assert n == 14 and reltuples == 14


def test_decode_once_keeps_embeddings_faithful(db, settings, tiny_model, make_library, photos_dir, tmp_path) -> None:
    """Draft decode + preview + box-reduce before the preprocessor: the stored embedding matches the
    model's own full-resolution decode of the original."""
    from photosearch.db.assets import get_embedding, list_assets

    from .conftest import copy_photos

    root = tmp_path / "big"
    copy_photos(photos_dir, root, ["handwritten-notes.jpg", "IMG_2682.heic", "portrait-orientation-6.jpg"])
    lib = make_library(root)
    assert index_library(db, settings, lib, model=tiny_model).new == 3
    for a in list_assets(db, lib["id"]):
        stored = get_embedding(db, a["id"]).to_numpy()
        reference = tiny_model.encode_images([Path(a["original_path"])])[0]
        assert float(stored @ reference) > 0.9999, a["original_file_name"]
