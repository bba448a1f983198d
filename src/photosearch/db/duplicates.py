"""SQL of the near-duplicate finder (photosearch.search.duplicates): an owner's embeddings for an exact all-pairs pass,
or each asset's HNSW neighbours within a distance."""

from __future__ import annotations

from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from photosearch.db.embedding import get_vector_index_type, hnsw_order


def owner_embeddings(conn: psycopg.Connection, owner_id: UUID) -> tuple[list[UUID], np.ndarray]:
    """All (not trashed) embedded assets of one owner, for an exact all-pairs pass in numpy."""
    rows = conn.execute(
        "SELECT s.asset_id, s.embedding FROM smart_search s"
        " WHERE s.owner_id = %s AND s.deleted_at IS NULL ORDER BY s.asset_id",
        (owner_id,),
    ).fetchall()
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    return [r[0] for r in rows], np.stack([np.asarray(r[1].to_numpy(), dtype=np.float32) for r in rows])


def owner_asset_count(conn: psycopg.Connection, owner_id: UUID) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM smart_search s WHERE s.owner_id = %s AND s.deleted_at IS NULL",
            (owner_id,),
        ).fetchone()[0]
    )


def near_duplicate_pairs(
    conn: psycopg.Connection, owner_id: UUID, max_distance: float, neighbours: int
) -> list[tuple[UUID, UUID, float]]:
    """Pairs (a < b) of one owner's assets within `max_distance` (cosine), via each asset's HNSW neighbours.

    The caller sets hnsw.* (iterative scan, so the owner filter cannot starve the neighbour lists). The
    neighbours are walked in the index's own order (halfvec or vector); `distance` is full precision."""
    order = hnsw_order(*get_vector_index_type(conn), column="s2.embedding", param="s.embedding")
    query = sql.SQL(
        "SELECT s.asset_id, n.asset_id, n.distance FROM smart_search s CROSS JOIN LATERAL ("
        "  SELECT s2.asset_id, s2.embedding <=> s.embedding AS distance FROM smart_search s2"
        "  WHERE s2.owner_id = %(owner)s AND s2.deleted_at IS NULL AND s2.asset_id <> s.asset_id"
        "  ORDER BY {order} LIMIT %(nb)s"
        " ) n WHERE s.owner_id = %(owner)s AND s.deleted_at IS NULL AND n.distance <= %(maxd)s"
    ).format(order=order)
    rows = conn.execute(query, {"owner": owner_id, "nb": neighbours, "maxd": max_distance}).fetchall()
    return [(min(r[0], r[1]), max(r[0], r[1]), float(r[2])) for r in rows]


def users_with_assets(conn: psycopg.Connection) -> list[UUID]:
    return [r[0] for r in conn.execute("SELECT DISTINCT owner_id FROM assets ORDER BY owner_id")]
