"""Near-duplicate photos: assets of one owner whose CLIP embeddings lie within a small cosine distance.

Like immich's duplicate detection (max distance 0.01 by default): each asset's nearest neighbours are
looked up, close pairs are joined into groups (union-find), groups never cross owners. Owners with few
assets get an exact all-pairs pass in numpy; large ones use the HNSW index with an iterative scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np

from photosearch.db import Database
from photosearch.db import search as sq
from photosearch.search.query import SearchError

DEFAULT_MAX_DISTANCE = 0.01
EXACT_MAX_ASSETS = 20_000  # all-pairs in numpy up to here (~1 s); beyond, HNSW neighbours
NEIGHBOURS = 16


@dataclass
class DuplicateGroup:
    """One set of near-identical assets; iterating it yields the assets' rows (as the API renders them)."""

    owner_id: UUID
    asset_ids: list[UUID]
    max_distance: float
    assets: list[dict] = field(default_factory=list)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.assets)

    def __len__(self) -> int:
        return len(self.asset_ids)


def _exact_pairs(ids: list[UUID], emb: np.ndarray, max_distance: float) -> list[tuple[UUID, UUID, float]]:
    pairs: list[tuple[UUID, UUID, float]] = []
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for lo in range(0, len(ids), 2048):
        block = 1.0 - emb[lo : lo + 2048] @ emb.T  # cosine distances of a row block to all rows
        rows, cols = np.nonzero(block <= max_distance)
        for r, c in zip(rows, cols, strict=True):
            i = lo + int(r)
            if i < c:
                pairs.append((ids[i], ids[c], float(max(block[r, c], 0.0))))
    return pairs


def _groups(pairs: list[tuple[UUID, UUID, float]]) -> list[tuple[list[UUID], float]]:
    parent: dict[UUID, UUID] = {}

    def find(x: UUID) -> UUID:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    worst: dict[UUID, float] = {}
    for a, b, _ in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    for a, _, d in pairs:
        root = find(a)
        worst[root] = max(worst.get(root, 0.0), d)
    members: dict[UUID, list[UUID]] = {}
    for x in parent:
        members.setdefault(find(x), []).append(x)
    return [(sorted(m), worst[r]) for r, m in members.items() if len(m) > 1]


def find_duplicates(
    db: Database,
    user: dict,
    *,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    owner_ids: list[UUID] | None = None,
    all_owners: bool = False,
    with_assets: bool = True,
) -> list[DuplicateGroup]:
    """Groups of near-identical photos, largest first: the caller's own photos unless an admin asks for
    `owner_ids` or `all_owners`. Groups never mix owners."""
    if not 0 <= max_distance <= 2:
        raise SearchError("max_distance must be between 0 and 2 (cosine distance)")
    if all_owners and not user.get("is_admin"):
        raise SearchError("only an admin can look for duplicates across all users")
    with db.connection() as conn, conn.transaction():
        if all_owners:
            owner_ids = sq.users_with_assets(conn)
        elif owner_ids is None:
            owner_ids = [user["id"]]
        elif not user.get("is_admin") and any(o != user["id"] for o in owner_ids):
            raise SearchError("you can only look for duplicates among your own photos")
        sq.set_local(conn, {"jit": "off"})
        out: list[DuplicateGroup] = []
        for owner in owner_ids:
            if sq.owner_asset_count(conn, owner) <= EXACT_MAX_ASSETS:
                ids, emb = sq.owner_embeddings(conn, owner)
                pairs = _exact_pairs(ids, emb, max_distance) if ids else []
            else:
                sq.set_local(
                    conn,
                    {"hnsw.ef_search": 64, "hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": 50_000},
                )
                pairs = sq.near_duplicate_pairs(conn, owner, max_distance, NEIGHBOURS)
            for members, worst in _groups(pairs):
                out.append(DuplicateGroup(owner_id=owner, asset_ids=members, max_distance=worst))
        if with_assets and out:
            rows = sq.hydrate(conn, [i for g in out for i in g.asset_ids])
            for g in out:
                g.assets = [rows[i] for i in g.asset_ids if i in rows]
    out.sort(key=lambda g: (-len(g.asset_ids), g.max_distance))
    return out
