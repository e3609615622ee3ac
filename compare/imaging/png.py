"""PNG for the diff: a fast decoder of 8-bit RGB and RGBA PNGs, and the mask encoder.

Inflating is most of the cost of decoding a screenshot PNG, and libdeflate (through imagecodecs)
inflates three to four times faster than zlib. Rows filtered with None or Sub do not depend on
other rows and are undone for all of them at once; an Up row adds the row above. Average and
Paeth depend on the pixel to the left, which numpy cannot vectorise, so runs of them go to
libspng as a small PNG of stored (uncompressed) deflate blocks in which each run starts with a
copy of the row above it.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from imagecodecs import deflate_decode as _inflate
    from imagecodecs import spng_decode as _spng_decode
except ImportError:  # an optional accelerator: Pillow decodes everything without it
    _inflate = _spng_decode = None

AVAILABLE = _inflate is not None
"""Whether the fast decoder can run (imagecodecs, the ``fast`` extra, is installed)."""

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel at bit depth 8
_NONE, _SUB, _UP = 0, 1, 2
# Past this many libspng calls (levels of Average/Paeth runs that depend on one another through
# Up rows), handing the whole file to libspng is cheaper.
_MAX_SPNG_CALLS = 64


def decode_png(data: bytes | bytearray | memoryview) -> np.ndarray | None:
    """RGBA pixels (HxWx4 uint8) of a non-interlaced 8-bit RGB or RGBA PNG without a tRNS chunk.

    Returns None for any other PNG, and for a damaged one (bad CRC or checksum, truncated or
    extra data): the caller's general decoder then decodes it or reports why it cannot. The
    pixels are exactly those of a conforming decoder; gamma and colour profiles are not applied.
    """
    if not AVAILABLE:
        return None
    parsed = _parse(memoryview(data))
    if parsed is None:
        return None
    width, height, channels, compressed = parsed
    stride = width * channels
    try:
        inflated = _inflate(compressed, out=height * (stride + 1))
    except Exception:  # noqa: BLE001 - damaged data: the general decoder reports it
        return None
    if len(inflated) != height * (stride + 1):
        return None
    raw = np.frombuffer(inflated, dtype=np.uint8).reshape(height, stride + 1)
    filters = raw[:, 0]
    if int(filters.max()) > 4:
        return None
    rows = _unfilter(raw, width, channels, data)
    if rows is None:
        return None
    if channels == 4:
        return rows.reshape(height, width, 4)
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = rows.reshape(height, width, 3)
    rgba[..., 3] = 255
    return rgba


def _parse(data: memoryview) -> tuple[int, int, int, bytes | memoryview] | None:
    """(width, height, channels, zlib stream) of a PNG the fast path handles, else None."""
    if data[:8] != SIGNATURE:
        return None
    position, header, parts = 8, None, []
    while position + 12 <= len(data):
        length, kind = _CHUNK_HEAD.unpack_from(data, position)
        end = position + 12 + length
        if end > len(data):
            return None
        body = data[position + 8 : end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(data[end - 4 : end], "big"):
            return None
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            parts.append(body)
        elif kind == b"tRNS":
            return None
        elif kind == b"IEND":
            break
        elif kind != b"PLTE" and not kind[0] & 0x20:
            return None  # an unknown critical chunk
        position = end
    else:
        return None  # no IEND: truncated
    if header is None or len(header) != _IHDR.size or not parts:
        return None
    width, height, depth, colour, compression, filtering, interlace = _IHDR.unpack(header)
    if depth != 8 or colour not in _CHANNELS or (compression, filtering, interlace) != (0, 0, 0):
        return None
    if width == 0 or height == 0:
        return None
    compressed = parts[0] if len(parts) == 1 else b"".join(parts)
    return width, height, _CHANNELS[colour], compressed


def _unfilter(
    raw: np.ndarray, width: int, channels: int, original: bytes | bytearray | memoryview
) -> np.ndarray | None:
    """Reconstructed rows (HxW*channels) from ``raw`` (each row led by its filter type byte)."""
    filters, data = raw[:, 0], raw[:, 1:]
    out = np.empty(data.shape, dtype=np.uint8)
    for kind in (_NONE, _SUB):
        picked = np.flatnonzero(filters == kind)
        if picked.size == 0:
            continue
        if kind == _NONE:
            out[picked] = data[picked]
        else:
            cells = data[picked].reshape(picked.size, width, channels)
            out[picked] = np.cumsum(cells, axis=1, dtype=np.uint8).reshape(picked.size, -1)
    up_rows, spng_runs = _schedule(filters.tolist())
    if len(spng_runs) > _MAX_SPNG_CALLS:
        return _whole_file(original, raw.shape[0], width, channels)
    for level, rows in enumerate(up_rows):
        if level and not _undo_with_spng(raw, out, spng_runs[level - 1], width, channels):
            return None
        for row in rows:
            if row == 0:
                out[0] = data[0]
            else:
                np.add(out[row - 1], data[row], out=out[row])
    return out


def _schedule(filters: list[int]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Order the dependent rows into levels that each need one libspng call.

    A row's level is 0 for None and Sub rows, one more than the row above for the first row of an
    Average/Paeth run, and the level of the row above otherwise. Level L's Average/Paeth runs
    (``spng_runs[L - 1]``, as (start, end) rows) need only rows of lower levels, and its Up rows
    (``up_rows[L]``, in order) need only lower levels and level L's runs.
    """
    up_rows: list[list[int]] = [[]]
    spng_runs: list[list[tuple[int, int]]] = []
    level, previous = 0, _NONE
    for row, kind in enumerate(filters):
        if kind < _UP:
            level = 0
        elif kind == _UP:
            up_rows[level].append(row)
        elif previous > _UP:
            runs = spng_runs[level - 1]
            runs[-1] = (runs[-1][0], row + 1)
        else:
            level += 1
            if level > len(spng_runs):
                spng_runs.append([])
                up_rows.append([])
            spng_runs[level - 1].append((row, row + 1))
        previous = kind
    return up_rows, spng_runs


def _undo_with_spng(
    raw: np.ndarray, out: np.ndarray, runs: list[tuple[int, int]], width: int, channels: int
) -> bool:
    """Undo Average/Paeth ``runs`` with one libspng call: each run follows a copy of its row above.

    A copy is an unfiltered row, so every run decodes as it would in the whole image (the first
    run of the image follows a row of zeros, which is what it is filtered against).
    """
    stride = out.shape[1]
    height = sum(end - start + 1 for start, end in runs)
    body = np.empty((height, stride + 1), dtype=np.uint8)
    body[:, 0] = 0
    at = 0
    for start, end in runs:
        body[at, 1:] = out[start - 1] if start else 0
        body[at + 1 : at + 1 + end - start] = raw[start:end]
        at += 1 + end - start
    header = _IHDR.pack(width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    png = b"".join(
        (SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(body, 0)), _END)
    )
    try:
        pixels = _spng_decode(png)
    except Exception:  # noqa: BLE001 - a failure here leaves the whole file to the general decoder
        return False
    if pixels.shape != (height, width, channels):
        return False
    pixels = pixels.reshape(height, stride)
    at = 0
    for start, end in runs:
        out[start:end] = pixels[at + 1 : at + 1 + end - start]
        at += 1 + end - start
    return True


def _whole_file(
    original: bytes | bytearray | memoryview, height: int, width: int, channels: int
) -> np.ndarray | None:
    try:
        pixels = _spng_decode(original)
    except Exception:  # noqa: BLE001 - the general decoder reports it
        return None
    if pixels.shape != (height, width, channels):
        return None
    return pixels.reshape(height, -1)


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join((len(body).to_bytes(4, "big"), kind, body, crc.to_bytes(4, "big")))


_END = _chunk(b"IEND", b"")


def encode_mask(mask: np.ndarray) -> bytes:
    """A bool HxW mask as a 1-bit greyscale PNG, True as white (255 decoded to 8 bits).

    Rows are bit-packed and left unfiltered, and zlib level 1 compresses them: a mask is mostly
    long runs, which filters do not shorten.
    """
    height, width = mask.shape
    rows = np.zeros((height, -(-width // 8) + 1), dtype=np.uint8)
    rows[:, 1:] = np.packbits(mask, axis=1)
    header = _IHDR.pack(width, height, 1, 0, 0, 0, 0)
    return b"".join(
        (SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(rows, 1)), _END)
    )
