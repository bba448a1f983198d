"""Accounts over the API: your password and API keys; admins create users, reset passwords, grant admin
and delete; non-admins are refused. Checked by logging in as the people made."""

from __future__ import annotations

import uuid

from api.live import LiveServer


def test_admin_manages_users_and_they_log_in(live: LiveServer) -> None:
    email = f"erin-{uuid.uuid4().hex[:6]}@example.org"
    with live.client(live.alice) as admin, live.client(live.bob) as bob:
        assert bob.get("/api/users").status_code == 403
        assert bob.post("/api/users", json={"email": email, "password": "long-enough"}).status_code == 403
        r = admin.post("/api/users", json={"email": email, "name": "erin", "password": "erin-password"})
        assert r.status_code == 201, r.text
        erin = r.json()
        assert erin["is_admin"] is False
        assert email in [u["email"] for u in admin.get("/api/users").json()]
        assert admin.post("/api/users", json={"email": email, "password": "erin-password"}).status_code == 409
        assert admin.post("/api/users", json={"email": "x@y.z", "password": "short"}).status_code == 422
        login = live.client()
        assert login.post("/api/auth/login", json={"email": email, "password": "erin-password"}).status_code == 200
        assert admin.put(f"/api/users/{erin['id']}", json={"is_admin": True}).json()["is_admin"] is True
        assert admin.put(f"/api/users/{erin['id']}/password", json={"password": "another-pass"}).status_code == 204
        assert login.get("/api/users/me").status_code == 401  # the reset ended erin's session
        assert login.post("/api/auth/login", json={"email": email, "password": "another-pass"}).status_code == 200
        assert admin.delete(f"/api/users/{live.alice.user['id']}").status_code == 409  # not yourself
        gone = admin.delete(f"/api/users/{erin['id']}")
        assert gone.status_code == 200 and gone.json()["email"] == email
        assert login.post("/api/auth/login", json={"email": email, "password": "another-pass"}).status_code == 401
        login.close()


def test_own_password_and_api_keys(live: LiveServer) -> None:
    email = f"finn-{uuid.uuid4().hex[:6]}@example.org"
    with live.client(live.alice) as admin:
        admin.post("/api/users", json={"email": email, "password": "finn-password"}).raise_for_status()
    with live.client() as c:
        token = c.post("/api/auth/login", json={"email": email, "password": "finn-password"}).json()["csrf_token"]
        h = {"x-csrf-token": token}
        bad = c.put("/api/users/me/password", json={"current_password": "nope", "new_password": "x" * 10}, headers=h)
        assert bad.status_code == 403
        ok = c.put(
            "/api/users/me/password",
            json={"current_password": "finn-password", "new_password": "finn-new-pw"},
            headers=h,
        )
        assert ok.status_code == 200
        h = {"x-csrf-token": ok.json()["csrf_token"]}
        assert c.get("/api/users/me").status_code == 200  # this browser got a new session
        created = c.post("/api/users/me/api-keys", json={"name": "laptop"}, headers=h).json()
        with live.client() as k:
            k.headers["x-api-key"] = created["secret"]
            assert k.get("/api/users/me").json()["email"] == email
            assert [key["name"] for key in c.get("/api/users/me/api-keys").json()] == ["laptop"]
            assert c.delete(f"/api/users/me/api-keys/{created['id']}", headers=h).status_code == 204
            assert k.get("/api/users/me").status_code == 401
    with live.client() as c:
        assert c.post("/api/auth/login", json={"email": email, "password": "finn-new-pw"}).status_code == 200
