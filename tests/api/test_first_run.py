"""The newcomer's path with real commands: import the test model, index with no user, create the first
account, log in, see every photo. And the web's first-run sign-up (`POST /api/auth/admin-sign-up`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, input=stdin, capture_output=True, text=True, timeout=600
    )


def newcomer_env(cli_env: dict, tmp_path: Path) -> dict:
    """A fresh data dir, no model installed, no config file: what `pip install` leaves."""
    env = {k: v for k, v in cli_env.items() if k not in ("PHOTOSEARCH_MODELS_DIR", "PHOTOSEARCH_MODEL_NAME")}
    env["PHOTOSEARCH_CONFIG"] = str(tmp_path / "config.toml")
    return env


def index_as_newcomer(env: dict, tiny_model_dir: Path, photos_dir: Path) -> int:
    """Import and activate the test model, index the shared photos with no user; return how many."""
    for args in (("models", "import", str(tiny_model_dir)), ("models", "use", tiny_model_dir.name)):
        r = cli(env, *args)
        assert r.returncode == 0, r.stderr
    r = cli(env, "--json", "index", str(photos_dir))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    summary = summary[0] if isinstance(summary, list) else summary
    indexed = summary["new"]
    assert indexed >= 20
    users = json.loads(cli(env, "--json", "users", "list").stdout)
    assert [u["email"] for u in users] == ["admin@localhost"]  # the placeholder holds them for now
    return indexed


class Served:
    def __init__(self, env: dict) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "photosearch", "serve", "--port", str(self.port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def all_assets(c: httpx.Client, url: str) -> list[dict]:
    items, page = [], 1
    while page:
        r = c.get(f"{url}/api/assets", params={"page": page, "size": 200})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        page = r.json()["next_page"]
    return items


def test_newcomer_cli_first_account_sees_every_photo(
    cli_env: dict, tmp_path: Path, tiny_model_dir: Path, photos_dir: Path
) -> None:
    env = newcomer_env(cli_env, tmp_path)
    indexed = index_as_newcomer(env, tiny_model_dir, photos_dir)

    r = cli(env, "users", "add", "me@example.org", "--password-stdin", stdin="newcomer-pw\n")
    assert r.returncode == 0, r.stderr
    assert "first account" in r.stdout and f"{indexed} photos" in r.stdout
    users = json.loads(cli(env, "--json", "users", "list").stdout)
    assert [(u["email"], u["is_admin"], u["assets"]) for u in users] == [("me@example.org", True, indexed)]
    libs = json.loads(cli(env, "--json", "libraries", "list").stdout)
    assert [(lib["name"], lib["owner_email"]) for lib in libs] == [("default", "me@example.org")]

    with Served(env) as s, httpx.Client(timeout=30) as c:
        assert c.get(f"{s.url}/api/server/config").json()["sign_up_needed"] is False
        login = c.post(f"{s.url}/api/auth/login", json={"email": "me@example.org", "password": "newcomer-pw"})
        assert login.status_code == 200, login.text
        assert c.get(f"{s.url}/api/users/me").json()["assets"] == indexed
        assert len(all_assets(c, s.url)) == indexed
        csrf = {"x-csrf-token": login.json()["csrf_token"]}
        hits = c.post(f"{s.url}/api/search/smart", json={"query": "a flower", "size": 200}, headers=csrf)
        assert hits.status_code == 200, hits.text
        assert len(hits.json()["items"]) == min(200, indexed)
        # the bundled model has random weights: the API says so, for the web page to show
        assert hits.json()["test_model"] is True
        assert c.get(f"{s.url}/api/server/config").json()["test_model"] is True


def test_web_first_run_sign_up_adopts_and_logs_in(
    cli_env: dict, tmp_path: Path, tiny_model_dir: Path, photos_dir: Path
) -> None:
    env = newcomer_env(cli_env, tmp_path)
    indexed = index_as_newcomer(env, tiny_model_dir, photos_dir)
    with Served(env) as s, httpx.Client(timeout=30) as c:
        assert c.get(f"{s.url}/api/server/config").json()["sign_up_needed"] is True
        bad = c.post(f"{s.url}/api/auth/admin-sign-up", json={"email": "me@example.org", "password": "short"})
        assert bad.status_code == 422
        r = c.post(f"{s.url}/api/auth/admin-sign-up", json={"email": "Me@Example.org", "password": "first-admin-pw"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["user"]["email"] == "me@example.org" and body["user"]["is_admin"] is True
        assert body["adopted"] == {"libraries": 1, "assets": indexed}
        # the sign-up logged in: the session cookie works at once
        assert c.get(f"{s.url}/api/users/me").json()["assets"] == indexed
        assert len(all_assets(c, s.url)) == indexed
        assert c.get(f"{s.url}/api/server/config").json()["sign_up_needed"] is False
        # closed from now on, for everybody
        with httpx.Client(timeout=30) as other:
            again = other.post(
                f"{s.url}/api/auth/admin-sign-up", json={"email": "evil@example.org", "password": "another-pw"}
            )
            assert again.status_code == 403 and "sign-up is closed" in again.json()["message"]
    users = json.loads(cli(env, "--json", "users", "list").stdout)
    assert [u["email"] for u in users] == ["me@example.org"]
