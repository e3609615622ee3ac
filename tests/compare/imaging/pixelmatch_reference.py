"""pixelmatch 7.2.0's pixel loop, pixel by pixel in plain Python, as an oracle for small images.

Written from github.com/mapbox/pixelmatch v7.2.0 ``index.js`` (``pixelmatch``, ``antialiased``,
``hasManySiblings``, ``colorDelta``): JavaScript numbers are doubles, as Python floats are, and
``k / 1.618033988749895 | 0`` truncates toward zero as ``int`` does for the non-negative offsets
here. Too slow for anything but the property tests.
"""

from __future__ import annotations

import numpy as np


def count(a: np.ndarray, b: np.ndarray, threshold: float,
          checkerboard: bool = True) -> tuple[np.ndarray, int]:
    """(mask of counted pixels, number of pixels over the threshold excluded as anti-aliasing)
    for two HxWx4 uint8 images of one size, anti-aliasing detection on; semi-transparent pixels
    blended over the checkerboard, or over white without it."""
    height, width = a.shape[:2]
    img1, img2 = a.reshape(-1).tolist(), b.reshape(-1).tolist()
    a32, b32 = a.view(np.uint32).reshape(-1).tolist(), b.view(np.uint32).reshape(-1).tolist()
    max_delta = 35215 * threshold * threshold
    mask = np.zeros((height, width), dtype=bool)
    excluded = 0
    for y in range(height):
        for x in range(width):
            i = y * width + x
            delta = 0 if a32[i] == b32[i] else _colour_delta(img1, img2, i * 4, i * 4, False,
                                                               checkerboard)
            if abs(delta) > max_delta:
                if (_antialiased(img1, x, y, width, height, a32, b32, checkerboard)
                        or _antialiased(img2, x, y, width, height, b32, a32, checkerboard)):
                    excluded += 1
                else:
                    mask[y, x] = True
    return mask, excluded


def _antialiased(img: list[int], x1: int, y1: int, width: int, height: int,
                 a32: list[int], b32: list[int], checkerboard: bool) -> bool:
    x0, y0 = max(x1 - 1, 0), max(y1 - 1, 0)
    x2, y2 = min(x1 + 1, width - 1), min(y1 + 1, height - 1)
    pos = y1 * width + x1
    zeroes = 1 if x1 in (x0, x2) or y1 in (y0, y2) else 0
    low = high = 0.0
    low_at = high_at = (0, 0)
    for x in range(x0, x2 + 1):
        for y in range(y0, y2 + 1):
            if x == x1 and y == y1:
                continue
            delta = _colour_delta(img, img, pos * 4, (y * width + x) * 4, True, checkerboard)
            if delta == 0:
                zeroes += 1
                if zeroes > 2:
                    return False
            elif delta < low:
                low, low_at = delta, (x, y)
            elif delta > high:
                high, high_at = delta, (x, y)
    if low == 0 or high == 0:
        return False
    return any(
        _many_siblings(a32, *at, width, height) and _many_siblings(b32, *at, width, height)
        for at in (low_at, high_at)
    )


def _many_siblings(img: list[int], x1: int, y1: int, width: int, height: int) -> bool:
    x0, y0 = max(x1 - 1, 0), max(y1 - 1, 0)
    x2, y2 = min(x1 + 1, width - 1), min(y1 + 1, height - 1)
    value = img[y1 * width + x1]
    zeroes = 1 if x1 in (x0, x2) or y1 in (y0, y2) else 0
    for x in range(x0, x2 + 1):
        for y in range(y0, y2 + 1):
            if (x != x1 or y != y1) and img[y * width + x] == value:
                zeroes += 1
                if zeroes > 2:
                    return True
    return False


def _colour_delta(img1: list[int], img2: list[int], k: int, m: int, y_only: bool,
                  checkerboard: bool) -> float:
    r1, g1, b1, a1 = img1[k : k + 4]
    r2, g2, b2, a2 = img2[m : m + 4]
    dr, dg, db, da = r1 - r2, g1 - g2, b1 - b2, a1 - a2
    if not (dr or dg or db or da):
        return 0
    if a1 < 255 or a2 < 255:
        rb = gb = bb = 255
        if checkerboard:
            rb = 48 + 159 * (k % 2)
            gb = 48 + 159 * (int(k / 1.618033988749895) % 2)
            bb = 48 + 159 * (int(k / 2.618033988749895) % 2)
        dr = (r1 * a1 - r2 * a2 - rb * da) / 255
        dg = (g1 * a1 - g2 * a2 - gb * da) / 255
        db = (b1 * a1 - b2 * a2 - bb * da) / 255
    y = dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223
    if y_only:
        return y
    i = dr * 0.59597799 - dg * 0.27417610 - db * 0.32180189
    q = dr * 0.21147017 - dg * 0.52261711 + db * 0.31114694
    delta = 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q
    return -delta if y > 0 else delta
