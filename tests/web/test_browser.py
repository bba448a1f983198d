"""The web UI in a real browser: log in, search by text, filter, open a photo, "more like this",
search by an uploaded and a dropped image, infinite scroll, keyboard use, empty states.
Screenshots go to <test output>/web/."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from api.live import LiveServer, Person
from playwright.sync_api import Page, expect

from photosearch.api.auth import hash_password
from photosearch.db.accounts import create_user


def login(page: Page, who: Person | dict, password: str | None = None) -> None:
    email = who.email if isinstance(who, Person) else who["email"]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or who.password)  # type: ignore[union-attr]
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_label("Search photos by description")).to_be_visible()
    # app.js is deferred: the search box shows before its listeners exist (a drop dispatched then was lost in CI).
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


def search_text(page: Page, text: str) -> None:
    box = page.get_by_label("Search photos by description")
    box.fill(text)
    box.press("Enter")
    expect(page.locator("#status")).to_contain_text("shown")


def test_search_flow(page: Page, live: LiveServer, shots: Path) -> None:
    alice = live.alice
    login(page, alice)
    # Before any query: the most recent photos.
    expect(page.locator("#status")).to_contain_text(f"Your {len(alice.assets)} most recent photos")
    expect(cards(page)).to_have_count(len(alice.assets))
    wait_js(page, IMAGES_LOADED)
    page.screenshot(path=shots / "01-home-recent.png")

    # Search by text: every indexed photo of alice ranks somewhere; all thumbnails load.
    search_text(page, "a bird of prey")
    expect(cards(page)).to_have_count(len(alice.assets))
    wait_js(page, IMAGES_LOADED)
    assert "q=a+bird+of+prey" in page.url
    page.screenshot(path=shots / "02-text-search.png")

    # Apply a filter: only the rated photo has a rating >= 1.
    page.locator("#filters summary").click()
    page.get_by_label("Rating at least").select_option("1")
    expect(cards(page)).to_have_count(1)
    expect(cards(page).first).to_have_attribute("aria-label", "mongolels.jpg")
    page.screenshot(path=shots / "03-filter-rating.png")
    page.get_by_label("Favorites").select_option("true")
    expect(page.locator("#status")).to_contain_text("No matches among")
    expect(page.locator("#status")).to_contain_text("Try removing some filters")
    page.get_by_role("button", name="Clear filters").click()
    expect(cards(page)).to_have_count(len(alice.assets))

    # Open the photo with GPS: EXIF details and a map link (no map fetched at page load).
    page.locator('#results a.card[aria-label="thompson-springs.jpg"]').click()
    expect(page.get_by_role("heading", name="thompson-springs.jpg")).to_be_visible()
    coords = page.locator("#coordinates")
    expect(coords).to_be_visible()
    href = coords.get_by_role("link", name="Open map").get_attribute("href")
    assert href and href.startswith("https://www.openstreetmap.org/?mlat=")
    expect(page.locator(".details")).to_contain_text("Taken")
    wait_js(page, "() => document.getElementById('preview').naturalWidth > 0")
    page.screenshot(path=shots / "04-photo.png", full_page=True)
    photo_url = page.url

    # More like this: the photo itself is excluded, everything else of alice's is ranked.
    page.get_by_role("link", name="More like this").click()
    expect(page.locator("#query-label")).to_contain_text("Photos like the one you opened")
    expect(cards(page)).to_have_count(len(alice.assets) - 1)
    asset_id = photo_url.rstrip("/").rsplit("/", 1)[1]
    assert page.locator(f'#results a.card[href="/photos/{asset_id}"]').count() == 0
    page.screenshot(path=shots / "05-more-like-this.png")

    # Back to the photo and back again: the browser history keeps the search.
    page.go_back()
    expect(page).to_have_url(photo_url)
    page.go_back()
    expect(page.get_by_label("Search photos by description")).to_have_value("a bird of prey")
    expect(cards(page)).to_have_count(len(alice.assets))

    # Upload an image query: the same photo comes first.
    page.locator("#image-input").set_input_files(str(alice.root / "prairie_falcon.jpg"))
    expect(page.locator("#query-label")).to_contain_text("Photos like prairie_falcon.jpg")
    expect(cards(page).first).to_have_attribute("aria-label", "prairie_falcon.jpg")
    expect(page.locator("#query-thumb")).to_be_visible()
    page.screenshot(path=shots / "06-image-upload.png")


def test_drop_an_image(page: Page, live: LiveServer, shots: Path) -> None:
    login(page, live.bob)
    data = base64.b64encode((live.bob.root / "denali.webp").read_bytes()).decode()
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "denali.webp", { type: "image/webp" }));
            document.dispatchEvent(new DragEvent("dragenter", { dataTransfer: dt, bubbles: true }));
            document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
        }""",
        data,
    )
    expect(page.locator("#query-label")).to_contain_text("Photos like denali.webp")
    expect(cards(page).first).to_have_attribute("aria-label", "denali.webp")
    expect(cards(page)).to_have_count(len(live.bob.assets))
    page.screenshot(path=shots / "07-drop-image.png")


def test_infinite_scroll_and_keyboard(page: Page, live: LiveServer, shots: Path) -> None:
    login(page, live.alice)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/search/smart" in r.url else None)
    page.set_viewport_size({"width": 420, "height": 500})
    page.goto("/?q=rocks&size=3")
    expect(cards(page).first).to_be_visible()
    for _ in range(10):  # scroll until the last page has arrived
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(150)
        if cards(page).count() == len(live.alice.assets):
            break
    expect(cards(page)).to_have_count(len(live.alice.assets))
    assert len(requests) >= 4  # 11 photos at 3 per page
    page.screenshot(path=shots / "08-infinite-scroll-mobile.png", full_page=True)

    # Keyboard: Tab reaches the thumbnails, arrows move between them, Enter opens one.
    page.set_viewport_size({"width": 1200, "height": 800})
    cards(page).first.focus()
    page.keyboard.press("ArrowRight")
    second = cards(page).nth(1)
    expect(second).to_be_focused()
    name = second.get_attribute("aria-label")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_empty_states_and_logout(page: Page, live: LiveServer, shots: Path) -> None:
    carol = create_user(live.db, "carol", "carol@example.org", password_hash=hash_password("carol-pw"))
    login(page, carol, "carol-pw")
    expect(page.locator("#status")).to_contain_text("No photos are indexed yet")
    search_text_box = page.get_by_label("Search photos by description")
    search_text_box.fill("anything")
    search_text_box.press("Enter")
    expect(page.locator("#status")).to_contain_text("No photos are indexed yet")
    page.screenshot(path=shots / "09-empty-library.png")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_wrong_password_message(page: Page, live: LiveServer, shots: Path) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(live.bob.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    page.screenshot(path=shots / "10-login-error.png")


UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 80))"""
NO_ALT_JS = "() => Array.from(document.querySelectorAll('img')).filter(i => !i.hasAttribute('alt')).map(i => i.src)"


def test_pages_are_labelled(page: Page, live: LiveServer) -> None:
    """Every control has an accessible name and every image an alt text, on each page."""
    page.goto("/login")
    assert page.evaluate(UNLABELLED_JS) == []
    login(page, live.alice)
    search_text(page, "rocks")
    page.locator("#filters summary").click()
    assert page.evaluate(UNLABELLED_JS) == [] and page.evaluate(NO_ALT_JS) == []
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.goto(f"/photos/{live.alice.assets[0]['id']}")
    assert page.evaluate(UNLABELLED_JS) == [] and page.evaluate(NO_ALT_JS) == []


def test_favorite_from_the_photo_page(page: Page, live: LiveServer, shots: Path) -> None:
    bob = live.bob
    asset = bob.assets[0]
    login(page, bob)
    page.goto(f"/photos/{asset['id']}")
    toggle = page.get_by_role("button", name="★ Favorite")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#photo-status")).to_contain_text("Favorite: on")
    page.screenshot(path=shots / "11-favorite.png")
    try:
        page.goto("/?q=anything&is_favorite=true")
        expect(cards(page)).to_have_count(1)
        expect(cards(page).first).to_have_attribute("aria-label", asset["original_file_name"])
    finally:
        page.goto(f"/photos/{asset['id']}")
        page.get_by_role("button", name="★ Favorite").click()
        expect(page.get_by_role("button", name="★ Favorite")).to_have_attribute("aria-pressed", "false")
