"""Authentication: every endpoint but health/login needs a caller; sessions, CSRF, API keys, admin checks."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest

from api.live import LiveServer, run_uvicorn
from photosearch.api.app import create_app
from photosearch.api.auth import hash_password, verify_password
from photosearch.db.accounts import create_api_key, revoke_api_key


def endpoints(live: LiveServer) -> list[tuple[str, str, dict]]:
    """Every authenticated API endpoint, with a plausible request for it."""
    asset = live.alice.assets[0]["id"]
    lib = live.alice.library["id"]
    png = {"files": {"file": ("q.png", (live.photos / "formats/png/density_plot.png").read_bytes(), "image/png")}}
    return [
        ("GET", "/api/users/me", {}),
        ("GET", "/api/libraries", {}),
        ("POST", "/api/libraries", {"json": {"name": "x", "import_paths": [str(live.alice.root)]}}),
        ("GET", f"/api/libraries/{lib}", {}),
        ("POST", f"/api/libraries/{lib}/scan", {}),
        ("GET", "/api/jobs", {}),
        ("GET", f"/api/jobs/{uuid.uuid4()}", {}),
        ("GET", f"/api/assets/{asset}", {}),
        ("GET", f"/api/assets/{asset}/thumbnail", {}),
        ("GET", f"/api/assets/{asset}/thumbnail?size=preview", {}),
        ("GET", f"/api/assets/{asset}/original", {}),
        ("GET", f"/api/assets/{asset}/similar", {}),
        ("POST", "/api/search/smart", {"json": {"query": "a bird"}}),
        ("POST", "/api/search/image", png),
        ("GET", "/api/duplicates", {}),
        ("GET", "/api/server/stats", {}),
        ("POST", "/api/auth/logout", {}),
    ]


def test_every_endpoint_needs_authentication(live: LiveServer) -> None:
    with live.client() as anon, live.client() as bad_key:
        bad_key.headers["x-api-key"] = "psk_not-a-real-key"
        for method, path, kw in endpoints(live):
            r = anon.request(method, path, **kw)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert "authentication required" in r.json()["message"]
            r = bad_key.request(method, path, **kw)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["message"] == "invalid or revoked API key"


# Sign-up and the server config are public by design: before any account has a password nobody could
# authenticate; test_first_run checks that sign-up is closed once one has.
PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/admin-sign-up"),
    ("GET", "/api/server/config"),
}


def test_every_route_of_the_app_needs_authentication(live: LiveServer) -> None:
    """Walk the app's own OpenAPI paths, so an endpoint added later is covered without editing this test."""
    ids = {
        "asset_id": live.alice.assets[0]["id"],
        "library_id": live.alice.library["id"],
        "job_id": uuid.uuid4(),
        "user_id": live.bob.user["id"],
        "key_id": uuid.uuid4(),
    }
    checked = set()
    with live.client() as anon:
        for path, operations in live.app.openapi()["paths"].items():
            for method in (m.upper() for m in operations):
                if (method, path) in PUBLIC:
                    continue
                r = anon.request(method, path.format(**ids))
                assert r.status_code == 401, (method, path, r.status_code)
                checked.add((method, path))
        assert len(checked) >= 16
        for path in ("/", f"/photos/{ids['asset_id']}"):  # pages send people to the login form
            r = anon.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_health_and_login_page_are_public(live: LiveServer) -> None:
    with live.client() as c:
        r = c.get("/api/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert c.get("/login").status_code == 200
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert c.get("/openapi.json").json()["paths"]["/api/search/smart"]


def test_password_hashing() -> None:
    h = hash_password("correct horse")
    assert h.startswith("scrypt$") and "correct horse" not in h
    assert verify_password("correct horse", h)
    assert not verify_password("correct horsE", h)
    assert not verify_password("x", None)
    assert not verify_password("x", "garbage$hash")
    assert hash_password("correct horse") != h  # salted
    with pytest.raises(ValueError):
        hash_password("")


def test_session_login_csrf_and_logout(live: LiveServer) -> None:
    with live.login(live.bob) as (c, csrf):
        cookie = c.cookies.get("photosearch_session")
        assert cookie
        raw = c.post("/api/auth/login", json={"email": live.bob.email, "password": live.bob.password})
        set_cookie = raw.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        me = c.get("/api/users/me")
        assert me.status_code == 200 and me.json()["email"] == live.bob.email
        # A state-changing request with the cookie but without the CSRF token is refused.
        r = c.post("/api/search/smart", json={"query": "flowers"})
        assert r.status_code == 403 and "CSRF" in r.json()["message"]
        r = c.post("/api/search/smart", json={"query": "flowers"}, headers={"x-csrf-token": "wrong"})
        assert r.status_code == 403
        r = c.post("/api/auth/logout", headers={"x-csrf-token": csrf})
        assert r.status_code == 403  # the token belongs to the first session, replaced by the second login
        csrf2 = raw.json()["csrf_token"]
        assert c.post("/api/auth/logout", headers={"x-csrf-token": csrf2}).status_code == 204
        assert c.get("/api/users/me").status_code == 401
    with httpx.Client(base_url=live.url, cookies={"photosearch_session": cookie}) as first:
        assert first.get("/api/users/me").status_code == 200  # logging in again did not end the first session
    with httpx.Client(base_url=live.url, cookies={"photosearch_session": "forged"}) as forged:
        assert forged.get("/api/users/me").status_code == 401


def test_cookie_is_secure_behind_https(live: LiveServer) -> None:
    """Behind a TLS-terminating proxy named in `forwarded_allow_ips` (X-Forwarded-Proto: https) the cookie gets
    `Secure`; the same header from a client that is not a configured proxy changes nothing."""
    body = {"email": live.bob.email, "password": live.bob.password}
    flags = lambda header: {part.strip() for part in header.lower().split(";")}  # noqa: E731
    proxied = create_app(live.settings.model_copy(update={"forwarded_allow_ips": "127.0.0.1"}), db=live.db)
    with run_uvicorn(proxied) as url, httpx.Client(base_url=url, timeout=60) as c:
        plain = c.post("/api/auth/login", json=body).headers["set-cookie"].lower()
        tls = c.post("/api/auth/login", json=body, headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
        assert "secure" not in flags(plain) and "secure" in flags(tls) and "httponly" in flags(tls)
    with live.client() as c:
        forged = c.post("/api/auth/login", json=body, headers={"x-forwarded-proto": "https"}).headers["set-cookie"]
        assert "secure" not in flags(forged)


def test_logout_ends_the_session_server_side(live: LiveServer) -> None:
    with live.login(live.bob) as (c, csrf):
        token = c.cookies.get("photosearch_session")
        assert c.post("/api/auth/logout", headers={"x-csrf-token": csrf}).status_code == 204
    with httpx.Client(base_url=live.url, cookies={"photosearch_session": token}) as replay:
        assert replay.get("/api/users/me").status_code == 401


def test_wrong_password_and_throttling(live: LiveServer) -> None:
    with live.client() as c:
        r = c.post("/api/auth/login", json={"email": live.bob.email, "password": "nope"})
        assert r.status_code == 401 and r.json()["message"] == "wrong email or password"
        r = c.post("/api/auth/login", json={"email": "nobody@example.org", "password": "nope"})
        assert r.status_code == 401 and r.json()["message"] == "wrong email or password"
        r = c.post("/api/auth/login", json={"email": "bob", "password": live.bob.password})
        assert r.status_code == 401  # names are not logins
        assert c.post("/api/auth/login", json={"email": live.bob.email}).status_code == 422
        assert c.post("/api/auth/login", content=b"{", headers={"content-type": "application/json"}).status_code == 422
        victim = "throttled@example.org"
        codes = [c.post("/api/auth/login", json={"email": victim, "password": "x"}).status_code for _ in range(11)]
        assert codes[:10] == [401] * 10 and codes[10] == 429


def test_api_keys_work_and_revocation_is_immediate(live: LiveServer) -> None:
    row, secret = create_api_key(live.db, live.bob.user["id"], "temp")
    with live.client() as c:
        c.headers["x-api-key"] = secret
        assert c.get("/api/users/me").json()["email"] == live.bob.email
        # API keys are not ambient credentials: no CSRF token needed.
        assert c.post("/api/search/smart", json={"query": "flowers"}).status_code != 403
        revoke_api_key(live.db, live.bob.user["id"], str(row["id"]))
        assert c.get("/api/users/me").status_code == 401


def test_admin_only_endpoints(live: LiveServer) -> None:
    with live.client(live.bob) as bob, live.client(live.alice) as alice:
        r = bob.get("/api/server/stats")
        assert r.status_code == 403 and "administrator" in r.json()["message"]
        r = bob.post("/api/libraries", json={"name": "mine", "import_paths": ["/etc"]})
        assert r.status_code == 403
        stats = alice.get("/api/server/stats")
        assert stats.status_code == 200
        body = stats.json()
        assert body["assets"] == len(live.alice.assets) + len(live.bob.assets)
        assert {u["email"] for u in body["usage_by_user"]} >= {live.alice.email, live.bob.email}
        memory = body["search_memory"]  # the server holds the search lists in memory once loaded
        assert memory["state"] in ("loaded", "loading", "not loaded") and memory["budget_mb"] > 0
        assert (memory["rows"] > 0) == (memory["state"] == "loaded")


def test_web_login_form(live: LiveServer) -> None:
    with live.client() as c:
        page = c.get("/login?next=/photos/x")
        token = c.cookies.get("photosearch_login_csrf")
        assert token and f'value="{token}"' in page.text
        form = {"email": live.bob.email, "password": live.bob.password, "next": "//evil.example/"}
        # Without the double-submit token (another site's form) the login is refused.
        r = c.post("/login", data={**form, "csrf_token": "forged"})
        assert r.status_code == 403 and "expired" in r.text
        token = c.cookies.get("photosearch_login_csrf")
        r = c.post("/login", data={**form, "csrf_token": token, "password": "wrong"})
        assert r.status_code == 401 and "Wrong email or password" in r.text
        token = c.cookies.get("photosearch_login_csrf")
        r = c.post("/login", data={**form, "csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
        home = c.get("/")
        assert home.status_code == 200 and "Search photos" in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]


def test_upload_size_limit_applies_before_auth_work(live: LiveServer) -> None:
    big = io.BytesIO(b"\xff\xd8\xff" + b"0" * (live.app.state.ctx.max_upload_bytes + 10))
    with live.client(live.alice) as c:
        r = c.post("/api/search/image", files={"file": ("big.jpg", big, "image/jpeg")})
        assert r.status_code == 413 and "limit" in r.json()["message"]
