"""Background jobs (library scans), visible to their owner and to admins."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.schemas import JobOut

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs", response_model=list[JobOut])
def jobs(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return ctx.jobs.list(None if user["is_admin"] else user["id"])


@router.get("/api/jobs/{job_id}", response_model=JobOut)
def job(job_id: UUID, user: CurrentUser, ctx: Ctx) -> dict:
    found = ctx.jobs.get(str(job_id))
    if found is None or (not user["is_admin"] and found["owner_id"] != str(user["id"])):
        raise ApiError(404, f"no job {job_id}")
    return found
