"""Synthetic photo libraries for tests and benchmarks: clustered CLIP-like embeddings with realistic metadata.

Photos come in *events* (a trip, a party): each event has one owner, date range, place and camera, and
its photos' embeddings scatter around an event centre that itself sits near one of a few dozen *topics*.
All vectors share a common direction (CLIP embeddings are far from isotropic: random pairs have cosine
~0.2-0.4) and the noise has a decaying spectrum (low intrinsic dimension). Filters are therefore
correlated with content, the hard and realistic case for filtered vector search.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

OWNER_SHARES = {"Allen": 0.98, "Beth": 0.01, "Chen": 0.005, "Dana": 0.004, "Eve": 0.001}
CITIES = [
    ("Paris", "Île-de-France", "France", 48.86, 2.35),
    ("Berlin", "Berlin", "Germany", 52.52, 13.40),
    ("Kyoto", "Kyoto", "Japan", 35.01, 135.77),
    ("New York", "New York", "United States", 40.71, -74.01),
    ("São Paulo", "São Paulo", "Brazil", -23.55, -46.63),
    ("Reykjavík", "Capital Region", "Iceland", 64.15, -21.94),
    ("Cape Town", "Western Cape", "South Africa", -33.92, 18.42),
    ("Sydney", "New South Wales", "Australia", -33.87, 151.21),
    ("Zürich", "Zürich", "Switzerland", 47.37, 8.54),
    ("Ōsaka", "Ōsaka", "Japan", 34.69, 135.50),
    ("Lyon", "Auvergne-Rhône-Alpes", "France", 45.76, 4.84),
    ("Munich", "Bavaria", "Germany", 48.14, 11.58),
    ("Fiji", "Western", "Fiji", -17.71, 178.07),
    ("Honolulu", "Hawaii", "United States", 21.31, -157.86),
    ("O'Fallon", "Missouri", "United States", 38.81, -90.70),
    ("Córdoba", "Andalucía", "Spain", 37.88, -4.77),
]
CAMERAS = [
    ("Apple", "iPhone 13", "iPhone 13 back dual wide camera 5.1mm f/1.6"),
    ("Apple", "iPhone 15 Pro", "iPhone 15 Pro back triple camera 6.86mm f/1.78"),
    ("SONY", "ILCE-7M3", "FE 24-70mm F2.8 GM"),
    ("Canon", "Canon EOS R5", "RF24-105mm F4 L IS USM"),
    ("NIKON CORPORATION", "NIKON Z 6", "NIKKOR Z 24-70mm f/4 S"),
    ("FUJIFILM", "X-T4", "XF16-80mmF4 R OIS WR"),
    ("samsung", "SM-G991B", None),
    ("Google", "Pixel 7", None),
    ("OLYMPUS", "E-M10 Mark III", "M.Zuiko 14-42mm F3.5-5.6"),
    ("Panasonic", "DMC-GX80", None),
]
EPOCH = datetime(2014, 1, 1, tzinfo=UTC)
SPAN_DAYS = 365 * 11


@dataclass
class SyntheticLibrary:
    """Column arrays for `n` assets (row i of every array describes asset i)."""

    ids: list[uuid.UUID]
    embeddings: np.ndarray  # float32 [n, dim], L2-normalised
    owner: np.ndarray  # index into owner_names
    owner_names: list[str]
    taken: list[datetime]
    camera: np.ndarray  # index into CAMERAS, -1 = no EXIF camera
    city: np.ndarray  # index into CITIES, -1 = unknown place
    latitude: np.ndarray  # NaN = no GPS
    longitude: np.ndarray
    is_favorite: np.ndarray
    is_archived: np.ndarray
    is_offline: np.ndarray
    deleted: np.ndarray
    is_video: np.ndarray
    rating: np.ndarray  # -2 = none
    file_names: list[str]
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _spectrum_basis(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A random rotation scaled by a power-law spectrum: noise with a few strong directions."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scale = (np.arange(1, dim + 1, dtype=np.float64)) ** -0.6
    scale /= np.sqrt((scale**2).sum())
    return (q * scale).astype(np.float32)  # columns scaled; x @ basis.T -> anisotropic noise


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def make_embeddings(rng: np.random.Generator, n: int, dim: int, event_of: np.ndarray, n_events: int) -> np.ndarray:
    n_topics = max(4, min(64, n_events // 4))
    common = normalise(rng.standard_normal(dim))
    topics = normalise(rng.standard_normal((n_topics, dim)))
    basis = _spectrum_basis(rng, dim)
    topic_of_event = rng.integers(0, n_topics, n_events)
    centres = normalise(0.5 * common + topics[topic_of_event] + 0.8 * normalise(rng.standard_normal((n_events, dim))))
    out = np.empty((n, dim), dtype=np.float32)
    chunk = 50_000
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        noise = rng.standard_normal((hi - lo, dim)).astype(np.float32) @ basis.T
        out[lo:hi] = normalise(centres[event_of[lo:hi]] + 0.55 * noise)
    return out


def make_library(n: int, dim: int = 512, *, seed: int = 0, event_size: int = 100) -> SyntheticLibrary:
    rng = np.random.default_rng(seed)
    n_events = max(2, n // event_size)
    # Events: sizes vary; each has one owner, date, place and camera.
    event_of = np.sort(rng.integers(0, n_events, n))
    rng.shuffle(event_of)  # insertion order is not event order
    owner_names = list(OWNER_SHARES)
    shares = np.array(list(OWNER_SHARES.values()))
    owner = rng.choice(len(owner_names), size=n, p=shares / shares.sum())  # per photo: shares hold exactly
    ev_day = rng.uniform(0, SPAN_DAYS, n_events)
    ev_city = rng.choice(np.arange(-1, len(CITIES)), size=n_events, p=_zipf(len(CITIES) + 1, rng))
    ev_cam = rng.choice(np.arange(-1, len(CAMERAS)), size=n_events, p=_zipf(len(CAMERAS) + 1, rng))
    minutes = rng.uniform(0, 3 * 24 * 60, n)
    day = ev_day[event_of]
    taken = [EPOCH + timedelta(days=float(d), minutes=float(m)) for d, m in zip(day, minutes, strict=True)]
    city = ev_city[event_of]
    camera = np.where(rng.random(n) < 0.05, -1, ev_cam[event_of])
    has_gps = (city >= 0) & (rng.random(n) < 0.8)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    cities = np.array([(c[3], c[4]) for c in CITIES])
    idx = np.where(has_gps)[0]
    lat[idx] = cities[city[idx], 0] + rng.normal(0, 0.05, len(idx))
    lon[idx] = cities[city[idx], 1] + rng.normal(0, 0.05, len(idx))
    rating = np.where(rng.random(n) < 0.7, -2, rng.integers(0, 6, n))
    raw = rng.bytes(16 * n)
    ids = [uuid.UUID(bytes=raw[i * 16 : (i + 1) * 16], version=4) for i in range(n)]
    file_names = [f"IMG_{i:07d}.{'MP4' if v else 'JPG'}" for i, v in enumerate(rng.random(n) < 0.04)]
    is_video = np.array([f.endswith("MP4") for f in file_names])
    return SyntheticLibrary(
        ids=ids,
        embeddings=make_embeddings(rng, n, dim, event_of, n_events),
        owner=owner,
        owner_names=owner_names,
        taken=taken,
        camera=camera,
        city=city,
        latitude=lat,
        longitude=lon,
        is_favorite=rng.random(n) < 0.03,
        is_archived=rng.random(n) < 0.05,
        is_offline=rng.random(n) < 0.005,
        deleted=rng.random(n) < 0.01,
        is_video=is_video,
        rating=rating,
        file_names=file_names,
        extra={"event_of": event_of},
    )


def _zipf(k: int, rng: np.random.Generator) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1)
    p = p[rng.permutation(k)]
    return p / p.sum()


def make_queries(lib: SyntheticLibrary, n: int, *, seed: int = 1) -> np.ndarray:
    """Queries near the data but not on it (like a text prompt that describes some photos loosely)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(lib), n)
    dim = lib.embeddings.shape[1]
    return normalise(lib.embeddings[picks] + 0.7 * normalise(rng.standard_normal((n, dim))))
