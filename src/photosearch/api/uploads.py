"""Checks on uploaded query images: the bytes decide what a file is, never its name or Content-Type."""

from __future__ import annotations

from fastapi import UploadFile

from photosearch.api.errors import ApiError

_BRANDS_HEIF = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_BRANDS_AVIF = {b"avif", b"avis"}


def sniff_image(head: bytes) -> str | None:
    """The image format from magic bytes, or None if these are not the first bytes of an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] in (b"II", b"MM") and head[2:4] in (b"*\x00", b"\x00*"):
        return "tiff"
    if head.startswith(b"BM") and len(head) > 14:
        return "bmp"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jxl"
    if head[4:8] == b"ftyp":
        brands = {head[i : i + 4] for i in range(8, min(len(head), 64), 4)}
        if brands & _BRANDS_AVIF:
            return "avif"
        if brands & _BRANDS_HEIF:
            return "heic"
    return None


async def read_image_upload(file: UploadFile, limit: int) -> bytes:
    """Read an upload up to `limit` bytes: 413 past it, 422 if empty, 415 if the bytes are not an image."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise ApiError(413, f"the image is larger than the {size} upload limit")
    if not data:
        raise ApiError(422, "file: the upload is empty")
    if sniff_image(data[:64]) is None:
        raise ApiError(
            415, "file: not a supported image (JPEG, PNG, WebP, HEIC, AVIF, JPEG XL, GIF, TIFF or BMP expected)"
        )
    return data


def decode_image(data: bytes, model=None):  # -> PIL.Image.Image
    """Decode with the model's loader (same orientation/colour handling as indexing); 422 on failure."""
    import io

    from PIL import Image, ImageOps

    try:
        if model is not None:
            return model.preprocessor.load_image(data)
        with Image.open(io.BytesIO(data)) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's broken file
        raise ApiError(422, f"file: the image cannot be decoded ({type(exc).__name__})") from exc
