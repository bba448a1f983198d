"""Filter levels for search_bench.py: realistic filters whose selectivities span 100 % → 0.01 %,
picked from the loaded data (date windows from quantiles, the place/camera closest to a target share)."""

from __future__ import annotations

import psycopg


def _window(conn: psycopg.Connection, share: float, start: float = 0.4) -> dict:
    lo, hi = conn.execute(
        "SELECT percentile_disc(%s) WITHIN GROUP (ORDER BY local_date_time),"
        " percentile_disc(%s) WITHIN GROUP (ORDER BY local_date_time) FROM smart_search",
        (start, start + share),
    ).fetchone()
    return {"taken_after": lo, "taken_before": hi}


def _closest(conn: psycopg.Connection, share: float) -> tuple[str, str, float]:
    """The EXIF value (city or camera model) whose share of assets is closest to `share`."""
    best = ("city", "", 9.0)
    total = conn.execute("SELECT count(*) FROM exif").fetchone()[0]
    for col in ("city", "model"):
        rows = conn.execute(
            f"SELECT {col}, count(*) FROM exif WHERE {col} IS NOT NULL GROUP BY 1"  # noqa: S608 - fixed names
        ).fetchall()
        for value, n in rows:
            s = n / total
            if abs(s / share - 1) < abs(best[2] / share - 1):
                best = (col, value, s)
    return best


def levels_for(conn: psycopg.Connection, rows: int) -> list[dict]:
    c10, v10, _ = _closest(conn, 0.10)
    c1, v1, _ = _closest(conn, 0.01)
    levels = [
        {"label": "none (100%)", "filters": {"with_deleted": True, "visibility": None}},
        {"label": "defaults (~99%)", "filters": {}},
        {"label": "taken ~10%", "filters": _window(conn, 0.10)},
        {"label": f"{c10}={v10}", "filters": {c10: v10}},
        {"label": "seed: owner != Allen, k=64", "filters": {"exclude_owners": ["Allen"]}, "k": 64, "ef": 64},
        {"label": "owner != Allen (~2%)", "filters": {"exclude_owners": ["Allen"]}},
        {"label": "owner Beth (~1%)", "filters": {"owners": ["Beth"]}},
        {"label": f"{c1}={v1}", "filters": {c1: v1}},
        {"label": "favorite, taken ~10%", "filters": {"is_favorite": True, **_window(conn, 0.10, 0.2)}},
        {"label": "owner Eve (~0.1%)", "filters": {"owners": ["Eve"]}},
        {"label": "taken ~0.1%", "filters": _window(conn, 0.001)},
        {"label": "taken ~0.01%", "filters": _window(conn, 0.0001)},
    ]
    return levels
