"""The image formats snapcompare reads, and the one way it opens an image with Pillow.

Pillow identifies many more formats than screenshots come in, some by starting external
programs (EPS runs Ghostscript). Every `Image.open` of an input goes through `open_allowed`,
which lets only the plugin of the format the bytes' magic names look at them, and refuses a
TIFF whose header alone would cost Pillow more than its pixels (`tiff_refusal`).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

import numpy as np
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


class RefusedHeader(OSError):
    """Bytes of a supported format whose header is refused before Pillow reads it (`tiff_refusal`)."""


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
    if kind == "TIFF":
        start = file.tell()
        refusal = tiff_refusal(file)
        file.seek(start)
        if refusal is not None:
            raise RefusedHeader(refusal)
    return Image.open(file, formats=[kind])


MAX_TIFF_PIECES = 65_536
"""Strips or tiles the first image of a TIFF (the one decoded) may have, at most. Pillow holds a
few hundred bytes for each and decodes an uncompressed TIFF one at a time in Python, however few
pixels it holds: millions of one-row strips would cost gigabytes and a minute before any pixel.
Encoders write strips of 8 KiB (libtiff's default) and tiles of 16x16 pixels or more: 65,536 of
those strips hold 512 MB."""

MAX_TIFF_ENTRIES = 65_535
"""Entries a TIFF's first IFD may have: what a classic TIFF's count can say. A BigTIFF's may say
more, and Pillow reads each in Python."""

_STRIPS, _TILES = 273, 324
"""The tags of a TIFF's strips' and tiles' offsets: their counts are the strips and tiles."""

_TIFF_INTEGERS = {3: "H", 4: "I", 16: "Q"}
"""`struct` formats of the TIFF types of a size or a count: SHORT, LONG and LONG8."""


def tiff_refusal(file: BinaryIO) -> str | None:
    """Why the TIFF at ``file``'s position is not given to Pillow, from its first IFD: an IFD
    past the data's end, more entries than `MAX_TIFF_ENTRIES`, more strips or tiles than
    `MAX_TIFF_PIECES` or than its size can need (a strip holds a row at least, the tiles cover
    the image once, each plane apart); None when it has none of these, or a header too short
    to tell (Pillow then refuses it). Reads the header and the IFD alone, moving ``file``'s
    position."""
    start = file.tell()
    head = file.read(16)
    order = "<" if head.startswith(b"II") else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    field = 8 if big else 4  # bytes of an offset, and of an entry's count and value (BigTIFF's are wider)
    if len(head) < 2 * field:
        return None
    (ifd,) = struct.unpack_from(order + ("Q" if big else "I"), head, field)
    number = "Q" if big else "H"  # the IFD's count of entries
    end = file.seek(0, io.SEEK_END)
    if start + ifd >= end:  # as far as 2**64 (Pillow's own seek overflows there)
        return "a TIFF whose first IFD lies past its end"
    file.seek(start + ifd)
    raw = file.read(struct.calcsize(number))
    if len(raw) < struct.calcsize(number):
        return None
    (declared,) = struct.unpack(order + number, raw)
    if declared > MAX_TIFF_ENTRIES:
        return f"a TIFF whose first IFD has {declared:,} entries, more than {MAX_TIFF_ENTRIES:,}"
    dtype = np.dtype([("tag", f"{order}u2"), ("type", f"{order}u2"), ("count", f"{order}u{field}"),
                      ("value", f"V{field}")])
    table = file.read(declared * dtype.itemsize)
    entries = np.frombuffer(table, dtype, len(table) // dtype.itemsize)
    width, height = _tiff_value(entries, order, 256), _tiff_value(entries, order, 257)
    samples, planar = _tiff_value(entries, order, 277), _tiff_value(entries, order, 284)
    planes = samples if planar == 2 else 1  # planar configuration 2: a plane for each sample
    tile_width, tile_height = _tiff_value(entries, order, 322), _tiff_value(entries, order, 323)
    for tag, what in ((_STRIPS, "strips"), (_TILES, "tiles")):
        counts = entries["count"][entries["tag"] == tag]
        if not counts.size:
            continue
        count = int(counts.max())  # Pillow reads the first of them it can: the largest stands for all
        if count > MAX_TIFF_PIECES:
            return f"a TIFF of {count:,} {what}, more than {MAX_TIFF_PIECES:,}"
        if not (width and height and planes):
            continue
        if tag == _STRIPS:
            needed = planes * height
        elif tile_width and tile_height:
            needed = planes * -(-width // tile_width) * -(-height // tile_height)
        else:
            continue
        if count > needed:
            return f"a TIFF of {count:,} {what} where its {width}x{height} size needs {needed:,} at most"
    return None


def _tiff_value(entries: np.ndarray, order: str, tag: int) -> int | None:
    """The value of ``tag`` in a TIFF's IFD ``entries``: of its last entry, as Pillow keeps it,
    when that holds one integer within the entry; else None."""
    found = np.flatnonzero(entries["tag"] == tag)
    if not found.size:
        return None
    kind, count, value = entries[found[-1]][["type", "count", "value"]].item()
    fmt = _TIFF_INTEGERS.get(kind)
    if fmt is None or count != 1 or struct.calcsize(fmt) > len(value):
        return None
    result: int = struct.unpack_from(order + fmt, value)[0]
    return result
