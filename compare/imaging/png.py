"""PNG for the diff: the fast decoder (Google's Wuffs, memory-safe, compiled at install as
``_wuffs.c``) and the mask encoder.

On browser screenshots Wuffs decodes three to four times faster than Pillow, libpng or libspng
(benchmarks/bench_decode.py); it writes straight into the array the diff reads, with the GIL
released. The same bytes give the same
result whichever decoder runs. Wuffs takes only the PNGs whose pixels it gives exactly as the
Pillow path of `compare.imaging.decode` does, checked for every colour type, bit depth and
interlacing; it leaves to Pillow 16-bit grey (scaled with rounding there, Wuffs keeps the high
byte), a tRNS colour key in grey or RGB (Wuffs makes keyed pixels transparent black, Pillow keeps
their colour), a tRNS after the image data (out of place: Wuffs ignores it, Pillow applies it)
and an animated PNG (Pillow's first frame can be other than the default image Wuffs decodes).
Neither path checks the zlib stream's Adler-32 (checking costs Wuffs 12 to 20% more time; every
blob's sha256 is checked on fetch anyway): Wuffs does not read it, as browsers do not, and a PNG
Pillow refuses for that checksum alone is given to it with the checksum made right
(`with_adler32_made_right`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

try:
    from . import _wuffs
except ImportError:  # built at install where a C compiler and Wuffs' source were at hand
    _wuffs = None  # type: ignore[assignment]

AVAILABLE = _wuffs is not None
"""Whether the fast decoder can run (``_wuffs`` was built at install): Pillow decodes everything
without it."""

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")
# (colour type, bit depth) whose RGBA from Wuffs is Pillow's: every PNG combination but 16-bit grey.
_SAME_AS_PILLOW = frozenset(
    [(0, 1), (0, 2), (0, 4), (0, 8), (2, 8), (2, 16), (4, 8), (4, 16), (6, 8), (6, 16)]
    + [(3, depth) for depth in (1, 2, 4, 8)]
)
_PALETTE = 3


def decode_png(data: bytes | bytearray | memoryview, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """RGBA pixels (HxWx4 uint8) of a PNG, exactly as Pillow's ``convert("RGBA")`` gives them.

    ``size`` is the `PngChunks.size` of ``data``, when the caller has it: its chunks are then
    not walked again.

    Returns None for a PNG whose pixels Wuffs would give differently (see the module docstring)
    and for any PNG Wuffs refuses (damaged, truncated, too much data): the caller's general
    decoder then decodes it or reports why it cannot. Gamma and colour profiles are not
    applied; checksums are not checked (see the module docstring). The image size is not
    limited here: callers check the header first (`compare.imaging.decode.open_image` and the
    canvas limit of the diff).
    """
    if _wuffs is None:
        return None
    size = size if size is not None else read_chunks(data).size
    if size is None or 0 in size:
        return None
    width, height = size
    pixels = np.empty((height, width, 4), dtype=np.uint8)  # every byte is written, or it is dropped
    if _wuffs.decode(data, pixels, width, height) is not None:
        return None
    return pixels


MAX_PNG_CHUNKS = 100_000
"""Chunks a PNG may have up to its IEND, at most: each costs a step of a walk in Python, here
and in Pillow's reading of them, however few bytes it holds. Encoders write a few dozen, image
data in chunks of 8 KiB (libpng's default) or more: 100,000 of those would be 800 MB."""

_PLAIN_CHUNKS = {b"IHDR": None, b"PLTE": None, b"tRNS": None, b"sRGB": 1, b"gAMA": 4, b"pHYs": 9}
"""Chunks (with their length where it is fixed) that Pillow's header parse reads without ever
refusing one whose checksum is right: before its first IDAT, a PNG holding only these is
refused by that parse exactly when a checksum, a chunk name or the IHDR is wrong."""


@dataclass(frozen=True)
class PngChunks:
    """What one walk over a PNG's chunks, to its IEND, finds."""

    count: int
    """Chunks walked: up to `MAX_PNG_CHUNKS`, one more for a PNG of more (the walk stops there)."""
    size: tuple[int, int] | None
    """(width, height) of a PNG whose pixels Wuffs gives as Pillow does, from its IHDR and the
    kinds of its chunks (tRNS and acTL, and whether a tRNS comes after an IDAT); None for any
    other, and for one of too many chunks."""
    plain: bool
    """Whether Pillow's header parse would accept it as it is, with ``size`` known: the methods
    Pillow requires, and before the first IDAT only `_PLAIN_CHUNKS`, each with a right checksum."""

    @property
    def too_many(self) -> bool:
        """Whether it has more than `MAX_PNG_CHUNKS` chunks."""
        return self.count > MAX_PNG_CHUNKS


def read_chunks(data: bytes | bytearray | memoryview) -> PngChunks:
    """The chunks of a PNG, walked once (see `PngChunks`), at most `MAX_PNG_CHUNKS` + 1 of them."""
    view = memoryview(data)
    if view[:8] != SIGNATURE:
        return PngChunks(0, None, False)
    header = None
    if len(view) >= 8 + 12 + _IHDR.size and _CHUNK_HEAD.unpack_from(view, 8) == (_IHDR.size, b"IHDR"):
        header = _IHDR.unpack_from(view, 16)
    width, height, depth, colour, compression, filtering, interlace = header or (0,) * 7
    eligible = header is not None and (colour, depth) in _SAME_AS_PILLOW
    # compression and filter method 0, interlace none or Adam7, as Pillow requires
    plain = eligible and (compression, filtering, interlace) in ((0, 0, 0), (0, 0, 1))
    image_data = False
    count = 0
    for kind, start, length in _chunks(view):
        count += 1
        if count > MAX_PNG_CHUNKS:
            return PngChunks(count, None, False)
        if kind == b"IDAT":
            image_data = True
        elif kind == b"acTL" or (kind == b"tRNS" and (colour != _PALETTE or image_data)):
            eligible = False
        elif kind == b"IHDR" and start != 16:
            eligible = False  # a second header: Wuffs refuses it, and Pillow would read its size
        if plain and not image_data and not _plain(view, kind, start, length):
            plain = False
    size = (width, height) if eligible and image_data else None
    return PngChunks(count, size, plain and size is not None)


def _plain(data: memoryview, kind: bytes, start: int, length: int) -> bool:
    """Whether a chunk before the image data is one of `_PLAIN_CHUNKS`, whole and of the right
    length, with a right checksum."""
    fixed = _PLAIN_CHUNKS.get(kind, -1)
    if fixed == -1 or (fixed is not None and length != fixed) or start + length + 4 > len(data):
        return False
    stored = int.from_bytes(data[start + length:start + length + 4], "big")
    return zlib.crc32(data[start:start + length], zlib.crc32(kind)) == stored


def _chunks(data: memoryview) -> Iterator[tuple[bytes, int, int]]:
    """(kind, offset of its body, length of its body) of each chunk of a PNG, to IEND or the end."""
    position = len(SIGNATURE)
    while position + 12 <= len(data):
        length, kind = _CHUNK_HEAD.unpack_from(data, position)
        yield kind, position + 8, length
        if kind == b"IEND":
            return
        position += 12 + length


_INFLATE_PIECE = 1 << 20


def with_adler32_made_right(data: bytes | bytearray | memoryview) -> bytes | None:
    """A PNG whose zlib stream is whole and sound but for its Adler-32, with that checksum made
    right (its image data in one IDAT); None for any other PNG.

    Pillow refuses such a file, while Wuffs, as browsers, decodes it: given this instead, Pillow
    decodes the same pixels. The stream is inflated a piece at a time, and given up past the most
    image data the header's size can need (8 bytes a pixel and 8 a row, filter bytes of the
    interlace passes included).
    """
    view = memoryview(data)
    if view[:8] != SIGNATURE or len(view) < 8 + 12 + _IHDR.size:
        return None
    width, height = _IHDR.unpack_from(view, 16)[:2]
    run = []  # the first run of consecutive IDAT chunks: what Pillow reads
    for kind, body, length in _chunks(view):
        if kind == b"IDAT":
            run.append((body, length))
        elif run:
            break
    stream = b"".join(view[body : body + length] for body, length in run)
    if len(stream) < 2 or stream[0] & 0x0F != 8 or stream[1] & 0x20 or (stream[0] << 8 | stream[1]) % 31:
        return None  # not a zlib header of deflate data without a preset dictionary
    inflater, pending, adler32, left = zlib.decompressobj(-15), stream[2:], 1, height * (8 * width + 8)
    while not inflater.eof and left >= 0:
        try:
            piece = inflater.decompress(pending, _INFLATE_PIECE)
        except zlib.error:
            return None
        if not piece and not inflater.unconsumed_tail:
            return None  # the stream ends early
        adler32, left, pending = zlib.adler32(piece, adler32), left - len(piece), inflater.unconsumed_tail
    trailer = inflater.unused_data[:4]
    if left < 0 or len(trailer) < 4 or int.from_bytes(trailer, "big") == adler32:
        return None  # too much data, no checksum (Pillow takes that) or a right one: not this fault
    deflated = stream[: len(stream) - len(inflater.unused_data)]
    fixed = deflated + adler32.to_bytes(4, "big") + inflater.unused_data[4:]
    start, end = run[0][0] - 8, run[-1][0] + run[-1][1] + 4
    return b"".join((view[:start], _chunk(b"IDAT", fixed), view[end:]))


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join((len(body).to_bytes(4, "big"), kind, body, crc.to_bytes(4, "big")))


_END = _chunk(b"IEND", b"")


def encode_mask(mask: np.ndarray) -> bytes:
    """A bool HxW mask as a 1-bit greyscale PNG, True as white (255 decoded to 8 bits).

    Rows are bit-packed and left unfiltered, and zlib level 1 compresses them: a mask is mostly
    long runs, which filters do not shorten. The rows of a small mask are stored as they are
    (`_zlib_stored`): starting a compressor costs more than the bytes it would save.
    """
    height, width = mask.shape
    row_bytes = -(-width // 8) + 1
    if mask.any():
        rows = np.zeros((height, row_bytes), dtype=np.uint8)
        rows[:, 1:] = np.packbits(mask, axis=1)
        if rows.size <= _STORED_MASK_BYTES:
            data = _zlib_stored(rows.tobytes())
        else:
            data = zlib.compress(rows.data, 1)  # the array's buffer, not copied
    else:  # an unchanged pair's mask: every byte (filter types included) is 0
        data = _zlib_zeros(height * row_bytes)
    header = _IHDR.pack(width, height, 1, 0, 0, 0, 0)
    return b"".join((SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _END))


_STORED_MASK_BYTES = 4096
"""Masks of at most this many bytes of rows are stored uncompressed. zlib's compressor costs
3 us to start where freed memory is reused, 50 us where each start maps and faults in its
fresh state (glibc's defaults), against 0.3 us for a stored block."""


def _zlib_stored(raw: bytes) -> bytes:
    """A zlib stream holding ``raw`` (at most 65,535 bytes) in one stored (uncompressed) block."""
    length = len(raw)
    return b"".join((b"\x78\x01\x01", length.to_bytes(2, "little"), (length ^ 0xFFFF).to_bytes(2, "little"),
                     raw, zlib.adler32(raw).to_bytes(4, "big")))


_ZERO_RUN = 1 << 16


def _deflated_zero_run() -> bytes:
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    return deflate.compress(bytes(_ZERO_RUN)) + deflate.flush(zlib.Z_FULL_FLUSH)


_DEFLATED_ZERO_RUN = _deflated_zero_run()
"""`_ZERO_RUN` zero bytes deflated by a fresh compressor, so it refers to nothing before it, and
flushed to a byte boundary without a final block, so copies of it can follow one another."""


def _zlib_zeros(length: int) -> bytes:
    """A zlib stream (level 1) of ``length`` zero bytes, without compressing them all."""
    runs, rest = divmod(length, _ZERO_RUN)
    tail = zlib.compressobj(1, zlib.DEFLATED, -15)
    end = tail.compress(bytes(rest)) + tail.flush()
    adler32 = (length % 65521) << 16 | 1  # zeros add nothing to its first sum
    return b"".join((b"\x78\x01", _DEFLATED_ZERO_RUN * runs, end, adler32.to_bytes(4, "big")))
