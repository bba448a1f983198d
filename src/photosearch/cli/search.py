"""`photosearch search`: a thin shell over photosearch.search."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from photosearch.cli._common import console, emit_json, output, state
from photosearch.cli.errors import UsageError, validation_message

SHORT_ID = 8  # hex digits of an asset id shown in tables; --like takes any unique prefix

DATES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]


class Order(StrEnum):
    relevance = "relevance"
    date = "date"
    date_asc = "date_asc"


class Metric(StrEnum):
    cosine = "cosine"
    l2 = "l2"
    ip = "ip"


class StrategyOpt(StrEnum):
    auto = "auto"
    exact = "exact"
    quantized = "quantized"
    approximate = "approximate"


class AssetType(StrEnum):
    image = "image"
    video = "video"


def _floats(value: str | None, n: int, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != n:
        raise UsageError(f"{name} needs {n} comma-separated numbers, got {value!r}")
    return parts


# SearchQuery's fields as the user types them, for validation messages.
SEARCH_FLAGS = {
    "text": "TEXT",
    "negative_text": "--not",
    "add_text": "--add",
    "subtract_text": "--subtract",
    "image_path": "--image",
    "like_asset_id": "--like",
    "k": "-k/--size",
    "page": "--page",
    "file_name_contains": "--name",
    "ocr_text": "--text",
    "lens": "--lens",
    "rating_min": "--rating-min",
    "with_deleted": "--with-deleted",
    "trashed_only": "--trashed",
    "bbox": "--bbox",
    "near": "--near",
    "page * k": "--page × -k",
}


def _in_flags(message: str) -> str:
    """A query-level message with field names replaced by the flags that set them."""
    names = [kv for kv in SEARCH_FLAGS.items() if "_" in kv[0] or " " in kv[0] or kv[0] in ("bbox", "near")]
    for field, flag in sorted(names, key=lambda kv: -len(kv[0])):
        message = re.sub(rf"\b{re.escape(field)}\b", flag, message)
    if message.startswith("give exactly one of"):
        return "give what to look for: TEXT, --image FILE or --like ID (one of them), or --text"
    return message


def _when(d: datetime | None, flag: str) -> datetime | None:
    """Naive CLI dates are local time."""
    try:
        return d.astimezone() if d is not None else None
    except (OverflowError, ValueError) as exc:
        raise UsageError(f"{flag} {d.date().isoformat()} is too far in the past or future") from exc


def _like_hex(like: str | None) -> str | None:
    """`--like` as lower-case hex without dashes: a full id or a prefix of one (4+ digits)."""
    if not like:
        return None
    hexes = like.strip().lower().replace("-", "")
    if not re.fullmatch(r"[0-9a-f]{4,32}", hexes):
        raise UsageError(f"--like needs an asset id or the first 4+ hex digits of one (e.g. 1a2b3c4d), got {like!r}")
    return hexes


def _like_id(st, hexes: str | None, user: dict) -> UUID | None:
    """The one photo of the caller's whose id starts with `hexes` (as the table shows ids)."""
    if not hexes:
        return None
    from photosearch.db.asset_access import assets_by_id_prefix

    found = assets_by_id_prefix(st.db(), hexes, user["id"], limit=4)
    if not found:
        raise UsageError(f"--like: no photo of yours has an id starting with {hexes}")
    if len(found) > 1:
        shown = ", ".join(str(f)[:13] + "…" for f in found[:3])
        raise UsageError(f"--like: {hexes} matches several photos ({shown}); give more digits")
    return found[0]


def _libraries(st, names: list[str] | None, owner_id: UUID | None) -> list[UUID] | None:
    if not names:
        return None
    from photosearch.db.libraries import get_library

    return [get_library(st.db(), n, owner_id)["id"] for n in names]


def _loader(st):
    cache: dict[str, Any] = {}

    def load():
        if "m" not in cache:
            from photosearch.models import load_clip

            cache["m"] = load_clip(st.settings)
        return cache["m"]

    return load


def _hit_table(page, title: str) -> Table:
    table = Table(title=title)
    cols = (("#", {"justify": "right"}), ("id", {}), ("score", {"justify": "right"}), ("taken", {}), ("file", {}))
    for col, kw in cols:
        table.add_column(col, **kw)
    table.add_column("camera / place", overflow="fold")
    start = (page.page - 1) * page.k
    for i, h in enumerate(page.items, start=start + 1):
        path = Text(h.original_path)
        if h.original_path.startswith("/"):
            path.stylize(f"link {Path(h.original_path).as_uri()}")  # clickable in terminals with OSC 8
        where = ", ".join(x for x in (h.model, h.city, h.country) if x)
        table.add_row(
            str(i),
            str(h.id).replace("-", "")[:SHORT_ID],
            f"{h.score:.4f}",
            h.local_date_time.strftime("%Y-%m-%d %H:%M"),
            path,
            where,
        )
    return table


def search_cmd(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Find photos like this image file.")] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="More like this photo: its id, or the short id the table shows.")
    ] = None,
    negative: Annotated[str | None, typer.Option("--not", help="Steer away from this text.")] = None,
    add: Annotated[
        list[str] | None, typer.Option("--add", help='Add words to any query (--image a.jpg --add "at night").')
    ] = None,
    subtract: Annotated[list[str] | None, typer.Option("--subtract", help="Take words away from any query.")] = None,
    k: Annotated[int, typer.Option("-k", "--size", min=1, max=1000, help="Results per page.")] = 20,
    page: Annotated[int, typer.Option("--page", min=1, help="Page number.")] = 1,
    owner: Annotated[str | None, typer.Option("--owner", help="Search as this user (default: first admin).")] = None,
    owners: Annotated[list[str] | None, typer.Option("--from", help="Only photos of this user; repeatable.")] = None,
    exclude_owner: Annotated[list[str] | None, typer.Option("--exclude-owner", help="Skip this user's photos.")] = None,
    library: Annotated[list[str] | None, typer.Option("--library", help="Library name or id; repeatable.")] = None,
    asset_type: Annotated[AssetType | None, typer.Option("--type", help="image or video.")] = None,
    taken_after: Annotated[datetime | None, typer.Option(formats=DATES, help="Taken at/after.")] = None,
    taken_before: Annotated[datetime | None, typer.Option(formats=DATES, help="Taken before.")] = None,
    created_after: Annotated[datetime | None, typer.Option(formats=DATES, help="Added at/after.")] = None,
    created_before: Annotated[datetime | None, typer.Option(formats=DATES, help="Added before.")] = None,
    updated_after: Annotated[datetime | None, typer.Option(formats=DATES)] = None,
    updated_before: Annotated[datetime | None, typer.Option(formats=DATES)] = None,
    favorite: Annotated[bool | None, typer.Option("--favorite/--not-favorite")] = None,
    archived: Annotated[bool | None, typer.Option("--archived/--not-archived")] = None,
    visibility: Annotated[list[str] | None, typer.Option(help="timeline, hidden, locked; repeatable.")] = None,
    with_deleted: Annotated[bool, typer.Option("--with-deleted", help="Include trashed photos.")] = False,
    trashed: Annotated[bool, typer.Option("--trashed", help="Only trashed photos.")] = False,
    offline: Annotated[bool | None, typer.Option("--offline/--online")] = None,
    make: Annotated[str | None, typer.Option(help="Camera make (any case).")] = None,
    model: Annotated[str | None, typer.Option(help="Camera model (any case).")] = None,
    lens: Annotated[str | None, typer.Option(help="Lens model (any case).")] = None,
    city: Annotated[str | None, typer.Option()] = None,
    state_: Annotated[str | None, typer.Option("--state")] = None,
    country: Annotated[str | None, typer.Option()] = None,
    rating_min: Annotated[int | None, typer.Option(min=-1, max=5)] = None,
    rating: Annotated[int | None, typer.Option(min=-1, max=5)] = None,
    name: Annotated[str | None, typer.Option("--name", help="File name contains.")] = None,
    ocr_text: Annotated[
        str | None, typer.Option("--text", help="Text seen in the photo (needs `index --ocr`); alone, ranks by it.")
    ] = None,
    gps: Annotated[bool | None, typer.Option("--gps/--no-gps", help="Has GPS position.")] = None,
    bbox: Annotated[str | None, typer.Option(help="south,west,north,east")] = None,
    near: Annotated[str | None, typer.Option(help="lat,lon,radius_km")] = None,
    order: Annotated[
        Order,
        typer.Option(help="relevance; date or date_asc: newest or oldest first (among all relevant with --relevant)."),
    ] = Order.relevance,
    max_distance: Annotated[float | None, typer.Option(min=0, help="Drop results farther than this.")] = None,
    understand: Annotated[
        bool,
        typer.Option(
            "--understand/--literal",
            help='Read TEXT as one search box (default): places and cameras it names filter ("dog in Kyoto" ='
            " --city Kyoto), its words are also found as text in photos, file names, descriptions and folders,"
            ' "phrase" must appear, -word / NOT word rules out, a OR b. --literal: CLIP only.',
        ),
    ] = True,
    relevant: Annotated[
        bool,
        typer.Option("--relevant", help="Only the photos that stand out for this query (all of them, any --order)."),
    ] = False,
    distance: Annotated[Metric, typer.Option(help="cosine, l2 or ip.")] = Metric.cosine,
    strategy: Annotated[StrategyOpt, typer.Option(help="Planner override (debugging).")] = StrategyOpt.auto,
    ef_search: Annotated[int | None, typer.Option(min=1, max=1000, help="HNSW beam override.")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show the plan: strategy, reason, timings.")] = False,
) -> None:
    """Search photos by text, by an image, or like an existing photo, with metadata filters."""
    from photosearch.cli.accounts import resolve_owner
    from photosearch.search import SearchQuery, SearchService

    st = state(ctx)
    if ocr_text is not None and not ocr_text.strip():
        raise UsageError("--text needs the text to look for")
    like_hex = _like_hex(like)
    try:  # bad input is refused here, before the database starts; ids and names are resolved below
        query = SearchQuery(
            text=text,
            negative_text=negative,
            add_text=add or None,
            subtract_text=subtract or None,
            image_path=image.expanduser().resolve() if image else None,
            like_asset_id=UUID(int=0) if like_hex else None,
            k=k,
            page=page,
            owners=owners or None,
            exclude_owners=exclude_owner or None,
            asset_type=asset_type.value.upper() if asset_type else None,
            taken_after=_when(taken_after, "--taken-after"),
            taken_before=_when(taken_before, "--taken-before"),
            created_after=_when(created_after, "--created-after"),
            created_before=_when(created_before, "--created-before"),
            updated_after=_when(updated_after, "--updated-after"),
            updated_before=_when(updated_before, "--updated-before"),
            is_favorite=favorite,
            is_archived=archived,
            visibility=visibility or ["timeline"],
            with_deleted=with_deleted,
            trashed_only=trashed,
            is_offline=offline,
            make=make,
            model=model,
            lens=lens,
            city=city,
            state=state_,
            country=country,
            rating_min=rating_min,
            rating=rating,
            file_name_contains=name,
            ocr_text=ocr_text,
            has_gps=gps,
            bbox=_floats(bbox, 4, "--bbox"),
            near=_floats(near, 3, "--near"),
            order=order.value,
            max_distance=max_distance,
            relevant_only=relevant,
            understand=understand,
            distance=distance.value,
            strategy=strategy.value,
            ef_search=ef_search,
        )
    except ValidationError as exc:
        raise UsageError(_in_flags(validation_message(exc, SEARCH_FLAGS))) from exc
    user = resolve_owner(st, owner)
    query = query.model_copy(
        update={
            "like_asset_id": _like_id(st, like_hex, user),
            "library_ids": _libraries(st, library, None if user.get("is_admin") else user["id"]),
        }
    )
    from photosearch.db.replicas import open_replicas

    replicas = open_replicas(st.db(), st.settings.database_replica_urls)
    try:
        result = SearchService(st.db(), _loader(st), replicas=replicas).search(query, user)
    finally:
        if replicas is not None:
            replicas.close()
    from photosearch.models.registry import TEST_MODEL_NOTE, is_test_model

    test_model = is_test_model(st.settings)
    if st.json:
        emit_json({**result.model_dump(mode="json"), **({"test_model": True} if test_model else {})})
        return
    if test_model:
        console.print(f"[yellow]note:[/yellow] {TEST_MODEL_NOTE.format(name=st.settings.model_name)}")
    if result.items:
        console.print(_hit_table(result, f"page {result.page}"))
    else:
        console.print("[dim]no matching photos[/dim]")
    if result.next_page:
        console.print(f"[dim]more: --page {result.next_page}[/dim]")
    understood = getattr(result, "understood", None)
    if understood:
        from photosearch.search.hybrid import describe

        console.print(f"[dim]understood: {describe(understood)}[/dim]")
    if explain:
        plan = result.plan.model_dump()
        plan["timings_ms"] = ", ".join(f"{k} {v:.1f}" for k, v in plan["timings_ms"].items())
        output(st, {k: v for k, v in plan.items() if v is not None}, title="plan")
