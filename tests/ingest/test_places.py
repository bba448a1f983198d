"""Places and time zones from GPS: the shared test photos get their state and country and their zone's offset
(facts checked by hand: Omaha's suburbs are in Nebraska on Central time, daylight saving from 10 March 2019),
XMP place names win, old libraries are backfilled by `db optimize`, and the geocoder agrees with a brute-force
haversine search over the same GeoNames rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from photosearch.db.assets import get_asset_by_path
from photosearch.ingest import index_library
from photosearch.ingest.places import MAX_PLACE_KM, geocoder
from tests.ingest.conftest import copy_photos

PHOTOS = ["IMG_2682.heic", "thompson-springs.jpg", "datetimeoriginal-gps.jpg", "gps-datetime.jpg"]


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _index(db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path) -> tuple[dict, dict]:
    files = copy_photos(photos_dir, tmp_path / "lib", PHOTOS)
    lib = make_library(tmp_path / "lib")
    summary = index_library(db, settings, lib, model=tiny_model)
    assert summary.errors == 0 and summary.new == len(PHOTOS)
    return lib, {f.name: get_asset_by_path(db, lib["id"], str(f)) for f in files}


def test_gps_photos_get_place_and_zone(db, settings, tiny_model, make_library, photos_dir, tmp_path) -> None:
    _, a = _index(db, settings, tiny_model, make_library, photos_dir, tmp_path)
    heic = a["IMG_2682.heic"]
    assert (heic["country"], heic["state"]) == ("United States", "Nebraska")
    assert heic["time_zone"] == "America/Chicago"
    assert heic["file_created_at"] == utc(2019, 3, 21, 16, 4, 22, 348000)  # 11:04:22.348 CDT (UTC-5)
    assert heic["local_date_time"] == utc(2019, 3, 21, 11, 4, 22, 348000)  # the wall clock stays
    springs = a["thompson-springs.jpg"]  # its GPS says Mesa County, Colorado; its XMP names the place: that wins
    assert (springs["city"], springs["state"], springs["country"]) == ("Thompson Springs", "Utah", "United States")
    assert springs["time_zone"] == "America/Denver"
    assert springs["file_created_at"] == utc(2022, 1, 10, 22, 15, 44, 310000)  # 15:15:44.31 MST (UTC-7)
    plain = a["datetimeoriginal-gps.jpg"]
    assert plain["time_zone"] == "America/Denver" and plain["file_created_at"] == utc(2025, 12, 1, 18, 30)
    zoned = a["gps-datetime.jpg"]  # its date carries an offset: that one stays
    assert zoned["time_zone"] == "UTC" and zoned["file_created_at"] == utc(2023, 11, 15, 12, 30)
    assert (zoned["city"], zoned["state"]) == ("San Francisco", "California")


def test_xmp_place_names_win(db, settings, tiny_model, make_library, photos_dir, tmp_path) -> None:
    (photo,) = copy_photos(photos_dir, tmp_path / "lib", ["IMG_2682.heic"])
    Path(str(photo) + ".xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:City="Springfield"'
        ' photoshop:Country="Elsewhere"/></rdf:RDF></x:xmpmeta>'
    )
    lib = make_library(tmp_path / "lib")
    index_library(db, settings, lib, model=tiny_model)
    a = get_asset_by_path(db, lib["id"], str(photo))
    assert (a["city"], a["state"], a["country"]) == ("Springfield", None, "Elsewhere")
    assert a["time_zone"] == "America/Chicago"  # the zone still comes from the position


def test_db_optimize_backfills_an_old_library(db, settings, tiny_model, make_library, photos_dir, tmp_path, cli_env):
    lib, before = _index(db, settings, tiny_model, make_library, photos_dir, tmp_path)
    with db.connection() as conn:  # as indexed before places existed: no names, naive dates stored as UTC
        conn.execute(
            "UPDATE exif SET city = NULL, state = NULL, country = NULL, time_zone = NULL,"
            " date_time_original = a.local_date_time FROM assets a WHERE a.id = exif.asset_id"
            " AND exif.time_zone <> 'UTC'"
        )
        conn.execute("UPDATE exif SET city = NULL, state = NULL, country = NULL")
        conn.execute("UPDATE assets a SET file_created_at = e.date_time_original FROM exif e WHERE e.asset_id = a.id")
    proc = subprocess.run(
        [sys.executable, "-m", "photosearch", "--json", "db", "optimize"], env=cli_env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["places_filled"], out["zones_filled"]) == (4, 3)  # (the XMP place is lost here: GPS fills it)
    for name, row in before.items():
        now = get_asset_by_path(db, lib["id"], row["original_path"])
        for col in ("city", "state", "country", "time_zone", "file_created_at", "date_time_original"):
            if name != "thompson-springs.jpg" or col not in ("city", "state"):
                assert now[col] == row[col], (name, col)


def _haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat), np.radians(lats)
    h = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(h))


def test_geocoder_matches_brute_force_haversine() -> None:
    g = geocoder()
    data = g._tree.data  # unit vectors of every place
    lats = np.degrees(np.arcsin(data[:, 2]))
    lons = np.degrees(np.arctan2(data[:, 1], data[:, 0]))
    rng = np.random.default_rng(7)
    # near real places (offsets up to ~40 km), plus the antimeridian and the far north
    picks = rng.choice(len(lats), 300, replace=False)
    pts = [(lats[i] + rng.normal(0, 0.2), lons[i] + rng.normal(0, 0.2)) for i in picks]
    pts += [(-16.8, 179.99), (-16.8, -179.99), (78.22, 15.65), (69.65, 18.96), (0.0, -30.0)]
    pts = [(max(-90.0, min(90.0, la)), (lo + 180) % 360 - 180) for la, lo in pts]
    got = g.lookup(pts)
    hits = 0
    for (la, lo), place in zip(pts, got, strict=True):
        d = _haversine_km(la, lo, lats, lons)
        best = int(np.argmin(d))
        if d[best] > MAX_PLACE_KM * 1.0001:
            assert place is None, (la, lo)
            continue
        hits += 1
        assert place is not None and place.city == g._city[best], (la, lo, place, g._city[best], d[best])
    assert hits > 150
    assert g.lookup([(0.0, -30.0)]) == [None]  # mid-Atlantic: no town within reach
