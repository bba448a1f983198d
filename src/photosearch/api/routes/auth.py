"""Login/logout (browser sessions) and "who am I". API-key callers need neither."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from photosearch.api.auth import (
    MIN_NEW_PASSWORD,
    SESSION_COOKIE,
    SESSION_TTL,
    hash_password,
    normalize_email,
    verify_password,
)
from photosearch.api.context import AppContext
from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.schemas import RequestModel, UserOut
from photosearch.db.accounts import Conflict, NotFound, SignUpClosed, create_account, get_user
from photosearch.db.sessions import create_session, delete_session

router = APIRouter(tags=["auth"])


class LoginRequest(RequestModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it in the x-csrf-token header with every POST made with the cookie.")


def authenticate(ctx: AppContext, email: str, password: str, client: str) -> dict:
    """Check a password login; raise 401 (or 429 after repeated failures) with one vague message."""
    wait = ctx.throttle.retry_after(email, client)
    if wait > 0:
        raise ApiError(
            429, "too many failed logins; wait a few minutes and try again", {"Retry-After": str(math.ceil(wait))}
        )
    email = normalize_email(email)
    if "\x00" in email:  # the form login's fields are not a RequestModel
        raise ApiError(422, "email: must not contain NUL (\\x00) characters")
    try:
        user = get_user(ctx.db, email)
        if user["email"] != email:  # get_user also matches names and ids; logins use email
            raise NotFound(email)
    except NotFound:
        user = None
    if not verify_password(password, user["password_hash"] if user else None) or user is None:
        ctx.throttle.failed(email, client)
        raise ApiError(401, "wrong email or password")
    ctx.throttle.succeeded(email, client)
    return user


def set_session_cookie(request: Request, response: Response, ctx: AppContext, user: dict) -> dict:
    token, session = create_session(ctx.db, user["id"], SESSION_TTL, request.headers.get("user-agent"))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return session


@router.post("/api/auth/login", response_model=LoginResponse)
def login(body: LoginRequest, request: Request, response: Response, ctx: Ctx) -> dict:
    """Start a browser session (JSON body: a cross-site form cannot send it, so no CSRF token is needed)."""
    user = authenticate(ctx, body.email, body.password, request.client.host if request.client else "")
    session = set_session_cookie(request, response, ctx, user)
    return {"user": user, "csrf_token": session["csrf_token"]}


class SignUpRequest(RequestModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=MIN_NEW_PASSWORD, max_length=1024)
    name: str | None = Field(default=None, min_length=1, max_length=200)


class Adopted(BaseModel):
    libraries: int
    assets: int


class SignUpResponse(LoginResponse):
    adopted: Adopted | None = Field(
        description="What the account took over from the placeholder owner of photos indexed before any "
        "account existed (admin@localhost), or null."
    )


@router.post("/api/auth/admin-sign-up", response_model=SignUpResponse, status_code=201)
def admin_sign_up(body: SignUpRequest, request: Request, response: Response, ctx: Ctx) -> dict:
    """First-run sign-up (as immich's): allowed only while no account has a password
    (`GET /api/server/config` says `sign_up_needed`). Creates an admin with this password, gives it every
    photo indexed so far, and logs it in (a session cookie, as `/api/auth/login`)."""
    try:
        user = create_account(
            ctx.db, body.email, name=body.name, password_hash=hash_password(body.password), sign_up=True
        )
    except SignUpClosed as exc:
        raise ApiError(403, str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, str(exc)) from exc
    session = set_session_cookie(request, response, ctx, user)
    return {"user": user, "csrf_token": session["csrf_token"], "adopted": user["adopted"]}


@router.post("/api/auth/logout", status_code=204)
def logout(request: Request, user: CurrentUser, ctx: Ctx) -> Response:
    if user["auth"] == "session":
        delete_session(ctx.db, request.cookies.get(SESSION_COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
