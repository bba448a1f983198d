"""Accessibility and looks: axe-core (bundled by axe-playwright-python) finds no serious or critical
violation on each page, at 1280×900 and 390×844, light and dark; a screenshot of each is written to
<test output>/web/."""

from __future__ import annotations

import re
from pathlib import Path

from api.live import LiveServer
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from web.helpers import IMAGES_LOADED, cards, login, search_text, wait_js

AXE = Axe()
SIZES = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}


def check(page: Page, name: str, shots: Path, found: dict[str, list[str]]) -> None:
    """At each size and colour scheme: run axe on what the page shows, keep the serious and critical
    findings, take the screenshot."""
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            results = AXE.run(page)
            bad = [
                f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
                for v in results.response["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            if bad:
                found[f"{name} {size} {scheme}"] = bad
            page.screenshot(path=shots / f"{name}-{size}-{scheme}.png")
    page.set_viewport_size(SIZES["1280"])
    page.emulate_media(color_scheme="light")


def test_pages_pass_axe_and_are_photographed(browser, live: LiveServer, shots: Path) -> None:
    context = browser.new_context(base_url=live.url, viewport=SIZES["1280"])
    found: dict[str, list[str]] = {}
    try:
        page = context.new_page()
        page.goto("/login")
        check(page, "login", shots, found)
        login(page, live.alice)
        expect(cards(page)).to_have_count(len(live.alice.assets))
        wait_js(page, IMAGES_LOADED)
        expect(page.locator("#scrubber button.month").first).to_be_visible()
        check(page, "timeline", shots, found)
        search_text(page, "a red flower")
        wait_js(page, IMAGES_LOADED)
        page.locator("#filters summary").click()
        page.get_by_label("Rating at least", exact=True).select_option("1")
        expect(cards(page)).to_have_count(1)
        check(page, "results", shots, found)
        page.get_by_role("button", name=re.compile("Remove filter")).click()
        cards(page).first.click()
        expect(page.locator("#viewer")).to_be_visible()
        wait_js(page, "() => document.getElementById('viewer-img').naturalWidth > 0")
        expect(page.locator("#viewer-details")).to_contain_text("File")
        check(page, "viewer", shots, found)
        page.keyboard.press("Escape")
        cards(page).nth(1).click(modifiers=["Control"])
        expect(page.locator("#selection-bar")).to_be_visible()
        check(page, "selection", shots, found)
        for path, name in (("/?view=trash", "trash"), ("/admin", "admin"), ("/account", "account")):
            page.goto(path)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            check(page, name, shots, found)
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.keyboard.press("?")
        expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        check(page, "shortcuts", shots, found)
    finally:
        context.close()
    assert not found, found


def test_theme_toggle_overrides_the_system(page: Page, live: LiveServer) -> None:
    login(page, live.bob)
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_have_attribute("aria-label", "Colour theme: system")
    bg = "() => getComputedStyle(document.body).backgroundColor"
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Colour theme: light")
    assert page.evaluate(bg) == "rgb(250, 250, 250)"
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Colour theme: dark")
    assert page.evaluate(bg) == "rgb(18, 18, 18)"
    page.reload()  # remembered, applied before the first paint
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    toggle = page.locator("#theme-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Colour theme: system")


def test_no_horizontal_scroll_at_390px(browser, live: LiveServer) -> None:
    context = browser.new_context(base_url=live.url, viewport=SIZES["390"])
    try:
        page = context.new_page()
        login(page, live.alice)
        for path in ("/", "/?q=rocks", "/admin", "/account", "/?view=trash"):
            page.goto(path)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            wide = page.evaluate(
                "() => Array.from(document.querySelectorAll('body *'))"
                ".filter(e => e.getBoundingClientRect().right > 391).slice(0, 5)"
                ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
            )
            assert width <= 390, (path, width, wide)
    finally:
        context.close()
