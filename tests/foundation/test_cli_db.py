"""The real `photosearch` CLI against a real embedded server in a fresh data dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest


def run_cli(env: dict[str, str], *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"photosearch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def fresh_env(tmp_path: Path, server_data_dir: Path) -> dict[str, str]:
    """A machine with nothing set up: only a data dir, no external database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSEARCH_")}
    env["PHOTOSEARCH_DATA_DIR"] = str(server_data_dir)
    env["PHOTOSEARCH_CONFIG"] = str(tmp_path / "config.toml")
    env["PHOTOSEARCH_PG_SHARED_BUFFERS"] = "192MB"
    yield env
    run_cli(env, "db", "stop", check=False)


def _postmaster_pid(env: dict[str, str]) -> int:
    return int((Path(env["PHOTOSEARCH_DATA_DIR"]) / "pgdata" / "postmaster.pid").read_text().split()[0])


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "photosearch", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("photosearch ")


def test_db_status_on_fresh_machine_starts_embedded_server(fresh_env: dict[str, str]) -> None:
    out = run_cli(fresh_env, "--json", "db", "status")
    info = json.loads(out.stdout)
    assert info["postgres"].startswith("18")
    assert tuple(int(x) for x in info["pgvector"].split(".")[:2]) >= (0, 8)
    assert info["data_dir"] == fresh_env["PHOTOSEARCH_DATA_DIR"]
    assert info["server"] == "embedded"
    assert info["assets"] == 0
    # the server stays up between CLI calls and is reused
    pid = _postmaster_pid(fresh_env)
    run_cli(fresh_env, "db", "status")
    assert _postmaster_pid(fresh_env) == pid
    # memory tuning applied at first start (one restart), not PostgreSQL's 128 MB default
    dsn = run_cli(fresh_env, "db", "shell-url").stdout.strip()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SHOW shared_buffers").fetchone()[0] == "192MB"
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == "512MB"
    assert _postmaster_pid(fresh_env) == pid
    text = run_cli(fresh_env, "db", "status").stdout
    assert "pgvector" in text and "0.8" in text and fresh_env["PHOTOSEARCH_DATA_DIR"] in text
    stop = run_cli(fresh_env, "--json", "db", "stop")
    assert json.loads(stop.stdout)["stopped"] is True
    assert not psutil.pid_exists(pid)


def test_killed_postmaster_is_recovered_by_next_call(fresh_env: dict[str, str]) -> None:
    run_cli(fresh_env, "users", "add", "ann@example.org")
    pid = _postmaster_pid(fresh_env)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.1)
    out = run_cli(fresh_env, "--json", "users", "list")
    users = json.loads(out.stdout)
    assert [u["email"] for u in users] == ["ann@example.org"]  # data survived the crash
    assert _postmaster_pid(fresh_env) != pid


def test_concurrent_cli_calls_share_one_server(fresh_env: dict[str, str]) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "photosearch", "--json", "db", "status"],
            env=fresh_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert json.loads(out)["schema_version"] >= 1


def test_errors_are_one_clear_line(fresh_env: dict[str, str], tmp_path: Path) -> None:
    bad = run_cli(fresh_env, "libraries", "add", "x", str(tmp_path / "missing"), check=False)
    assert bad.returncode == 1
    assert "is not a directory" in bad.stderr and "Traceback" not in bad.stderr
    dup = run_cli(fresh_env, "users", "add", "bo@example.org")
    assert dup.returncode == 0
    dup = run_cli(fresh_env, "users", "add", "bo@example.org", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr


def test_external_database_without_server_is_clear(fresh_env: dict[str, str]) -> None:
    env = dict(fresh_env, PHOTOSEARCH_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    out = run_cli(env, "db", "status", check=False)
    assert out.returncode == 1
    assert "cannot connect to PostgreSQL" in out.stderr and "Traceback" not in out.stderr


def test_libraries_add_list_remove(fresh_env: dict[str, str], photos_dir: Path) -> None:
    run_cli(fresh_env, "libraries", "add", "nature", str(photos_dir / "albums" / "nature"))
    libs = json.loads(run_cli(fresh_env, "--json", "libraries", "list").stdout)
    assert [lib["name"] for lib in libs] == ["nature"]
    assert libs[0]["import_paths"] == [str((photos_dir / "albums" / "nature").resolve())]
    run_cli(fresh_env, "libraries", "remove", "nature", "--yes")
    assert json.loads(run_cli(fresh_env, "--json", "libraries", "list").stdout) == []
