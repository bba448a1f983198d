"""CLI errors in the user's words, with the real `photosearch` command: every usage mistake exits 2 with one
line naming the flag as typed; no library internals; `--json` anywhere on the line, errors in JSON too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("validation error for", "errors.pydantic.dev", "unexpected error", "Traceback", "input_value")

# (arguments, what the one-line message must contain)
BAD_ARGS = [
    (["search", "x", "-k", "0"], "-k/--size must be between 1 and 1000"),
    (["search", "x", "--size", "5000"], "-k/--size must be between 1 and 1000"),
    (["search", "x", "--page", "0"], "--page must be at least 1"),
    (["search", "x", "--taken-after", "2020-13-45"], "--taken-after must be a date like 2024-05-31"),
    (["search", "x", "--taken-after", "0001-01-01"], "--taken-after 0001-01-01 is too far in the past"),
    (["search", "x", "--rating", "abc"], "--rating must be a whole number"),
    (["search", "x", "--type", "foo"], "--type must be one of 'image', 'video'"),
    (["search", "x", "--bogus"], "`photosearch search` has no option --bogus"),
    (["search", "x", "--name="], "--name must have at least 1 character"),
    (["search", "x", "--bbox", "1,2"], "--bbox needs 4 comma-separated numbers"),
    (["search", "x", "--with-deleted", "--trashed"], "--with-deleted and --trashed are mutually exclusive"),
    (["search", "x", "--page", "100", "-k", "1000"], "--page × -k must be at most"),
    (["search", "x", "--like", "zz"], "--like needs an asset id"),
    (["search"], "give what to look for: TEXT, --image FILE or --like ID"),
    (["bogus-cmd"], "`photosearch` has no command 'bogus-cmd'"),
    (["serve", "--port", "99999"], "--port must be between 1 and 65535"),
    (["users", "add"], "needs the argument EMAIL"),
    (["users", "set", "someone@example.org"], "needs --admin or --no-admin"),
    (["search", "x", "--visibility"], "--visibility needs a value"),
]


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=300
    )


def assert_clean(r: subprocess.CompletedProcess) -> None:
    for text in (r.stdout, r.stderr):
        for bad in FORBIDDEN:
            assert bad not in text, (bad, text)


@pytest.mark.parametrize(("args", "expected"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line_naming_the_flag(cli_env: dict, args: list[str], expected: str) -> None:
    r = run(cli_env, *args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert_clean(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert expected in lines[0], lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize(("args", "expected"), BAD_ARGS[:4], ids=[" ".join(a) for a, _ in BAD_ARGS[:4]])
def test_with_json_errors_are_json_on_stderr(cli_env: dict, args: list[str], expected: str) -> None:
    for line in ([*args, "--json"], ["--json", *args]):  # after the sub-command, or before it
        r = run(cli_env, *line)
        assert r.returncode == 2
        err = json.loads(r.stderr)["error"]
        assert err["kind"] == "usage" and expected in err["message"]
        assert_clean(r)


def test_json_anywhere_on_the_line_and_ids_accepted_by_prefix(cli_env: dict, photos_dir) -> None:  # noqa: ANN001
    r = run(cli_env, "index", str(photos_dir / "albums"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["new"] > 0
    r = run(cli_env, "search", "a red flower", "--json", "-k", "3")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)["items"]
    assert len(items) == 3

    # the table shows a short id; --like takes it (or any unique prefix) and finds the same photo's neighbours
    table = run(cli_env, "search", "a red flower", "-k", "3")
    short = items[0]["id"].replace("-", "")[:8]
    assert short in table.stdout
    by_prefix = json.loads(run(cli_env, "search", "--like", short, "--json").stdout)
    by_full = json.loads(run(cli_env, "search", "--like", items[0]["id"], "--json").stdout)
    assert [i["id"] for i in by_prefix["items"]] == [i["id"] for i in by_full["items"]]
    assert items[0]["id"] not in {i["id"] for i in by_full["items"]}

    unknown = "ffff0000" if not items[0]["id"].startswith("ffff0000") else "0000ffff"
    r = run(cli_env, "search", "--like", unknown)
    assert r.returncode == 2 and f"no photo of yours has an id starting with {unknown}" in r.stderr
    assert_clean(r)


def _asset(db, owner_id, library_id, asset_id: str) -> None:  # noqa: ANN001
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO assets (id, owner_id, library_id, original_path, original_file_name, checksum, file_size,"
            " file_created_at, file_modified_at, local_date_time)"
            " VALUES (%s, %s, %s, %s, 'x.jpg', %s, 1, now(), now(), now())",
            (asset_id, owner_id, library_id, f"/nowhere/{asset_id}.jpg", asset_id.encode()),
        )


def test_id_prefixes_are_unique_among_the_callers_photos(cli_env: dict, db, tmp_path) -> None:  # noqa: ANN001
    from photosearch.db.accounts import create_account
    from photosearch.db.libraries import create_library

    me = create_account(db, "me@example.org")
    other = create_account(db, "other@example.org")
    (tmp_path / "mine").mkdir()
    (tmp_path / "theirs").mkdir()
    mine = create_library(db, me["id"], "mine", [str(tmp_path / "mine")])
    theirs = create_library(db, other["id"], "theirs", [str(tmp_path / "theirs")])
    _asset(db, me["id"], mine["id"], "abcd1234-0000-4000-8000-000000000001")
    _asset(db, me["id"], mine["id"], "abcd5678-0000-4000-8000-000000000002")
    _asset(db, other["id"], theirs["id"], "beef0000-0000-4000-8000-000000000003")

    r = run(cli_env, "search", "--like", "abcd", "--owner", "me@example.org")
    assert r.returncode == 2 and "--like: abcd matches several photos" in r.stderr, r.stderr
    assert "abcd1234-0000…" in r.stderr and "give more digits" in r.stderr
    r = run(cli_env, "search", "--like", "ABCD-1234", "--owner", "me@example.org")  # case and dashes do not matter
    assert "has no embedding yet" in r.stderr and "abcd1234-0000-4000-8000-000000000001" in r.stderr
    # someone else's photo is not found by its prefix, as if it did not exist
    r = run(cli_env, "search", "--like", "beef", "--owner", "me@example.org")
    assert r.returncode == 2 and "no photo of yours has an id starting with beef" in r.stderr
    r = run(cli_env, "search", "--like", "beef", "--owner", "other@example.org")
    assert "has no embedding yet" in r.stderr


def test_bad_input_is_refused_before_the_database_is_reached(cli_env: dict) -> None:
    env = {**cli_env, "PHOTOSEARCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2"}
    for args, expected in BAD_ARGS:
        if args[:1] == ["search"]:
            r = run(env, *args)
            assert r.returncode == 2 and expected in r.stderr, (args, r.stderr)


def test_an_error_naming_a_long_path_stays_one_line(cli_env: dict, tmp_path) -> None:
    """Deep paths (CI's temp dirs, NAS mounts) once wrapped an error over several lines at the console width."""
    folder = tmp_path / ("x" * 150) / ("y" * 150)
    r = run(cli_env, "libraries", "add", "deep", str(folder))
    assert r.returncode != 0
    assert_clean(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], r.stderr
