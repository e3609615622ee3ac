"""odiff 4.5.0's comparison of images of different sizes, pixel by pixel in plain Python, as an
oracle for small images.

Written from github.com/dmtrKovalenko/odiff v4.5.0: ``src/diff.zig`` (``compareDifferentLayouts``,
``processPixelDifference``) and ``src/antialiasing.zig`` (``detect``,
``hasManySiblingsWithSameColor``). The colour delta and the brightness are the engine's own
(`compare.imaging.odiff`), which the conformance data checks against the odiff binary; what this
transcribes is the layout: which pixels are compared, how each image's neighbours are read within
its own bounds, and what counts outside the overlap.
"""

from __future__ import annotations

import numpy as np

from compare.imaging import odiff


def count(base: np.ndarray, comp: np.ndarray, threshold: float, antialiasing: bool) -> np.ndarray:
    """The union-canvas mask of the pixels odiff counts for two HxWx4 uint8 images."""
    bh, bw = base.shape[:2]
    ch, cw = comp.shape[:2]
    b32 = base.view(np.uint32)[..., 0]
    c32 = comp.view(np.uint32)[..., 0]
    limit = odiff.max_delta(threshold)
    mask = np.zeros((max(bh, ch), max(bw, cw)), dtype=bool)
    for y in range(max(bh, ch)):
        for x in range(max(bw, cw)):
            in_base, in_comp = x < bw and y < bh, x < cw and y < ch
            if in_base and in_comp:
                if b32[y, x] == c32[y, x]:
                    continue
                over = odiff._over_threshold(base[y, x][None], comp[y, x][None], limit)[0]
                if over and not (antialiasing and (_detect(b32, c32, x, y) or _detect(c32, b32, x, y))):
                    mask[y, x] = True
            elif in_base:
                mask[y, x] = base[y, x, 3] != 0
            elif in_comp:
                mask[y, x] = comp[y, x, 3] != 0
    return mask


def _brightness_delta(a: int, b: int) -> float:
    values = odiff._luma(np.array([a, b], dtype=np.uint32))
    return float(values[0] - values[1])


def _many_siblings(img: np.ndarray, x: int, y: int) -> bool:
    height, width = img.shape
    if x > width - 1 or y > height - 1:
        return False
    x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + 1, width - 1), min(y + 1, height - 1)
    zeroes = 1 if x in (x0, x1) or y in (y0, y1) else 0
    for adj_y in range(y0, y1 + 1):
        for adj_x in range(x0, x1 + 1):
            if zeroes < 3 and (adj_x, adj_y) != (x, y) and img[adj_y, adj_x] == img[y, x]:
                zeroes += 1
    return zeroes >= 3


def _detect(img: np.ndarray, other: np.ndarray, x: int, y: int) -> bool:
    height, width = img.shape
    x0, y0, x1, y1 = max(x - 1, 0), max(y - 1, 0), min(x + 1, width - 1), min(y + 1, height - 1)
    zeroes = 1 if x in (x0, x1) or y in (y0, y1) else 0
    low = high = 0.0
    low_at = high_at = (0, 0)
    for adj_y in range(y0, y1 + 1):
        for adj_x in range(x0, x1 + 1):
            if zeroes < 3 and (adj_x, adj_y) != (x, y):
                if img[adj_y, adj_x] == img[y, x]:
                    zeroes += 1
                else:
                    delta = _brightness_delta(int(img[y, x]), int(img[adj_y, adj_x]))
                    if delta < low:
                        low, low_at = delta, (adj_x, adj_y)
                    elif delta > high:
                        high, high_at = delta, (adj_x, adj_y)
    if zeroes >= 3 or low == 0.0 or high == 0.0:
        return False
    return ((_many_siblings(img, *low_at) or _many_siblings(img, *high_at))
            and (_many_siblings(other, *low_at) or _many_siblings(other, *high_at)))
