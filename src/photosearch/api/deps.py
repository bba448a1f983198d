"""FastAPI dependencies: the app context, the authenticated caller, admin checks, CSRF.

A caller is either an API key (`x-api-key` header) or a browser session cookie. Cookie requests that
change state must echo the session's CSRF token in `x-csrf-token`; API keys are not ambient
credentials, so they need no CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from photosearch.api.auth import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, tokens_match
from photosearch.api.context import AppContext
from photosearch.api.errors import ApiError
from photosearch.db.sessions import api_key_user, session_user


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def optional_user(request: Request) -> dict | None:
    """The caller, or None when unauthenticated. Memoised on the request (pages and API share it)."""
    if hasattr(request.state, "user"):
        return request.state.user
    ctx = get_ctx(request)
    user = None
    key = request.headers.get("x-api-key")
    if key is not None:
        user = api_key_user(ctx.db, key) if 0 < len(key) <= 200 else None
        if user is None:
            raise ApiError(401, "invalid or revoked API key")
        user["auth"] = "api_key"
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token and len(token) <= 200:
            user = session_user(ctx.db, token)
            if user is not None:
                user["auth"] = "session"
    request.state.user = user
    return user


def current_user(request: Request) -> dict:
    user = optional_user(request)
    if user is None:
        raise ApiError(401, "authentication required: log in, or send an API key in the x-api-key header")
    if (
        user["auth"] == "session"
        and request.method not in SAFE_METHODS
        and not tokens_match(request.headers.get(CSRF_HEADER), user["csrf_token"])
    ):
        raise ApiError(403, f"missing or wrong CSRF token: send the session's token in the {CSRF_HEADER} header")
    return user


CurrentUser = Annotated[dict, Depends(current_user)]


def admin_user(user: CurrentUser) -> dict:
    if not user["is_admin"]:
        raise ApiError(403, "this needs an administrator account")
    return user


AdminUser = Annotated[dict, Depends(admin_user)]
