"""`photosearch duplicates`: groups of near-identical photos, and resolving them by trashing all but one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from photosearch.cli._common import console, emit_json, output, state
from photosearch.cli.errors import UsageError


def duplicates_cmd(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option("--owner", help="Act as this user (default: first admin).")] = None,
    all_owners: Annotated[bool, typer.Option("--all-users", help="Every user's photos (admin).")] = False,
    max_distance: Annotated[float, typer.Option(min=0, max=2, help="Cosine distance threshold.")] = 0.01,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Resolve the group of this photo id: keep it, trash the others. Repeatable."),
    ] = None,
    keep_suggested: Annotated[
        bool, typer.Option("--keep-suggested", help="Resolve every group: keep its suggested photo, trash the rest.")
    ] = False,
) -> None:
    """Groups of near-identical photos (same owner, every two within the CLIP cosine distance threshold), each
    with the suggested photo to keep (most pixels, largest file, most metadata, oldest). Trashed photos can be
    restored; files are never touched."""
    from photosearch.cli.accounts import resolve_owner
    from photosearch.search.duplicates import find_duplicates, resolve_group

    st = state(ctx)
    user = resolve_owner(st, owner)
    if (keep or keep_suggested) and all_owners:
        raise UsageError("--keep and --keep-suggested act on your own photos: leave out --all-users")
    groups = find_duplicates(st.db(), user, max_distance=max_distance, all_owners=all_owners)
    if keep or keep_suggested:
        wanted = {_uuid_flag(k, "--keep") for k in keep or []}
        trashed = 0
        for g in groups:
            chosen = wanted & set(g.asset_ids)
            if len(chosen) > 1:
                raise UsageError(f"--keep names {len(chosen)} photos of one group; keep one")
            winner = next(iter(chosen), g.keep if keep_suggested else None)
            if winner is not None:
                trashed += resolve_group(st.db(), user, winner, [i for i in g.asset_ids if i != winner])
            wanted -= chosen
        if wanted:
            raise UsageError(f"--keep: {', '.join(map(str, sorted(wanted)))} is in no group of duplicates")
        output(st, {"trashed": trashed}, title="duplicates resolved")
        return
    if st.json:
        emit_json(
            {
                "groups": [
                    {"owner_id": g.owner_id, "max_distance": g.max_distance, "keep": g.keep, "assets": g.assets}
                    for g in groups
                ]
            }
        )
        return
    if not groups:
        console.print("[dim]no duplicates[/dim]")
        return
    table = Table(title=f"{len(groups)} groups of near-identical photos (* = suggested to keep)")
    table.add_column("group", justify="right")
    table.add_column("distance", justify="right")
    table.add_column("id")
    table.add_column("file")
    for n, g in enumerate(groups, start=1):
        for j, a in enumerate(g.assets):
            path = Text(a["original_path"])
            if a["original_path"].startswith("/"):
                path.stylize(f"link {Path(a['original_path']).as_uri()}")
            mark = "* " if a["id"] == g.keep else "  "
            table.add_row(
                str(n) if j == 0 else "", f"{g.max_distance:.4f}" if j == 0 else "", mark + str(a["id"]), path
            )
    console.print(table)
    console.print("[dim]resolve: --keep ID (one group) or --keep-suggested (all)[/dim]")


def _uuid_flag(value: str, flag: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as exc:
        raise UsageError(f"{flag} needs a photo id (a UUID), got {value!r}") from exc
