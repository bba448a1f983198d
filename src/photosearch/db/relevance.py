"""SQL for the relevance cutoff: the query's similarity to a random sample of the photos in scope."""

from __future__ import annotations

from uuid import UUID

import numpy as np
import psycopg

SAMPLE = 1000


def background_scores(conn: psycopg.Connection, vec: np.ndarray, owners: list[UUID] | None, total: int) -> np.ndarray:
    """Cosine similarities of `vec` to ~SAMPLE random photos of `owners` (None = everyone). A page sample first
    (TABLESAMPLE SYSTEM reads ~SAMPLE rows' pages, not the table); an owner with too few rows in it is sampled
    row by row from their own photos."""
    pct = min(100.0, 100.0 * 4 * SAMPLE / max(total, 1))
    rows = conn.execute(
        "SELECT 1 - (s.embedding <=> %(q)s) FROM smart_search s TABLESAMPLE SYSTEM (%(pct)s)"
        " WHERE s.deleted_at IS NULL AND (%(owners)s::uuid[] IS NULL OR s.owner_id = ANY(%(owners)s::uuid[]))"
        " LIMIT %(n)s",
        {"q": vec, "pct": pct, "owners": owners, "n": 4 * SAMPLE},
    ).fetchall()
    if len(rows) < SAMPLE // 4:
        rows = conn.execute(
            "SELECT 1 - (s.embedding <=> %(q)s) FROM smart_search s WHERE s.deleted_at IS NULL"
            " AND (%(owners)s::uuid[] IS NULL OR s.owner_id = ANY(%(owners)s::uuid[])) ORDER BY random() LIMIT %(n)s",
            {"q": vec, "owners": owners, "n": SAMPLE},
        ).fetchall()
    return np.array([float(r[0]) for r in rows], dtype=np.float64)
