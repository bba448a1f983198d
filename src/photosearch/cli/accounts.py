"""`photosearch users ...` and `photosearch libraries ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from photosearch.cli._common import CliError, console, output, pick, state

users_app = typer.Typer(help="Users and their API keys.", no_args_is_help=True)
libraries_app = typer.Typer(help="Libraries: named sets of folders owned by a user.", no_args_is_help=True)
key_app = typer.Typer(help="API keys for the REST API.", no_args_is_help=True)
users_app.add_typer(key_app, name="key")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    email: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the part before @).")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password: Annotated[bool, typer.Option("--password", help="Prompt for a password (for the web login).")] = False,
) -> None:
    """Create a user."""
    from photosearch.db.accounts import create_user

    st = state(ctx)
    pw_hash = None
    if password:
        from photosearch.api.auth import hash_password

        pw_hash = hash_password(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    if "@" not in email:
        raise CliError(f"{email!r} is not an email address")
    row = create_user(st.db(), name or email.split("@")[0], email, is_admin=admin, password_hash=pw_hash)
    output(st, pick([row], "id", "name", "email", "is_admin")[0], title="user created")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List users."""
    from photosearch.db.accounts import list_users

    st = state(ctx)
    output(
        st,
        list_users(st.db()),
        columns=["id", "name", "email", "is_admin", "assets", "created_at"],
        title="users",
    )


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="User id, email or name.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
) -> None:
    """Create an API key; the secret is printed once and stored only as a hash."""
    from photosearch.db.accounts import create_api_key, get_user

    st = state(ctx)
    db = st.db()
    row, secret = create_api_key(db, get_user(db, user)["id"], name)
    if st.json:
        output(st, {**pick([row], "id", "name", "prefix")[0], "secret": secret})
    else:
        console.print(f"API key [bold]{row['name']}[/bold] ({row['id']}) created. It is shown only once:")
        typer.echo(secret)


@key_app.command("list")
def key_list(ctx: typer.Context, user: Annotated[str, typer.Option("--user", "-u")]) -> None:
    """List a user's API keys (never the secrets)."""
    from photosearch.db.accounts import get_user, list_api_keys

    st = state(ctx)
    db = st.db()
    output(st, list_api_keys(db, get_user(db, user)["id"]), title="API keys")


@key_app.command("revoke")
def key_revoke(ctx: typer.Context, key: str, user: Annotated[str, typer.Option("--user", "-u")]) -> None:
    """Revoke an API key by id or prefix."""
    from photosearch.db.accounts import get_user, revoke_api_key

    st = state(ctx)
    db = st.db()
    revoke_api_key(db, get_user(db, user)["id"], key)
    output(st, {"revoked": key}) if st.json else console.print(f"revoked {key}")


def resolve_owner(st, owner: str | None) -> dict:
    """The named user, or the default admin for single-user installs."""
    from photosearch.db.accounts import default_user, get_user

    return get_user(st.db(), owner) if owner else default_user(st.db())


@libraries_app.command("add")
def libraries_add(
    ctx: typer.Context,
    name: str,
    paths: Annotated[list[Path], typer.Argument(help="Folders to import.")],
    owner: Annotated[str | None, typer.Option("--owner", help="Owner (default: the first admin).")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob pattern to skip; repeatable.")] = None,
) -> None:
    """Create a library from folders."""
    from photosearch.db.accounts import create_library

    st = state(ctx)
    resolved = []
    for p in paths:
        if not p.is_dir():
            raise CliError(f"{p} is not a directory")
        resolved.append(str(p.expanduser().resolve()))
    row = create_library(st.db(), resolve_owner(st, owner)["id"], name, resolved, exclude or [])
    output(st, pick([row], "id", "name", "import_paths", "exclusion_patterns")[0], title="library created")


@libraries_app.command("list")
def libraries_list(ctx: typer.Context, owner: Annotated[str | None, typer.Option("--owner")] = None) -> None:
    """List libraries."""
    from photosearch.db.accounts import get_user, list_libraries

    st = state(ctx)
    db = st.db()
    owner_id = get_user(db, owner)["id"] if owner else None
    output(
        st,
        list_libraries(db, owner_id),
        columns=["id", "name", "owner_email", "import_paths", "exclusion_patterns", "assets", "refreshed_at"],
        title="libraries",
    )


@libraries_app.command("remove")
def libraries_remove(
    ctx: typer.Context,
    library: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a library and its assets from the index (files on disk are never touched)."""
    from photosearch.db.accounts import delete_library, get_library

    st = state(ctx)
    db = st.db()
    lib = get_library(db, library)
    if not yes and not st.json:
        typer.confirm(f"remove library {lib['name']!r} and its index entries?", abort=True)
    n = delete_library(db, lib["id"])
    output(st, {"removed": lib["name"], "assets": n}) if st.json else console.print(
        f"removed library {lib['name']} ({n} assets)"
    )
