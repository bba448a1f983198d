"""`SearchService`: the one entry point the CLI, the API and the web UI use to search.

query → vector (CLIP text/image tower, a stored asset, or given) → owner scope → filters → plan →
exact or approximate kNN, each statement pipelined with its SET LOCAL settings → fallback if incomplete → hits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
import psycopg
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from photosearch.db import Database
from photosearch.db import resident as dr
from photosearch.db import search as sq
from photosearch.db import user_directory as ud
from photosearch.db.replicas import ReplicaSet
from photosearch.search.arithmetic import combine, text_vector
from photosearch.search.arithmetic import parse as parse_terms
from photosearch.search.filters import prepare_held, unindexed
from photosearch.search.planner import (
    Decision,
    PlannerConfig,
    QueryPlan,
    choose,
    escalate,
    is_broad,
    list_bounds,
    quantized_pool,
)
from photosearch.search.query import SearchError, SearchQuery
from photosearch.search.resident import HeldFilter, ResidentCache, ResidentLists

# Every kNN statement: no JIT (compiling costs 50-100 ms, more than the query), no parallel workers
# (the gather set-up costs more than it saves at these sizes, and cores are shared), and joins to exif/assets
# row by row (a hash join would read every embedding in the table).
BASE_SETTINGS: sq.Settings = {
    "jit": "off",
    "max_parallel_workers_per_gather": 0,
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
}
# ... and when no filter joins another table, the only joins left are the page's own (assets, users, exif), in
# the order written: planning them costs more than running them (1M rows: planning 0.73 → 0.44 ms).
FIXED_JOINS: sq.Settings = {"join_collapse_limit": 1}
NEGATIVE_WEIGHT = 0.5


class Held(NamedTuple):
    """The server's in-memory copy of the lists for one search (None: none, or not current), the part of the
    query's filters it checks itself, and whether that is every filter (filters.prepare_held)."""

    copy: ResidentLists | None
    filter: HeldFilter | None
    only: bool


class SearchHit(BaseModel):
    id: UUID
    owner_id: UUID
    owner_name: str | None = None
    library_id: UUID
    type: str
    original_path: str
    original_file_name: str
    file_size: int | None = None
    local_date_time: datetime
    file_created_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    width: int | None = None
    height: int | None = None
    is_favorite: bool = False
    is_archived: bool = False
    visibility: str = "timeline"
    is_offline: bool = False
    deleted_at: datetime | None = None
    thumbnail_path: str | None = None
    preview_path: str | None = None
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    rating: int | None = None
    description: str | None = None
    distance: float
    score: float


class SearchPage(BaseModel):
    items: list[SearchHit]
    page: int
    k: int
    next_page: int | None
    plan: QueryPlan


def cosine_of(metric: str, distance: float) -> float:
    """The cosine similarity a distance means, for unit-length embeddings (all CLIP towers)."""
    if metric == "cosine":
        return 1.0 - distance
    if metric == "l2":
        return 1.0 - distance * distance / 2.0
    return -distance  # `<#>` is the negative inner product


def score_of(metric: str, distance: float) -> float:
    """Higher is better: cosine similarity, inner product, or negative L2 distance."""
    if metric == "cosine":
        return 1.0 - distance
    return -distance


class SearchService:
    def __init__(
        self,
        db: Database,
        model_loader: Callable[[], Any] | None = None,
        config: PlannerConfig | None = None,
        resident: ResidentCache | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self.db = db
        self.replicas = replicas  # read replicas: searches run there, and their hits are confirmed here
        self._readers: dict[int, SearchService] = {}  # one per replica: its own owner-name and centroid caches
        self.model_loader = model_loader
        self.config = config or PlannerConfig()
        self.resident = resident  # the search lists in memory (a long-running server); None: PostgreSQL only
        self._centroids: tuple[str | None, np.ndarray, np.ndarray] | None = None  # (training, centroids, radii)
        self._users: ud.UserDirectory | None = None  # owner filters resolve from this copy (users_version keys it)
        # place and camera filters (hashed) and file-name filters (lower-cased) as the in-memory copy holds them
        self._converted: dict[Any, Any] = {}
        self._names: OrderedDict[tuple, np.ndarray | None] = OrderedDict()  # recent file-name searches' rows
        self._names_lock = threading.Lock()

    # -- query vector ---------------------------------------------------------------------------

    def _model(self) -> Any:
        if self.model_loader is None:
            raise SearchError("text and image queries need a CLIP model, and none is configured")
        return self.model_loader()

    def query_vector(
        self, conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None
    ) -> tuple[np.ndarray, UUID | None]:
        """The vector to search with (unit length), and the asset to exclude (for "more like this"). The caller
        checks its dimension against the stored embeddings."""
        exclude = None
        if query.text is not None:
            model = self._model()
            try:  # plain, or arithmetic: "beach" + "sunset" - "people"
                vec = text_vector(model.encode_text, query.text)
            except ValueError as exc:
                raise SearchError(str(exc)) from exc
            if query.negative_text:
                vec = vec - NEGATIVE_WEIGHT * np.asarray(model.encode_text(query.negative_text), dtype=np.float32)
        elif query.image_embedding is not None:
            vec = np.asarray(query.image_embedding, dtype=np.float32)
        elif query.image_path is not None or query.image_bytes is not None:
            model = self._model()
            if query.image_path is not None:
                if not query.image_path.is_file():
                    raise SearchError(f"no image file at {query.image_path}")
                source: Any = query.image_path
            else:
                source = query.image_bytes
            try:
                img = model.preprocessor.load_image(source)
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input image
                raise SearchError(f"cannot read the query image: {exc}") from exc
            vec = np.asarray(model.encode_images([img])[0], dtype=np.float32)
        elif query.like_asset_id is not None:
            found = sq.asset_embedding(conn, query.like_asset_id)
            if found is None or (scope is not None and found[0] not in scope):
                owner = sq.asset_exists(conn, query.like_asset_id)
                if owner is not None and (scope is None or owner in scope):
                    raise SearchError(f"asset {query.like_asset_id} has no embedding yet (run the indexer)")
                raise SearchError(f"no asset {query.like_asset_id}")
            vec, exclude = found[1], query.like_asset_id
        else:
            vec = np.asarray(query.vector, dtype=np.float32)
        if query.add_text or query.subtract_text:
            vec = self._with_terms(vec, query)
        if vec.ndim != 1:
            raise SearchError("the query vector must be one-dimensional")
        if not np.all(np.isfinite(vec)):
            raise SearchError("the query vector contains NaN or infinite values")
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            raise SearchError("the query vector is all zeros")
        return (vec / norm).astype(np.float32), exclude

    def _with_terms(self, vec: np.ndarray, query: SearchQuery) -> np.ndarray:
        """The query's vector plus add_text, minus subtract_text (search/arithmetic.py)."""
        encode = self._model().encode_text
        parts = [(1.0, vec)]
        for sign, terms in ((1.0, query.add_text or []), (-1.0, query.subtract_text or [])):
            for raw in terms:
                parts += [(sign * t.weight, encode(t.text)) for t in parse_terms(raw)]
        try:
            return combine(parts)
        except ValueError as exc:
            raise SearchError(str(exc)) from exc

    # -- who may be searched --------------------------------------------------------------------

    def owner_scope(self, conn: psycopg.Connection, query: SearchQuery, user: dict) -> list[UUID] | None:
        """Owner ids the query may return (None = everyone, for an admin without owner filters).

        Exclusions are rewritten into the complement list (`owner_id = ANY(...)`), which a B-tree can serve;
        `owner_id <> X` cannot use an index.
        """
        is_admin = bool(user.get("is_admin"))
        scope: list[UUID] | None = None if is_admin else [user["id"]]
        if query.owners:
            ids = self._resolve(conn, query.owners)
            if not is_admin and any(i != user["id"] for i in ids):
                raise SearchError("you can only search your own photos")
            scope = ids
        if query.exclude_owners:
            excluded = set(self._resolve(conn, query.exclude_owners))
            base = scope if scope is not None else self._directory(conn).ids()
            scope = [i for i in base if i not in excluded]
        return scope

    def _directory(self, conn: psycopg.Connection) -> ud.UserDirectory:
        """The cached users (read on first use, and again once a search's context shows they changed)."""
        directory = self._users
        if directory is None:
            directory = self._users = ud.user_directory(conn)
        return directory

    def _resolve(self, conn: psycopg.Connection, idents: list[str]) -> list[UUID]:
        found = self._directory(conn).resolve(idents)
        unknown = [k for k, v in found.items() if v is None]
        if unknown:  # perhaps a user added since the copy was read: read it again before saying no
            self._users = None
            found = self._directory(conn).resolve(idents)
            unknown = [k for k, v in found.items() if v is None]
        if unknown:
            raise SearchError(f"unknown user(s): {', '.join(unknown)}")
        return list(dict.fromkeys(v for v in found.values() if v is not None))

    # -- search -----------------------------------------------------------------------------------

    def search(self, query: SearchQuery, user: dict) -> SearchPage:
        """Search on a read replica when there is a healthy one, else here. A replica's page counts only once the
        primary confirms its photos are still there with the same owner and trash state (a lagging replica can
        still hold a photo since deleted or given away); otherwise the search runs again on the primary."""
        replica = self.replicas.pick() if self.replicas else None
        if replica is None:
            return self._search_here(query, user)
        assert self.replicas is not None
        reader = self._readers.get(id(replica))
        if reader is None:
            reader = self._readers.setdefault(
                id(replica), SearchService(replica, self.model_loader, self.config, self.resident)
            )
        try:
            page = reader._search_here(query, user)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self.replicas.mark_down(replica, exc)
            return self.search(query, user)  # the next healthy replica, or the primary
        confirmed = self.replicas.confirm_owned([(h.id, h.owner_id, h.deleted_at is not None) for h in page.items])
        if confirmed is False:
            page = self._search_here(query, user)
            page.plan.fallback = "the replica returned photos the primary has since changed; ran on the primary"
            return page
        page.plan.served_by = "replica" if confirmed else "replica (unconfirmed: the primary does not answer)"
        return page

    def _search_here(self, query: SearchQuery, user: dict) -> SearchPage:
        if query.understand and query.text:  # one search box: names, operators, text matches (search/hybrid.py)
            from photosearch.search.hybrid import understood_search

            return understood_search(self, query, user)
        if query.relevant_only and not query.text_only:  # an adaptive cutoff, then any order (search/relevance.py)
            from photosearch.search.relevance import relevant_search

            return relevant_search(self, query, user)
        if query.text_only:  # no vector: ranked by the text in the photos (search/text.py)
            from photosearch.search.text import text_search

            return text_search(self, query, user)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        # Autocommit: every statement (or pipeline of settings + kNN statement) is its own implicit transaction,
        # so no BEGIN, SET LOCAL or COMMIT costs a round trip of its own (~0.5 ms of a ~10 ms query at 1M photos).
        with self.db.connection() as conn, _autocommit(conn):
            scope = self.owner_scope(conn, query, user)
            vec, exclude = self.query_vector(conn, query, scope)
            timings["vector"] = _ms(t0)
            t = time.perf_counter()
            wheres, ctx = self._context(conn, query, scope, exclude)
            cached = self._users
            if (query.owners or query.exclude_owners) and (cached is None or cached.version != ctx.users_version):
                # Users changed since they were cached: resolve the owner filters again.
                self._users = None
                scope = self.owner_scope(conn, query, user)
                if query.like_asset_id is not None:
                    vec, exclude = self.query_vector(conn, query, scope)
                wheres, ctx = self._context(conn, query, scope, exclude)
            held = self._held(conn, query, scope, ctx)
            estimate = self._estimate(conn, wheres, ctx, held)
            timings["estimate"] = _ms(t)
            if vec.shape[0] != ctx.dim:
                raise SearchError(
                    f"the query vector has {vec.shape[0]} dimensions; the stored embeddings have {ctx.dim}"
                )
            plan, ranked = self._run(conn, query, vec, wheres, scope, ctx, held, estimate, timings)
        items = [  # every path returns the hits' asset/EXIF fields with the ranking
            SearchHit(**ranked.hits[i], distance=d, score=score_of(query.distance, d))
            for i, d in zip(ranked.ids, ranked.distances, strict=True)
            if i in ranked.hits
        ]
        if query.order in ("date", "date_asc"):
            items.sort(key=lambda h: h.local_date_time, reverse=query.order == "date")
        timings["total"] = _ms(t0)
        plan.rows = len(items)
        plan.timings_ms = {k: round(v, 3) for k, v in timings.items()}
        next_page = query.page + 1 if len(items) == query.k and query.depth + query.k <= 10_000 else None
        return SearchPage(items=items, page=query.page, k=query.k, next_page=next_page, plan=plan)

    @staticmethod
    def _context(
        conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None, exclude: UUID | None
    ) -> tuple[tuple[sq.Where, sq.Where], sq.SearchContext]:
        """The filters compiled over smart_search and over search_ivf, and the search context."""
        where = sq.compile_filters(query, scope, exclude)
        ivf = sq.compile_filters(query, scope, exclude, ivf=True)
        return (where, ivf), sq.begin_search(conn)

    def _held(
        self, conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None, ctx: sq.SearchContext
    ) -> Held:
        """The in-memory copy, if current, with the part of the filters it checks itself."""
        copy = None if self.resident is None else self.resident.get((ctx.lists_version, ctx.search_version))
        if copy is None or self.resident is None:
            return Held(None, None, False)
        prep = _Preparation(self, conn, copy, scope, self.resident.flags(copy, ctx.flags_version))
        kwargs, every = prepare_held(query, prep)
        found = HeldFilter.of(**kwargs, zone=conn.info.timezone, rows=len(copy.ids))  # the session's zone: how
        # PostgreSQL reads a date without one
        only = found is not None and every
        return Held(copy, found, only)

    @staticmethod
    def _estimate(
        conn: psycopg.Connection, wheres: tuple[sq.Where, sq.Where], ctx: sq.SearchContext, held: Held
    ) -> tuple[int, str]:
        """How many rows the filters match, and how that was estimated: from the in-memory copy's counts when it
        checks every filter itself; else by PostgreSQL's planner (EXPLAIN, on search_ivf, one table with the
        EXIF columns, unless a filter needs `assets`; ~1-2 ms at 1M photos)."""
        where, ivf = wheres
        if not where.conditions:
            return ctx.total, "table statistics"
        if held.copy is not None and held.filter is not None and held.only:
            return held.copy.estimate(held.filter), "the in-memory copy's counts"
        return sq.estimate_matches(conn, where if ivf.needs_assets else ivf), "planner statistics (EXPLAIN)"

    def _list_scores(self, conn: psycopg.Connection, ctx: sq.SearchContext, vec: np.ndarray) -> np.ndarray | None:
        """The query's similarity to each search list's centroid (None before training). Centroids are cached
        per training (1,000 x 512 floats: reading them costs more than the search they serve)."""
        if ctx.lists <= 1:
            return None
        cached = self._centroids
        if cached is None or cached[0] != ctx.lists_version:
            cached = self._centroids = (ctx.lists_version, sq.centroids(conn), sq.list_radii(conn))
        return cached[1] @ vec if len(cached[1]) else None

    def _beyond(self, scores: np.ndarray | None, probed: list[int] | None, query: SearchQuery, ranked: sq.Ranked
                ) -> list[int]:  # fmt: skip
        """The lists not `probed` that could hold a row nearer the query than the page's last (planner.list_bounds):
        a probe is complete for the page only when there are none. A page cut short by max_distance compares
        with that distance; another short page has nothing to compare with (the caller widens it anyway)."""
        cached = self._centroids
        if scores is None or probed is None or cached is None or len(cached[2]) != len(scores):
            return []
        if len(ranked.ids) >= query.k and ranked.distances:
            last = cosine_of(query.distance, ranked.distances[-1])
        elif query.max_distance is not None:
            last = cosine_of(query.distance, query.max_distance)
        else:
            return []
        return self._lists_above(scores, probed, last)

    def _lists_above(self, scores: np.ndarray, probed: list[int], similarity: float) -> list[int]:
        """The lists not `probed` whose best possible similarity to the query reaches `similarity`, nearest first."""
        cached = self._centroids
        if cached is None or len(cached[2]) != len(scores):
            return []
        bounds = list_bounds(self.config, scores, cached[2])
        reach = bounds >= similarity - 1e-6
        reach[np.asarray(probed, dtype=np.int64)] = False
        found = np.flatnonzero(reach)
        return found[np.argsort(-scores[found], kind="stable")].astype(int).tolist()

    def _widened(self, lists: list[int], extra: list[int]) -> list[int] | None:
        """`lists` and `extra` together, or None (every row) when that is most of them (probe_all_share)."""
        union = sorted(set(lists) | set(extra))
        total = len(self._centroids[1]) if self._centroids is not None else 0
        return None if len(union) >= total * self.config.probe_all_share else union

    def _far(self, query: SearchQuery, nearest_score: float | None) -> str | None:
        """Why the query counts as far from the library (PlannerConfig.far_score), or None. Far queries avoid HNSW,
        whose greedy walk finds few of their neighbours."""
        if query.text is not None:  # CLIP's modality gap: text sits apart from photos whatever its score
            return "a text query"
        if nearest_score is not None and nearest_score < self.config.far_score:
            return f"far from every list centroid (cosine {nearest_score:.2f} < {self.config.far_score})"
        return None

    @staticmethod
    def _nearest(scores: np.ndarray | None, probes: int | None) -> list[int] | None:
        """The `probes` lists whose centroids are nearest the query (None = all rows)."""
        if probes is None or scores is None or len(scores) <= probes:
            return None
        return np.argpartition(-scores, probes - 1)[:probes].astype(int).tolist()

    def _run(
        self,
        conn: psycopg.Connection,
        query: SearchQuery,
        vec: np.ndarray,
        wheres: tuple[sq.Where, sq.Where],
        scope: list[UUID] | None,
        ctx: sq.SearchContext,
        held: Held,
        estimate: tuple[int, str],
        timings: dict[str, float],
    ) -> tuple[QueryPlan, sq.Ranked]:
        """Plan, run, and fall back until the page is complete. `wheres` = the filters over smart_search and
        over search_ivf."""
        where, ivf = wheres
        total, lists = ctx.total, ctx.lists
        if scope is not None and len(scope) == 0:
            plan = QueryPlan(strategy="exact", reason="no owner is in scope: nothing can match", filters=0)
            return plan, sq.Ranked([], [])
        estimated, method = estimate
        scores = self._list_scores(conn, ctx, vec)
        nearest_score = float(scores.max()) if scores is not None else None
        copy = held.copy
        if query.strategy == "memory" and copy is None:
            raise SearchError("the search lists are not in memory: only a running server holds them, once loaded")
        choice = {
            "cfg": self.config,
            "estimated": estimated,
            "total": total,
            "depth": query.depth,
            "lists": lists,
            "ef_override": query.ef_search,
            "joins_exif": where.needs_exif and not ivf.needs_assets,
            "far": self._far(query, nearest_score),
        }
        rows = None if copy is None else len(copy.ids)
        held_rows = None if copy is None else copy.held_rows(held.filter)
        d = choose(
            forced=query.strategy,
            resident_rows=rows,
            held=held.only,
            held_rows=held_rows,
            unindexed=unindexed(query),  # no PostgreSQL index serves it: its exact path reads every photo
            **choice,
        )
        plan = QueryPlan(
            strategy=d.strategy,
            reason=d.reason,
            estimated_matches=estimated,
            estimate_method=method,
            total_embeddings=total,
            filters=query.given_filters,
            lists=lists if lists > 1 else None,
            nearest_list_score=None if nearest_score is None else round(nearest_score, 4),
        )
        common = {"metric": query.distance, "limit": query.k, "offset": query.offset}
        fixed = FIXED_JOINS if not (where.needs_assets or where.needs_exif or ivf.needs_assets) else {}
        settings = {**BASE_SETTINGS, **fixed}
        if d.strategy == "memory" and copy is not None:
            plan.probes = d.probes
            # Candidates are checked in smart_search (one descent each, the full vector in the same row), unless a
            # filter is on EXIF columns, which search_ivf carries.
            checked = ivf if where.needs_exif or where.needs_assets else where
            # A broad filter is not applied in memory: nearly every row passes, and ranking whole lists is cheaper
            # than gathering the rows that do.
            narrow = None if is_broad(self.config, estimated, total) else held.filter
            ranked, note = self._memory(conn, query, vec, checked, narrow, copy, d, scores, settings, timings, plan)
            if ranked is not None:
                return plan, ranked
            d = choose(forced="auto", **choice)  # the copy could not fill the page: plan again, in PostgreSQL
            plan.strategy, plan.reason, plan.fallback = d.strategy, d.reason, note
        d, found_rows = self._in_postgres(
            conn, query, vec, wheres, d, scores, settings, timings, plan, estimated, total
        )
        if found_rows is not None:
            return plan, found_rows
        plan.ef_search, plan.pool, plan.max_scan_tuples = d.ef_search, d.pool, d.max_scan_tuples
        t = time.perf_counter()
        nearest = self._nearest(scores, self.config.hnsw_rescue_probes or None)
        # HNSW misses whole regions it cannot reach (1M rows: one query in 40 found 1 of its top 10, at any
        # ef_search); the rows of the few lists nearest the query cover them (recall 0.953 → 0.98).
        rescue = None if nearest is None else sq.Rescue(ivf, nearest, 2 * query.depth)
        ranked, found, best = sq.approximate_search(
            conn,
            vec,
            where,
            pool=d.pool or query.depth,
            max_distance=query.max_distance,
            index_type=ctx.index_type,
            rescue=rescue,
            settings={**settings, **d.hnsw_settings},
            **common,
        )
        timings["approximate"] = _ms(t)
        similarity = None if best is None else cosine_of(query.distance, best)
        if (
            found >= query.depth
            and scores is None
            and similarity is not None
            and similarity < self.config.far_score
            and query.strategy == "auto"
            and plan.fallback is None  # not after an escalation: that found more rows than ranking all of them suits
            and estimated <= self.config.quantized_max_rows
        ):
            # No lists to tell how far the query is beforehand, but its best match says it: far from every photo
            # (15k rows, text-like vectors: HNSW recall@10 0.975). Rank every match instead, as text queries do.
            pool = quantized_pool(self.config, query.depth)
            t = time.perf_counter()
            ranked = sq.quantized_search(
                conn, vec, ivf, pool=pool, max_distance=query.max_distance, settings=settings, **common
            )
            timings["quantized"] = _ms(t)
            plan.strategy, plan.pool = "quantized", pool
            plan.fallback = (
                f"HNSW's best match is at cosine {similarity:.2f} < {self.config.far_score}: a far query,"
                " ranked every match instead"
            )
            return plan, ranked
        extra = (
            [] if rescue is None or query.strategy != "auto" else self._beyond(scores, [*rescue.lists], query, ranked)
        )
        if found >= query.depth and extra:
            # Lists beyond the few merged in could hold rows nearer than the page's last (HNSW's beam may have
            # missed them): probe every list the distance says, in PostgreSQL.
            # a filter's rows cluster where no centroid shows (planner.probes_for): unless it is broad, and its
            # estimate held (no escalation), every match is ranked
            broad = is_broad(self.config, estimated, total) and plan.fallback is None
            wider = self._widened([*rescue.lists], extra) if rescue is not None and broad else None
            note = f"{len(extra)} lists beyond the {len(rescue.lists) if rescue else 0} merged could hold rows nearer"
            note += f" than the page's last: probed {len(wider) if wider else 'all'}"
            plan.fallback = f"{plan.fallback}; {note}" if plan.fallback else note
            plan.strategy, plan.ef_search, plan.max_scan_tuples = "quantized", None, None
            pool = quantized_pool(self.config, query.depth)
            probe = Decision("quantized", "wider probe", pool=pool, probes=wider and len(wider), lists=wider)
            _, found_rows = self._in_postgres(
                conn, query, vec, wheres, probe, scores, settings, timings, plan, estimated, total
            )
            if found_rows is not None:
                return plan, found_rows
        if found >= query.depth:
            if rescue is not None:
                plan.probes = len(rescue.lists)
                plan.reason += f"; merged with the rows of the {len(rescue.lists)} search lists nearest the query"
            return plan, ranked
        # The scan ended (max_scan_tuples, or few matches) before filling the page: exact is complete.
        t = time.perf_counter()
        ranked = sq.exact_search(conn, vec, where, max_distance=query.max_distance, settings=settings, **common)
        timings["exact_fallback"] = _ms(t)
        plan.fallback = f"HNSW found {found} of the {query.depth} rows needed: re-ran exactly"
        plan.strategy = "exact"
        return plan, ranked

    def _in_postgres(
        self,
        conn: psycopg.Connection,
        query: SearchQuery,
        vec: np.ndarray,
        wheres: tuple[sq.Where, sq.Where],
        d: Decision,
        scores: np.ndarray | None,
        settings: sq.Settings,
        timings: dict[str, float],
        plan: QueryPlan,
        estimated: int,
        total: int,
    ) -> tuple[Decision, sq.Ranked | None]:
        """Run an exact or quantized decision until its page is complete: escalate when more rows match than its
        bound, widen a probe whose lists hold too few rows or may hold nearer ones. (the last decision, its page);
        no page when the last decision is HNSW's (an escalation)."""
        where, ivf = wheres
        lists = len(scores) if scores is not None else 1
        common = {"metric": query.distance, "limit": query.k, "offset": query.offset}
        while d.strategy in ("exact", "quantized"):
            t = time.perf_counter()
            probed = None
            if d.strategy == "exact":
                ranked = sq.exact_search(
                    conn, vec, where, bound=d.bound, max_distance=query.max_distance, settings=settings, **common
                )
            else:
                probed = d.lists if d.lists is not None else self._nearest(scores, d.probes)
                ranked = sq.quantized_search(
                    conn,
                    vec,
                    ivf,
                    pool=d.pool or 200,
                    lists=probed,
                    bound=d.bound,
                    max_distance=query.max_distance,
                    settings=settings,
                    **common,
                )
                plan.pool, plan.probes = d.pool, None if probed is None else len(probed)
            timings[d.strategy] = timings.get(d.strategy, 0.0) + _ms(t)
            if d.bound is not None and ranked.scanned is not None and ranked.scanned > d.bound:
                # The estimate was far too low: more than `bound` rows match, so this path would be slow.
                previous, limit = d.strategy, d.bound
                d = escalate(self.config, d, total=total, depth=query.depth, lists=lists)
                note = f"more than {limit} rows match (estimate was {estimated}):"
                note += f" {previous} → {d.strategy}"
                plan.fallback = f"{plan.fallback}; {note}" if plan.fallback else note
                plan.strategy = d.strategy
                continue
            if probed is not None and len(ranked.ids) < query.k:
                # The probed lists held too few matching rows (a filter concentrated in far lists): probe 4x more,
                # up to every list, which is complete.
                wider = (
                    None if len(probed) * 4 >= lists else self._widened(probed, self._nearest(scores, len(probed) * 4))
                )
                seen = "too few" if ranked.scanned is None else ranked.scanned
                note = f"{seen} candidates in {len(probed)} lists: probed {len(wider) if wider else 'all'}"
                d = Decision("quantized", "wider probe", pool=d.pool, probes=wider and len(wider), lists=wider)
                plan.fallback = f"{plan.fallback}; {note}" if plan.fallback else note
                continue
            extra = self._beyond(scores, probed, query, ranked)
            if extra:
                # Lists beyond the probe could hold rows nearer than the page's last (a deep page, a far query):
                # probe them too, as far as the distance says, however many rows that is.
                wider = self._widened(probed or [], extra)
                note = f"{len(extra)} more lists could hold rows nearer than the page's last: probed"
                note += f" {len(wider) if wider else 'all'}"
                d = Decision("quantized", "wider probe", pool=d.pool, probes=wider and len(wider), lists=wider)
                plan.fallback = f"{plan.fallback}; {note}" if plan.fallback else note
                continue
            return d, ranked
        return d, None

    def _name_rows(self, copy: ResidentLists, needle: bytes) -> np.ndarray | None:
        """The copy's rows a file-name filter matches (ResidentLists.name_matches), kept for the 32 latest needles
        per copy: the next page of the same search, or a search refined with another filter, skips the pass over
        every name (1M photos: 11-22 ms)."""
        key = (copy.key, needle)  # names change only with the copy's key
        with self._names_lock:  # the API serves searches from several threads
            if key in self._names:
                self._names.move_to_end(key)
                return self._names[key]
        found = copy.name_matches(needle, self.config.memory_name_max_matches)
        with self._names_lock:
            self._names[key] = found
            while len(self._names) > 32:
                self._names.popitem(last=False)
        return found

    def _lowered(self, conn: psycopg.Connection, value: str) -> bytes:
        """A file-name filter as the copy holds names: lower-cased by PostgreSQL."""
        return self._by_postgres(("name", value), lambda: dr.lowered(conn, value))

    def _text_hash(self, conn: psycopg.Connection, value: str) -> int:
        """A place or camera as the in-memory copy holds it: hashed by PostgreSQL."""
        return self._by_postgres(value, lambda: dr.text_hash(conn, value))

    def _by_postgres(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A filter value as PostgreSQL turns it into what the copy holds: one round trip per value, then cached."""
        found = self._converted.get(key)
        if found is None:
            if len(self._converted) > 10_000:
                self._converted.clear()
            found = self._converted[key] = compute()
        return found

    def _memory(
        self,
        conn: psycopg.Connection,
        query: SearchQuery,
        vec: np.ndarray,
        checked: sq.Where,
        held: HeldFilter | None,
        copy: ResidentLists,
        d: Decision,
        scores: np.ndarray | None,
        settings: sq.Settings,
        timings: dict[str, float],
        plan: QueryPlan,
    ) -> tuple[sq.Ranked | None, str | None]:
        """Rank the probed lists in memory, then let PostgreSQL filter the best `d.candidates` by primary key and
        re-score the first of those that pass. When fewer pass than the page needs (a filter rarer near this query
        than overall), hand over more once: twice what the share that passed says is missing. The page is then
        complete for the probed lists (every better matching row was handed over). Returns (None, why) when that
        still falls short: the caller plans again in PostgreSQL, which widens the probe itself."""
        lists = self._nearest(scores, d.probes)
        t = time.perf_counter()
        rows, sims = copy.scores(vec, lists, held)
        count = min(d.candidates or query.depth, len(rows))
        # Before any candidate goes to PostgreSQL: every list that could hold a row nearer than the last candidate
        # is ranked too (planner.list_bounds; all of them when the probe holds fewer rows than the candidates).
        lists, rows, sims = self._widen_in_memory(copy, vec, held, scores, lists, rows, sims, count)
        plan.probes = None if lists is None else len(lists)
        timings["memory_rank"] = _ms(t)
        count = min(d.candidates or query.depth, len(rows))
        for attempt in (1, 2, 3):
            t = time.perf_counter()
            plan.pool = count  # candidates handed to PostgreSQL
            ids = copy.top(rows, sims, count)
            ranked = sq.candidate_search(
                conn,
                vec,
                checked,
                ids,
                pool=d.pool or quantized_pool(self.config, query.depth),
                max_distance=query.max_distance,
                settings=settings,
                metric=query.distance,
                limit=query.k,
                offset=query.offset,
            )
            timings["memory"] = timings.get("memory", 0.0) + _ms(t)
            passed = ranked.scanned or 0
            if passed >= query.depth or (count >= len(rows) and lists is None):
                # enough rows passed, or every row was handed over; unless the page's last row is so far that
                # lists not ranked could hold nearer ones (more candidates failed the filters than expected)
                extra = self._beyond(scores, lists, query, ranked) if passed >= query.depth else []
                if not extra or attempt == 3 or lists is None:
                    return ranked, None
                t = time.perf_counter()
                more_rows, more_sims = copy.scores(vec, extra, held)
                rows, sims = np.concatenate([rows, more_rows]), np.concatenate([sims, more_sims])
                lists = self._widened(lists, extra)
                plan.probes = None if lists is None else len(lists)
                timings["memory_rank"] += _ms(t)
                continue
            note = f"{passed} of the best {count} in memory match the filters, {query.depth} needed"
            if attempt >= 2 or count >= len(rows):
                return None, note
            share = max(passed, 1) / count  # the filter's share among this query's nearest rows
            count = min(len(rows), count + int(math.ceil(2 * (query.depth - passed) / share)))
            if count > self.config.memory_max_candidates:  # PostgreSQL's own probe reads fewer rows than that
                return None, note
        return None, None

    def _widen_in_memory(
        self,
        copy: ResidentLists,
        vec: np.ndarray,
        held: HeldFilter | None,
        scores: np.ndarray | None,
        lists: list[int] | None,
        rows: np.ndarray,
        sims: np.ndarray,
        position: int,
    ) -> tuple[list[int] | None, np.ndarray, np.ndarray]:
        """(lists, rows, similarities) after ranking every list whose best possible similarity reaches the
        `position`-th best row ranked so far (all lists when fewer rows were ranked), until none is left; lists
        None = every row."""
        while lists is not None and scores is not None:
            last = -np.inf if not 0 < position <= len(sims) else float(np.partition(sims, -position)[-position])
            extra = self._lists_above(scores, lists, last)
            if not extra:
                break
            wider = self._widened(lists, extra)
            if wider is None:
                found_rows, found_sims = copy.scores(vec, None, held)
                return None, found_rows, found_sims
            more_rows, more_sims = copy.scores(vec, extra, held)
            rows, sims, lists = np.concatenate([rows, more_rows]), np.concatenate([sims, more_sims]), wider
        return lists, rows, sims


class _Preparation:
    """What the table of filters needs to turn a query into the copy's filter (filters.Preparation)."""

    def __init__(
        self,
        service: SearchService,
        conn: psycopg.Connection,
        copy: ResidentLists,
        scope: list[UUID] | None,
        flags: bool,
    ) -> None:
        self.service, self.conn, self.copy, self.scope, self.flags = service, conn, copy, scope, flags
        self.added = len(copy.created) == len(copy.ids)  # the copy has the times photos were added

    def text_hash(self, value: str) -> int:
        return self.service._text_hash(self.conn, value)

    def name_rows(self, value: str) -> np.ndarray | None:
        return self.service._name_rows(self.copy, self.service._lowered(self.conn, value))


@contextmanager
def _autocommit(conn: psycopg.Connection) -> Iterator[None]:
    """Autocommit for the duration of a search, restored after. A connection left mid-transaction (an error
    inside a pipeline) is closed rather than handed back to the pool in autocommit mode."""
    if conn.autocommit:
        yield
        return
    conn.autocommit = True
    try:
        yield
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = False
        else:
            conn.close()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
