"""`photosearch serve`: the REST API and web UI on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Annotated

import typer

from photosearch.cli._common import err_console, state


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warm(pgdata: Path, dsn: str) -> None:
    """Background page-cache warm-up: a failure only costs speed, so it is logged, not raised."""
    from photosearch.db.server import warm_page_cache

    try:
        warm_page_cache(pgdata, dsn)
    except Exception as exc:  # noqa: BLE001 - any failure here must not touch the server
        logging.getLogger(__name__).warning("could not warm the page cache: %s", exc)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: settings.host, 127.0.0.1 = this machine only).")
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: settings.port, 2342).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (/api, docs at /docs) and the web UI (/)."""
    import uvicorn

    from photosearch.api.app import create_app, proxy_options

    st = state(ctx)
    settings = st.settings
    host = host or settings.host
    port = port or settings.port
    if not _is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/yellow] listening on {host}: other machines can reach this server. "
            "Put it behind HTTPS (a reverse proxy) before exposing it."
        )
    db = st.db()
    if db.server.embedded and db.server.pgdata is not None:
        # After a reboot every page is on disk: read the search relations once in the background (I/O, not CPU),
        # so the first searches do not each pay ~0.3 ms per page.
        threading.Thread(target=_warm, args=(db.server.pgdata, db.dsn), name="warm-page-cache", daemon=True).start()
    app = create_app(settings, db=db)
    resident = app.state.ctx.search_service().resident
    if resident is not None:  # load the search lists into memory now, not on the first search
        resident.request()
    err_console.print(f"photosearch on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, **proxy_options(settings))
