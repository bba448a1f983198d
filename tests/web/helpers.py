"""Helpers shared by the browser tests: log in, poll a JS predicate, read the grid."""

from __future__ import annotations

import re

from api.live import Person
from playwright.sync_api import Page, expect


def login(page: Page, who: Person | dict, password: str | None = None, start: str = "/") -> None:
    email = who.email if isinstance(who, Person) else who["email"]
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or who.password)  # type: ignore[union-attr]
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_label("Search photos by description")).to_be_attached()
    # The scripts are deferred: the page shows before its listeners exist.
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def wait_js(page: Page, expression: str, timeout_s: float = 30) -> None:
    """Poll a JS predicate with page.evaluate (wait_for_function would need 'unsafe-eval' under our CSP)."""
    for _ in range(int(timeout_s / 0.1)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {expression}")


IMAGES_LOADED = (
    "() => Array.from(document.querySelectorAll('#results img')).every(i => i.complete && i.naturalWidth > 0)"
)


def cards(page: Page):
    return page.locator("#results a.card")


def card_names(page: Page) -> list[str]:
    return [c.get_attribute("aria-label") or "" for c in cards(page).all()]


def search_text(page: Page, text: str, relevant: bool = False) -> None:
    """Search from the box. "Relevant only" (on by default) is unticked first unless `relevant`: tests of filters
    compare whole result lists, and the test model's rankings are random."""
    page.get_by_label("Relevant only", exact=True).set_checked(relevant)
    box = page.get_by_label("Search photos by description")
    box.fill(text)
    box.press("Enter")
    expect(page.locator("#status")).to_contain_text("shown")
