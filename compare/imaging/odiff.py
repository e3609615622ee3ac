"""YIQ pixel diff as odiff computes it, vectorised over the differing pixels only.

Reference: github.com/dmtrKovalenko/odiff release 4.5.0 (tag v4.5.0), files ``src/diff.zig``
(``compareSameLayouts``, ``processPixelDifference``), ``src/color_delta.zig``
(``calculatePixelColorDeltaSimd``, ``calculatePixelBrightnessDelta``) and
``src/antialiasing.zig``; threshold parsing in ``src/cli.zig``. Results match the ``odiff-bin``
4.5.0 CLI (``odiff base.png head.png out.png --diff-mask -t T [--aa]``) exactly, for the same
RGBA pixels: images are decoded as for every engine (`compare.imaging.decode`), so a 16-bit grey
PNG is taken to 8 bits with rounding, as pixelmatch's reader (pngjs) does, where odiff keeps each
sample's high byte (0xFF00 is 254 here, 255 to odiff).

Colour delta: each pixel is composited over white (fully transparent pixels are white) and taken
to YIQ in odiff's fixed-point integer arithmetic (12 fractional bits, coefficients truncated,
arithmetic shifts); a pixel is over the threshold when the weighted squared YIQ distance exceeds
``35215 * t**2`` in the same fixed point, ``t`` being the threshold rounded to float32 as the CLI
parses it. With ``antialiasing`` on, a pixel is not counted when odiff's slope test (float64
luma over white, neighbours read row by row, equal siblings by identical RGBA) finds it
anti-aliased in either image.

Canvas rule, as ``compareDifferentLayouts`` in ``src/diff.zig`` has it: inside the overlap of
the two images a pixel counts by the colour delta and anti-aliasing test above, the test reading
each image's neighbours within that image's own bounds; outside the overlap every pixel of the
larger image that is not fully transparent counts (odiff issue #170: a white page that grows
wider is a change). Ignored pixels never count, outside the overlap too (odiff 4.5.0 applies its
ignore regions inside the overlap only). odiff's own diff image is the base image's size; the
mask here is the union canvas's and also marks the counted pixels beyond the base image.

With ``padded``, the images are compared as Sentry runs odiff: both padded top-left with
transparent black to the union canvas first, so odiff sees two images of one size and compares
the padding like any pixel (padding is white to odiff, so it differs only from content that is
not white). For images of one size the two rules agree.
"""

from __future__ import annotations

import functools

import numpy as np

from .kernel import Y_MAJOR, Bounds, Siblings, find_changes, slope
from .scan import Scan

_SHIFT = 12
_ONE = 1 << _SHIFT
_WHITE = 255 << _SHIFT
_MAX_YIQ_DELTA = 35215.0

_Y = (0.29889531, 0.58662247, 0.11448223)
_I = (0.59597799, -0.27417610, -0.32180189)
_Q = (0.21147017, -0.52261711, 0.31114694)
# Fixed-point coefficients, truncated toward zero.
_Y_FIXED, _I_FIXED, _Q_FIXED = (tuple(int(c * _ONE) for c in row) for row in (_Y, _I, _Q))
_WEIGHTS_FIXED = tuple(int(w * _ONE) for w in (0.5053, 0.299, 0.1957))


def max_delta(threshold: float) -> int:
    """odiff's fixed-point limit for a CLI threshold (parsed as float32, widened to float64)."""
    t = float(np.float32(threshold))
    return int(_MAX_YIQ_DELTA * (t * t) * float(_ONE))


def _yiq_fixed(px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed-point Y, I, Q of n x 4 RGBA pixels composited over white."""
    c = px.T.astype(np.int64)
    alpha = c[3]
    if (alpha == 255).all():
        r, g, b = c[0] << _SHIFT, c[1] << _SHIFT, c[2] << _SHIFT
    else:
        # 255 + (c - 255) * a / 255 with the quotient truncated toward zero (c - 255 <= 0).
        r, g, b = (_WHITE - ((255 - c[k]) * alpha * _ONE) // 255 for k in range(3))
    return tuple(
        (r * cr + g * cg + b * cb) >> _SHIFT for cr, cg, cb in (_Y_FIXED, _I_FIXED, _Q_FIXED)
    )


def _over_threshold(p: np.ndarray, q: np.ndarray, limit: int) -> np.ndarray:
    y1, i1, q1 = _yiq_fixed(p)
    y2, i2, q2 = _yiq_fixed(q)
    dy = y1 - y2
    di = i1 - i2
    dq = q1 - q2
    wy, wi, wq = _WEIGHTS_FIXED
    delta = (dy * dy * wy + di * di * wi + dq * dq * wq) >> (2 * _SHIFT)
    over: np.ndarray = delta > limit
    return over


def _luma_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel, coefficient * (channel composited over white) for index alpha * 256 + value:
    255 + (c - 255) * (a / 255) in float64, which is exactly c for opaque pixels and 255 for
    fully transparent ones, as odiff's special cases have it."""
    alpha = np.arange(256, dtype=np.float64)[:, None] / 255.0
    channel = np.arange(256, dtype=np.float64)[None, :]
    blended = (255.0 + (channel - 255.0) * alpha).reshape(-1)
    red, green, blue = _Y
    return blended * red, blended * green, blended * blue


_LUMA_R, _LUMA_G, _LUMA_B = _luma_tables()


def _luma(values: np.ndarray) -> np.ndarray:
    """float64 luma of packed RGBA pixels composited over white (odiff's brightness for the
    anti-aliasing test), summed in odiff's order."""
    high = (values >> 16) & 0xFF00  # alpha * 256
    luma: np.ndarray = (
        np.take(_LUMA_R, high | (values & 0xFF)) + np.take(_LUMA_G, high | ((values >> 8) & 0xFF))
    ) + np.take(_LUMA_B, high | ((values >> 16) & 0xFF))
    return luma


def _antialiased(
    img: np.ndarray, other: np.ndarray, idx: np.ndarray, siblings: Siblings, width: int,
    height: int,
) -> np.ndarray:
    """odiff's detect(): slope test of the pixels ``idx`` in ``img``, siblings in both images."""
    centre_luma = _luma(np.take(img, idx))

    def delta(nb: np.ndarray) -> tuple[np.ndarray, None]:
        # odiff counts identical neighbours as equal, not those of equal brightness.
        return centre_luma - _luma(np.take(img, nb)), None

    found = slope(idx, width, height, Y_MAJOR, delta)
    result = np.zeros(idx.size, dtype=bool)
    candidates = found.candidates()
    if candidates.size:
        # (3+ equal siblings around the darkest or the brightest in img) and (the same in
        # other); each test runs only where it can still change the outcome.
        dark, bright = found.darkest_at(candidates), found.brightest_at(candidates)
        hit = _siblings_around_either(siblings, img, dark, bright)
        sel = np.flatnonzero(hit)
        if sel.size:
            hit[sel] = _siblings_around_either(siblings, other, dark[sel], bright[sel])
        result[candidates] = hit
    return result


def _siblings_around_either(
    siblings: Siblings, img: np.ndarray, dark: np.ndarray, bright: np.ndarray
) -> np.ndarray:
    hit = siblings(img, dark)
    rest = np.flatnonzero(~hit)
    if rest.size:
        hit[rest] = siblings(img, bright[rest])
    return hit


def scan(
    a: np.ndarray,
    b: np.ndarray,
    overlap: tuple[int, int],
    *,
    threshold: float,
    antialiasing: bool,
    ignore: np.ndarray | None = None,
    sizes: tuple[tuple[int, int], tuple[int, int]] | None = None,
    padded: bool = False,
) -> Scan:
    """Compare two canvases (the images padded top-left to the union canvas) as the odiff 4.5.0
    CLI compares the images; ``sizes`` are the images' own (width, height), needed when they
    differ and ``padded`` is off. See the module docstring."""
    height, width = a.shape[:2]
    limit = max_delta(threshold)

    def over_threshold(idx: np.ndarray, a32: np.ndarray, b32: np.ndarray) -> np.ndarray:
        p = np.take(a32, idx).view(np.uint8).reshape(-1, 4)
        q = np.take(b32, idx).view(np.uint8).reshape(-1, 4)
        return _over_threshold(p, q, limit)

    if padded or overlap == (width, height):
        found = find_changes(
            a, b, overlap, ignore, region=(width, height), over_threshold=over_threshold,
            antialiased=functools.partial(_antialiased, width=width, height=height) if antialiasing else None,
        )
        return Scan(found.mask, found.changed, found.aa_in_overlap, found.bounds.get())
    if sizes is None:
        raise ValueError("odiff needs the images' sizes to compare images of different sizes")
    found = find_changes(a, b, overlap, ignore, region=None, over_threshold=over_threshold,
                         antialiased=None)
    aa_pixels = 0
    if antialiasing:
        flat = found.mask.reshape(-1)
        over = np.flatnonzero(flat)
        for start in range(0, over.size, _AA_BLOCK):
            block = over[start:start + _AA_BLOCK]
            aa = _antialiased_in_bounds(a, b, block, sizes)
            aa_pixels += int(np.count_nonzero(aa))
            flat[block[aa]] = False
    outside = _outside_overlap(a, b, overlap, ignore)
    mask = found.mask | outside
    bounds = Bounds(width)
    bounds.add_mask(mask, 0, 0)
    return Scan(mask, int(np.count_nonzero(mask)), aa_pixels, bounds.get())


_AA_BLOCK = 1 << 14
"""Changed pixels of images of different sizes whose anti-aliasing test runs at once: it holds
about 600 bytes a pixel (the 3x3 neighbourhoods' positions, values and brightness deltas), 10 MB
a block. Each pixel's test reads the images alone, so the blocks give the same result as one."""

# The 3x3 neighbourhood in odiff's order: rows top to bottom, each left to right.
_NEIGHBOURS = tuple((dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy)


def _antialiased_in_bounds(
    a: np.ndarray, b: np.ndarray, idx: np.ndarray, sizes: tuple[tuple[int, int], tuple[int, int]]
) -> np.ndarray:
    """odiff's detect() run from both images for the canvas pixels ``idx`` of the overlap, each
    image's neighbours read within its own bounds (odiff's different-layout comparison)."""
    width = a.shape[1]
    ys, xs = np.divmod(idx, width)
    (wa, ha), (wb, hb) = sizes
    first, second = a[:ha, :wa].view(np.uint32)[..., 0], b[:hb, :wb].view(np.uint32)[..., 0]
    result = _detect(first, second, xs, ys)
    rest = np.flatnonzero(~result)
    if rest.size:
        result[rest] = _detect(second, first, xs[rest], ys[rest])
    return result


def _detect(img: np.ndarray, other: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """odiff's detect(img, other) at (xs, ys), inside ``img``: the slope test, then the darkest
    or brightest neighbour having 3+ identical neighbours in ``img`` and in ``other`` (each
    within its own bounds; a neighbour outside ``other`` has none there)."""
    nx, ny, inside, values, same, zeroes = _around(img, xs, ys)
    delta = _luma(img[ys, xs])[:, None] - _luma(values)
    counted = inside & ~same
    darkest = np.argmin(np.where(counted, delta, np.inf), axis=1)
    brightest = np.argmax(np.where(counted, delta, -np.inf), axis=1)
    on_slope = ((zeroes < 3) & (np.where(counted, delta, 0.0).min(axis=1) < 0)
                & (np.where(counted, delta, 0.0).max(axis=1) > 0))
    result = np.zeros(xs.size, dtype=bool)
    sel = np.flatnonzero(on_slope)
    if sel.size:
        dark = (nx[sel, darkest[sel]], ny[sel, darkest[sel]])
        bright = (nx[sel, brightest[sel]], ny[sel, brightest[sel]])
        result[sel] = ((_many_siblings(img, *dark) | _many_siblings(img, *bright))
                       & (_many_siblings(other, *dark) | _many_siblings(other, *bright)))
    return result


def _around(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 3x3 neighbourhoods of the pixels (xs, ys) of ``img``, in odiff's order: each
    neighbour's x and y, whether it lies inside ``img``, its value, whether it is identical to
    the centre, and per pixel odiff's count of equal siblings (identical neighbours, and one
    more on the image's border)."""
    height, width = img.shape
    nx = xs[:, None] + np.array([dx for dx, _ in _NEIGHBOURS])
    ny = ys[:, None] + np.array([dy for _, dy in _NEIGHBOURS])
    inside = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
    values = img[np.clip(ny, 0, height - 1), np.clip(nx, 0, width - 1)]
    same = inside & (values == img[ys, xs][:, None])
    on_edge = (xs == 0) | (xs == width - 1) | (ys == 0) | (ys == height - 1)
    return nx, ny, inside, values, same, on_edge + np.count_nonzero(same, axis=1)


def _many_siblings(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """odiff's hasManySiblingsWithSameColor: 3+ identical neighbours (the border counting as
    one) around (xs, ys) in ``img``; False where (xs, ys) lies outside it."""
    height, width = img.shape
    inside = (xs < width) & (ys < height)
    result = np.zeros(xs.size, dtype=bool)
    sel = np.flatnonzero(inside)
    if sel.size:
        result[sel] = _around(img, xs[sel], ys[sel])[-1] >= 3
    return result


def _outside_overlap(a: np.ndarray, b: np.ndarray, overlap: tuple[int, int],
                     ignore: np.ndarray | None) -> np.ndarray:
    """The canvas pixels outside the overlap that either image has and that are not fully
    transparent (at most one image has a pixel there), bar ignored ones."""
    ow, oh = overlap
    mask: np.ndarray = (a[..., 3] != 0) | (b[..., 3] != 0)
    mask[:oh, :ow] = False
    if ignore is not None:
        mask &= ~ignore
    return mask
