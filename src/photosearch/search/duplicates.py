"""Near-duplicate photos: assets of one owner whose CLIP embeddings lie within a small cosine distance.

Like immich's duplicate detection (max distance 0.01 by default): each asset's nearest neighbours are
looked up; groups never cross owners. Owners with few assets get an exact all-pairs pass in numpy; large ones
use the HNSW index with an iterative scan. Grouping takes the close pairs nearest first, and a photo joins a
group only when it is within the threshold of every photo already in it: no chain of neighbours-of-neighbours
drifts beyond the threshold (union-find over the pairs put 1,023 of 1,026 test photos in one group).
Each group suggests the photo to keep (`suggest_keeper`); `resolve_group` keeps one and trashes the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np

from photosearch.db import Database
from photosearch.db import duplicates as dd
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
    max_distance: float  # the largest distance between two photos of the group (<= the threshold)
    assets: list[dict] = field(default_factory=list)
    keep: UUID | None = None  # the suggested photo to keep (suggest_keeper)

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
    """Complete-linkage groups: pairs are taken nearest first; a photo joins its partner's group only if it is
    within the threshold of every member (i.e. paired with each); two groups never merge."""
    close = {(a, b) for a, b, _ in pairs} | {(b, a) for a, b, _ in pairs}
    dist = {(a, b): d for a, b, d in pairs}
    group_of: dict[UUID, int] = {}
    groups: list[list[UUID]] = []
    for a, b, _ in sorted(pairs, key=lambda p: (p[2], p[0], p[1])):
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None and gb is None:
            group_of[a] = group_of[b] = len(groups)
            groups.append([a, b])
            continue
        if ga is not None and gb is not None:
            continue
        g, new = (ga, b) if ga is not None else (gb, a)
        assert g is not None
        if all((new, m) in close for m in groups[g]):
            group_of[new] = g
            groups[g].append(new)
    out = []
    for members in groups:
        members.sort()
        worst = max(dist.get((x, y), dist.get((y, x), 0.0)) for i, x in enumerate(members) for y in members[i + 1 :])
        out.append((members, worst))
    return out


_METADATA = ("make", "model", "lens_model", "latitude", "city", "country", "rating", "description")


def keeper_rank(asset: dict) -> tuple:
    """Higher is the better copy to keep: most pixels, then the largest file, then the most metadata, then the
    oldest date taken (the original rather than a later export), then the id (a stable choice)."""
    pixels = (asset.get("width") or 0) * (asset.get("height") or 0)
    metadata = sum(asset.get(k) is not None for k in _METADATA)
    taken = asset.get("local_date_time")
    return (pixels, asset.get("file_size") or 0, metadata, -(taken.timestamp() if taken else 0.0), str(asset["id"]))


def suggest_keeper(assets: list[dict]) -> UUID | None:
    return max(assets, key=keeper_rank)["id"] if assets else None


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
            owner_ids = dd.users_with_assets(conn)
        elif owner_ids is None:
            owner_ids = [user["id"]]
        elif not user.get("is_admin") and any(o != user["id"] for o in owner_ids):
            raise SearchError("you can only look for duplicates among your own photos")
        sq.set_local(conn, {"jit": "off"})
        out: list[DuplicateGroup] = []
        for owner in owner_ids:
            if dd.owner_asset_count(conn, owner) <= EXACT_MAX_ASSETS:
                ids, emb = dd.owner_embeddings(conn, owner)
                pairs = _exact_pairs(ids, emb, max_distance) if ids else []
            else:
                sq.set_local(
                    conn,
                    {"hnsw.ef_search": 64, "hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": 50_000},
                )
                pairs = dd.near_duplicate_pairs(conn, owner, max_distance, NEIGHBOURS)
            for members, worst in _groups(pairs):
                out.append(DuplicateGroup(owner_id=owner, asset_ids=members, max_distance=worst))
        if with_assets and out:
            rows = sq.hydrate(conn, [i for g in out for i in g.asset_ids])
            for g in out:
                g.assets = [rows[i] for i in g.asset_ids if i in rows]
                g.keep = suggest_keeper(g.assets)
    out.sort(key=lambda g: (-len(g.asset_ids), g.max_distance))
    return out


def resolve_group(db: Database, user: dict, keep: UUID, others: list[UUID]) -> int:
    """Keep `keep`, move `others` to the trash (restorable; files are never touched). Only the caller's own
    live photos are trashed, and never the one kept; returns how many were trashed."""
    from photosearch.db.timeline import bulk_update

    trash = [i for i in dict.fromkeys(others) if i != keep]
    if not trash:
        raise SearchError("nothing to trash: give the photos of the group besides the one to keep")
    with db.cursor() as cur:
        cur.execute("SELECT owner_id FROM assets WHERE id = %s AND deleted_at IS NULL", (keep,))
        row = cur.fetchone()
    if row is None or (row["owner_id"] != user["id"]):
        raise SearchError(f"no photo {keep} of yours to keep")
    return bulk_update(db, user["id"], trash, "trash")
