"""Selecting, bulk actions, the trash, uploads, the admin and account pages and first-run sign-up, in
Chromium on real indexed photos."""

from __future__ import annotations

import re
import shutil
import uuid
import zipfile
from pathlib import Path

import psycopg
import pytest
from api.live import LiveServer, run_uvicorn
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from psycopg import sql

from photosearch.api.app import create_app
from photosearch.api.auth import hash_password
from photosearch.config import Settings
from photosearch.db.accounts import create_user, default_user
from photosearch.db.libraries import create_library
from photosearch.db.migrate import migrate
from photosearch.db.pool import check_pgvector, connect_pool
from photosearch.db.server import ServerInfo, with_dbname
from web.helpers import cards, login


def new_person(live: LiveServer, prefix: str) -> tuple[dict, str]:
    tag = uuid.uuid4().hex[:6]
    pw = f"{prefix}-password-{tag}"
    return create_user(live.db, f"{prefix}{tag}", f"{prefix}{tag}@example.org", password_hash=hash_password(pw)), pw


def test_select_three_and_favourite_them(page: Page, live: LiveServer, shots: Path) -> None:
    bob = live.bob
    login(page, bob)
    expect(cards(page)).to_have_count(len(bob.assets))
    # Keyboard: Space selects the focused photo; Shift+click extends to the third.
    cards(page).first.focus()
    page.keyboard.press("Space")
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    cards(page).nth(2).click(modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    expect(page.locator("#results li.selected")).to_have_count(3)
    picked = [c.get_attribute("href").rsplit("/", 1)[1] for c in cards(page).all()[:3]]
    page.screenshot(path=shots / "selection-1280-light.png")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download").click()
    archive = zipfile.ZipFile(dl.value.path())
    assert len(archive.namelist()) == 3 and archive.testzip() is None
    page.get_by_role("button", name="★ Favorite").click()
    expect(page.locator("#status")).to_contain_text("Favorite: 3 photos")
    expect(page.locator("#results .fav-mark")).to_have_count(3)
    with live.client(bob) as c:
        assert all(c.get(f"/api/assets/{i}").json()["is_favorite"] for i in picked)
        # Escape clears a selection; Ctrl+A selects every loaded photo.
        cards(page).first.focus()
        page.keyboard.press("Control+a")
        expect(page.locator("#selection-count")).to_have_text(f"{len(bob.assets)} selected")
        page.keyboard.press("Escape")
        expect(page.locator("#selection-bar")).to_be_hidden()
        # Trash one, find it in the trash view, restore it.
        cards(page).first.click(modifiers=["Control"])
        page.get_by_role("button", name="Move to trash").click()
        expect(cards(page)).to_have_count(len(bob.assets) - 1)
        page.get_by_role("link", name="Trash").click()
        expect(page.locator("#status")).to_contain_text("1 photos in the trash")
        page.screenshot(path=shots / "trash-1280-light.png")
        cards(page).first.click(modifiers=["Control"])
        page.get_by_role("button", name="Restore").click()
        expect(cards(page)).to_have_count(0)
        assert c.post("/api/assets/bulk", json={"ids": picked, "action": "unfavorite"}).json()["updated"] == 3
        assert c.get("/api/trash").json()["items"] == []


def test_upload_two_photos_and_a_broken_file(
    page: Page, live: LiveServer, shots: Path, tmp_path: Path, expected_errors: list[str]
) -> None:
    expected_errors.append("status of 422 (Unprocessable Entity) at " + live.url + "/api/uploads")
    user, pw = new_person(live, "uploader")
    good = [live.photos / "albums/nature/silver_fir.jpg", live.photos / "formats/webp/denali.webp"]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[0].read_bytes()[:1500])
    login(page, user, pw)
    expect(page.locator("#status")).to_contain_text("No photos are indexed yet")
    page.locator("#upload-input").set_input_files([str(p) for p in good] + [str(broken)])
    expect(page.locator("#uploads")).to_have_attribute("data-done", "true", timeout=60_000)
    expect(page.locator("#upload-list li.indexed")).to_have_count(2)
    expect(page.locator("#upload-list li.failed")).to_have_count(1)
    expect(page.locator("#upload-list li.failed")).to_contain_text("broken.jpg")
    expect(page.locator("#upload-list li.failed")).to_contain_text("cannot be decoded")
    expect(page.locator("#status")).to_contain_text("2 photos uploaded and indexed")
    page.screenshot(path=shots / "upload-1280-light.png")
    page.reload()
    expect(cards(page)).to_have_count(2)
    # Indexed for search too; the same file again is reported, not stored twice.
    page.locator("#upload-input").set_input_files(str(good[0]))
    expect(page.locator("#upload-list li.duplicate")).to_contain_text("already in your library")
    stored = [p for p in (live.settings.data_dir / "uploads" / str(user["id"])).rglob("*") if p.is_file()]
    assert sorted(p.name for p in stored) == sorted(p.name for p in good)

    # Trash one and empty the trash: gone from the index, and the uploaded file with it.
    page.reload()
    cards(page).first.click(modifiers=["Control"])
    page.get_by_role("button", name="Move to trash").click()
    expect(cards(page)).to_have_count(1)
    page.goto("/?view=trash")
    expect(cards(page)).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Empty trash").click()
    expect(page.locator("#status")).to_contain_text("Removed 1 photo for good")
    expect(cards(page)).to_have_count(0)
    left = [p for p in (live.settings.data_dir / "uploads" / str(user["id"])).rglob("*") if p.is_file()]
    assert len(left) == 1


def test_admin_creates_a_user_who_logs_in(page: Page, live: LiveServer, shots: Path, browser) -> None:
    login(page, live.alice)
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    email = f"gina-{uuid.uuid4().hex[:6]}@example.org"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name", exact=True).fill("gina")
    page.get_by_label("Password").fill("gina-password")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#users-table")).to_contain_text(email)
    context = browser.new_context(base_url=live.url)
    try:
        other = context.new_page()
        login(other, {"email": email}, "gina-password")
        expect(other.locator("#status")).to_contain_text("No photos are indexed yet")
        expect(other.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
        assert other.goto("/admin").status == 403
    finally:
        context.close()


def test_scan_from_the_admin_page_shows_progress(page: Page, live: LiveServer, shots: Path) -> None:
    folder = live.tmp / f"scan-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    for name in ("albums/nature/cyclamen_persicum.jpg", "albums/nature/silver_fir.jpg", "formats/png/density_plot.png"):
        shutil.copy2(live.photos / name, folder / Path(name).name)
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    user, _ = new_person(live, "owner")
    login(page, live.alice)
    page.goto("/admin")
    page.get_by_label("Library name").fill(f"scanned-{folder.name}")
    page.get_by_label("Folders on the server (one per line)").fill(str(folder))
    page.get_by_label("Owner").select_option(user["email"])
    page.get_by_role("button", name="Add library").click()
    row = page.locator("#libraries-table tr", has_text=f"scanned-{folder.name}")
    expect(row).to_be_visible()
    states: list[str] = []
    page.on("response", lambda r: states.append(r.url) if "/api/jobs/" in r.url else None)
    row.get_by_role("button", name=re.compile("^Scan")).click()
    expect(row.locator("progress")).to_be_visible()
    expect(row).to_have_attribute("data-job-status", "succeeded", timeout=120_000)
    expect(row.locator(".scan-state")).to_contain_text("done: 3 new")
    expect(row.locator(".lib-assets")).to_have_text("3")
    assert states, "the page followed the job through the jobs API"
    row.get_by_role("button", name=re.compile("^Errors")).click()
    expect(page.locator("#errors-body")).to_contain_text("bad.jpg")
    page.screenshot(path=shots / "admin-scan-1280-light.png", full_page=True)


def test_account_page_password_and_keys(page: Page, live: LiveServer) -> None:
    user, pw = new_person(live, "acct")
    login(page, user, pw)
    page.get_by_role("link", name=user["name"]).click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("New key name").fill("my script")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#key-created")).to_be_visible()
    secret = page.locator("#key-secret").inner_text()
    assert secret.startswith("psk_")
    with live.client() as c:
        c.headers["x-api-key"] = secret
        assert c.get("/api/users/me").json()["email"] == user["email"]
        page.get_by_role("button", name="Revoke my script").click()
        expect(page.locator("#keys-status")).to_have_text("Key revoked.")
        assert c.get("/api/users/me").status_code == 401
    page.get_by_label("Current password").fill(pw)
    page.get_by_label("New password").fill("a-brand-new-pw")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-status")).to_contain_text("Password changed")
    # Still logged in here (a new session, a new CSRF token): a state change works.
    page.get_by_label("New key name").fill("after")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#keys-status")).to_have_text("Created after.")
    page.get_by_role("button", name="Log out").click()
    login(page, user, "a-brand-new-pw")


@pytest.fixture(scope="module")
def fresh_install(pg_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory, photos_dir: Path, tiny_model_dir: Path):
    """A server where photos were indexed before any account had a password (the placeholder owns them)."""
    from photosearch.ingest import index_library

    tmp = tmp_path_factory.mktemp("firstrun")
    name = f"t_web_fr_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_dbname(pg_admin_dsn, name)
    check_pgvector(dsn)
    migrate(dsn)
    db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=4)
    settings = Settings(
        data_dir=tmp / "data", database_url=dsn, models_dir=tiny_model_dir.parent, model_name=tiny_model_dir.name
    )
    settings.ensure_dirs()
    root = tmp / "photos"
    root.mkdir()
    for n in ("albums/nature/prairie_falcon.jpg", "albums/nature/wood_anemones.jpg", "formats/webp/denali.webp"):
        shutil.copy2(photos_dir / n, root / Path(n).name)
    app = create_app(settings, db=db)
    holder = default_user(db)
    index_library(db, settings, create_library(db, holder["id"], "photos", [str(root)]), model=app.state.ctx.model())
    try:
        with run_uvicorn(app) as url:
            yield url
    finally:
        db.close()
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_first_run_sign_up_then_login_sees_every_photo(browser, fresh_install: str, shots: Path) -> None:
    context = browser.new_context(base_url=fresh_install, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto("/")
        expect(page).to_have_url(re.compile("/sign-up$"))
        expect(page.get_by_role("heading", name="Welcome to photosearch")).to_be_visible()
        expect(page.locator("main")).to_contain_text("takes over the 3 photos")
        page.screenshot(path=shots / "sign-up-1280-light.png")
        violations = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
        assert violations == []
        page.get_by_label("Email").fill("owner@example.org")
        page.get_by_label("Password (at least").fill("owner-password")
        page.get_by_role("button", name="Create admin account").click()
        expect(cards(page)).to_have_count(3)
        page.get_by_role("button", name="Log out").click()
        page.goto("/sign-up")
        expect(page).to_have_url(re.compile("/login$"))
        login(page, {"email": "owner@example.org"}, "owner-password")
        expect(cards(page)).to_have_count(3)
        expect(page.get_by_role("link", name="Admin", exact=True)).to_be_visible()
    finally:
        context.close()
