"""Accounts with the real CLI: passwords, admin rights, removing users, handing a library over, and libraries
whose folders overlap."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from photosearch.api.auth import verify_password
from photosearch.db.accounts import get_user


def run(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def ok(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = run(env, *args, stdin=stdin)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def users(env: dict) -> dict[str, dict]:
    return {u["email"]: u for u in json.loads(ok(env, "--json", "users", "list").stdout)}


def test_passwd_set_and_rm(cli_env: dict, db) -> None:  # noqa: ANN001
    ok(cli_env, "users", "add", "ann@example.org", "--password-stdin", stdin="ann-password\n")
    ok(cli_env, "users", "add", "bob@example.org")
    assert {e: u["is_admin"] for e, u in users(cli_env).items()} == {"ann@example.org": True, "bob@example.org": False}
    can_log_in = {e: u["can_log_in"] for e, u in users(cli_env).items()}
    assert can_log_in == {"ann@example.org": True, "bob@example.org": False}

    r = run(cli_env, "users", "passwd", "bob@example.org", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "at least 8 characters" in r.stderr
    ok(cli_env, "users", "passwd", "bob@example.org", "--password-stdin", stdin="bob-password-1\n")
    assert verify_password("bob-password-1", get_user(db, "bob@example.org")["password_hash"])
    r = run(cli_env, "users", "passwd", "nobody@example.org", "--password-stdin", stdin="whatever-pw\n")
    assert r.returncode == 1 and "no user 'nobody@example.org'" in r.stderr

    # the last admin keeps the rights and the account
    r = run(cli_env, "users", "set", "ann@example.org", "--no-admin")
    assert r.returncode == 1 and "ann@example.org is the last admin" in r.stderr
    r = run(cli_env, "users", "rm", "ann@example.org", "--yes")
    assert r.returncode == 1 and "last admin and cannot be removed" in r.stderr
    ok(cli_env, "users", "set", "bob@example.org", "--admin")
    ok(cli_env, "users", "set", "ann@example.org", "--no-admin")
    assert {e: u["is_admin"] for e, u in users(cli_env).items()} == {"ann@example.org": False, "bob@example.org": True}

    r = ok(cli_env, "users", "rm", "ann@example.org", "--yes")
    assert "removed ann@example.org: 0 libraries and 0 photos left the index (files on disk untouched)" in r.stdout
    assert list(users(cli_env)) == ["bob@example.org"]
    # without --yes it asks first, saying what happens to the photos
    r = run(cli_env, "users", "rm", "bob@example.org", stdin="n\n")
    assert "leave the index" in r.stdout and "libraries give" in r.stdout
    assert list(users(cli_env)) == ["bob@example.org"]


def test_library_hand_over_and_overlap(cli_env: dict, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("cyclamen_persicum.jpg", "notocactus_minimus.jpg", "tanners_ridge.jpg"):
        shutil.copyfile(next(photos_dir.rglob(name)), root / name)
    ok(cli_env, "users", "add", "ann@example.org")
    ok(cli_env, "users", "add", "bob@example.org")
    ok(cli_env, "libraries", "add", "trip", str(root), "--owner", "ann@example.org")
    assert json.loads(ok(cli_env, "--json", "libraries", "scan", "trip").stdout)["new"] == 3

    # a folder belongs to one library: the same folder, one inside it, one containing it, or a link to it
    (root / "sub").mkdir()
    (tmp_path / "link").symlink_to(root)
    for folder, how in ((root, "is"), (root / "sub", "overlaps"), (tmp_path, "overlaps"), (tmp_path / "link", "is")):
        r = run(cli_env, "libraries", "add", "other", str(folder), "--owner", "bob@example.org")
        assert r.returncode == 1, r.stderr
        assert f"{how} {root} of library 'trip' (owner ann@example.org)" in r.stderr, r.stderr
        assert "one library only" in r.stderr
    r = run(cli_env, "index", str(root / "sub"), "--owner", "bob@example.org")  # index creates libraries too
    assert r.returncode == 1 and "of library 'trip'" in r.stderr

    def found(owner: str) -> int:  # ann, the first account, is an admin: --from keeps to one owner's photos
        r = ok(cli_env, "search", "a plant", "--owner", owner, "--from", owner, "-k", "50", "--json")
        return len(json.loads(r.stdout)["items"])

    assert (found("ann@example.org"), found("bob@example.org")) == (3, 0)
    r = ok(cli_env, "libraries", "give", "trip", "bob@example.org")
    assert "library trip (3 photos) now belongs to bob@example.org" in r.stdout
    assert (found("ann@example.org"), found("bob@example.org")) == (0, 3)
    (lib,) = json.loads(ok(cli_env, "--json", "libraries", "list").stdout)
    assert lib["owner_email"] == "bob@example.org" and lib["assets"] == 3
    assert {e: u["assets"] for e, u in users(cli_env).items()} == {"ann@example.org": 0, "bob@example.org": 3}
