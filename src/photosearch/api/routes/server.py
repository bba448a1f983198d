"""Health (no auth, for load balancers and the CLI) and server statistics (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from photosearch import __version__
from photosearch.api.deps import AdminUser, Ctx
from photosearch.api.errors import ApiError
from photosearch.db.accounts import embedding_info, list_users, needs_sign_up, status
from photosearch.models.registry import is_test_model

router = APIRouter(tags=["server"])


@router.get("/api/health")
def health(ctx: Ctx) -> dict[str, Any]:
    """Cheap liveness + database check; reveals nothing about the data."""
    try:
        embedding_info(ctx.db)
    except Exception as exc:  # noqa: BLE001 - a sick database is what this endpoint reports
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from exc
    return {"status": "ok", "version": __version__}


@router.get("/api/server/config")
def server_config(ctx: Ctx) -> dict[str, Any]:
    """What a login page needs before anyone is logged in (no auth): whether first-run sign-up is open
    (no account has a password yet; `POST /api/auth/admin-sign-up`), and whether the active model is a test
    model with random weights (rankings meaningless)."""
    return {
        "sign_up_needed": needs_sign_up(ctx.db),
        "test_model": is_test_model(ctx.settings),
        "version": __version__,
    }


@router.get("/api/server/stats")
def server_stats(user: AdminUser, ctx: Ctx) -> dict[str, Any]:
    """Installation-wide counts, per-user usage, recent jobs, and the search lists held in memory."""
    resident = ctx.search_service().resident
    return {
        **status(ctx.db),
        "version": __version__,
        "model": ctx.settings.model_name,
        "embedding": embedding_info(ctx.db),
        "usage_by_user": [
            {"id": u["id"], "email": u["email"], "is_admin": u["is_admin"], "assets": u["assets"]}
            for u in list_users(ctx.db)
        ],
        "jobs": ctx.jobs.list()[:20],
        "search_memory": resident.status() if resident is not None else {"state": "off"},
    }
