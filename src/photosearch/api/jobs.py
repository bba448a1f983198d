"""Background library scans started from the API, with progress readable at `GET /api/jobs/{id}`.

Jobs live in memory: a scan is restartable by design (ingest is idempotent), so losing the record of
a job on restart loses nothing. Scans run one at a time on one worker thread — they saturate the CPU
anyway, and queueing keeps search responsive.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from photosearch.api.context import AppContext

log = logging.getLogger(__name__)
MAX_FINISHED_JOBS = 200


class JobCancelled(Exception):
    """Raised from the progress callback to stop a scan when the server shuts down."""


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in dataclasses.asdict(obj).items() if _jsonable(v)}
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if _jsonable(v)}
    return {k: v for k, v in vars(obj).items() if not k.startswith("_") and _jsonable(v)}


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


class JobManager:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photosearch-scan")

    def start_scan(self, library: dict, owner_id: Any) -> tuple[dict[str, Any], bool]:
        """Queue a scan of `library`; return (job, created). An unfinished scan of the same library is
        returned instead of queueing a second one."""
        with self._lock:
            for job in self._jobs.values():
                if job["library_id"] == str(library["id"]) and job["status"] in ("queued", "running"):
                    return dict(job), False
            job = {
                "id": str(uuid.uuid4()),
                "type": "library-scan",
                "library_id": str(library["id"]),
                "owner_id": str(owner_id),
                "status": "queued",
                "progress": {},
                "summary": None,
                "error": None,
                "created_at": datetime.now(UTC).isoformat(),
                "started_at": None,
                "finished_at": None,
            }
            self._jobs[job["id"]] = job
            self._trim()
        self._pool.submit(self._run, job["id"], library)
        return dict(job), True

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job else None

    def list(self, owner_id: Any | None = None) -> list[dict[str, Any]]:
        with self._lock:
            jobs = [dict(j) for j in self._jobs.values() if owner_id is None or j["owner_id"] == str(owner_id)]
        return sorted(jobs, key=lambda j: j["created_at"], reverse=True)

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Block until a job finishes (tests and the load benchmark use this)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None or job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            self._jobs[job_id].update(fields)

    def _run(self, job_id: str, library: dict) -> None:
        from photosearch.ingest import index_library

        if self._stopping.is_set():
            self._update(job_id, status="cancelled", finished_at=datetime.now(UTC).isoformat())
            return
        self._update(job_id, status="running", started_at=datetime.now(UTC).isoformat())

        def progress(p: Any) -> None:
            if self._stopping.is_set():
                raise JobCancelled("server is shutting down")
            self._update(job_id, progress=_as_dict(p))

        try:
            summary = index_library(self.ctx.db, self.ctx.settings, library, model=self.ctx.model(), progress=progress)
        except JobCancelled:
            self._update(job_id, status="cancelled", finished_at=datetime.now(UTC).isoformat())
        except Exception as exc:  # noqa: BLE001 - a failed scan is reported on the job, not raised
            log.exception("library scan %s failed", job_id)
            self._update(
                job_id,
                status="failed",
                error=str(exc) or type(exc).__name__,
                finished_at=datetime.now(UTC).isoformat(),
            )
        else:
            self._update(
                job_id, status="succeeded", summary=_as_dict(summary), finished_at=datetime.now(UTC).isoformat()
            )

    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j["status"] not in ("queued", "running")]
        for job in sorted(finished, key=lambda j: j["created_at"])[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            self._jobs.pop(job["id"], None)

    def shutdown(self) -> None:
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
