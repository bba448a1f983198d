"""`SearchService`: the one entry point the CLI, the API and the web UI use to search.

query → vector (CLIP text/image tower, a stored asset, or given) → owner scope → filters → plan →
exact or approximate kNN, each statement pipelined with its SET LOCAL settings → fallback if incomplete → hits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg_pool import PoolTimeout

from photosearch.db import Database, knn
from photosearch.db import search as sq
from photosearch.db import user_directory as ud
from photosearch.db.replicas import ReplicaSet
from photosearch.search import approximate, memory
from photosearch.search.filters import unindexed
from photosearch.search.held import Held, HeldLookup
from photosearch.search.page import SearchHit, SearchPage, score_of
from photosearch.search.planner import (
    PlannerConfig,
    QueryPlan,
    choose,
)
from photosearch.search.query import SearchError, SearchQuery
from photosearch.search.resident import ResidentCache
from photosearch.search.run import Run, cosine_of, in_postgres
from photosearch.search.vector import query_vector

# SearchHit, SearchPage and cosine_of are imported from here by the other ways to search (text.py, relevance.py)
__all__ = ["SearchHit", "SearchPage", "SearchService", "cosine_of"]

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
        self._held_lookup = HeldLookup(resident, self.config.memory_name_max_matches)

    # -- query vector ---------------------------------------------------------------------------

    def _model(self) -> Any:
        if self.model_loader is None:
            raise SearchError("text and image queries need a CLIP model, and none is configured")
        return self.model_loader()

    def query_vector(
        self, conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None
    ) -> tuple[np.ndarray, UUID | None]:
        """The vector to search with (unit length), and the asset to exclude (for "more like this"): search/vector.py.
        The caller checks its dimension against the stored embeddings."""
        return query_vector(self._model, conn, query, scope)

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
        """The in-memory copy, if current, with the part of the filters it checks itself (search/held.py)."""
        return self._held_lookup.held(conn, query, scope, ctx)

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

    def _far(self, query: SearchQuery, nearest_score: float | None) -> str | None:
        """Why the query counts as far from the library (PlannerConfig.far_score), or None. Far queries avoid HNSW,
        whose greedy walk finds few of their neighbours."""
        if query.text is not None:  # CLIP's modality gap: text sits apart from photos whatever its score
            return "a text query"
        if nearest_score is not None and nearest_score < self.config.far_score:
            return f"far from every list centroid (cosine {nearest_score:.2f} < {self.config.far_score})"
        return None

    def _choice(
        self,
        query: SearchQuery,
        wheres: tuple[sq.Where, sq.Where],
        ctx: sq.SearchContext,
        estimated: int,
        nearest_score: float | None,
    ) -> dict[str, Any]:
        """What the planner decides on, but the in-memory copy (planner.choose's keywords)."""
        where, ivf = wheres
        return {
            "cfg": self.config,
            "estimated": estimated,
            "total": ctx.total,
            "depth": query.depth,
            "lists": ctx.lists,
            "ef_override": query.ef_search,
            "joins_exif": where.needs_exif and not ivf.needs_assets,
            "far": self._far(query, nearest_score),
        }

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
    ) -> tuple[QueryPlan, knn.Ranked]:
        """Plan, then run the strategies until the page is complete: in memory (planning again in PostgreSQL when
        the copy cannot fill the page), exact or quantized (each escalating or widening itself), HNSW.
        `wheres` = the filters over smart_search and over search_ivf."""
        where, ivf = wheres
        if scope is not None and len(scope) == 0:
            plan = QueryPlan(strategy="exact", reason="no owner is in scope: nothing can match", filters=0)
            return plan, knn.Ranked([], [])
        estimated, method = estimate
        scores = self._list_scores(conn, ctx, vec)
        nearest_score = float(scores.max()) if scores is not None else None
        copy = held.copy
        if query.strategy == "memory" and copy is None:
            raise SearchError("the search lists are not in memory: only a running server holds them, once loaded")
        choice = self._choice(query, wheres, ctx, estimated, nearest_score)
        d = choose(
            forced=query.strategy,
            resident_rows=None if copy is None else len(copy.ids),
            held=held.only,
            held_rows=None if copy is None else copy.held_rows(held.filter),
            unindexed=unindexed(query),  # no PostgreSQL index serves it: its exact path reads every photo
            **choice,
        )
        plan = QueryPlan(
            strategy=d.strategy,
            reason=d.reason,
            estimated_matches=estimated,
            estimate_method=method,
            total_embeddings=ctx.total,
            filters=query.given_filters,
            lists=ctx.lists if ctx.lists > 1 else None,
            nearest_list_score=None if nearest_score is None else round(nearest_score, 4),
        )
        fixed = FIXED_JOINS if not (where.needs_assets or where.needs_exif or ivf.needs_assets) else {}
        r = Run(conn, self.config, query, vec, where, ivf, ctx, held, estimated, scores, self._centroids, plan,
                {**BASE_SETTINGS, **fixed}, timings)  # fmt: skip
        if d.strategy == "memory" and copy is not None:
            ranked, note = memory.run(r, d)
            if ranked is not None:
                return plan, ranked
            d = choose(forced="auto", **choice)  # the copy could not fill the page: plan again, in PostgreSQL
            plan.strategy, plan.reason, plan.fallback = d.strategy, d.reason, note
        d, found_rows = in_postgres(r, d)
        if found_rows is not None:
            return plan, found_rows
        return plan, approximate.run(r, d)


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
