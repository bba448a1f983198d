"""`create_app(settings)`: the FastAPI application serving the REST API (`/api/...`), its OpenAPI docs
(`/docs`) and the server-rendered web UI (`/`, `/login`, `/sign-up`, `/admin`, `/account`, `/static/...`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photosearch import __version__
from photosearch.api.auth import SESSION_COOKIE
from photosearch.api.context import DEFAULT_MAX_UPLOAD, AppContext
from photosearch.api.errors import ApiError, CatchAll, error_response, install_error_handlers
from photosearch.api.routes import assets, auth, bulk, jobs, libraries, pages, search, server, upload, users
from photosearch.config import Settings
from photosearch.db.pool import Database
from photosearch.db.watch import DatabaseWatch

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
JSON_BODY_LIMIT = 1024 * 1024  # every body except image uploads is a small JSON document
UPLOAD_PATHS = frozenset({"/api/search/image", "/api/uploads"})
MULTIPART_ROOM = 1024 * 1024  # an image upload's form fields and boundaries, beyond the image itself

# Nothing loads from elsewhere: Swagger UI for /docs is vendored under static/swagger (its inline bootstrap
# script is why /docs gets no CSP).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Headers on every response (a plain ASGI middleware: BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_docs = path.startswith(("/docs", "/redoc", "/openapi.json"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not is_docs:
                    headers.setdefault("Content-Security-Policy", PAGE_CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
                if path.startswith("/api/") and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Request size limits with the usual JSON error: a declared Content-Length over the limit is refused
    before reading a byte; a body without one (chunked) is cut off as soon as it passes the limit. An upload's
    body may exceed the image limit by MULTIPART_ROOM (form fields, boundaries); the message names the image
    limit the user can act on."""

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length", "")
            upload = scope["path"] in UPLOAD_PATHS
            shown = self.upload_limit if upload else self.json_limit
            limit = shown + MULTIPART_ROOM if upload else shown
            mb = f"{shown / 2**20:.0f} MB" if shown >= 2**20 else f"{shown} bytes"
            if declared.isdigit() and int(declared) > limit:
                response = error_response(413, f"the request body is larger than the {mb} limit")
                await response(scope, receive, send)
                return
            seen = 0

            async def counting_receive() -> Message:
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise ApiError(413, f"the request body is larger than the {mb} limit")
                return message

            await self.app(scope, counting_receive, send)
            return
        await self.app(scope, receive, send)


PUBLIC_OPERATIONS = {("get", "/api/health"), ("get", "/api/server/config"), ("post", "/api/auth/login")}
PUBLIC_OPERATIONS |= {("post", "/api/auth/admin-sign-up")}


def install_security_schemes(app: FastAPI) -> None:
    """Declare how callers authenticate (an API key header, or the session cookie + CSRF header), so
    Swagger UI shows an Authorize button and clients generated from the schema send credentials."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "An API key: `photosearch users key create`, or the account page",
            },
            "Session": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "The web login's cookie (state changes also need the x-csrf-token header)",
            },
        }
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                if (method, path) not in PUBLIC_OPERATIONS:
                    op["security"] = [{"ApiKey": []}, {"Session": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class DatabaseGate:
    """While the database is known to be down (db/watch.py), answer 503 at once instead of letting each request
    wait for the pool's timeout; static files still load."""

    def __init__(self, app: ASGIApp, watch: DatabaseWatch) -> None:
        self.app = app
        self.watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.watch.down and not scope["path"].startswith("/static/"):
            message = "the database is not available; it is being restarted, try again in a few seconds"
            await error_response(503, message, {"Retry-After": "2"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def proxy_options(settings: Settings) -> dict[str, object]:
    """uvicorn's options for X-Forwarded-* headers: believed only from `settings.forwarded_allow_ips`. uvicorn's
    own default believes any process on 127.0.0.1, which lets every local client choose its address."""
    allow = (settings.forwarded_allow_ips or "").strip()
    return {"proxy_headers": bool(allow), "forwarded_allow_ips": allow or None}


def create_app(
    settings: Settings, *, db: Database | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD
) -> FastAPI:
    """Build the app. Pass `db` to share a pool (tests); otherwise one is opened here and closed on
    shutdown."""
    owns_db = db is None
    if db is None:
        from photosearch.db import open_database

        settings.ensure_dirs()
        db = open_database(settings)
    ctx = AppContext(settings, db, owns_db=owns_db, max_upload_bytes=max_upload_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.db_watch.start()
        yield
        ctx.close()

    app = FastAPI(
        title="photosearch",
        version=__version__,
        description="Semantic photo search: find photos by text, by example image or by metadata. "
        "Authenticate with an API key in the `x-api-key` header (`photosearch users key create`).",
        lifespan=lifespan,
        docs_url=None,  # served below from vendored files: FastAPI's default pulls Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)

    app.add_middleware(CatchAll)  # innermost of these: every other middleware still sees its 500
    app.add_middleware(DatabaseGate, watch=ctx.db_watch)
    app.add_middleware(BodyLimit, json_limit=JSON_BODY_LIMIT, upload_limit=max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    for module in (server, auth, users, libraries, jobs, bulk, upload, assets, search, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    install_security_schemes(app)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="photosearch API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    return app
