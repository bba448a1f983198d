"""`photosearch db ...`: the database server and schema."""

from __future__ import annotations

import typer

from photosearch.cli._common import console, output, state

db_app = typer.Typer(
    help="Database server: status, start/stop of the embedded server, migrations.", no_args_is_help=True
)


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Start the database if needed and show versions, data dir and counts."""
    from photosearch.db.accounts import embedding_info, status

    st = state(ctx)
    db = st.db()
    info = dict(status(db))
    emb = embedding_info(db)
    info = {
        "postgres": info["postgres"],
        "pgvector": info["pgvector"],
        "server": "embedded" if db.server.embedded else "external",
        "data_dir": str(st.settings.data_dir),
        "pgdata": str(db.server.pgdata) if db.server.pgdata else None,
        "schema_version": info["schema_version"],
        "embedding_model": emb.get("model"),
        "embedding_dim": emb.get("dim"),
        "users": info["users"],
        "libraries": info["libraries"],
        "assets": info["assets"],
        "embeddings": info["embeddings"],
        "ingest_errors": info["ingest_errors"],
        "database_size_mb": round(info["database_bytes"] / 2**20, 1),
    }
    output(st, info, title="photosearch database")


@db_app.command("stop")
def db_stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL server (it starts again on the next command)."""
    from photosearch.db.server import stop_embedded

    st = state(ctx)
    if st.settings.database_url:
        console.print("using an external database (PHOTOSEARCH_DATABASE_URL); nothing to stop")
        return
    was = stop_embedded(st.settings.pgdata_dir)
    output(st, {"stopped": was, "pgdata": str(st.settings.pgdata_dir)}) if st.json else console.print(
        "embedded server stopped" if was else "embedded server was not running"
    )


@db_app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Apply pending schema migrations (also done automatically on every connect)."""
    from photosearch.db.migrate import migrate
    from photosearch.db.pool import check_pgvector
    from photosearch.db.server import resolve_server

    st = state(ctx)
    server = resolve_server(st.settings)
    check_pgvector(server.dsn)
    applied = migrate(server.dsn)
    rows = [{"version": m.version, "name": m.name} for m in applied]
    if st.json:
        output(st, rows)
    elif rows:
        output(st, rows, title="applied migrations")
    else:
        console.print("schema is up to date")


@db_app.command("optimize")
def db_optimize(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Train the search lists even if the library barely changed."),
    lists: int | None = typer.Option(None, "--lists", min=1, max=4096, help="Number of lists (default ~sqrt(rows))."),
) -> None:
    """Refresh planner statistics and (re)train the search lists that filtered searches probe.

    Indexing does this by itself when a run doubles (or halves) the library; run it after bulk changes made
    some other way. Takes about 2 minutes per million photos.
    """
    from photosearch.search.lists import train_lists

    st = state(ctx)
    result = train_lists(st.db(), lists=lists, force=force)
    row = {
        "lists": result.lists,
        "embeddings": result.rows,
        "sample": result.sample,
        "seconds": round(result.seconds, 1),
        "trained": result.skipped is None,
        "note": result.skipped or "trained",
    }
    output(st, row, title="search lists")


@db_app.command("shell-url")
def db_shell_url(ctx: typer.Context) -> None:
    """Print a DSN for psql (starts the embedded server if needed)."""
    from photosearch.db.server import resolve_server

    st = state(ctx)
    dsn = resolve_server(st.settings).dsn
    output(st, {"dsn": dsn}) if st.json else typer.echo(dsn)
