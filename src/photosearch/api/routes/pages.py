"""The web UI: server-rendered pages (Jinja2). Searching itself happens in `static/app.js` through the
same JSON API that scripts use, authenticated by the session cookie + CSRF header."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from photosearch import __version__
from photosearch.api.auth import LOGIN_CSRF_COOKIE, MIN_NEW_PASSWORD, SESSION_COOKIE, new_csrf_token, tokens_match
from photosearch.api.deps import Ctx, optional_user
from photosearch.api.errors import ApiError
from photosearch.api.routes.auth import authenticate, set_session_cookie
from photosearch.db.accounts import list_api_keys, list_users, needs_sign_up, status
from photosearch.db.asset_access import has_photos, library_names
from photosearch.db.libraries import list_libraries
from photosearch.db.sessions import delete_session

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
templates = Jinja2Templates(directory=WEB_DIR / "templates")
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://...` would make the login an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _to_login(request: Request) -> RedirectResponse:
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(nxt, safe='')}", status_code=303)


def _page_user(request: Request) -> dict | None:
    try:
        return optional_user(request)
    except ApiError:  # a bad API key on a page request: treat as logged out
        return None


def _login_page(request: Request, nxt: str, error: str | None = None, status: int = 200) -> Response:
    token = new_csrf_token()
    resp = templates.TemplateResponse(
        request, "login.html", {"csrf_token": token, "next": nxt, "error": error, "user": None}, status_code=status
    )
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/login"
    )
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    if _page_user(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    if needs_sign_up(ctx.db):  # nobody can log in yet: the first account is made here
        return RedirectResponse("/sign-up", status_code=303)
    return _login_page(request, _safe_next(next))


@router.get("/sign-up", response_class=HTMLResponse)
def sign_up_page(request: Request, ctx: Ctx) -> Response:
    """First run: shown only while no account has a password (then it sends people to the login)."""
    if not needs_sign_up(ctx.db):
        return RedirectResponse("/login", status_code=303)
    ctx_vars = {"user": None, "csrf_token": "", "counts": status(ctx.db), "min_password": MIN_NEW_PASSWORD}
    return templates.TemplateResponse(request, "signup.html", ctx_vars)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, ctx: Ctx) -> Response:
    user = _page_user(request)
    if user is None:
        return _to_login(request)
    return templates.TemplateResponse(
        request,
        "account.html",
        {
            "user": user,
            "csrf_token": user.get("csrf_token", ""),
            "nav": "account",
            "keys": list_api_keys(ctx.db, user["id"]),
            "min_password": MIN_NEW_PASSWORD,
        },
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, ctx: Ctx) -> Response:
    user = _page_user(request)
    if user is None:
        return _to_login(request)
    if not user["is_admin"]:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"user": user, "csrf_token": user.get("csrf_token", ""), "message": "This page is for administrators."},
            status_code=403,
        )
    return templates.TemplateResponse(
        request,
        "admin.html",
        {
            "user": user,
            "csrf_token": user.get("csrf_token", ""),
            "nav": "admin",
            "stats": status(ctx.db),
            "model": ctx.settings.model_name,
            "users": list_users(ctx.db),
            "libraries": list_libraries(ctx.db),
            "min_password": MIN_NEW_PASSWORD,
        },
    )


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    ctx: Ctx,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Form login. A double-submit token (cookie == hidden field) stops other sites logging a visitor
    in to an account of theirs."""
    nxt = _safe_next(next)
    if not tokens_match(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(request, nxt, "Your login form expired. Please try again.", status=403)
    if not email or not password:
        return _login_page(request, nxt, "Enter your email and password.", status=422)
    try:
        user = authenticate(ctx, email, password, request.client.host if request.client else "")
    except ApiError as exc:
        return _login_page(request, nxt, str(exc.detail).capitalize() + ".", status=exc.status_code)
    resp = RedirectResponse(nxt, status_code=303)
    set_session_cookie(request, resp, ctx, user)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


@router.post("/logout")
def logout_submit(request: Request, ctx: Ctx, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    user = _page_user(request)
    if user and user.get("auth") == "session":
        if not tokens_match(csrf_token, user["csrf_token"]):
            raise ApiError(403, "missing or wrong CSRF token")
        delete_session(ctx.db, request.cookies.get(SESSION_COOKIE, ""))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/", response_class=HTMLResponse)
def index(request: Request, ctx: Ctx, view: str | None = None) -> Response:
    """The photos page (timeline, search, trash). The grid's first page is one API request; the
    scrubber's months follow from `/api/timeline/buckets` once the grid is on screen."""
    user = _page_user(request)
    if user is None:
        return _to_login(request)
    view = "trash" if view == "trash" else "photos"
    libraries = library_names(ctx.db, user["id"])
    page_data = {
        "user": {"name": user["name"], "email": user["email"], "is_admin": bool(user["is_admin"])},
        "libraries": {str(lib["id"]): lib["name"] for lib in libraries},
    }
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "user": user,
            "csrf_token": user.get("csrf_token", ""),
            "nav": "trash" if view == "trash" else "photos",
            "view": view,
            "libraries": libraries,
            "counts": has_photos(ctx.db, user["id"]),
            "page_data": page_data,
        },
    )


@router.get("/photos/{asset_id}", response_class=HTMLResponse)
def photo(asset_id: str, request: Request, ctx: Ctx) -> Response:
    """A photo's permanent link: the viewer opened on it (404 page for a missing or foreign photo)."""
    user = _page_user(request)
    if user is None:
        return _to_login(request)
    try:
        row = ctx.asset(UUID(asset_id), user)
    except ValueError:  # not a UUID: the same page as a missing photo
        row = None
    if row is None:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"user": user, "csrf_token": user.get("csrf_token", ""), "message": "No such photo."},
            status_code=404,
        )
    # A photo's own address (a card opened in a new tab) is the viewer over the timeline.
    return RedirectResponse(f"/?photo={row['id']}", status_code=303)
