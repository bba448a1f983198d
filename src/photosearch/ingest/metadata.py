"""Photo metadata from EXIF, embedded XMP and XMP sidecars, with immich's rules for "date taken".

Date priority follows immich (`metadata.service.ts`): tags are merged with the sidecar winning per tag,
then the first present of DateTimeOriginal, CreationDate, CreateDate, DateTimeCreated, GPSDateTime is
the date taken; with none, the file's mtime. A date without a time zone is wall-clock time and is kept
as such (stored as if UTC), like immich does when it cannot find a zone.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

# EXIF tag ids (IFD0, Exif IFD, GPS IFD).
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_MAKE, _MODEL, _ORIENTATION, _DESCRIPTION, _RATING = 0x010F, 0x0110, 0x0112, 0x010E, 0x4746
_DTO, _CREATE, _OFFSET_DTO, _OFFSET_CREATE = 0x9003, 0x9004, 0x9011, 0x9012
_SUBSEC_DTO, _SUBSEC_CREATE = 0x9291, 0x9292
_EXPOSURE, _FNUMBER, _FOCAL, _ISO, _LENS = 0x829A, 0x829D, 0x920A, 0x8827, 0xA434
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003

DATE_PRIORITY = ("DateTimeOriginal", "CreationDate", "CreateDate", "DateTimeCreated", "GPSDateTime")

_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
}
# XMP property → the tag name immich (exiftool) knows it by.
_XMP_TAGS = {
    f"{{{_NS['exif']}}}DateTimeOriginal": "DateTimeOriginal",
    f"{{{_NS['pdf']}}}CreationDate": "CreationDate",
    f"{{{_NS['xmp']}}}CreateDate": "CreateDate",
    f"{{{_NS['photoshop']}}}DateCreated": "DateTimeCreated",
    f"{{{_NS['exif']}}}GPSTimeStamp": "GPSDateTime",
    f"{{{_NS['xmp']}}}Rating": "Rating",
    f"{{{_NS['dc']}}}description": "Description",
    f"{{{_NS['tiff']}}}Orientation": "Orientation",
    f"{{{_NS['tiff']}}}Make": "Make",
    f"{{{_NS['tiff']}}}Model": "Model",
    f"{{{_NS['photoshop']}}}City": "City",
    f"{{{_NS['photoshop']}}}State": "State",
    f"{{{_NS['photoshop']}}}Country": "Country",
}
_DATE_RX = re.compile(
    r"^\s*(\d{4})[:-](\d{2})[:-](\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


@dataclass
class TakenDate:
    """A wall-clock time and, when known, its UTC offset."""

    local: datetime  # naive wall clock
    offset: timedelta | None = None

    @property
    def instant(self) -> datetime:
        return (self.local - (self.offset or timedelta(0))).replace(tzinfo=UTC)

    @property
    def local_as_utc(self) -> datetime:
        return self.local.replace(tzinfo=UTC)

    @property
    def zone_name(self) -> str | None:
        """Luxon-style fixed-offset name ("UTC+2", "UTC-4:30"), as immich stores it."""
        if self.offset is None:
            return None
        minutes = int(self.offset.total_seconds() // 60)
        if minutes == 0:
            return "UTC"
        sign = "+" if minutes > 0 else "-"
        h, m = divmod(abs(minutes), 60)
        return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


@dataclass
class PhotoMetadata:
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    iso: int | None = None
    orientation: int | None = None
    exif_image_width: int | None = None
    exif_image_height: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None  # from XMP here; from the GPS position at ingest (`places.resolve`) otherwise
    state: str | None = None
    country: str | None = None
    time_zone: str | None = None
    date_time_original: datetime | None = None  # the instant, when the photo carries a date
    description: str | None = None
    rating: int | None = None
    sidecar_path: str | None = None
    taken: TakenDate | None = None  # the winning date (None: fall back to mtime)
    tags: dict[str, Any] = field(default_factory=dict)


def parse_date(value: Any, offset: Any = None, subsec: Any = None) -> TakenDate | None:
    """EXIF ("2009:08:29 13:18:08") or XMP ("2000-09-27T14:35:33+02:00") dates; None if unusable."""
    if not isinstance(value, str):
        return None
    m = _DATE_RX.match(value.replace("\x00", ""))
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    if subsec and not frac and isinstance(subsec, str) and subsec.strip().isdigit():
        frac = subsec.strip()[:6]
    try:
        local = datetime(
            int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), int((frac or "0").ljust(6, "0"))
        )
    except ValueError:
        return None
    if local.year < 1800:  # "0000:00:00 00:00:00" and friends
        return None
    off = _parse_offset(tz) if tz else _parse_offset(offset) if isinstance(offset, str) else None
    return TakenDate(local, off)


def _parse_offset(text: str | None) -> timedelta | None:
    if not text:
        return None
    text = text.strip().replace("\x00", "")
    if text == "Z":
        return timedelta(0)
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", text)
    if not m:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    return -delta if m.group(1) == "-" else delta


def _text(v: Any) -> str | None:
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        return None
    v = v.replace("\x00", "").strip()
    return v or None


def _num(v: Any) -> float | None:
    try:
        f = float(v[0] / v[1]) if isinstance(v, tuple) and len(v) == 2 else float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def format_exposure(seconds: float | None) -> str | None:
    """Like immich: "1/250" below a second, else the number of seconds."""
    if seconds is None or seconds <= 0:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return f"{seconds:g}"


def _gps_coord(value: Any, ref: Any) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_num(p) for p in value]
    if any(p is None for p in parts):
        return None
    deg = parts[0] + parts[1] / 60 + parts[2] / 3600  # type: ignore[operator]
    if _text(ref) in ("S", "W"):
        deg = -deg
    return round(deg, 7)


def read_exif(img: Image.Image) -> dict[str, Any]:
    """EXIF tags by immich/exiftool name. Never raises on malformed EXIF (returns what it could read)."""
    out: dict[str, Any] = {}
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF must not fail the photo
        return out
    try:
        sub = exif.get_ifd(_IFD_EXIF)
    except Exception:  # noqa: BLE001
        sub = {}
    try:
        gps = exif.get_ifd(_IFD_GPS)
    except Exception:  # noqa: BLE001
        gps = {}
    out["Make"], out["Model"] = _text(exif.get(_MAKE)), _text(exif.get(_MODEL))
    out["Description"] = _text(exif.get(_DESCRIPTION))
    orientation = exif.get(_ORIENTATION)
    out["Orientation"] = int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else None
    rating = exif.get(_RATING)
    out["Rating"] = rating if isinstance(rating, int) else None
    out["DateTimeOriginal"] = parse_date(_text(sub.get(_DTO)), _text(sub.get(_OFFSET_DTO)), _text(sub.get(_SUBSEC_DTO)))
    out["CreateDate"] = parse_date(
        _text(sub.get(_CREATE)), _text(sub.get(_OFFSET_CREATE)), _text(sub.get(_SUBSEC_CREATE))
    )
    out["ExposureTime"] = _num(sub.get(_EXPOSURE))
    out["FNumber"], out["FocalLength"] = _num(sub.get(_FNUMBER)), _num(sub.get(_FOCAL))
    iso = sub.get(_ISO)
    if isinstance(iso, tuple) and iso:
        iso = iso[0]
    out["ISO"] = int(iso) if isinstance(iso, int | float) and iso > 0 else None
    out["LensModel"] = _text(sub.get(_LENS))
    for key, tag in (("ExifImageWidth", _PIXEL_X), ("ExifImageHeight", _PIXEL_Y)):
        v = sub.get(tag)
        out[key] = int(v) if isinstance(v, int) and v > 0 else None
    out["GPSLatitude"] = _gps_coord(gps.get(2), gps.get(1))
    out["GPSLongitude"] = _gps_coord(gps.get(4), gps.get(3))
    stamp, date = gps.get(7), _text(gps.get(29))
    if date and isinstance(stamp, tuple) and len(stamp) == 3 and all(_num(p) is not None for p in stamp):
        h, m, s = (_num(p) for p in stamp)
        out["GPSDateTime"] = parse_date(f"{date} {int(h):02d}:{int(m):02d}:{int(s):02d}Z")  # type: ignore[arg-type]
    return {k: v for k, v in out.items() if v is not None}


def parse_xmp(packet: bytes | str | None) -> dict[str, Any]:
    """The few XMP properties we use, by exiftool name. Unparseable packets yield {}.

    Expat (Python >= 3.11 bundles >= 2.4.1) refuses entity-expansion bombs, and XMP needs no DTDs.
    """
    if not packet:
        return {}
    if isinstance(packet, bytes):
        packet = _decode_xml_bytes(packet)
    start = packet.find("<x:xmpmeta")
    if start < 0:
        start = packet.find("<rdf:RDF")
    end_tag = "</x:xmpmeta>" if packet.startswith("<x:xmpmeta", start) else "</rdf:RDF>"
    end = packet.find(end_tag, start)
    if start < 0 or end < 0:
        return {}
    try:
        root = ET.fromstring(packet[start : end + len(end_tag)])
    except ET.ParseError:
        return {}
    out: dict[str, Any] = {}
    for desc in root.iter(f"{{{_NS['rdf']}}}Description"):
        for key, value in desc.attrib.items():
            if key in _XMP_TAGS:
                out.setdefault(_XMP_TAGS[key], value)
        for child in desc:
            if child.tag in _XMP_TAGS:
                li = child.find(f".//{{{_NS['rdf']}}}li")
                text = li.text if li is not None else child.text
                if text and text.strip():
                    out.setdefault(_XMP_TAGS[child.tag], text.strip())
    for name in DATE_PRIORITY:
        if name in out:
            out[name] = parse_date(out[name])
    if "Rating" in out:
        r = _num(out["Rating"])
        out["Rating"] = int(r) if r is not None else None
    if "Orientation" in out:
        o = _num(out["Orientation"])
        out["Orientation"] = int(o) if o is not None and 1 <= o <= 8 else None
    return {k: v for k, v in out.items() if v is not None}


def _decode_xml_bytes(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "replace")


def embedded_xmp(img: Image.Image) -> bytes | str | None:
    info = img.info
    return info.get("xmp") or info.get("XML:com.adobe.xmp")


def find_sidecar(path: str) -> str | None:
    """`photo.jpg.xmp` first, then `photo.xmp` (immich's order); either case of the extension."""
    base, _ = os.path.splitext(path)
    for candidate in (path + ".xmp", path + ".XMP", base + ".xmp", base + ".XMP"):
        if os.path.isfile(candidate):
            return candidate
    return None


MAX_SIDECAR_BYTES = 4 << 20


def read_sidecar(path: str) -> dict[str, Any]:
    try:  # a sidecar that is a link is not followed (it could name any file on the machine)
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            return parse_xmp(f.read(MAX_SIDECAR_BYTES)) if stat.S_ISREG(os.fstat(f.fileno()).st_mode) else {}
    except OSError:
        return {}


def extract_metadata(img: Image.Image, path: str) -> PhotoMetadata:
    """Everything we store about a photo except pixels, checksum and dimensions."""
    tags = {**parse_xmp(embedded_xmp(img)), **read_exif(img)}  # EXIF wins over embedded XMP
    sidecar = find_sidecar(path)
    if sidecar:
        tags.update(read_sidecar(sidecar))  # the sidecar wins over both, per tag
    taken = next((tags[name] for name in DATE_PRIORITY if isinstance(tags.get(name), TakenDate)), None)
    dto = tags.get("DateTimeOriginal")
    lat, lon = tags.get("GPSLatitude"), tags.get("GPSLongitude")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    rating = tags.get("Rating")
    if rating is not None:
        rating = max(-1, min(5, rating))
    return PhotoMetadata(
        make=tags.get("Make"),
        model=tags.get("Model"),
        lens_model=tags.get("LensModel"),
        exposure_time=format_exposure(tags.get("ExposureTime")),
        f_number=tags.get("FNumber"),
        focal_length=tags.get("FocalLength"),
        iso=tags.get("ISO"),
        orientation=tags.get("Orientation"),
        exif_image_width=tags.get("ExifImageWidth"),
        exif_image_height=tags.get("ExifImageHeight"),
        latitude=lat,
        longitude=lon,
        city=_text(tags.get("City")),
        state=_text(tags.get("State")),
        country=_text(tags.get("Country")),
        time_zone=taken.zone_name if taken else None,
        date_time_original=(dto if isinstance(dto, TakenDate) else taken).instant if taken else None,
        description=tags.get("Description"),
        rating=rating,
        sidecar_path=sidecar,
        taken=taken,
        tags=tags,
    )


def mtime_date(mtime_ns: int) -> datetime:
    """Exact to the microsecond (truncated), so the stored value compares equal on the next scan."""
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(sec, tz=UTC) + timedelta(microseconds=ns // 1000)


__all__ = ["PhotoMetadata", "TakenDate", "extract_metadata", "find_sidecar", "parse_date", "parse_xmp"]
