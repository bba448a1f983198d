"""`photosearch serve` for real: a subprocess on a free loopback port, against this test's database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from api.live import free_port
from photosearch.db.accounts import create_api_key, get_user


def test_serve_starts_answers_and_stops(cli_env: dict[str, str], db) -> None:  # noqa: ANN001
    # `users add --password` hashes with photosearch.api.auth; the served app must accept that password.
    subprocess.run(
        [sys.executable, "-m", "photosearch", "users", "add", "dora@example.org", "--password"],
        env=cli_env,
        input="dora-pw-123\ndora-pw-123\n",
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )
    _, secret = create_api_key(db, get_user(db, "dora@example.org")["id"], "serve-test")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "serve", "--port", str(port), "--log-level", "warning"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        me = httpx.get(f"{url}/api/users/me", headers={"x-api-key": secret}, timeout=10)
        assert me.status_code == 200 and me.json()["email"] == "dora@example.org"
        assert httpx.get(f"{url}/api/users/me", timeout=10).status_code == 401
        login = httpx.post(f"{url}/api/auth/login", json={"email": "dora@example.org", "password": "dora-pw-123"})
        assert login.status_code == 200 and login.json()["csrf_token"]
        docs = httpx.get(f"{url}/docs", timeout=10)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
    finally:
        proc.terminate()
        # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (exit status -15).
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
