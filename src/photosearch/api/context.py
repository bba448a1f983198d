"""What every request handler shares: settings, the database pool, the lazily loaded CLIP model,
the search service and the background jobs. One instance per app (no module globals: tests build
several apps side by side)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from photosearch.api.auth import LoginThrottle
from photosearch.api.jobs import JobManager
from photosearch.config import Settings
from photosearch.db.pool import Database

if TYPE_CHECKING:
    from photosearch.models import ClipModel

DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024


class AppContext:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        owns_db: bool,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    ) -> None:
        self.settings = settings
        self.db = db
        self.owns_db = owns_db
        self.max_upload_bytes = max_upload_bytes
        self.throttle = LoginThrottle(
            settings.login_max_failures, settings.login_client_max_failures, settings.login_lockout_seconds
        )
        self.jobs = JobManager(self)
        from photosearch.db.watch import DatabaseWatch

        self.db_watch = DatabaseWatch(db, settings.embedded_tuning)  # started with the app (lifespan)
        self._model: ClipModel | None = None
        self._search: Any = None
        self._replicas: Any = None
        self._lock = threading.Lock()

    def model(self) -> ClipModel:
        """Load CLIP on first use: the server starts instantly and pages that need no model never wait."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from photosearch.models import load_clip

                    self._model = load_clip(self.settings)
        return self._model

    def search_service(self) -> Any:
        if self._search is None:
            with self._lock:
                if self._search is None:
                    from photosearch.search import SearchService
                    from photosearch.search.resident import ResidentCache

                    budget = self.settings.search_memory_bytes()
                    resident = ResidentCache(self.db, budget) if budget > 0 else None
                    self._search = SearchService(self.db, self.model, resident=resident, replicas=self.replicas())
        return self._search

    def replicas(self) -> Any:
        """The read replicas (db/replicas.py), opened on first use; None when none are configured."""
        if self._replicas is None and self.settings.database_replica_urls:
            with self._lock:
                if self._replicas is None:
                    from photosearch.db.replicas import open_replicas

                    self._replicas = open_replicas(self.db, self.settings.database_replica_urls) or False
        return self._replicas or None

    def read(self, fetch: Any, user: dict) -> Any:
        """A read of `user`'s own live photos (the timeline): from a replica when there is one."""
        replicas = self.replicas()
        return fetch(self.db) if replicas is None else replicas.read(fetch, user["id"])

    def read_counts(self, fetch: Any) -> Any:
        """A read of counts that name no photo (the timeline's months): from a replica when there is one."""
        replicas = self.replicas()
        return fetch(self.db) if replicas is None else replicas.read_counts(fetch)

    def asset(self, asset_id: Any, user: dict, *, fresh: bool = False) -> dict | None:
        """One of `user`'s live photos with its EXIF and library roots (`asset_for_user`), or None: from a replica
        when there is one, confirmed on the primary; `fresh` reads the primary (right after a write)."""
        from photosearch.db.asset_access import asset_for_user

        replicas = None if fresh else self.replicas()
        fetch = lambda db: asset_for_user(db, asset_id, user["id"])  # noqa: E731
        return fetch(self.db) if replicas is None else replicas.read_one(fetch)

    def close(self) -> None:
        self.db_watch.stop()
        self.jobs.shutdown()
        if self._replicas:
            self._replicas.close()
        if self.owns_db:
            self.db.close()
