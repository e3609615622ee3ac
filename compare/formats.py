"""The image formats snapcompare reads, and the one way it opens an image with Pillow.

Pillow identifies many more formats than screenshots come in, some by starting external
programs (EPS runs Ghostscript). Every `Image.open` of an input goes through `open_allowed`,
which lets only the plugin of the format the bytes' magic names look at them.
"""

from __future__ import annotations

from typing import BinaryIO

from PIL import Image

FORMATS: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}
"""The formats encoded bytes may be in, by Pillow's name, with the magic bytes they start with
(WebP, a RIFF container, is recognised by `sniff_format` from bytes 0-3 and 8-11)."""

SUPPORTED_FORMATS = (*FORMATS, "WEBP")
"""Every format snapcompare reads, by Pillow's name."""


def sniff_format(data: bytes | bytearray | memoryview) -> str | None:
    """The format in `SUPPORTED_FORMATS` that ``data``'s magic bytes name, or None."""
    head = bytes(data[:12])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for kind, magics in FORMATS.items() if head.startswith(magics)), None)


class UnsupportedFormat(OSError):
    """The bytes are in none of the `SUPPORTED_FORMATS`."""


def open_allowed(file: BinaryIO, kind: str | None = None) -> Image.Image:
    """``file`` opened by Pillow (the header only) with the plugin of its format alone: ``kind``
    when the caller sniffed it already, else the one its first bytes name.

    Raises `UnsupportedFormat` when they name none, and what `PIL.Image.open` raises.
    """
    if kind is None:
        start = file.tell()
        kind = sniff_format(file.read(12))
        file.seek(start)
    if kind is None:
        raise UnsupportedFormat(f"not a supported image format ({', '.join(SUPPORTED_FORMATS)})")
    return Image.open(file, formats=[kind])
