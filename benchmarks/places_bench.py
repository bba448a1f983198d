"""Cost of places and time zones from GPS at ingest: must stay under 1 ms a photo.

Measures, in one run: loading the GeoNames places and the zone polygons (once per process), then
`places.resolve` on ingest-sized batches (32) of located photos with naive dates — a place lookup and a zone
lookup each — at random positions near real towns (like photos: where people live) and anywhere on land or
sea. Prints a table, writes benchmarks/results/places_bench.json.

    python benchmarks/places_bench.py [--photos 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from photosearch.ingest import places
from photosearch.ingest.metadata import PhotoMetadata, TakenDate

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _photos(coords: np.ndarray) -> list[PhotoMetadata]:
    return [
        PhotoMetadata(latitude=float(la), longitude=float(lo), taken=TakenDate(datetime(2024, 7, 1, 12, 0)))
        for la, lo in coords
    ]


def _per_photo_ms(coords: np.ndarray, batch: int = 32) -> tuple[float, int]:
    items = _photos(coords)
    t = time.perf_counter()
    for i in range(0, len(items), batch):
        places.resolve(items[i : i + batch])
    ms = (time.perf_counter() - t) * 1000 / len(items)
    return ms, sum(m.country is not None for m in items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20000)
    args = ap.parse_args()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    g = places.geocoder()
    load_places = time.perf_counter() - t
    t = time.perf_counter()
    places.zone_finder()
    load_zones = time.perf_counter() - t
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    rng = np.random.default_rng(1)
    towns = g._tree.data[rng.integers(0, len(g._tree.data), args.photos)]
    near = np.column_stack((np.degrees(np.arcsin(towns[:, 2])), np.degrees(np.arctan2(towns[:, 1], towns[:, 0]))))
    near += rng.normal(0, 0.05, near.shape)
    near[:, 0] = near[:, 0].clip(-90, 90)
    anywhere = np.column_stack(
        (np.degrees(np.arcsin(rng.uniform(-1, 1, args.photos))), rng.uniform(-180, 180, args.photos))
    )
    rows = []
    for name, coords in (("near towns", near), ("anywhere", anywhere)):
        ms, named = _per_photo_ms(coords)
        rows.append({"positions": name, "photos": len(coords), "ms_per_photo": round(ms, 4), "named": named})
    out = {
        "load_places_s": round(load_places, 2),
        "load_zones_s": round(load_zones, 2),
        "load_rss_mb": round(rss),
        "places": len(g._city),
        "runs": rows,
    }
    print(f"load: places {load_places:.2f} s, zones {load_zones:.2f} s, +{rss:.0f} MB RSS; {len(g._city)} places")
    print(f"{'positions':<12} {'photos':>7} {'ms/photo':>9} {'named':>7}")
    for r in rows:
        print(f"{r['positions']:<12} {r['photos']:>7} {r['ms_per_photo']:>9.4f} {r['named']:>7}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "places_bench.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
