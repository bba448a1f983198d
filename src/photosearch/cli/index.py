"""`photosearch index PATH...`, `photosearch libraries scan NAME` and `photosearch errors`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from photosearch.cli._common import CliError, console, err_console, output, state
from photosearch.cli.accounts import libraries_app, resolve_owner

DEFAULT_LIBRARY = "default"


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def _load_model(st):
    """The model, loaded before anything is written: an index that cannot embed must leave no library or
    placeholder user behind."""
    from photosearch.models import load_clip

    return load_clip(st.settings)


def _cluster_address(value: str | None) -> str | None:
    if value is not None:
        from photosearch.ingest.cluster import parse_address

        try:
            parse_address(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    return value


ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        metavar="ADDRESS|auto",
        callback=_cluster_address,
        help="Decode and embed on a Ray cluster (host:port of `ray start --head`, or `auto` for a local Ray "
        "runtime); needs `pip install 'photosearch[cluster]'` and the photos at the same path on every node.",
    ),
]


def _run_all(
    st, runs: list[tuple[dict, list[str] | None]], model, cluster: str | None, ocr: bool | None = None
) -> list[dict]:
    from photosearch.ingest import IngestError
    from photosearch.ingest.cluster import ClusterError, disconnect

    try:
        return [_run_with_progress(st, library, roots, model, cluster, ocr) for library, roots in runs]
    except (IngestError, ClusterError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if cluster is not None:
            disconnect()


def _run_with_progress(
    st, library: dict, roots: list[str] | None, model, cluster: str | None = None, ocr: bool | None = None
) -> dict:
    from photosearch.ingest import IngestProgress, index_library

    show = not st.json and sys.stderr.isatty()
    if not show:
        summary = index_library(st.db(), st.settings, library, roots=roots, model=model, cluster=cluster, ocr=ocr)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=False) as bar:
            task = bar.add_task(f"scanning {library['name']}", total=None, rate="", errors=0)

            def on_progress(p: IngestProgress) -> None:
                if p.phase == "scan":
                    bar.update(task, completed=p.scanned, description=f"scanning {library['name']}")
                elif p.phase == "index":
                    speed = bar.tasks[task].speed
                    bar.update(
                        task,
                        total=p.total,
                        completed=p.done,
                        errors=p.errors,
                        description=f"indexing {library['name']}",
                        rate=f"{speed:.1f} files/s" if speed else "",
                    )
                elif p.phase == "ocr":
                    bar.update(
                        task,
                        total=p.total,
                        completed=p.done,
                        errors=p.errors,
                        description=f"reading text in {library['name']}",
                        rate="",
                    )
                else:
                    bar.update(task, description="building the vector index")

            summary = index_library(
                st.db(), st.settings, library, roots=roots, progress=on_progress, model=model, cluster=cluster, ocr=ocr
            )
    return summary.to_dict()


def _print_summary(st, summaries: list[dict]) -> None:
    if st.json:
        output(st, summaries[0] if len(summaries) == 1 else summaries)
        return
    keys = ["seen", "new", "updated", "moved", "unchanged", "offline", "back_online", "trashed", "errors"]
    for s in summaries:
        parts = [f"{k.replace('_', ' ')} {s[k]}" for k in keys if s[k] or k in ("seen", "new", "errors")]
        console.print(f"[bold]{s['library']}[/bold]: " + ", ".join(parts) + f" in {s['elapsed']:.1f}s")
        if s["known_errors"]:
            console.print(f"  {s['known_errors']} files that failed before are unchanged and were skipped")
        ocr = s.get("ocr")
        if ocr:
            console.print(
                f"  text read in {ocr['read']} photos ({ocr['with_text']} with text, {ocr['errors']} errors)"
                f" in {ocr['seconds']:.1f}s"
            )
        if s["errors"] or s["known_errors"] or (ocr and ocr["errors"]):
            console.print("  see [bold]photosearch errors[/bold] for the reasons")


def index_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders (or files' folders) to index.")],
    library: Annotated[
        str | None, typer.Option("--library", "-l", help="Library to index into (created if missing).")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Owner (default: the first admin).")] = None,
    cluster: ClusterOption = None,
    ocr: Annotated[
        bool | None,
        typer.Option("--ocr/--no-ocr", help="Read text in the photos afterwards (default: the `ocr` setting)."),
    ] = None,
) -> None:
    """Index folders of photos (new and changed files; moved keep their id; missing go offline).

    Re-running on an unchanged folder does no decoding at all; with --ocr, photos whose text was read are
    not read again.
    """
    from photosearch.db.accounts import NotFound
    from photosearch.db.libraries import create_library, get_library, list_libraries, update_library_paths

    st = state(ctx)
    resolved = []
    for p in paths:
        p = p.expanduser()
        if not p.is_dir():
            raise CliError(f"{p} is not a directory")
        resolved.append(os.path.realpath(p))
    model = _load_model(st)
    db = st.db()
    user = resolve_owner(st, owner)
    groups: dict[str, tuple[dict, list[str]]] = {}
    libs = list_libraries(db, user["id"])
    for path in resolved:
        if library is None:
            lib = next((lb for lb in libs if any(_inside(path, r) for r in lb["import_paths"])), None)
        else:
            lib = None
        if lib is None:
            name = library or DEFAULT_LIBRARY
            try:
                lib = get_library(db, name, user["id"])
            except NotFound:
                lib = create_library(db, user["id"], name, [path])
                libs.append(lib)
            if not any(_inside(path, r) for r in lib["import_paths"]):
                lib = update_library_paths(db, lib["id"], [*lib["import_paths"], path])
        groups.setdefault(str(lib["id"]), (lib, []))[1].append(path)
    _print_summary(st, _run_all(st, list(groups.values()), model, cluster, ocr))


@libraries_app.command("scan")
def libraries_scan(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Library name or id.")],
    owner: Annotated[str | None, typer.Option("--owner", help="Owner of the library.")] = None,
    cluster: ClusterOption = None,
) -> None:
    """Re-scan all folders of a library (new, changed, moved and deleted files)."""
    from photosearch.db.accounts import get_user
    from photosearch.db.libraries import get_library

    st = state(ctx)
    db = st.db()
    lib = get_library(db, name, get_user(db, owner)["id"] if owner else None)
    _print_summary(st, _run_all(st, [(lib, None)], _load_model(st), cluster))


def errors_cmd(
    ctx: typer.Context,
    library: Annotated[str | None, typer.Option("--library", "-l", help="Only this library.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
) -> None:
    """List files that could not be indexed, with the reason."""
    from photosearch.db.assets import list_ingest_errors
    from photosearch.db.libraries import get_library
    from photosearch.ingest.scan import display_path

    st = state(ctx)
    db = st.db()
    lib_id = get_library(db, library)["id"] if library else None
    rows = [
        {**r, "path": display_path(r["path"]), "detail": display_path(r["detail"] or "")}
        for r in list_ingest_errors(db, library_id=lib_id, limit=limit)
    ]
    output(st, rows, columns=["library", "path", "reason", "detail", "occurred_at"], title="ingest errors")
