"""Index a library: scan → (workers) read, hash, decode, thumbnail, preprocess → (main) embed in batches
→ one transaction per batch.

Why this shape: decoding and the model are the two CPU-bound stages, so they overlap (a process pool feeds
the main process, whose ONNX session releases the GIL); in-flight work is bounded so memory stays flat;
the scan and the work list live in temporary tables of the run's own connection, not in Python lists.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from photosearch.config import Settings
from photosearch.confine import real_roots
from photosearch.db.assets import IngestConnection, refresh_planner_statistics
from photosearch.db.pool import Database
from photosearch.ingest import decode, places
from photosearch.ingest.decode import FileError, FileResult, FileTask
from photosearch.ingest.metadata import mtime_date
from photosearch.ingest.scan import db_path, fs_path, scan_roots
from photosearch.ingest.thumbnails import remove_thumbnails
from photosearch.ingest.workers import WorkerPool
from photosearch.search.lists import train_lists

log = logging.getLogger(__name__)

SCAN_CHUNK = 2000
TODO_PAGE = 512
INLINE_MAX = 8  # fewer files than this: no process pool (spawning workers costs more than it saves)
MIN_EMBED_BATCH = 8  # the model waits for no more than this while results trickle in (pipeline fill/drain)
STATS_REFRESH_FRACTION = 0.1  # re-ANALYZE when a run changed at least this share of the library
BULK_MIN = 1000  # at least this many files to embed into a (nearly) empty table: build HNSW afterwards


class IngestError(RuntimeError):
    """The run could not start (e.g. another run holds the library)."""


@dataclass
class IngestProgress:
    phase: str  # "scan" | "index" | "finish"
    scanned: int = 0
    total: int = 0  # files to process (known after the scan)
    done: int = 0
    errors: int = 0


@dataclass
class IngestSummary:
    library: str
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    offline: int = 0
    back_online: int = 0
    trashed: int = 0
    errors: int = 0  # failures this run (new or retried)
    known_errors: int = 0  # unchanged files that failed before: skipped
    embedded: int = 0
    bulk_index_rebuild: bool = False
    search_lists: bool = False  # the search lists were (re)trained at the end of the run
    elapsed: float = 0.0
    error_reasons: dict[str, int] = field(default_factory=dict)
    ocr: dict[str, Any] | None = None  # the text pass (ingest/ocr.py), when it ran

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _workers(settings: Settings) -> int:
    return max(1, settings.ingest_workers or os.cpu_count() or 1)


def index_library(
    db: Database,
    settings: Settings,
    library: dict,
    *,
    model: Any | None = None,
    progress: Callable[[IngestProgress], None] | None = None,
    roots: list[str] | None = None,
    cluster: str | None = None,
    ocr: bool | None = None,
) -> IngestSummary:
    """Bring the index of `library` (a row of `libraries`) in line with its folders.

    `roots` limits the scan (and the offline sweep) to some folders of the library; default: all of them.
    `cluster`: decode and embed on the Ray cluster at this address (`auto`: a local Ray runtime), `cluster.py`.
    `ocr` (default: settings.ocr) then reads the text in photos not read yet, still holding the library's lock.
    """
    from photosearch.db.embedding import create_vector_index, drop_vector_index, ensure_embedding_model

    if db.read_only:
        from photosearch.db.server import ReadOnlyError, read_only_message

        raise ReadOnlyError(read_only_message(True))
    t0 = time.perf_counter()
    summary = IngestSummary(library=library["name"])
    report = progress or (lambda p: None)
    read_text = settings.ocr if ocr is None else ocr
    if read_text:
        from photosearch.ingest.ocr import OcrUnavailable, check_available

        try:
            check_available()
        except OcrUnavailable as exc:
            raise IngestError(str(exc)) from exc
    if model is None:
        from photosearch.models import load_clip

        model = load_clip(settings)
    ensure_embedding_model(db, model.name, model.embed_dim)
    settings.ensure_dirs()
    if cluster is not None:
        from photosearch.ingest.cluster import check

        check(cluster)  # an unreachable cluster fails the run before it starts; it is joined once there is work
    lib_id, owner_id = library["id"], library["owner_id"]
    scan_paths = [os.path.abspath(r) for r in (roots or list(library["import_paths"]))]

    with IngestConnection(db) as conn:
        if not conn.try_lock_library(lib_id):
            raise IngestError(f"another index run is already working on library {library['name']!r}")
        # 1. scan into a temp table; 2. mark-and-sweep and the work list, in SQL.
        prog = IngestProgress("scan")
        scan_errors: list[tuple[str, str]] = []
        conn.begin_scan()
        chunk: list[tuple[str, int, Any]] = []
        for f in scan_roots(
            [fs_path(p) for p in scan_paths],
            library.get("exclusion_patterns") or (),
            include_hidden=bool(library.get("include_hidden")),
            on_error=lambda p, why: scan_errors.append((db_path(p), why)),
        ):
            chunk.append((db_path(f.path), f.size, mtime_date(f.mtime_ns)))
            if len(chunk) >= SCAN_CHUNK:
                conn.add_scanned(chunk)
                prog.scanned += len(chunk)
                report(prog)
                chunk = []
        conn.add_scanned(chunk)
        prog.scanned += len(chunk)
        counts = conn.finish_scan(lib_id, None if roots is None else scan_paths)
        for p, why in scan_errors:  # after the sweep, which clears errors of paths not seen
            conn.record_error(lib_id, p, decode.UNREADABLE, why)
        summary.seen, summary.unchanged, summary.known_errors = counts.seen, counts.unchanged, counts.known_errors
        summary.offline, summary.back_online = counts.offline, counts.back_online
        summary.errors = len(scan_errors)
        prog = IngestProgress("index", scanned=counts.seen, total=counts.todo, errors=len(scan_errors))
        report(prog)

        # 3. process the work list.
        bulk = counts.todo >= BULK_MIN and conn.embedded_count() < counts.todo
        if bulk:
            with db.connection() as c:
                drop_vector_index(c)
            summary.bulk_index_rebuild = True
        try:
            if counts.todo:
                confined = real_roots(library["import_paths"])  # reads are checked against the whole library
                _process(conn, settings, model, owner_id, lib_id, counts.todo, summary, prog, report, cluster, confined)
        finally:
            if bulk:
                report(IngestProgress("finish", counts.seen, counts.todo, prog.done, prog.errors))
                with db.connection() as c:
                    c.execute("SET LOCAL maintenance_work_mem = '256MB'")  # HNSW builds in memory if it fits
                    create_vector_index(c)
        changed = summary.new + summary.updated + summary.moved
        if changed and changed >= STATS_REFRESH_FRACTION * max(conn.embedded_count(), 1):
            with db.connection() as c:
                refresh_planner_statistics(c)  # the search planner's estimates come from these statistics
            summary.search_lists = train_lists(db).skipped is None  # no-op unless the library doubled or halved
        if counts.offline and counts.swept_at is not None:
            summary.offline = conn.count_offline_since(lib_id, counts.swept_at)
        if settings.trash_offline_after_days is not None:
            summary.trashed = conn.trash_offline(lib_id, settings.trash_offline_after_days)
        conn.mark_refreshed(lib_id)
        if read_text:
            summary.ocr = _read_text(db, settings, library, report)
    summary.elapsed = time.perf_counter() - t0
    return summary


def _read_text(db: Database, settings: Settings, library: dict, report: Callable[[IngestProgress], None]) -> dict:
    from photosearch.ingest.ocr import read_library_text

    def on_photo(done: int, total: int, errors: int) -> None:
        report(IngestProgress("ocr", total=total, done=done, errors=errors))

    return read_library_text(db, settings, library, on_photo).to_dict()


def _tasks(conn: IngestConnection, roots: tuple[str, ...]) -> Iterator[FileTask]:
    after = 0
    while True:
        page = conn.todo_page(after, TODO_PAGE)
        if not page:
            return
        for n, path, size, _mtime, asset_id, known in page:
            yield FileTask(
                path, size, 0, str(asset_id) if asset_id else None, bytes(known) if known else None, roots=roots
            )
            after = n


class _Batcher:
    """Collects worker results; embeds and writes them a batch at a time."""

    def __init__(self, conn, model, owner_id: UUID, lib_id: UUID, thumbs_dir: Path, summary: IngestSummary):
        self.conn, self.model, self.owner_id, self.lib_id = conn, model, owner_id, lib_id
        self.thumbs_dir, self.summary = thumbs_dir, summary
        self.results: list[FileResult] = []
        self.errors: list[FileError] = []
        self.replaced: list[bytes] = []

    def add(self, r: FileResult | FileError) -> None:
        if isinstance(r, FileError):
            self.errors.append(r)
            self.summary.errors += 1
            self.summary.error_reasons[r.reason] = self.summary.error_reasons.get(r.reason, 0) + 1
        else:
            self.results.append(r)
            if r.task.known_checksum and r.task.known_checksum != r.checksum:
                self.replaced.append(r.task.known_checksum)

    def pending(self) -> int:
        return len(self.results) + len(self.errors)

    def flush(self) -> None:
        if not self.results and not self.errors:
            return
        results, self.results = self.results, []
        errors = [
            (e.path, e.reason, e.detail, e.size, mtime_date(e.mtime_ns) if e.mtime_ns else None) for e in self.errors
        ]
        self.errors = []
        places.resolve([r.metadata for r in results])
        with_pixels = [r for r in results if r.pixels is not None]
        vectors = {id(r): r.embedding for r in results if r.embedding is not None}  # embedded on a cluster
        self.summary.embedded += len(vectors)
        if with_pixels:
            emb = self.model.encode_pixels(np.stack([r.pixels for r in with_pixels]))
            vectors.update({id(r): emb[i] for i, r in enumerate(with_pixels)})
            self.summary.embedded += len(with_pixels)
        rows, delete_ids = [], []
        existing = self.conn.assets_by_checksum(self.owner_id, [r.checksum for r in results]) if results else {}
        claimed: set[UUID] = set()  # assets a result of this batch has taken over
        for r in results:
            by_path = UUID(r.task.asset_id) if r.task.asset_id else None
            same = existing.get(r.checksum, [])
            moved = None
            if by_path not in {o["id"] for o in same}:  # new content at this path: maybe a photo that moved
                moved = next((o["id"] for o in same if o["id"] not in claimed and self._gone(o)), None)
            if moved is not None:  # a photo whose file is gone appears here: it moved (keeps its id)
                aid = moved
                self.summary.moved += 1
                if by_path:
                    delete_ids.append(by_path)  # the file at this path now holds the moved photo
            else:  # every path is its own asset, even when another path holds the same bytes
                aid = by_path or uuid4()
                if by_path:
                    self.summary.updated += 1
                else:
                    self.summary.new += 1
            claimed.add(aid)
            rows.append(_stage_row(aid, r, vectors.get(id(r))))
        self.conn.write_batch(self.owner_id, self.lib_id, rows, errors, delete_ids)
        if self.replaced:
            for c in self.conn.unused_checksums(self.replaced):
                remove_thumbnails(self.thumbs_dir, c)
            self.replaced = []

    def _gone(self, other: dict) -> bool:
        if other["is_offline"]:
            return True
        return not os.path.lexists(fs_path(other["original_path"]))


def _stage_row(aid: UUID, r: FileResult, vector: np.ndarray | None) -> tuple:
    m = r.metadata
    created = m.taken.instant if m.taken else r.mtime
    local = m.taken.local_as_utc if m.taken else r.mtime
    return (
        aid,
        r.task.path,
        os.path.basename(r.task.path),
        r.checksum,
        r.size,
        created,
        r.mtime,
        local,
        r.width,
        r.height,
        r.thumbhash,
        r.thumbnail_path,
        r.preview_path,
        db_path(m.sidecar_path) if m.sidecar_path else None,
        m.make,
        m.model,
        m.lens_model,
        m.exposure_time,
        m.f_number,
        m.focal_length,
        m.iso,
        m.orientation,
        m.exif_image_width,
        m.exif_image_height,
        m.latitude,
        m.longitude,
        m.city,
        m.state,
        m.country,
        m.time_zone,
        m.date_time_original,
        m.description,
        m.rating,
        vector,
    )


def _process(
    conn: IngestConnection,
    settings: Settings,
    model: Any,
    owner_id: UUID,
    lib_id: UUID,
    total: int,
    summary: IngestSummary,
    prog: IngestProgress,
    report: Callable[[IngestProgress], None],
    cluster: str | None = None,
    roots: tuple[str, ...] = (),
) -> None:
    batch_size = max(1, settings.ingest_batch_size)
    batcher = _Batcher(conn, model, owner_id, lib_id, settings.thumbs_dir, summary)
    pre = model.preprocessor

    def take(r: FileResult | FileError) -> None:
        batcher.add(r)
        prog.done += 1
        prog.errors = summary.errors
        if batcher.pending() >= batch_size:
            batcher.flush()
        report(prog)

    if cluster is not None:
        from photosearch.ingest.cluster import run_on_cluster

        run_on_cluster(cluster, _tasks(conn, roots), model, settings.thumbs_dir, take)
        batcher.flush()
        prog.errors = summary.errors
        report(prog)
        return
    workers = _workers(settings)
    if total < INLINE_MAX or workers == 1:
        decode.register_decoders()
        for task in _tasks(conn, roots):
            take(decode.process_file(task, pre, settings.thumbs_dir))
        batcher.flush()
        prog.errors = summary.errors
        report(prog)
        return
    max_in_flight = max(2 * batch_size, 4 * workers)
    pool = WorkerPool(workers, pre, settings.thumbs_dir)
    in_flight = 0

    def next_result() -> FileResult | FileError:
        r = pool.get(timeout=0)
        if r is None:
            if batcher.pending() >= MIN_EMBED_BATCH:
                batcher.flush()  # nothing ready: embed what is here while the workers decode
            r = pool.get()
        return r

    try:
        for task in _tasks(conn, roots):
            pool.submit(task)
            in_flight += 1
            while in_flight >= max_in_flight:
                take(next_result())
                in_flight -= 1
        while in_flight:
            take(next_result())
            in_flight -= 1
        batcher.flush()
        prog.errors = summary.errors  # duplicates are found at the last flush
        report(prog)
    finally:
        pool.close()
