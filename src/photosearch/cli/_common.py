"""Shared CLI plumbing: the per-invocation state, output in table or JSON form, clean errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from photosearch.config import Settings, get_settings

# Piped output is not wrapped at 80 columns: paths and ids must survive `| grep`.
console = Console(width=None if sys.stdout.isatty() else 240)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 240)


class CliError(Exception):
    """An error the user can act on: printed as one line, exit code 1."""


@dataclass
class State:
    json: bool = False
    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _db: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = get_settings(**self.overrides)
        return self._settings

    def db(self):  # -> photosearch.db.Database (import lazily: `--version` must stay instant)
        if self._db is None:
            from photosearch.db import open_database

            self._db = open_database(self.settings)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, UUID | Path):
        return str(o)
    if isinstance(o, bytes):
        return o.hex()
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(o)}")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")


def output(st: State, data: Any, *, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print rows as a Rich table (or a key/value table for a dict), or JSON with `--json`."""
    if st.json:
        emit_json(data)
        return
    if isinstance(data, dict):
        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for k, v in data.items():
            table.add_row(str(k), _cell(v))
        console.print(table)
        return
    rows: list[dict] = list(data)
    if not rows:
        console.print(f"[dim]no {title or 'rows'}[/dim]")
        return
    cols = list(columns or rows[0].keys())
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in cols))
    console.print(table)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    if isinstance(v, float):  # 10.8, 0.1235: up to four decimals, no trailing zeros
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def human_bytes(n: float) -> str:
    """`10.8 MB`: one decimal, binary units as `du -h` and the database report them."""
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


def pick(rows: Iterable[dict], *keys: str) -> list[dict]:
    return [{k: r.get(k) for k in keys} for r in rows]
