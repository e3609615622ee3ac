"""pixelmatch 7.2.0's pixel diff (YIQ colour delta), vectorised over the differing pixels only.

Reference: github.com/mapbox/pixelmatch, release v7.2.0, ``index.js``. A pixel changes when the
squared YIQ distance of its two colours exceeds ``35215 * threshold**2`` (35215 being the
largest possible delta); semi-transparent pixels are blended over pixelmatch 7's checkerboard
first (over white with ``checkerboard=False``, pixelmatch 7.2.0's ``checkerboard: false``).
With ``antialiasing`` on, pixels that look like anti-aliasing in either image (the slope
detector of Vysniauskas, "Anti-aliased Pixel and Intensity Slope Detector", 2009) are not
counted.

Canvas rule: the images are padded top-left with transparent black to the union canvas; inside
the overlap of the two originals a pixel counts when pixelmatch counts it, and every canvas
pixel outside the overlap counts as changed, whatever its alpha. Ignored pixels never count.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from .kernel import (
    Bounds,
    Siblings,
    antialiased_pixelmatch,
    check_inputs,
    find_changes,
    mark_outside_overlap,
)
from .scan import Scan

try:
    from . import _pixelmatch as _compiled
except ImportError:  # built at install only where the machine has a C compiler
    _compiled = None  # type: ignore[assignment]

COMPILED_SCAN: bool = _compiled is not None
"""Whether `scan` runs the compiled scan (``_pixelmatch.c``, pixel by pixel in one pass with the
GIL released) instead of the vectorised one; both give the same masks and counts."""

MAX_YIQ_DELTA = 35215
"""The largest possible YIQ delta between two colours; pixelmatch scales threshold**2 by it."""

_Y, _I, _Q = _YIQ = (
    (0.29889531, 0.58662247, 0.11448223),
    (0.59597799, -0.27417610, -0.32180189),
    (0.21147017, -0.52261711, 0.31114694),
)
"""The Y, I and Q rows of pixelmatch's conversion of (r, g, b)."""
_OPAQUE = np.uint32(0xFF000000)
"""Packed pixels at or above this have alpha 255 (alpha is the high byte)."""
_KEY_SHIFT = 22
"""Luma keys are the luma times 2**22 (see `_luma_keys`)."""


def scan(
    a: np.ndarray,
    b: np.ndarray,
    overlap: tuple[int, int],
    *,
    threshold: float,
    antialiasing: bool,
    ignore: np.ndarray | None = None,
    checkerboard: bool = True,
) -> Scan:
    """Compare two padded canvases as pixelmatch 7.2.0 does; see the module docstring."""
    height, width = a.shape[:2]
    max_delta = MAX_YIQ_DELTA * float(threshold) * float(threshold)
    if COMPILED_SCAN and _compiled is not None:
        check_inputs(a, b, ignore)
        mask = np.zeros((height, width), dtype=bool)
        changed, aa, box = _compiled.scan(a, b, mask, ignore, width, height, *overlap, max_delta,
                                          antialiasing, checkerboard)
        bounds = Bounds(width)
        if box is not None:
            bounds.add_rect(*box)
        changed += mark_outside_overlap(mask, *overlap, ignore, bounds)
        return Scan(mask, changed, aa, bounds.get())
    background = _checkerboard if checkerboard else _white

    surely_under, surely_over = _distance_bounds(max_delta)

    def over_threshold(idx: np.ndarray, a32: np.ndarray, b32: np.ndarray) -> np.ndarray:
        p, q = np.take(a32, idx), np.take(b32, idx)
        if min(p.min(), q.min()) >= _OPAQUE:
            distance = _squared_distance(p, q)
            result = distance >= surely_over
            near = np.flatnonzero((distance > surely_under) & ~result)
            if near.size:
                deltas = _rgb_deltas(_rgba(p[near]), _rgba(q[near]), lambda: background(idx[near]))
                result[near] = _yiq_delta(*deltas) > max_delta
            return result
        return _yiq_delta(*_rgb_deltas(_rgba(p), _rgba(q), lambda: background(idx))) > max_delta

    def antialiased(
        img: np.ndarray, other: np.ndarray, idx: np.ndarray, siblings: Siblings
    ) -> np.ndarray:
        # Every pixel the test reads lies in the band's rows or the rows beside them.
        top, bottom = siblings.rows
        opaque = img[top * width : bottom * width].min() >= _OPAQUE
        return _antialiased(img, idx, siblings, width, height, opaque, background)

    found = find_changes(
        a, b, overlap, ignore, region=None, over_threshold=over_threshold,
        antialiased=antialiased if antialiasing else None, one_neighbour_in_both=True,
    )
    changed = found.changed + mark_outside_overlap(found.mask, *overlap, ignore, found.bounds)
    return Scan(found.mask, changed, found.aa_in_overlap, found.bounds.get())


def _distance_bounds(max_delta: float) -> tuple[int, int]:
    """Squared RGB distances at or below the first of which two opaque pixels are surely under
    ``max_delta``, and at or above the second surely over it: the YIQ delta lies between
    _SMALLEST_WEIGHT and _LARGEST_WEIGHT times that distance."""
    return int(max_delta / _LARGEST_WEIGHT), int(max_delta / _SMALLEST_WEIGHT) + 1


def _weights() -> tuple[float, float]:
    """The smallest and largest eigenvalue of the YIQ delta's quadratic form in (dr, dg, db),
    widened well beyond float error: the delta lies between them times dr**2 + dg**2 + db**2."""
    y, i, q = (np.array(row) for row in _YIQ)
    form = 0.5053 * np.outer(y, y) + 0.299 * np.outer(i, i) + 0.1957 * np.outer(q, q)
    values = np.linalg.eigvalsh(form)
    return float(values.min()) * (1 - 1e-9), float(values.max()) * (1 + 1e-9)


def _squared_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """dr**2 + dg**2 + db**2 of packed pixels (int32)."""
    total = np.zeros(p.size, dtype=np.int32)
    for shift in (0, 8, 16):
        d = (p >> shift).view(np.int32)
        d &= 0xFF
        e = (q >> shift).view(np.int32)
        e &= 0xFF
        d -= e
        d *= d
        total += d
    return total


def _rgba(values: np.ndarray) -> np.ndarray:
    """Packed uint32 pixels (as stored in memory) as an n x 4 uint8 array of r, g, b, a."""
    return values.view(np.uint8).reshape(-1, 4)


Background = Callable[[np.ndarray], tuple[int | np.ndarray, int | np.ndarray, int | np.ndarray]]
"""Red, green and blue of what semi-transparent pixels at these flat indices are blended over."""


def _checkerboard(flat: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """pixelmatch 7's checkerboard behind the pixels at these flat indices.

    pixelmatch derives the pattern from the byte offset k = 4 * index; its red term uses k's
    parity, which is always even, so red is the constant 48.
    """
    k = 4.0 * flat
    green = 48 + 159 * ((k / 1.618033988749895).astype(np.int64) % 2)
    blue = 48 + 159 * ((k / 2.618033988749895).astype(np.int64) % 2)
    return 48, green, blue


def _white(flat: np.ndarray) -> tuple[int, int, int]:
    """White, what pixelmatch blends over with ``checkerboard: false``."""
    return 255, 255, 255


def _rgb_deltas(
    p: np.ndarray, q: np.ndarray, board: Callable[[], tuple[int | np.ndarray, ...]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel differences of two n x 4 RGBA pixel sets, both blended over the background.

    ``board`` gives the background's red, green and blue behind the pixels. For opaque pixels the
    blend reduces exactly to r1 - r2 (pixelmatch skips it), so all-opaque sets skip it too; the
    formula below equals that bit for bit on opaque pixels, so mixed sets need no split.
    """
    if p[:, 3].min(initial=255) == 255 and q[:, 3].min(initial=255) == 255:
        dr, dg, db, _ = np.subtract(p.T, q.T, dtype=np.float64)
        return dr, dg, db
    r1, g1, b1, a1 = np.ascontiguousarray(p.T, dtype=np.int32)
    r2, g2, b2, a2 = np.ascontiguousarray(q.T, dtype=np.int32)
    red, green, blue = board()
    da = a1 - a2
    dr = (r1 * a1 - r2 * a2 - red * da) / 255
    dg = (g1 * a1 - g2 * a2 - green * da) / 255
    db = (b1 * a1 - b2 * a2 - blue * da) / 255
    return dr, dg, db


def _brightness(dr: np.ndarray, dg: np.ndarray, db: np.ndarray) -> np.ndarray:
    return dr * _Y[0] + dg * _Y[1] + db * _Y[2]


def _yiq_delta(dr: np.ndarray, dg: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Squared YIQ distance (unsigned; the sign pixelmatch adds only picks a picture colour),
    summed in pixelmatch's order."""
    y = _brightness(dr, dg, db)
    i = dr * _I[0] + dg * _I[1] + db * _I[2]
    q = dr * _Q[0] + dg * _Q[1] + db * _Q[2]
    delta: np.ndarray = 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q
    return delta


_SMALLEST_WEIGHT, _LARGEST_WEIGHT = _weights()


def _luma_keys() -> tuple[np.ndarray, np.ndarray]:
    """Integer brightness keys of opaque colours, by red + 256 * green and by blue: the luma
    ``r * 0.29889531 + g * 0.58662247 + b * 0.11448223`` times 2**22, rounded (int32).

    For two opaque pixels pixelmatch's brightness delta is that luma of the channel differences.
    Over all channel differences in -255..255 that are not all zero, its magnitude is at least
    2.29e-6 (tests/compare/imaging/test_engines.py computes it), about 9.6 after scaling. Each
    key is off by at most 1 (two table entries rounded), so the difference of two keys is within
    2 of the exact scaled delta: it is 0 exactly when the colours are equal and otherwise has the
    sign of pixelmatch's delta, and two neighbours' keys order as pixelmatch's deltas to them do.
    Only that order and sign are used.
    """
    scale = float(1 << _KEY_SHIFT)
    channel = np.arange(256, dtype=np.float64)
    red_green = (channel[None, :] * _Y[0] + channel[:, None] * _Y[1]).reshape(-1)
    return (np.round(red_green * scale).astype(np.int32),
            np.round(channel * _Y[2] * scale).astype(np.int32))


_KEY_RG, _KEY_B = _luma_keys()


def _luma_key(values: np.ndarray) -> np.ndarray:
    """`_luma_keys` of packed opaque pixels."""
    keys: np.ndarray = np.take(_KEY_RG, values & 0xFFFF) + np.take(_KEY_B, (values >> 16) & 0xFF)
    return keys


def _antialiased(
    img: np.ndarray, idx: np.ndarray, siblings: Siblings, width: int, height: int, opaque: bool,
    background: Background = _checkerboard,
) -> np.ndarray:
    """pixelmatch's antialiased() for the pixels ``idx`` (ascending) of ``img`` (a flat uint32
    canvas); ``opaque`` says these pixels and their neighbours are, which allows integer keys
    for the deltas; ``background`` is what the others are blended over."""
    if opaque:
        centre_key = _luma_key(np.take(img, idx))

        def delta(nb: np.ndarray) -> np.ndarray:
            keys: np.ndarray = centre_key - _luma_key(np.take(img, nb))
            return keys

        # Keys differ exactly where colours do (see _luma_keys).
        return antialiased_pixelmatch(idx, siblings, width, height, delta, zero_if_identical=True)
    centre = _rgba(np.take(img, idx))
    board = functools.cache(lambda: background(idx))
    return antialiased_pixelmatch(
        idx, siblings, width, height,
        lambda nb: _brightness(*_rgb_deltas(centre, _rgba(np.take(img, nb)), board)),
    )
