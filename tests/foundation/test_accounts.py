"""db/accounts.py's ownership rules on a real database: the first account adopts the placeholder's photos,
sign-up is open only while no account has a password, and two first accounts cannot both adopt."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from photosearch.db.accounts import (
    PLACEHOLDER_EMAIL,
    Conflict,
    SignUpClosed,
    create_account,
    create_api_key,
    default_user,
    list_users,
    needs_sign_up,
)
from photosearch.db.libraries import create_library, list_libraries


def _placeholder_with_a_library(db, tmp_path: Path) -> dict:  # noqa: ANN001
    holder = default_user(db)
    assert holder["email"] == PLACEHOLDER_EMAIL and holder["is_admin"]
    (tmp_path / "pics").mkdir()
    create_library(db, holder["id"], "default", [str(tmp_path / "pics")])
    create_api_key(db, holder["id"], "script")
    return holder


def test_the_first_account_adopts_the_placeholder(db, tmp_path: Path) -> None:  # noqa: ANN001
    _placeholder_with_a_library(db, tmp_path)
    me = create_account(db, "Me@Example.org")
    assert (me["email"], me["is_admin"], me["first"]) == ("me@example.org", True, True)
    assert me["adopted"] == {"libraries": 1, "assets": 0}
    assert [u["email"] for u in list_users(db)] == ["me@example.org"]
    assert [lib["owner_email"] for lib in list_libraries(db)] == ["me@example.org"]
    assert default_user(db)["id"] == me["id"]  # later indexing goes to the admin, no new placeholder

    second = create_account(db, "you@example.org")
    assert (second["is_admin"], second["first"], second["adopted"]) == (False, False, None)
    with pytest.raises(Conflict, match="already exists"):
        create_account(db, "you@example.org")


def test_sign_up_is_open_only_while_no_account_has_a_password(db, tmp_path: Path) -> None:  # noqa: ANN001
    _placeholder_with_a_library(db, tmp_path)
    assert needs_sign_up(db)
    # an account without a password (made with the CLI) is claimed by sign-up, not duplicated
    create_account(db, "me@example.org")
    assert needs_sign_up(db)
    me = create_account(db, "me@example.org", password_hash="scrypt$x", sign_up=True)
    assert me["is_admin"] and me["adopted"] is None and len(list_users(db)) == 1
    assert not needs_sign_up(db)
    with pytest.raises(SignUpClosed, match="sign-up is closed"):
        create_account(db, "late@example.org", password_hash="scrypt$y", sign_up=True)


def test_two_first_accounts_at_once_adopt_once(db, tmp_path: Path) -> None:  # noqa: ANN001
    _placeholder_with_a_library(db, tmp_path)
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda e: create_account(db, e), ["a@example.org", "b@example.org"]))
    assert sorted(r["first"] for r in rows) == [False, True]
    winner = next(r for r in rows if r["first"])
    assert winner["adopted"] == {"libraries": 1, "assets": 0}
    assert {u["email"]: u["is_admin"] for u in list_users(db)} == {
        winner["email"]: True,
        next(r for r in rows if not r["first"])["email"]: False,
    }
