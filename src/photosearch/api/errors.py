"""One JSON error shape for every failure: `{"message", "error", "statusCode"}` (as immich does).

Bad input must end as a 4xx with a message a person can act on; only real bugs reach the 500
handler, which logs the traceback and says nothing about internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from photosearch.db.accounts import Conflict, NotFound
from photosearch.db.server import DatabaseError

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """Raise with a status and a human message anywhere in a handler."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)


def error_body(status: int, message: str) -> dict:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"message": message, "error": phrase, "statusCode": status}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def error_text(err: dict) -> str:
    """One pydantic error's message, without the "Value error, " pydantic puts before our own validators' words."""
    return str(err.get("msg", "invalid value")).removeprefix("Value error, ")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
        msg = error_text(err)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _known_errors() -> list[tuple[type[BaseException], int]]:
    import psycopg
    from psycopg_pool import PoolTimeout

    errs: list[tuple[type[BaseException], int]] = [
        (NotFound, 404),
        (Conflict, 409),
        (DatabaseError, 503),
        (PoolTimeout, 503),  # every connection busy for 30 s: overloaded, try again
        (psycopg.OperationalError, 503),  # the database went away
        (psycopg.InterfaceError, 503),  # ... under a connection the pool had handed out
    ]
    try:
        from photosearch.search.query import SearchError

        errs.append((SearchError, 400))
    except ImportError:
        pass
    try:
        from photosearch.models.errors import ModelError

        errs.append((ModelError, 503))
    except ImportError:
        pass
    return errs


def install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc))

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        """A value the database cannot store or compare (a NUL in text, a number out of its range) is bad input
        that no validator caught: a 422 that says what kind, never a 500."""
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
        if "NUL" in str(exc):
            return error_response(422, "text in the request must not contain NUL (\\x00) characters")
        return error_response(422, "a value in the request is out of the range the database can store")

    def known(status: int):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return error_response(status, str(exc) or type(exc).__name__)

        return handler

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for cls, status in _known_errors():
        app.add_exception_handler(cls, known(status))
    import psycopg

    app.add_exception_handler(psycopg.DataError, data_error)


class CatchAll:
    """The last line for real bugs: log the traceback once and answer 500 with `Connection: close`.

    Starlette's own handler for `Exception` re-raises after answering, so uvicorn logs the error a second time
    and drops the keep-alive socket without telling the client, whose next request on it then fails."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - anything a handler let through is a bug
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:  # half a response is out: returning unfinished makes uvicorn close the connection
                return
            response = error_response(500, "internal server error (see the server log)", {"Connection": "close"})
            await response(scope, receive, send)
