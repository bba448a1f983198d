"""Browser tests: Playwright driving Debian's Chromium (`apt-get install chromium`) against a live server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.live import LiveServer, live_server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no Chromium found: install it with `apt-get install -y chromium` (see scripts/test.sh)")


@pytest.fixture(scope="session")
def live(
    pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory, photos_dir: Path, tiny_model_dir: Path
) -> Iterator[LiveServer]:
    with live_server(pg_admin_dsn, tmp_path_factory.mktemp("web"), photos_dir, tiny_model_dir) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # the 2-core CI machine runs other suites beside this one
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(test_output: Path) -> Path:
    d = test_output / "web"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def expected_errors() -> list[str]:
    """Console messages a test provokes on purpose (e.g. a 422 for a broken upload): append a substring."""
    return []


@pytest.fixture
def page(browser, live: LiveServer, expected_errors: list[str]) -> Iterator:
    """A fresh browser context (no cookies) whose console errors fail the test."""
    context = browser.new_context(base_url=live.url, viewport={"width": 1200, "height": 800})
    pg = context.new_page()
    errors: list[str] = []

    def on_console(m) -> None:  # noqa: ANN001
        # A failed form login answers 401 on purpose; Chromium logs that document status as an error.
        if m.type == "error" and not (m.location.get("url", "").endswith("/login") and "401" in m.text):
            errors.append(f"{m.text} at {m.location.get('url')}")

    pg.on("console", on_console)
    # Nothing may be fetched from other hosts (no CDN, no map tiles at page load).
    pg.on(
        "request",
        lambda r: None if r.url.startswith((live.url, "data:", "blob:")) else errors.append(f"external: {r.url}"),
    )
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
    errors = [e for e in errors if not any(x in e for x in expected_errors)]
    assert not errors, f"browser console errors: {errors}"
