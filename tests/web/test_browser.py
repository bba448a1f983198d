"""The web UI in a real browser on real indexed photos: the timeline with day headers and a scrubber, the
full-screen viewer (arrows, Escape back to where you were, Back closes, zoom), search with filters kept in
the URL (reload, a shared link in a fresh context), "more like this" showing its photo, search by an
uploaded or dropped image, infinite scroll, a keyboard-only flow, empty states. Screenshots go to
<test output>/web/."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from api.live import LiveServer
from playwright.sync_api import Page, expect

from photosearch.api.auth import hash_password
from photosearch.db.accounts import create_user
from web.helpers import IMAGES_LOADED, card_names, cards, login, search_text, wait_js


def viewer(page: Page):
    return page.get_by_role("dialog", name=re.compile(".+"))


def test_timeline_and_viewer(page: Page, live: LiveServer, shots: Path) -> None:
    alice = live.alice
    login(page, alice)
    expect(page.locator("#status")).to_contain_text(f"{len(alice.assets)} photos on your timeline")
    expect(cards(page)).to_have_count(len(alice.assets))
    # Day headers, newest first, and a scrubber with a button per month.
    heads = page.locator(".day-head")
    assert heads.count() >= 2
    months = page.locator("#scrubber button.month")
    expect(months.first).to_be_visible()
    expect(months.first).to_have_attribute("aria-current", "true")  # the month on screen
    wait_js(page, IMAGES_LOADED)
    # Hover shows name, date (and score for searches).
    first = cards(page).first
    first.hover()
    expect(first.locator(".cap")).to_be_visible()
    expect(first.locator(".cap")).to_contain_text(first.get_attribute("aria-label") or "")
    names = card_names(page)

    # Open the third photo: the URL names it; arrows page through; Escape returns to the right card.
    cards(page).nth(2).click()
    dialog = page.locator("#viewer")
    expect(dialog).to_be_visible()
    expect(page.locator("#viewer-title")).to_have_text(names[2])
    assert "photo=" in page.url
    wait_js(page, "() => document.getElementById('viewer-img').naturalWidth > 0")
    expect(page.locator("#viewer-details")).to_contain_text("Taken")
    expect(page.locator("#viewer-details")).to_contain_text("Library")
    page.screenshot(path=shots / "viewer-1280-light.png")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text(names[3])
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text(names[4])
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#viewer-title")).to_have_text(names[3])
    page.get_by_role("button", name="Next photo").click()
    expect(page.locator("#viewer-title")).to_have_text(names[4])
    # Zoom: double-click, wheel, and the buttons.
    img = page.locator("#viewer-img")
    img.dblclick()
    expect(dialog).to_have_attribute("data-zoom", "2.50")
    box = img.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    wait_js(page, "() => Number(document.getElementById('viewer').dataset.zoom) > 2.5")
    page.keyboard.press("0")
    expect(dialog).to_have_attribute("data-zoom", "1.00")
    page.get_by_role("button", name="Zoom in").click()
    expect(page.locator("#zoom-level")).to_have_text("150%")
    page.keyboard.press("0")
    # A swipe to the left (pointer drag at 100 %) shows the next photo, to the right the previous.
    stage = page.locator("#viewer-stage").bounding_box()
    assert stage
    y = stage["y"] + stage["height"] / 2
    for dx, expected in ((-200, names[5]), (200, names[4])):
        x = stage["x"] + stage["width"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx / 2, y, steps=3)
        page.mouse.move(x + dx, y, steps=3)
        page.mouse.up()
        expect(page.locator("#viewer-title")).to_have_text(expected)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert "photo=" not in page.url
    expect(cards(page).nth(4)).to_be_focused()

    # The browser's Back button closes the viewer too; the GPS photo shows a map link.
    gps = names.index("thompson-springs.jpg")
    cards(page).nth(gps).click()
    expect(page.locator("#viewer-gps")).to_contain_text("Open map")
    href = page.locator("#viewer-gps a").get_attribute("href")
    assert href and href.startswith("https://www.openstreetmap.org/?mlat=")
    page.go_back()
    expect(dialog).to_be_hidden()
    expect(cards(page)).to_have_count(len(alice.assets))

    # A link to an open photo opens the viewer straight away.
    asset = alice.assets[0]
    page.goto(f"/?photo={asset['id']}")
    expect(page.locator("#viewer-title")).to_have_text(asset["original_file_name"])

    # Scrubber: the oldest month, one request of at most one page of rows.
    page.goto("/")
    expect(cards(page)).to_have_count(len(alice.assets))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/assets?" in r.url else None)
    months.last.click()
    expect(page.get_by_role("button", name="Show newer photos")).to_be_visible()
    oldest = page.locator("#results section.day").first.get_attribute("data-month")
    assert oldest == months.last.get_attribute("data-month")
    assert len(requests) == 1 and "before=" in requests[0]
    page.get_by_role("button", name="Show newer photos").click()
    expect(cards(page)).to_have_count(len(alice.assets))


def test_filters_live_in_the_url(page: Page, live: LiveServer, shots: Path, browser) -> None:
    alice = live.alice
    login(page, alice)
    search_text(page, "a bird of prey")
    expect(cards(page)).to_have_count(len(alice.assets))
    assert "q=a+bird+of+prey" in page.url
    # Honest about the bundled test model; the query is remembered as a suggestion.
    expect(page.locator("#status")).to_contain_text("The test model is active: rankings are random")
    expect(page.locator('#recent-searches option[value="a bird of prey"]')).to_be_attached()
    # Hover/focus shows each hit's date and score.
    cards(page).first.focus()
    expect(cards(page).first.locator(".cap")).to_contain_text("score")

    # A dropdown applies at once and reaches the URL; the chip and the count show it.
    page.locator("#filters summary").click()
    page.get_by_label("Rating at least", exact=True).select_option("1")
    expect(cards(page)).to_have_count(1)
    expect(cards(page).first).to_have_attribute("aria-label", "mongolels.jpg")
    assert "rating_min=1" in page.url
    expect(page.locator("#filter-count")).to_have_text("1")
    expect(page.get_by_role("button", name=re.compile("Remove filter Rating at least"))).to_be_visible()
    # A text filter applies while typing (debounced), no Enter needed.
    page.get_by_label("File name contains", exact=True).fill("mongo")
    wait_js(page, "() => location.search.includes('file_name_contains=mongo')")
    expect(page.locator("#filter-count")).to_have_text("2")
    expect(cards(page)).to_have_count(1)
    page.screenshot(path=shots / "results-filters-1280-light.png")

    # Reload: same query, same filters, same results.
    page.reload()
    expect(page.get_by_label("Search photos by description")).to_have_value("a bird of prey")
    expect(page.get_by_label("Rating at least", exact=True)).to_have_value("1")
    expect(cards(page)).to_have_count(1)
    shared = page.url

    # The link in a fresh browser context: log in, land on the same results.
    context = browser.new_context(base_url=live.url)
    try:
        other = context.new_page()
        login(other, alice, start=shared.replace(live.url, ""))
        expect(other).to_have_url(shared)
        expect(cards(other)).to_have_count(1)
        expect(cards(other).first).to_have_attribute("aria-label", "mongolels.jpg")
    finally:
        context.close()

    # Removing a chip widens the search; Back restores the previous state.
    page.get_by_role("button", name=re.compile("Remove filter Rating at least")).click()
    expect(page.locator("#filter-count")).to_have_text("1")
    assert "rating_min" not in page.url
    page.go_back()
    expect(page.get_by_label("Rating at least", exact=True)).to_have_value("1")
    # No match for these filters: said so, with the count.
    page.locator("#filters summary").click()
    page.get_by_label("Favorites", exact=True).select_option("true")
    expect(page.locator("#status")).to_contain_text("matches these 3 filters")
    page.get_by_role("button", name="Clear filters").click()
    expect(cards(page)).to_have_count(len(alice.assets))
    expect(page.locator("#chips")).to_be_hidden()

    # Newest first instead of best match; "added after" tomorrow leaves nothing.
    page.get_by_label("Order").select_option("date")
    wait_js(page, "() => location.search.includes('order=date')")
    expect(page.locator("#status")).to_contain_text(f"{len(alice.assets)} photos shown")
    dates = page.evaluate("() => PS.grid.items.map(i => i.local_date_time)")
    assert len(dates) == len(alice.assets) and dates == sorted(dates, reverse=True)
    page.get_by_label("Added after").fill("2999-01-01")
    expect(page.locator("#status")).to_contain_text("matches these 2 filters")
    page.get_by_role("button", name="Clear filters").click()

    # Near a place of one's own photos (the panel suggests them), within a radius.
    with live.client(alice) as c:
        places = c.get("/api/search/suggestions").json()["places"]
    assert places, "the GPS photo gives a place"
    city = places[0]["name"]
    expect(page.locator("#places option").first).to_be_attached()
    page.get_by_label("Within (km)").fill("30")
    page.get_by_label("Near place").fill(city)
    page.get_by_label("Near place").press("Tab")
    expect(cards(page)).to_have_count(1)
    expect(cards(page).first).to_have_attribute("aria-label", "thompson-springs.jpg")
    assert "near=" in page.url and "radius=30" in page.url
    page.reload()  # the place's point is looked up again before the first search
    expect(cards(page)).to_have_count(1)


def test_more_like_this_and_image_search(page: Page, live: LiveServer, shots: Path) -> None:
    alice = live.alice
    login(page, alice)
    name = "prairie_falcon.jpg"
    page.locator(f'#results a.card[aria-label="{name}"]').click()
    page.get_by_role("link", name="More like this").click()
    expect(page.locator("#query-label")).to_contain_text(f"Based on {name}")
    page.get_by_label("Relevant only", exact=True).uncheck()  # every result, to count them
    wait_js(page, "() => location.search.includes('relevant_only=false')")
    expect(page.locator("#query-thumb")).to_be_visible()
    expect(cards(page)).to_have_count(len(alice.assets) - 1)
    assert name not in card_names(page)
    page.screenshot(path=shots / "more-like-this-1280-light.png")
    # Filters apply to "more like this" too.
    page.locator("#filters summary").click()
    page.get_by_label("Rating at least", exact=True).select_option("1")
    expect(cards(page)).to_have_count(1)
    assert "like=" in page.url and "rating_min=1" in page.url
    # "More like this" from a filtered view keeps its filters.
    rated = card_names(page)[0]
    cards(page).first.click()
    page.get_by_role("link", name="More like this").click()
    expect(page.locator("#query-label")).to_contain_text(f"Based on {rated}")
    assert "rating_min=1" in page.url and "relevant_only=false" in page.url and "photo=" not in page.url
    expect(page.get_by_label("Rating at least", exact=True)).to_have_value("1")
    rated_all = {a["original_file_name"] for a in alice.assets if (a["rating"] or 0) >= 1}
    expect(cards(page)).to_have_count(len(rated_all - {rated}))
    if page.locator("#filters").get_attribute("open") is None:  # a new page: the panel starts closed
        page.locator("#filters summary").click()
    page.get_by_role("button", name="Clear filters").click()

    # Upload an image query: the same photo comes first.
    page.locator("#image-input").set_input_files(str(alice.root / name))
    expect(page.locator("#query-label")).to_contain_text(f"Photos like {name}")
    expect(cards(page).first).to_have_attribute("aria-label", name)


def test_drop_an_image(page: Page, live: LiveServer) -> None:
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


def test_infinite_scroll(page: Page, live: LiveServer, shots: Path) -> None:
    login(page, live.alice)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/search/smart" in r.url else None)
    page.set_viewport_size({"width": 420, "height": 500})
    page.goto("/?q=rocks&size=3&relevant_only=false")
    expect(cards(page).first).to_be_visible()
    for _ in range(20):
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(150)
        if cards(page).count() == len(live.alice.assets):
            break
    expect(cards(page)).to_have_count(len(live.alice.assets))
    assert len(requests) >= 4  # 11 photos at 3 per page


def test_keyboard_only_flow(page: Page, live: LiveServer) -> None:
    """Search, open, favourite, close: keys only."""
    bob = live.bob
    login(page, bob)
    page.goto("/?relevant_only=false")  # every result: the test model's rankings are random
    page.keyboard.press("/")
    expect(page.get_by_label("Search photos by description")).to_be_focused()
    page.keyboard.type("a purple flower")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("shown")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.matches('a.card')"):
            break
    first = cards(page).first
    expect(first).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(cards(page).nth(1)).to_be_focused()
    name = cards(page).nth(1).get_attribute("aria-label")
    page.keyboard.press("Enter")
    expect(page.locator("#viewer-title")).to_have_text(name or "")
    expect(page.get_by_role("button", name="Close (Escape)")).to_be_focused()
    fav = page.locator("#viewer-favorite")
    expect(fav).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("f")
    expect(fav).to_have_attribute("aria-pressed", "true")
    # Tab stays inside the viewer; Enter on a focused button works.
    for _ in range(15):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.getElementById('viewer').contains(document.activeElement)")
    fav.focus()
    page.keyboard.press("Enter")
    expect(fav).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("f")
    expect(fav).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(cards(page).nth(1)).to_be_focused()
    expect(cards(page).nth(1).locator(".fav-mark")).to_be_attached()
    # The help dialog.
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    with live.login(bob) as (c, token):
        aid = next(a["id"] for a in bob.assets if a["original_file_name"] == name)
        assert c.get(f"/api/assets/{aid}").json()["is_favorite"] is True
        assert c.put(f"/api/assets/{aid}", json={"is_favorite": False}, headers={"x-csrf-token": token}).is_success


def test_empty_states_and_logout(page: Page, live: LiveServer, shots: Path) -> None:
    carol = create_user(live.db, "carol", "carol@example.org", password_hash=hash_password("carol-pw"))
    login(page, carol, "carol-pw")
    expect(page.locator("#status")).to_contain_text("No photos are indexed yet")
    box = page.get_by_label("Search photos by description")
    box.fill("anything")
    box.press("Enter")
    expect(page.locator("#status")).to_contain_text("No photos are indexed yet")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_wrong_password_message(page: Page, live: LiveServer) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(live.bob.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")


def test_photo_link_opens_the_viewer(page: Page, live: LiveServer, expected_errors: list[str]) -> None:
    """/photos/{id} (a card opened in a new tab) is the viewer on that photo; Escape shows the timeline."""
    bob = live.bob
    login(page, bob)
    asset = bob.assets[0]
    page.goto(f"/photos/{asset['id']}")
    expect(page.locator("#viewer-title")).to_have_text(asset["original_file_name"])
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(cards(page)).to_have_count(len(bob.assets))
    expected_errors.append("404 (Not Found)")
    assert page.goto(f"/photos/{live.alice.assets[0]['id']}").status == 404  # someone else's


def test_more_filters_match_the_api(page: Page, live: LiveServer) -> None:
    """Exact rating, visibility, map area and max distance: each applies on change, survives a reload as a chip
    counted in the badge, and the page shows what the API returns for the same query."""
    from axe_playwright_python.sync_playwright import Axe

    alice = live.alice
    text = "a bird of prey"

    def api_items(filters: dict) -> list[dict]:
        with live.client(alice) as c:
            r = c.post("/api/search/smart", json={"query": text, "size": 60, **filters})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def api_names(filters: dict) -> list[str]:
        return sorted(i["original_file_name"] for i in api_items(filters))

    everything = api_items({})
    rated = next(i for i in everything if (i["exif"]["rating"] or 0) > 0)
    located = next(i for i in everything if i["exif"]["latitude"] is not None)
    lat, lon = located["exif"]["latitude"], located["exif"]["longitude"]
    # A distance that keeps both photos used below but (with random rankings) usually drops some others.
    cutoff = round(max(rated["distance"], located["distance"]) + 0.001, 3)

    login(page, alice)
    search_text(page, text)
    steps = [
        ("Visibility", "all", {"visibility": ["timeline", "hidden", "locked"]}, "visibility=all"),
        ("Max distance", str(cutoff), {"max_distance": cutoff}, f"max_distance={cutoff}"),
        ("Rating exactly", str(rated["exif"]["rating"]), {"rating": rated["exif"]["rating"]}, "rating="),
        ("Map area", f"{lat - 0.5}, {lon - 0.5}, {lat + 0.5}, {lon + 0.5}", None, "bbox="),
    ]
    applied: dict = {}
    for n, (label, value, body, in_url) in enumerate(steps, start=1):
        if not page.locator("#filters").evaluate("d => d.open"):
            page.locator("#filters summary").click()
        if label in ("Visibility", "Rating exactly"):
            page.get_by_label(label, exact=True).select_option(value)
        else:
            page.get_by_label(label, exact=True).fill(value)
            page.get_by_label(label, exact=True).press("Tab")
        if label == "Map area":
            applied.pop("rating")  # the rated photo has no GPS: the two together match nothing
            page.get_by_role("button", name=re.compile("Remove filter Rating exactly")).click()
            body = {"bbox": [lat - 0.5, lon - 0.5, lat + 0.5, lon + 0.5]}
            n -= 1
        applied.update(body)
        wait_js(page, f"() => location.search.includes({in_url!r})")
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
        expect(page.get_by_role("button", name=re.compile(f"Remove filter {label}"))).to_be_visible()
        expect(page.locator("#filter-count")).to_have_text(str(n))
        expected = api_names(applied)
        assert expected, f"the API finds something for {applied}"
        expect(page.locator("#status")).to_contain_text(f"{len(expected)} photo")
        expect(cards(page)).to_have_count(len(expected))
        assert sorted(card_names(page)) == expected
    assert located["original_file_name"] in card_names(page)

    # A malformed map area is marked invalid and not sent; the panel passes axe.
    page.locator("#filters summary").click()
    page.get_by_label("Map area", exact=True).fill("north of here")
    expect(page.get_by_label("Map area", exact=True)).to_have_attribute("aria-invalid", "true")
    violations = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, violations
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("#chips")).to_be_hidden()
    assert "bbox" not in page.url and "visibility" not in page.url


def test_text_in_photo_and_relevant_only_match_the_api(page: Page, live: LiveServer) -> None:
    """Relevant only is on by default (a visible toggle beside the box) and Text in photo applies on change; both
    survive a reload, and the page shows what the API returns for the same query (OCR may have found no text:
    then both are empty). What the box understood is shown under it."""
    from axe_playwright_python.sync_playwright import Axe

    alice = live.alice
    text = "a bird of prey"

    def api_names(filters: dict) -> list[str]:
        with live.client(alice) as c:
            r = c.post("/api/search/smart", json={"query": text, "size": 60, **filters})
        assert r.status_code == 200, r.text
        return sorted(i["original_file_name"] for i in r.json()["items"])

    def check(filters: dict) -> list[str]:
        expected = api_names(filters)
        if expected:
            expect(page.locator("#status")).to_contain_text(f"{len(expected)} photo")
        else:
            expect(page.locator("#status")).to_contain_text("No photo")
        expect(cards(page)).to_have_count(len(expected))
        assert sorted(card_names(page)) == expected
        return expected

    login(page, alice)
    toggle = page.get_by_label("Relevant only", exact=True)
    expect(toggle).to_be_checked()
    search_text(page, text, relevant=True)
    relevant = check({"relevant_only": True})
    assert "relevant_only" not in page.url
    assert len(relevant) < len(alice.assets)  # the cutoff keeps what stands out, not every photo

    toggle.uncheck()
    wait_js(page, "() => location.search.includes('relevant_only=false')")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Relevant only", exact=True)).not_to_be_checked()
    check({"relevant_only": False})
    assert len(api_names({"relevant_only": False})) == len(alice.assets)

    # The box reads the query: a folder of Alice's photos brings them first, and the line under the box says so.
    folder = alice.root.name
    search_text(page, f"{folder} rocks")
    expect(page.locator("#understood")).to_contain_text(f"Understood: folder {folder}")
    page.get_by_label("Search photos by description").fill(text)
    page.get_by_label("Search photos by description").press("Enter")
    expect(page.locator("#understood")).to_be_hidden()
    check({"relevant_only": False})

    word = "sign"
    page.locator("#filters summary").click()
    page.get_by_label("Text in photo", exact=True).fill(word)
    page.get_by_label("Text in photo", exact=True).press("Tab")
    wait_js(page, "() => location.search.includes('ocr_text=sign')")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Text in photo", exact=True)).to_have_value(word)
    expect(page.get_by_role("button", name=re.compile("Remove filter Text in photo"))).to_be_visible()
    expect(page.locator("#filter-count")).to_have_text("1")
    if not check({"ocr_text": word, "relevant_only": False}):
        expect(page.locator("#status")).to_contain_text("indexed with OCR")

    page.locator("#filters summary").click()
    violations = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, violations
    page.get_by_role("button", name=re.compile("Remove filter Text in photo")).click()
    expect(page.locator("#filter-count")).to_be_hidden()
    assert "ocr_text" not in page.url
