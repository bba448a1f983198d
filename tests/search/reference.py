"""A numpy/python reference for every filter, evaluated on the synthetic library's own arrays."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from photosearch.search.query import SearchQuery
from photosearch.search.synthetic import CAMERAS, CITIES, SyntheticLibrary


def _col(values: list, idx: np.ndarray) -> np.ndarray:
    table = np.array([None, *values], dtype=object)
    return table[idx + 1]


def reference_mask(lib: SyntheticLibrary, q: SearchQuery, owner_names: list[str] | None = None) -> np.ndarray:
    """Rows matching q's filters. `owner_names` = owners in scope (None = everyone)."""
    n = len(lib)
    m = np.ones(n, dtype=bool)
    owner = np.array(lib.owner_names, dtype=object)[lib.owner]
    if owner_names is not None:
        m &= np.isin(owner, owner_names)
    taken = np.array([t.timestamp() for t in lib.taken])
    added = np.array([(t + timedelta(days=i % 30)).timestamp() for i, t in enumerate(lib.taken)])
    bounds = ((taken, q.taken_after, q.taken_before), (added, q.created_after, q.created_before))
    bounds += ((added, q.updated_after, q.updated_before),)  # the synthetic library is added and updated at once
    for arr, after, before in bounds:
        if after is not None:
            m &= arr >= after.timestamp()
        if before is not None:
            m &= arr < before.timestamp()
    if q.asset_type is not None:
        m &= lib.is_video == (q.asset_type == "VIDEO")
    for name, arr in (
        ("is_favorite", lib.is_favorite),
        ("is_archived", lib.is_archived),
        ("is_offline", lib.is_offline),
    ):
        value = getattr(q, name)
        if value is not None:
            m &= arr == value
    if q.trashed_only:
        m &= lib.deleted
    elif not q.with_deleted:
        m &= ~lib.deleted
    if q.visibility is not None:
        m &= "timeline" in q.visibility  # every synthetic asset is on the timeline
    if q.file_name_contains is not None:
        needle = q.file_name_contains.lower()
        m &= np.array([needle in f.lower() for f in lib.file_names])
    for name, values, col in (
        ("make", [c[0] for c in CAMERAS], lib.camera),
        ("model", [c[1] for c in CAMERAS], lib.camera),
        ("lens", [c[2] for c in CAMERAS], lib.camera),
        ("city", [c[0] for c in CITIES], lib.city),
        ("state", [c[1] for c in CITIES], lib.city),
        ("country", [c[2] for c in CITIES], lib.city),
    ):
        value = getattr(q, name)
        if value is not None:  # camera and place filters ignore case
            m &= np.array([v is not None and v.lower() == value.lower() for v in _col(values, col)], dtype=bool)
    rating = np.where(lib.rating < -1, -100, lib.rating)
    if q.rating_min is not None:
        m &= rating >= q.rating_min
    if q.rating is not None:
        m &= rating == q.rating
    gps = ~np.isnan(lib.latitude)
    if q.has_gps is not None:
        m &= gps == q.has_gps
    lat, lon = np.nan_to_num(lib.latitude, nan=1e9), np.nan_to_num(lib.longitude, nan=1e9)
    if q.bbox is not None:
        s, w, nn, e = q.bbox
        inside_lon = (lon >= w) & (lon <= e) if w <= e else (lon >= w) | (lon <= e)
        m &= gps & (lat >= s) & (lat <= nn) & inside_lon
    if q.near is not None:
        plat, plon, km = q.near
        p1, p2 = np.radians(plat), np.radians(np.where(gps, lat, 0))
        dphi, dl = p2 - p1, np.radians(np.where(gps, lon, 0) - plon)
        a = np.sin(dphi / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        m &= gps & (2 * 6371.0088 * np.arcsin(np.sqrt(a)) <= km)
    return m
