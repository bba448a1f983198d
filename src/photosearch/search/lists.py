"""Search lists: a k-means partition of the embeddings, so mid-selectivity queries read only nearby rows.

The quantized path (db.search.quantized_search) ranks the filtered rows of the lists nearest the query by
their half-precision vectors, then re-scores the best few at full precision. Lists are trained here in numpy in
two levels: spherical k-means on a sample gives ~sqrt(rows) parents (1,000 at 1M), every row is assigned to
its parent, and each parent's rows are split by k-means into CELLS_PER_PARENT search lists of ~125 rows. A
query far from every photo (CLIP text) has its true neighbours spread over many lists; the finer lists hold
them in about half the candidates (1M rows, text-like queries: recall@10 0.948 in 11k candidates and 0.995 in
21k with 1,000 lists; 0.985 in 10k and 0.993 in 12k with 8,000). The split needs every row of a parent, not a
sample of them (trained on 20 % of the rows it gave 0.970 in 10k), so training holds the embeddings as float16
(1 GB at 1M x 512-d). New rows get their list from a trigger (nearest parent, then its nearest list); the table
is clustered by list. Training again pays off when the library has doubled or halved.
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
CELLS_PER_PARENT = sl.LISTS_PER_PARENT  # 16 found no more of a far query's neighbours in as many rows than 8
MAX_LISTS = 32_760  # list ids are smallint
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
    """CELLS_PER_PARENT x ~sqrt(rows) search lists (8,000 of ~125 rows at 1M rows)."""
    return int(min(MAX_LISTS, CELLS_PER_PARENT * max(16, round(math.sqrt(rows)))))


def kmeans(sample: np.ndarray, k: int, iterations: int = ITERATIONS, seed: int = 0) -> np.ndarray:
    """Spherical k-means (unit centroids, cosine assignment); empty lists are re-seeded from random rows."""
    rng = np.random.default_rng(seed)
    x = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
    centroids = x[rng.choice(len(x), size=k, replace=False)].copy()
    for _ in range(iterations):
        nearest = assign(x, centroids)
        counts = np.bincount(nearest, minlength=k)
        empty = counts == 0
        # Per-centroid sums over rows sorted by centroid (np.add.at is ~50x slower: minutes at 1M rows)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[~empty]
        sums = np.zeros_like(centroids)
        sums[~empty] = np.add.reduceat(x[np.argsort(nearest, kind="stable")], starts, axis=0)
        sums[empty] = x[rng.integers(0, len(x), int(empty.sum()))]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


def assign(x: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Nearest centroid (largest inner product) of every row, in batches to bound memory."""
    out = np.empty(len(x), dtype=np.int16)
    for i in range(0, len(x), batch):
        out[i : i + batch] = np.argmax(x[i : i + batch] @ centroids.T, axis=1)
    return out


def split_parents(
    vectors: np.ndarray, parent_of: np.ndarray, parents: np.ndarray, per_parent: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split each parent's rows into `per_parent` lists by k-means: (list centroids, row i's list). List ids are
    parent * per_parent + j; a parent with fewer rows than lists repeats its centroids (the copies stay empty)."""
    order = np.argsort(parent_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(parent_of, minlength=len(parents)))])
    centroids = np.repeat(parents, per_parent, axis=0)
    list_of = np.empty(len(vectors), dtype=np.int16)
    for p in range(len(parents)):
        rows = order[bounds[p] : bounds[p + 1]]
        if len(rows) == 0:
            continue
        members = vectors[rows].astype(np.float32)
        found = kmeans(members, min(per_parent, len(members)), iterations=8, seed=p)
        local = centroids[p * per_parent : (p + 1) * per_parent]
        local[:] = found[np.arange(per_parent) % len(found)]
        list_of[rows] = p * per_parent + assign(members, found)
    return centroids, list_of


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
    n_parents = math.ceil(k / CELLS_PER_PARENT)
    per_parent = CELLS_PER_PARENT  # fixed: search_ivf_parent_idx groups list ids by it
    with db.connection() as conn:
        n = min(rows, max(n_parents * SAMPLE_PER_LIST, 50_000), MAX_SAMPLE)
        sample = sl.sample_embeddings(conn, n, dim, rows)
    n_parents = min(n_parents, len(sample))
    parents = kmeans(sample, n_parents)
    ids: list[bytes] = []
    chunks: list[np.ndarray] = []
    parent_chunks: list[np.ndarray] = []
    with db.connection() as conn:
        for chunk_ids, vecs in sl.stream_embeddings(conn, dim):
            ids += chunk_ids
            parent_chunks.append(assign(vecs, parents))
            chunks.append(vecs.astype(np.float16))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float16)
    parent_of = np.concatenate(parent_chunks) if parent_chunks else np.zeros(0, np.int16)
    centroids, list_of = split_parents(vectors, parent_of.astype(np.int64), parents, per_parent)
    del vectors
    assignments = [(ids, list_of)]
    k = len(centroids)
    meta = {
        "lists": k,
        "parents": n_parents,
        "trained_rows": rows,
        "dim": dim,
        "model": model,
        "sample": len(sample),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with db.connection() as conn:
        with conn.transaction():
            sl.replace_lists(conn, centroids, assignments, meta, parents=parents, per_parent=per_parent)
        sl.cluster_by_list(conn)
        refresh_planner_statistics(conn)
    return TrainResult(k, rows, len(sample), time.perf_counter() - t0)
