"""SQL for the search lists (migration 013): read embeddings for training, swap in new centroids, re-assign.

The k-means itself is numpy (photosearch.search.lists); this module only moves data in and out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from photosearch.db.binary_copy import records

LISTS_KEY = "search_lists"


def lists_info(conn: psycopg.Connection) -> dict[str, Any] | None:
    """{"lists": L, "trained_rows": N, "dim": d, ...} of the trained lists, or None before the first training."""
    row = conn.execute("SELECT value FROM system_metadata WHERE key = %s", (LISTS_KEY,)).fetchone()
    return dict(row[0]) if row else None


def embedded_rows(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM smart_search").fetchone()[0])


def sample_embeddings(conn: psycopg.Connection, n: int, dim: int, total: int) -> np.ndarray:
    """About `n` of the `total` embeddings, drawn uniformly (a Bernoulli sample, or all of them)."""
    if n >= total:
        source = sql.SQL("SELECT asset_id, embedding FROM smart_search")
    else:
        pct = min(100.0, 100.0 * n * 1.1 / total)
        source = sql.SQL(
            "SELECT asset_id, embedding FROM smart_search TABLESAMPLE BERNOULLI ({}) REPEATABLE (7)"
        ).format(sql.Literal(pct))
    return np.concatenate([v for _, v in _stream(conn, source, dim)] or [np.zeros((0, dim), np.float32)])[:n]


def stream_embeddings(conn: psycopg.Connection, dim: int) -> Iterator[tuple[list[bytes], np.ndarray]]:
    """Every (asset id bytes, embedding) in chunks, through binary COPY (~30 s per million 512-d rows)."""
    yield from _stream(conn, sql.SQL("SELECT asset_id, embedding FROM smart_search"), dim)


def _stream(conn: psycopg.Connection, query: sql.Composable, dim: int) -> Iterator[tuple[list[bytes], np.ndarray]]:
    # One binary COPY row (db.binary_copy): int16 field count, (int32 len, 16-byte uuid), (int32 len, int16 dim,
    # int16 unused, dim big-endian float32). Fixed width, so numpy parses whole chunks at once.
    row = np.dtype(
        [("nf", ">i2"), ("l1", ">i4"), ("id", "V16"), ("l2", ">i4"), ("dim", ">i2"), ("u", ">i2"), ("v", ">f4", (dim,))]
    )
    with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)) as copy:
        for body in records(copy, row, chunk_bytes=1 << 22):
            yield [bytes(x) for x in body["id"]], body["v"].astype(np.float32)


def replace_lists(
    conn: psycopg.Connection,
    centroids: np.ndarray,
    assignments: list[tuple[list[bytes], np.ndarray]],
    info: dict[str, Any],
    min_cosine: np.ndarray | None = None,
) -> int:
    """Swap in new centroids and every row's list in one transaction. Rows that arrived after `assignments`
    was computed are assigned in SQL. `min_cosine`: each list's radius (migration 055; None: not known). Returns
    the rows re-assigned. The caller commits."""
    # Writers' triggers read the centroids: block them for the swap so no row lands in a list of the old set.
    conn.execute("LOCK TABLE search_centroids IN ACCESS EXCLUSIVE MODE")
    conn.execute("DELETE FROM search_centroids")
    radius = np.full(len(centroids), -1.0) if min_cosine is None else min_cosine
    with conn.cursor().copy(
        "COPY search_centroids (list_id, centroid, min_cosine) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int2", "vector", "float4"])
        for i, c in enumerate(centroids):
            copy.write_row((i, c.astype(np.float32), float(radius[i])))
    conn.execute("CREATE TEMP TABLE search_lists_new (asset_id uuid PRIMARY KEY, list_id int2) ON COMMIT DROP")
    with conn.cursor().copy("COPY search_lists_new (asset_id, list_id) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["uuid", "int2"])
        for ids, lists in assignments:
            for raw, lst in zip(ids, lists.tolist(), strict=True):
                copy.write_row((uuid.UUID(bytes=raw), lst))
    n = conn.execute(
        "UPDATE search_ivf c SET list_id = t.list_id FROM search_lists_new t"
        " WHERE t.asset_id = c.asset_id AND c.list_id IS DISTINCT FROM t.list_id"
    ).rowcount
    n += conn.execute(
        "UPDATE search_ivf c SET list_id = search_list_of(s.embedding) FROM smart_search s"
        " WHERE s.asset_id = c.asset_id AND NOT EXISTS (SELECT 1 FROM search_lists_new t WHERE t.asset_id = c.asset_id)"
    ).rowcount
    conn.execute(
        "INSERT INTO system_metadata (key, value) VALUES (%s, %s)"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (LISTS_KEY, json.dumps(info)),
    )
    # every copy of the lists in memory is read again after a training: the change log (056) is of no more use
    conn.execute("DELETE FROM search_changes")
    return n


def cluster_by_list(conn: psycopg.Connection) -> None:
    """Rewrite search_ivf in list order (a probe then reads contiguous pages) and drop the dead rows the
    re-assignment left. Holds an exclusive lock on search_ivf for the rewrite: ~30 s per million rows, during
    which quantized searches wait."""
    prev = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("CLUSTER search_ivf USING search_ivf_list_idx")
        conn.execute("VACUUM (ANALYZE) search_ivf")  # CLUSTER leaves the visibility map unset
    finally:
        conn.autocommit = prev
