"""Search lists: a k-means partition of the embeddings, so mid-selectivity queries read only nearby rows.

The quantized path (db.search.quantized_search) ranks the filtered rows of the lists nearest the query by
their half-precision vectors, then re-scores the best few at full precision. Lists are trained here in numpy
(spherical k-means on a sample, ~20 s for 1,000 lists at 1M x 512-d on 2 cores), every row is re-assigned and
the table is clustered by list; new rows get their list from a trigger. Training again pays off when the
library has doubled or halved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from photosearch.db import Database
from photosearch.db import search_lists as sl
from photosearch.db.assets import refresh_planner_statistics
from photosearch.db.embedding import get_embedding_model

MIN_ROWS = 20_000  # below this, ranking every filtered row by code is already a few milliseconds
SAMPLE_PER_LIST = 64
MAX_SAMPLE = 200_000
ITERATIONS = 10


@dataclass
class TrainResult:
    lists: int
    rows: int
    sample: int
    seconds: float
    skipped: str | None = None


def list_count(rows: int) -> int:
    """~sqrt(rows) lists (1,000 at 1M rows): a probe of ~2 % of them reads ~2 % of the rows."""
    return int(min(4096, max(16, round(math.sqrt(rows)))))


def kmeans(sample: np.ndarray, k: int, iterations: int = ITERATIONS, seed: int = 0) -> np.ndarray:
    """Spherical k-means (unit centroids, cosine assignment); empty lists are re-seeded from random rows."""
    rng = np.random.default_rng(seed)
    x = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
    centroids = x[rng.choice(len(x), size=k, replace=False)].copy()
    for _ in range(iterations):
        nearest = assign(x, centroids)
        counts = np.bincount(nearest, minlength=k)
        empty = counts == 0
        # Per-centroid sums over the rows sorted by centroid (np.add.at is ~50x slower)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[~empty]
        sums = np.zeros_like(centroids)
        sums[~empty] = np.add.reduceat(x[np.argsort(nearest, kind="stable")], starts, axis=0)
        sums[empty] = x[rng.integers(0, len(x), int(empty.sum()))]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


def assign(x: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Nearest centroid (largest inner product) of every row, in batches to bound memory."""
    return assign_with_cosine(x, centroids, batch)[0]


def assign_with_cosine(x: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centroid, cosine to it) of every row, in batches to bound memory."""
    out = np.empty(len(x), dtype=np.int16)
    cos = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), batch):
        sims = x[i : i + batch] @ centroids.T
        out[i : i + batch] = np.argmax(sims, axis=1)
        cos[i : i + batch] = sims[np.arange(len(sims)), out[i : i + batch]]
    return out, cos


def radii(assignments: list[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """Each list's radius as the smallest cosine between its centroid and a row of it (1 for an empty list),
    from (list, cosine) chunks (assign_with_cosine)."""
    out = np.ones(k, dtype=np.float32)
    for lists, cos in assignments:
        np.minimum.at(out, lists.astype(np.int64), cos)
    return out


def needs_training(rows: int, info: dict | None, min_rows: int = MIN_ROWS) -> str | None:
    """Why the lists should be (re)trained now, or None."""
    if rows < min_rows:
        return None
    if info is None:
        return f"{rows} embeddings and no lists yet"
    trained = int(info.get("trained_rows", 0))
    if rows >= 2 * trained or rows * 2 <= trained:
        return f"the library changed from {trained} to {rows} embeddings since the lists were trained"
    return None


def train_lists(
    db: Database, *, lists: int | None = None, force: bool = False, min_rows: int = MIN_ROWS
) -> TrainResult:
    """Train the lists if the library needs them (or `force`), re-assign every row, refresh statistics."""
    t0 = time.perf_counter()
    with db.connection() as conn:
        rows = sl.embedded_rows(conn)
        info = sl.lists_info(conn)
        model, dim = get_embedding_model(conn)
    reason = "forced" if force and rows > 0 else needs_training(rows, info, min_rows)
    if reason is None:
        why = f"{rows} embeddings: lists are up to date" if info else f"{rows} embeddings < {min_rows}: not needed"
        return TrainResult(int(info["lists"]) if info else 0, rows, 0, 0.0, skipped=why)
    k = min(lists or list_count(rows), rows)
    with db.connection() as conn:
        sample = sl.sample_embeddings(conn, min(rows, max(k * SAMPLE_PER_LIST, 50_000), MAX_SAMPLE), dim, rows)
    k = min(k, len(sample))
    centroids = kmeans(sample, k)
    with db.connection() as conn:
        assigned = [(ids, *assign_with_cosine(vecs, centroids)) for ids, vecs in sl.stream_embeddings(conn, dim)]
    assignments = [(ids, lists) for ids, lists, _ in assigned]
    min_cosine = radii([(lists, cos) for _, lists, cos in assigned], k)
    meta = {
        "lists": k,
        "trained_rows": rows,
        "dim": dim,
        "model": model,
        "sample": len(sample),
        # to the microsecond: it keys the centroid cache and the in-memory copy, and two trainings can share a second
        "trained_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    with db.connection() as conn:
        with conn.transaction():
            sl.replace_lists(conn, centroids, assignments, meta, min_cosine)
        sl.cluster_by_list(conn)
        refresh_planner_statistics(conn)
    return TrainResult(k, rows, len(sample), time.perf_counter() - t0)
