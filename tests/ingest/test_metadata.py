"""Metadata read from the shared test photos, pinned to what exiftool (Debian libimage-exiftool-perl 12.57,
run once with `exiftool -j -n`) reports for the same files; sidecar values are from the sidecars' text."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from photosearch.db.assets import get_asset_by_path, list_assets
from photosearch.ingest import index_library
from photosearch.ingest.decode import register_decoders
from photosearch.ingest.metadata import extract_metadata, parse_date

register_decoders()


def meta(photos_dir: Path, rel: str):
    path = photos_dir / rel
    with Image.open(path) as img:
        return extract_metadata(img, str(path))


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_camera_exposure_and_rating(photos_dir: Path) -> None:
    m = meta(photos_dir, "metadata/rating/mongolels.jpg")
    assert (m.make, m.model) == ("Canon", "Canon EOS 500D")
    assert m.exposure_time == "1/250"  # ExposureTime 0.004
    assert (m.f_number, m.focal_length, m.iso, m.orientation) == (11, 40, 200, 1)
    assert m.rating == 3
    assert m.description == "Mongol Els"
    assert m.date_time_original == utc(2009, 8, 29, 13, 18, 8, 170000)  # SubSecDateTimeOriginal ...08.17
    assert m.time_zone is None

    m = meta(photos_dir, "metadata/tags/picasa.jpg")
    assert (m.make, m.model, m.exposure_time) == ("Canon", "Canon PowerShot SD1100 IS", "1/400")
    assert (m.f_number, m.iso, m.description) == (pytest.approx(4.9), 80, "Image-Description")
    assert m.focal_length == pytest.approx(18.6)


def test_heic_gps_and_lens(photos_dir: Path) -> None:
    m = meta(photos_dir, "formats/heic/IMG_2682.heic")
    assert (m.make, m.model, m.lens_model) == ("Apple", "iPhone 7", "iPhone 7 back camera 3.99mm f/1.8")
    assert (m.f_number, m.iso) == (pytest.approx(1.8), 20)
    assert m.focal_length == pytest.approx(3.99)
    assert m.latitude == pytest.approx(41.2203, abs=1e-6)
    assert m.longitude == pytest.approx(-96.071625, abs=1e-6)
    assert m.date_time_original == utc(2019, 3, 21, 11, 4, 22, 348000)


def test_gps_values_and_empty_gps(photos_dir: Path) -> None:
    m = meta(photos_dir, "metadata/gps-position/thompson-springs.jpg")
    assert m.latitude == pytest.approx(39.115, abs=1e-6)
    assert m.longitude == pytest.approx(-108.400968333, abs=1e-6)
    m = meta(photos_dir, "metadata/gps-position/empty_gps.jpg")
    assert m.latitude is None and m.longitude is None
    assert (m.make, m.model) == ("motorola", "moto g(9) plus")


def test_date_priority_like_immich(photos_dir: Path) -> None:
    # DateTimeOriginal 2023-02-02 beats CreateDate 04-04, CreationDate 05-05, GPSDateTime 08-08.
    m = meta(photos_dir, "metadata/dates/date-priority-test.jpg")
    assert m.taken.local == datetime(2023, 2, 2, 2, 0, 0)
    # Only an XMP GPSDateTime (UTC): it is used, with its zone.
    m = meta(photos_dir, "metadata/dates/gps-datetime.jpg")
    assert m.taken.instant == utc(2023, 11, 15, 12, 30) and m.time_zone == "UTC"
    # XMP CreateDate (no zone) when there is no DateTimeOriginal.
    m = meta(photos_dir, "metadata/gps-position/thompson-springs.jpg")
    assert m.taken.local == datetime(2022, 1, 10, 15, 15, 44, 310000)
    # IPTC TimeCreated alone is not a date: falls back to the file's mtime (taken is None).
    assert meta(photos_dir, "metadata/dates/time-created.jpg").taken is None
    assert meta(photos_dir, "metadata/dates/datetimeoriginal-gps.jpg").taken.local == datetime(2025, 12, 1, 11, 30)


def test_parse_date_offsets() -> None:
    d = parse_date("2000-09-27T14:35:33+02:00")
    assert d.instant == utc(2000, 9, 27, 12, 35, 33) and d.local_as_utc == utc(2000, 9, 27, 14, 35, 33)
    assert d.zone_name == "UTC+2"
    d = parse_date("2019:03:21 11:04:22", offset="-05:30")
    assert d.offset == -timedelta(hours=5, minutes=30) and d.zone_name == "UTC-5:30"
    assert parse_date("0000:00:00 00:00:00") is None
    assert parse_date("garbage") is None


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="5" exif:DateTimeOriginal="2015-05-05T10:00:00-04:00">
<dc:description><rdf:Alt><rdf:li xml:lang="x-default">from the sidecar</rdf:li></rdf:Alt></dc:description>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_xmp_sidecars(photos_dir: Path, tmp_path: Path) -> None:
    xmp = photos_dir / "metadata/xmp/dates"
    # photo.xmp beside photo.jpg (UTF-16 sidecar with xmp:CreateDate 2000-09-27T14:35:33+02:00)
    p = _copy(photos_dir / "metadata/faces/portrait.jpg", tmp_path / "a" / "2000.jpg")
    _copy(xmp / "2000.xmp", tmp_path / "a" / "2000.xmp")
    with Image.open(p) as img:
        m = extract_metadata(img, str(p))
    assert m.sidecar_path == str(tmp_path / "a" / "2000.xmp")
    assert m.taken.instant == utc(2000, 9, 27, 12, 35, 33) and m.time_zone == "UTC+2"
    # photo.jpg.xmp wins over photo.xmp
    _copy(xmp / "2010.xmp", tmp_path / "a" / "2000.jpg.xmp")
    with Image.open(p) as img:
        m = extract_metadata(img, str(p))
    assert m.taken.local == datetime(2010, 9, 27, 14, 35, 33)
    # a sidecar overrides the embedded EXIF per tag: date, rating, description
    p = _copy(photos_dir / "metadata/rating/mongolels.jpg", tmp_path / "b" / "m.jpg")
    (tmp_path / "b" / "m.jpg.xmp").write_text(SIDECAR)
    with Image.open(p) as img:
        m = extract_metadata(img, str(p))
    assert m.taken.instant == utc(2015, 5, 5, 14, 0) and m.time_zone == "UTC-4"
    assert (m.rating, m.description, m.make) == (5, "from the sidecar", "Canon")


def test_stored_metadata_after_indexing(db, settings, tiny_model, make_library, photos_dir: Path) -> None:
    root = photos_dir / "metadata"
    lib = make_library(root)
    summary = index_library(db, settings, lib, model=tiny_model)
    assert summary.errors == 0 and summary.new == summary.seen == 10
    a = get_asset_by_path(db, lib["id"], str(root / "faces/portrait-orientation-6.jpg"))
    assert (a["width"], a["height"], a["orientation"]) == (840, 700, 6)  # stored 700x840, rotated 90°
    a = get_asset_by_path(db, lib["id"], str(root / "rating/mongolels.jpg"))
    assert (a["rating"], a["make"], a["exposure_time"], a["width"], a["height"]) == (3, "Canon", "1/250", 950, 634)
    assert a["local_date_time"] == utc(2009, 8, 29, 13, 18, 8, 170000)
    assert len(a["checksum"]) == 20  # sha1
    a = get_asset_by_path(db, lib["id"], str(root / "dates/gps-datetime.jpg"))
    assert a["latitude"] == pytest.approx(37.7749) and a["longitude"] == pytest.approx(-122.4194)
    assert a["time_zone"] == "UTC" and a["file_created_at"] == utc(2023, 11, 15, 12, 30)
    a = get_asset_by_path(db, lib["id"], str(root / "dates/time-created.jpg"))
    mtime = (root / "dates/time-created.jpg").stat().st_mtime_ns
    assert a["local_date_time"] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=mtime // 1000)
    assert all(r["indexed_at"] is not None for r in list_assets(db, lib["id"]))
