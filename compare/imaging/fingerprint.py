"""Change fingerprints: ids naming what changed between two images, from their diff.

A fingerprint is computed from what a diff holds: the mask, its bounding box and the before
and after RGBA pixels (each image as decoded, not padded: a pixel outside an image is
transparent black, as on the diff canvas). Both levels are deterministic, free of position
(the same change drawn elsewhere on the canvas, or on a canvas of another size, has the same
ids) and versioned by their prefix, so an id is stable across runs, machines and clusters:

- **identical** (`identical_id`, ``i1-`` and 16 hex digits of a sha256): the changed pixels
  relative to the bounding box (the mask cropped to it) with the before and after colours of
  each. Any other changed pixel, or any other colour of one, gives another id.
- **similar** (`similar_id`, ``s1-`` and 16 hex digits): a coarse fingerprint of the mask's
  shape alone, following Argos' ``fingerprintDiffForEquality`` (``v1:g16:d1:t0.002,0.02,0.08``:
  dilate the mask by 1 pixel, crop it to its bounding box, pad it to a centred square, count
  the changed pixels of each cell of a 16x16 grid, quantise each cell's density at 0.002, 0.02
  and 0.08 into four levels, hash). It differs from Argos' in three ways: it reads our diff
  mask rather than the red pixels of a diff picture; the dilation is not clipped at the canvas
  edge, so the fingerprint depends on the change alone; and it adds the size of the square as
  a power of two (`SimilarParams.scale`), which Argos leaves out, so a change and the same
  shape at another scale (a 10-pixel icon against a whole page) are not one change. The
  parameters were chosen by measurement (``python -m benchmarks.bench_fingerprint``): over the
  benchmark corpus' 152 changes, each also recoloured (another colour curve), Argos' grid,
  dilation and thresholds keep the similar id of 82 recoloured changes and give one id to 19
  pairs of different changes (5 of them of different kinds, such as a text edit and a shift);
  with the scale, the same 82 and 11 pairs (1 of different kinds). An 8x8 grid keeps 104 but
  merges 24 pairs (6), a 32x32 grid merges 2 but keeps 68; without dilation, 60 are kept.
  Two images whose identical ids are equal have equal similar ids.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

IDENTICAL_PREFIX = "i1-"
SIMILAR_PREFIX = "s1-"
_HEX_DIGITS = 16
_DENSITY_UNIT = 1_000_000
"""Density thresholds are whole parts per million, so that quantising is exact integer arithmetic."""
_FIRST_BITS = np.array([(0xFF00 >> count) & 0xFF for count in range(8)], dtype=np.uint8)
"""The byte whose first ``count`` pixels are set: masks are worked on with their rows packed 8
pixels a byte (`np.packbits`, the first pixel in the highest bit), an eighth of their size."""

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class SimilarParams:
    """The similar fingerprint's parameters: the grid's cells per side, the dilation radius in
    pixels (0 to 7), the density thresholds in parts per million (ascending: ``len + 1`` levels), and
    whether the size of the padded square (as a power of two) is part of it."""

    grid: int = 16
    dilation: int = 1
    thresholds: tuple[int, ...] = (2_000, 20_000, 80_000)
    scale: bool = True

    def __post_init__(self) -> None:
        if (self.grid < 1 or not 0 <= self.dilation <= 7
                or list(self.thresholds) != sorted(self.thresholds)):
            raise ValueError(f"bad similar-fingerprint parameters: {self}")

    def tag(self) -> bytes:
        """The parameters as bytes, hashed with the cells so that other parameters give other ids."""
        return f"g{self.grid}:d{self.dilation}:t{','.join(map(str, self.thresholds))}:s{int(self.scale)}".encode()


SIMILAR = SimilarParams()
"""The parameters of ``s1-`` ids."""


@dataclass(frozen=True)
class ChangeFingerprint:
    """One change's ids at both levels."""

    identical: str
    similar: str


def fingerprint_change(mask: np.ndarray, bbox: Box | None, before: np.ndarray,
                       after: np.ndarray) -> ChangeFingerprint | None:
    """The fingerprints of the change ``mask`` (HxW bool, the diff canvas) marks between
    ``before`` and ``after`` (HxWx4 uint8 RGBA, top-left on the canvas); ``bbox`` (x0, y0, x1,
    y1, exclusive ends) bounds the mask's changed pixels. None when nothing changed."""
    if bbox is None:
        return None
    changed = _crop(mask, bbox)
    bits = np.packbits(changed, axis=1)
    return ChangeFingerprint(_identical(changed, bits, bbox, before, after),
                             _similar(bits, changed.shape[1], SIMILAR))


def identical_id(mask: np.ndarray, bbox: Box, before: np.ndarray, after: np.ndarray) -> str:
    """The identical-change id (see the module doc) of a change; arguments as `fingerprint_change`'s."""
    changed = _crop(mask, bbox)
    return _identical(changed, np.packbits(changed, axis=1), bbox, before, after)


def similar_id(mask: np.ndarray, bbox: Box, params: SimilarParams = SIMILAR) -> str:
    """The similar-change id (see the module doc) of the change ``mask`` marks within ``bbox``."""
    changed = _crop(mask, bbox)
    return _similar(np.packbits(changed, axis=1), changed.shape[1], params)


def _crop(mask: np.ndarray, bbox: Box) -> np.ndarray:
    x0, y0, x1, y1 = bbox
    if not (0 <= x0 < x1 <= mask.shape[1] and 0 <= y0 < y1 <= mask.shape[0]):
        raise ValueError(f"bbox {bbox} is not a box inside the {mask.shape[1]}x{mask.shape[0]} mask")
    return mask[y0:y1, x0:x1]


def _identical(changed: np.ndarray, bits: np.ndarray, bbox: Box, before: np.ndarray, after: np.ndarray) -> str:
    """The identical id of the change whose mask, cropped to ``bbox``, is ``changed`` (``bits``
    packed)."""
    height, width = changed.shape
    digest = hashlib.sha256(b"snapcompare identical change\0")
    digest.update(struct.pack("<II", width, height))
    digest.update(bits.tobytes())
    rows, columns = np.divmod(np.flatnonzero(changed), width)
    rows += bbox[1]
    columns += bbox[0]
    for image in (before, after):
        digest.update(_colours(image, rows, columns, bbox))
    return IDENTICAL_PREFIX + digest.hexdigest()[:_HEX_DIGITS]


def _colours(rgba: np.ndarray, rows: np.ndarray, columns: np.ndarray, bbox: Box) -> bytes:
    """The RGBA bytes of ``rgba``'s pixels at canvas ``rows`` and ``columns`` (within ``bbox``);
    transparent black where the image does not reach."""
    height, width = rgba.shape[:2]
    # One uint32 per pixel, taken by flat index: far faster than a boolean index into a crop.
    pixels = np.ascontiguousarray(rgba).view(np.uint32).reshape(-1)
    if bbox[2] <= width and bbox[3] <= height:
        taken: np.ndarray = pixels.take(rows * width + columns)
        return taken.tobytes()
    inside = (rows < height) & (columns < width)
    colours = np.zeros(rows.shape, dtype=np.uint32)
    colours[inside] = pixels.take(rows[inside] * width + columns[inside])
    return colours.tobytes()


def _similar(bits: np.ndarray, width: int, params: SimilarParams) -> str:
    """The similar id of the change whose mask, cropped to its bounding box, is ``bits`` (rows
    packed by `np.packbits`, ``width`` pixels a row)."""
    shape = _dilated(bits, width, params.dilation)
    height, width = shape.shape[0], width + 2 * params.dilation
    side = max(height, width)
    # Cell edges on the centred square of ``side``, then in the shape's own rows and columns.
    edges = np.arange(params.grid + 1) * side // params.grid
    rows = np.clip(edges - (side - height) // 2, 0, height)
    columns = np.clip(edges - (side - width) // 2, 0, width)
    counts = np.diff(_counts_left_of(shape, rows, columns), axis=1)
    spans = np.diff(edges)
    areas = np.maximum(np.outer(spans, spans), 1)
    # A cell's level: how many thresholds its density (count / area) reaches.
    levels = sum((counts * _DENSITY_UNIT >= threshold * areas).astype(np.uint8)
                 for threshold in params.thresholds)
    digest = hashlib.sha256(b"snapcompare similar change\0" + params.tag() + b"\0")
    if params.scale:
        digest.update(struct.pack("<I", side.bit_length()))
    digest.update(np.asarray(levels, dtype=np.uint8).tobytes())
    return SIMILAR_PREFIX + digest.hexdigest()[:_HEX_DIGITS]


def _dilated(bits: np.ndarray, width: int, radius: int) -> np.ndarray:
    """The packed rows ``bits`` of ``width`` pixels with a border of ``radius`` pixels and every
    pixel within ``radius`` (a square) of a set one set; packed rows of ``width + 2 * radius``."""
    if radius == 0:
        return bits
    padded = np.zeros((bits.shape[0] + 2 * radius, -(-(width + 2 * radius) // 8) + 1), dtype=np.uint8)
    padded[radius:radius + bits.shape[0], 1:1 + bits.shape[1]] = bits
    # The left border: every row moves ``radius`` pixels on (the spare first byte is dropped).
    shape = (padded[:, 1:] >> radius) | (padded[:, :-1] << (8 - radius))
    for _ in range(radius):
        rows = shape.copy()
        rows[1:] |= shape[:-1]
        rows[:-1] |= shape[1:]
        shape = rows | (rows >> 1) | (rows << 1)
        shape[:, 1:] |= rows[:, :-1] << 7
        shape[:, :-1] |= rows[:, 1:] >> 7
    return shape


def _counts_left_of(bits: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """For each band of rows between consecutive ``rows`` edges, the set pixels of the packed
    rows ``bits`` left of each of ``columns``: a (bands, len(columns)) array."""
    whole = _band_sums(np.bitwise_count(bits), rows)
    counts = np.concatenate([np.zeros((whole.shape[0], 1), dtype=np.int64), np.cumsum(whole, axis=1)], axis=1)
    byte, bit = np.divmod(columns, 8)
    counts = counts[:, byte]
    split = bit > 0
    if split.any():
        counts[:, split] += _band_sums(np.bitwise_count(bits[:, byte[split]] & _FIRST_BITS[bit[split]]), rows)
    return counts


def _band_sums(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values`` summed over each band of rows between consecutive ``rows`` edges."""
    return np.stack(
        [values[start:end].sum(axis=0, dtype=np.int64) for start, end in zip(rows[:-1], rows[1:], strict=True)]
    )
