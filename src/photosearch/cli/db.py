"""`photosearch db ...`: the database server and schema."""

from __future__ import annotations

from pathlib import Path

import typer

from photosearch.cli._common import CliError, console, human_bytes, output, state

db_app = typer.Typer(
    help="Database server: status, start/stop of the embedded server, migrations, vector index type.",
    no_args_is_help=True,
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
        "pgdata": _where(db.server.pgdata) if db.server.pgdata else None,
        "schema_version": info["schema_version"],
        "embedding_model": emb.get("model"),
        "embedding_dim": emb.get("dim"),
        "vector_index_type": emb.get("index_type", "vector"),
        "users": info["users"],
        "libraries": info["libraries"],
        "assets": info["assets"],
        "embeddings": info["embeddings"],
        "ingest_errors": info["ingest_errors"],
        "database_size_mb": round(info["database_bytes"] / 2**20, 1),
    }
    if not st.json:  # people read sizes with their unit; scripts keep the number
        info["database_size"] = human_bytes(info.pop("database_size_mb") * 2**20)
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
    from photosearch.db.embedding import adopt_index_type_on_create

    adopt_index_type_on_create(server.dsn, [m.version for m in applied], st.settings.vector_index_type)
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
    """Refresh planner statistics, (re)train the search lists that filtered searches probe, and fill place
    names and time zones from GPS for photos indexed without them.

    Indexing does this by itself when a run doubles (or halves) the library; run it after bulk changes made
    some other way. Takes about 2 minutes per million photos.
    """
    from photosearch.db.assets import refresh_planner_statistics
    from photosearch.ingest.places import backfill
    from photosearch.search.lists import train_lists

    st = state(ctx)
    db = st.db()
    filled = backfill(db)  # first: place filters and the trained lists' copies then see the names
    result = train_lists(db, lists=lists, force=force)
    if result.skipped is not None:  # (training refreshes them itself)
        with db.connection() as conn:
            refresh_planner_statistics(conn)
    row = {
        "lists": result.lists,
        "embeddings": result.rows,
        "sample": result.sample,
        "seconds": round(result.seconds, 1),
        "trained": result.skipped is None,
        "note": result.skipped or "trained",
        "places_filled": filled.places,
        "zones_filled": filled.zones,
    }
    output(st, row, title="search lists")


@db_app.command("shell-url")
def db_shell_url(ctx: typer.Context) -> None:
    """Print a DSN for psql (starts the embedded server if needed)."""
    from photosearch.db.server import resolve_server

    st = state(ctx)
    dsn = resolve_server(st.settings).dsn
    output(st, {"dsn": dsn}) if st.json else typer.echo(dsn)


@db_app.command("vector-index")
def db_vector_index(
    ctx: typer.Context,
    index_type: str | None = typer.Argument(
        None, help="vector (full precision) or halfvec (half the memory); omit to show the current type"
    ),
) -> None:
    """Show or change the HNSW index type of this installation (rebuilds the index: minutes at 1M photos).

    halfvec indexes `embedding::halfvec(dim)`: half the index memory for a small recall cost (README
    "Search"); stored embeddings stay full precision, so exact search and the final ranking are unchanged.
    The setting PHOTOSEARCH_VECTOR_INDEX_TYPE only chooses the type of a new database.
    """
    from photosearch.db.embedding import INDEX_TYPES, change_vector_index_type, vector_index_status

    st = state(ctx)
    db = st.db()
    status = vector_index_status(db)
    if index_type is None:
        output(st, {**status, "setting": st.settings.vector_index_type}, title="vector index")
        return
    if index_type not in INDEX_TYPES:
        raise CliError(f"unknown index type {index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
    if st.json or status["built_as"] in (None, index_type):
        result = change_vector_index_type(db, index_type)
    else:
        note = f"building the {index_type} HNSW index over {status['embeddings']:,} embeddings"
        with console.status(note + " (searches keep using the old index until it is done)…") as progress:
            result = change_vector_index_type(
                db, index_type, on_built=lambda: progress.update("built; swapping it in for the old index…")
            )
    result["embeddings"] = status["embeddings"]
    if st.json:
        output(st, result)
    elif result["rebuilt"]:
        console.print(f"vector index is now {index_type}: rebuilt in {result['seconds']} s")
    elif result["previous_index"] is None:
        console.print(f"vector index type set to {index_type}: the index is built as {index_type} when created")
    else:
        console.print(f"vector index is already {index_type}")


def _where(pgdata: Path) -> str:
    """pgdata, and where it really is when it is a symlink (a root data dir's cluster in /var/lib/photosearch)."""
    return f"{pgdata} -> {pgdata.resolve()}" if pgdata.is_symlink() else str(pgdata)


replica_app = typer.Typer(help="A local streaming replica of the embedded server.", no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


def _embedded_dsn(st) -> str:
    from photosearch.db.server import resolve_server

    if st.settings.database_url:
        raise CliError(
            "db replica works on the embedded server; for an external PostgreSQL use its own replication "
            "(pg_basebackup -R) and list the replicas in database_replica_urls"
        )
    return resolve_server(st.settings).dsn


@replica_app.command("create")
def db_replica_create(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A new or empty folder for the replica's data (and its socket)."),
) -> None:
    """Copy the embedded server into DIR as a streaming read replica (pg_basebackup -R) and start it.

    Then list its DSN in `database_replica_urls` (env PHOTOSEARCH_DATABASE_REPLICA_URLS='["DSN"]'): searches
    and the timeline read from it, writes go to the primary.
    """
    from photosearch.db.replica import create_replica

    st = state(ctx)
    dsn = create_replica(_embedded_dsn(st), directory)
    if st.json:
        output(st, {"directory": str(directory.resolve()), "dsn": dsn})
        return
    console.print(f"replica running in {directory.resolve()}")
    console.print(f"use it for searches: PHOTOSEARCH_DATABASE_REPLICA_URLS='[\"{dsn}\"]'", highlight=False)


@replica_app.command("start")
def db_replica_start(ctx: typer.Context, directory: Path = typer.Argument(..., help="The replica's folder.")) -> None:
    """Start a replica made by `db replica create` (after a reboot, say)."""
    from photosearch.db.replica import start_replica

    start_replica(directory)
    console.print(f"replica in {directory.resolve()} is running")


@replica_app.command("stop")
def db_replica_stop(ctx: typer.Context, directory: Path = typer.Argument(..., help="The replica's folder.")) -> None:
    """Stop a replica made by `db replica create`."""
    from photosearch.db.replica import stop_replica

    was = stop_replica(directory)
    console.print("replica stopped" if was else "replica was not running")
