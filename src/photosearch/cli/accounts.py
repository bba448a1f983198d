"""`photosearch users ...` and `photosearch libraries ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from photosearch.cli._common import CliError, console, output, pick, state
from photosearch.cli.errors import UsageError

users_app = typer.Typer(help="Users and their API keys.", no_args_is_help=True)
libraries_app = typer.Typer(help="Libraries: named sets of folders owned by a user.", no_args_is_help=True)
key_app = typer.Typer(help="API keys for the REST API.", no_args_is_help=True)
users_app.add_typer(key_app, name="key")


def read_new_password(from_stdin: bool) -> str:
    """A new password: one line of stdin (`--password-stdin`, for scripts) or an interactive prompt."""
    from photosearch.api.auth import MIN_NEW_PASSWORD

    if from_stdin:
        import sys

        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(pw) < MIN_NEW_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_NEW_PASSWORD} characters")
    return pw


def _n(count: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {noun if count == 1 else plural}"


def _adoption_note(st, row: dict) -> None:
    adopted = row.get("adopted")
    if row.get("first") and not st.json:
        console.print(f"{row['email']} is the first account, so it is an admin.")
    if adopted and not st.json:
        console.print(
            f"It now owns the {_n(adopted['assets'], 'photo')} in {_n(adopted['libraries'], 'library')} indexed"
            " before any account existed (they belonged to the placeholder admin@localhost, which is gone)."
        )


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    email: str,
    name: Annotated[str | None, typer.Option(help="Display name (default: the part before @).")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password: Annotated[bool, typer.Option("--password", help="Prompt for a password (for the web login).")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Create a user. The first account is an admin and takes over every photo indexed before it existed."""
    from photosearch.db.accounts import create_account

    st = state(ctx)
    if "@" not in email:
        raise CliError(f"{email!r} is not an email address")
    pw_hash = None
    if password or password_stdin:
        from photosearch.api.auth import hash_password

        pw_hash = hash_password(read_new_password(password_stdin))
    row = create_account(st.db(), email, name=name, is_admin=admin, password_hash=pw_hash)
    output(st, {**pick([row], "id", "name", "email", "is_admin")[0], "adopted": row["adopted"]}, title="user created")
    _adoption_note(st, row)


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User email, name or id.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a user's web-login password (prompts twice); their browser sessions end."""
    from photosearch.api.auth import hash_password
    from photosearch.db.accounts import get_user, set_password_hash

    st = state(ctx)
    db = st.db()
    row = get_user(db, user)
    set_password_hash(db, row["id"], hash_password(read_new_password(password_stdin)))
    output(st, {"password_set": row["email"]}) if st.json else console.print(f"password set for {row['email']}")


@users_app.command("set")
def users_set(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User email, name or id.")],
    admin: Annotated[
        bool | None, typer.Option("--admin/--no-admin", help="Grant or revoke administrator rights.")
    ] = None,
) -> None:
    """Change a user's rights (the last admin cannot lose them)."""
    from photosearch.db.accounts import set_admin

    st = state(ctx)
    if admin is None:
        raise UsageError("`photosearch users set` needs --admin or --no-admin")
    row = set_admin(st.db(), user, admin)
    output(st, pick([row], "id", "name", "email", "is_admin")[0], title="user updated")


@users_app.command("rm")
def users_rm(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User email, name or id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a user with their keys and libraries; their photos leave the index (files on disk stay).

    To keep the photos searchable, hand the libraries over first: `photosearch libraries give NAME EMAIL`."""
    from photosearch.db.accounts import delete_user, get_user, owned_counts

    st = state(ctx)
    db = st.db()
    row = get_user(db, user)
    if not yes and not st.json:
        n = owned_counts(db, row["id"])
        typer.confirm(
            f"remove {row['email']}? Their {_n(n['libraries'], 'library')} and {_n(n['assets'], 'photo')} leave"
            " the index"
            " (files on disk stay; `libraries give` hands libraries to someone else first)",
            abort=True,
        )
    gone = delete_user(db, row["id"])
    output(st, gone) if st.json else console.print(
        f"removed {gone['email']}: {_n(gone['libraries'], 'library')} and {_n(gone['assets'], 'photo')} left the index"
        " (files on disk untouched)"
    )


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List users (`can_log_in`: has a password for the web UI; set one with `users passwd`)."""
    from photosearch.db.accounts import list_users

    st = state(ctx)
    output(
        st,
        list_users(st.db()),
        columns=["id", "name", "email", "is_admin", "can_log_in", "assets", "created_at"],
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
    from photosearch.db.libraries import create_library

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
    from photosearch.db.accounts import get_user
    from photosearch.db.libraries import list_libraries

    st = state(ctx)
    db = st.db()
    owner_id = get_user(db, owner)["id"] if owner else None
    output(
        st,
        list_libraries(db, owner_id),
        columns=["id", "name", "owner_email", "import_paths", "exclusion_patterns", "assets", "refreshed_at"],
        title="libraries",
    )


@libraries_app.command("give")
def libraries_give(
    ctx: typer.Context,
    library: Annotated[str, typer.Argument(help="Library name or id.")],
    user: Annotated[str, typer.Argument(help="The new owner: email, name or id.")],
    owner: Annotated[str | None, typer.Option("--owner", help="Current owner, when names repeat.")] = None,
) -> None:
    """Hand a library and all its photos to another user."""
    from photosearch.db.accounts import get_user
    from photosearch.db.libraries import get_library, give_library

    st = state(ctx)
    db = st.db()
    lib = get_library(db, library, get_user(db, owner)["id"] if owner else None)
    to = get_user(db, user)
    row = give_library(db, lib["id"], to["id"])
    out = {"library": row["name"], "owner": to["email"], "assets": row["assets"]}
    msg = f"library {row['name']} ({row['assets']} photos) now belongs to {to['email']}"
    output(st, out) if st.json else console.print(msg)


@libraries_app.command("remove")
def libraries_remove(
    ctx: typer.Context,
    library: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a library and its assets from the index (files on disk are never touched)."""
    from photosearch.db.libraries import delete_library, get_library

    st = state(ctx)
    db = st.db()
    lib = get_library(db, library)
    if not yes and not st.json:
        typer.confirm(f"remove library {lib['name']!r} and its index entries?", abort=True)
    n = delete_library(db, lib["id"])
    output(st, {"removed": lib["name"], "assets": n}) if st.json else console.print(
        f"removed library {lib['name']} ({n} assets)"
    )
