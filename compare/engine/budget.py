"""`MemoryBudget`: the bytes a comparison may hold at once, acquired and released by owner;
`decode_cost`: what decoding an image holds, charged to it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..formats import sniff_format
from ..imaging import decode

RGBA_BYTES_PER_PIXEL = 4
"""Bytes of a decoded pixel: what an image's pixels hold from its decoding until its last diff."""

DECODE_BYTES_PER_PIXEL: Mapping[str, int] = MappingProxyType({
    "PNG": 23,
    "JPEG": 20,
    "GIF": 13,
    "BMP": 16,
    "TIFF": 24,
    "WEBP": 28,
})
"""Bytes per pixel held at the peak of decoding an image to RGBA, its RGBA included, by format
(Pillow's decoders; a PNG the compiled decoder takes costs `FAST_PNG_BYTES_PER_PIXEL`): the
most of its modes. Measured as the growth of peak RSS over one decode of a 4000x4000 image, in
a process where every block over 128 KiB is mapped on its own, so that RSS follows the bytes
held:

- PNG: 12 (RGBA), 13 (palette, grey), 16 (RGB, grey with alpha), 22 (16-bit grey), 23
  (16-bit grey with a colour key);
- JPEG: 13 (grey), 16 (RGB, CMYK, progressive), 20 turned upright by its EXIF orientation;
- GIF: 13; BMP: 13 (palette, 1-bit) to 16 (RGB, RGBA);
- TIFF: 12 (RGBA), 16 (RGB, CMYK, float), 22 (16-bit grey), 24 (32-bit grey);
- WebP: 20 (with alpha), 24 (RGB: libwebp's two canvases beside Pillow's copies), 28 turned
  upright.
"""

FAST_PNG_BYTES_PER_PIXEL = 16
"""Bytes per pixel held at the peak of decoding a PNG the compiled decoder takes, measured as
`DECODE_BYTES_PER_PIXEL`: the RGBA and the inflated rows, 5 (grey, palette) to 12 (16-bit
RGBA); 16 covers one it hands back to Pillow once its header passed (a damaged stream: an RGB
PNG then costs Pillow's 16)."""


class MemoryBudget:
    """Accounts for bytes held against a limit, per owner (a blob, a running diff...).

    It does not block: callers ask `fits` before taking more and wait for something to be
    released when it does not (the engine collects a finished diff). ``acquire`` may take an
    owner over the limit; that is how the one diff that must always run is admitted. Used from
    one thread (the engine's coordinator).
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"memory budget must be positive, got {limit}")
        self.limit = limit
        self._held: Counter[Hashable] = Counter()
        self._used = 0

    @property
    def used(self) -> int:
        """Bytes held now, by every owner together."""
        return self._used

    def fits(self, size: int) -> bool:
        """True if ``size`` more bytes stay within the limit."""
        return self._used + size <= self.limit

    @property
    def over(self) -> bool:
        """True when more is held than the limit allows."""
        return self._used > self.limit

    def acquire(self, owner: Hashable, size: int) -> None:
        """Count ``size`` more bytes held by ``owner`` (added to what it already holds)."""
        if size < 0:
            raise ValueError(f"cannot acquire a negative size: {size}")
        self._held[owner] += size
        self._used += size

    def holds(self, owner: Hashable) -> bool:
        """True if ``owner`` holds anything (even 0 bytes acquired)."""
        return owner in self._held

    def release(self, owner: Hashable) -> int:
        """Release everything ``owner`` holds; return how many bytes that was (0 if nothing)."""
        size = self._held.pop(owner, 0)
        self._used -= size
        return size


@dataclass(frozen=True)
class DecodeCost:
    """What decoding one image takes, from its header."""

    size: tuple[int, int]
    """(width, height), as the diff places it (upright when its EXIF orientation is applied)."""
    peak: int
    """Bytes held at the decode's peak, its RGBA pixels included."""

    @property
    def pixels(self) -> int:
        """Its number of pixels."""
        return self.size[0] * self.size[1]

    @property
    def rgba(self) -> int:
        """Bytes of its decoded RGBA pixels."""
        return self.pixels * RGBA_BYTES_PER_PIXEL


def decode_cost(blob: bytes, exif_orientation: bool = True) -> DecodeCost | None:
    """What decoding ``blob`` (with ``exif_orientation`` as the decode applies it) holds, from its
    header; None when the header cannot be read, as decoding never starts then."""
    try:
        opened = decode.open_image(blob, exif_orientation=exif_orientation)
    except decode.ImageError:
        return None
    opened.close()
    if opened.fast_png:
        per_pixel = FAST_PNG_BYTES_PER_PIXEL
    else:
        kind = sniff_format(blob)
        assert kind is not None  # open_image reads only the formats sniff_format names
        per_pixel = DECODE_BYTES_PER_PIXEL[kind]
    width, height = opened.size
    return DecodeCost(opened.size, width * height * per_pixel)
