"""The diff kernel the vectorised engines share: differing pixels in row bands, 3x3 neighbourhoods and
the anti-aliasing tests around them (slopes, identical siblings, mapped at once in busy bands)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# Rows are scanned in bands of about this many pixels so temporaries stay small on tall pages.
BAND_PIXELS = 1 << 19


def check_inputs(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None) -> tuple[int, int]:
    """Validate two canvases (and an ignore mask); return (height, width)."""
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"expected two HxWx4 arrays of one shape, got {a.shape} and {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError("expected uint8 arrays")
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("expected C-contiguous arrays")
    if ignore is not None and (ignore.shape != a.shape[:2] or ignore.dtype != np.bool_):
        raise ValueError(f"ignore must be a {a.shape[:2]} bool array")
    return a.shape[0], a.shape[1]


def differing(
    a2d: np.ndarray, b2d: np.ndarray, width: int, height: int, ignore: np.ndarray | None
) -> Iterator[np.ndarray]:
    """Flat canvas indices (ascending, one array per row band) of the pixels in the top-left
    ``width`` x ``height`` region whose packed RGBA values differ and that are not ignored."""
    canvas_width = a2d.shape[1]
    if width <= 0 or height <= 0:
        return
    band = max(1, BAND_PIXELS // width)
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        differs = a2d[r0:r1, :width] != b2d[r0:r1, :width]
        if ignore is not None:
            differs &= ~ignore[r0:r1, :width]
        local = np.flatnonzero(differs)
        if local.size == 0:
            continue
        if width == canvas_width:
            yield local + r0 * canvas_width
        else:
            yield (local // width + r0) * canvas_width + local % width


class Neighbourhood:
    """The 3x3 neighbourhoods of a set of pixels (flat indices) on a width x height canvas.

    Most pixels are inside the canvas, where a neighbour is one addition away; only the few on
    its border are looked at again for neighbours that do not exist.
    """

    def __init__(self, idx: np.ndarray, width: int, height: int) -> None:
        self.idx = idx
        self.width = width
        x = idx % width
        self._border = np.flatnonzero(
            (x == 0) | (x == width - 1) | (idx < width) | (idx >= (height - 1) * width)
        )
        bx, bi = x[self._border], idx[self._border]
        self._inside = {
            (-1, 0): bx > 0,
            (1, 0): bx < width - 1,
            (0, -1): bi >= width,
            (0, 1): bi < (height - 1) * width,
        }

    def on_edge(self) -> np.ndarray:
        """1 for pixels on the canvas border (both references count that as one equal sibling)."""
        count = np.zeros(self.idx.size, dtype=np.int8)
        count[self._border] = 1
        return count

    def at(self, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat index of the (dx, dy) neighbour of each pixel, and the positions (into ``idx``)
        of the pixels that have no such neighbour: there it is the pixel itself."""
        nb = self.idx + (dy * self.width + dx)
        if dx and dy:
            ok = self._inside[dx, 0] & self._inside[0, dy]
        else:
            ok = self._inside[dx, 0] if dx else self._inside[0, dy]
        missing = self._border[~ok]
        nb[missing] = self.idx[missing]
        return nb, missing


# The 8 neighbours, x outer and y inner (pixelmatch's loops) ...
X_MAJOR = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
# ... and y outer and x inner (odiff's loops).
Y_MAJOR = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))


def many_siblings(img: np.ndarray, idx: np.ndarray, width: int, height: int) -> np.ndarray:
    """Whether each pixel has 3+ neighbours with the identical packed value in ``img`` (a flat
    uint32 canvas); a pixel on the border starts with one."""
    around = Neighbourhood(idx, width, height)
    value = np.take(img, idx)
    count = around.on_edge()
    for dx, dy in X_MAJOR:
        nb, missing = around.at(dx, dy)
        same = np.take(img, nb) == value
        same[missing] = False
        count += same
    return count >= 3


class Siblings:
    """`many_siblings` in either of two flat canvases, or in both at once (`in_both`), for the
    pixels of one row band and their neighbours, the band being given by the tested pixels
    (ascending flat indices). Where many of the band's pixels are tested, the answer for every
    pixel of the band (and the rows beside it) is computed at once from shifted rows, which costs
    a few operations per pixel instead of eight gathers per tested pixel."""

    DENSE_SHARE = 128
    """Map a band once more than 1 in this many of its pixels are tested. Maps cost more CPU than
    gathers on the sparsest bands but run as a few large array operations, which release the GIL
    (on 2 threads over the real corpus 1 in 64 to 1 in 1024 beat 1 in 16 by about 7%)."""

    def __init__(self, a32: np.ndarray, b32: np.ndarray, idx: np.ndarray, width: int, height: int) -> None:
        self.canvases = (a32, b32)
        self.width, self.height = width, height
        first, last = int(idx[0]) // width, int(idx[-1]) // width
        self.rows = (max(first - 1, 0), min(last + 2, height))
        self.dense = idx.size * self.DENSE_SHARE > (last - first + 1) * width
        # Per canvas, then (last) for both at once: the sibling maps and those grown by a pixel.
        self._maps: list[np.ndarray | None] = [None, None, None]
        self._near: list[np.ndarray | None] = [None, None, None]

    def __call__(self, img: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Whether each pixel (flat indices in the band or next to it) of ``img``, one of the two
        canvases, has 3+ identical neighbours; a pixel on the border starts with one."""
        if not self.dense:
            return many_siblings(img, idx, self.width, self.height)
        return np.take(self._map(self._which(img)), idx - self.rows[0] * self.width)

    def in_both(self, idx: np.ndarray) -> np.ndarray:
        """Whether each pixel (as for a call) has 3+ identical neighbours in both canvases."""
        if not self.dense:
            a32, b32 = self.canvases
            hit = many_siblings(a32, idx, self.width, self.height)
            hit[hit] = many_siblings(b32, idx[hit], self.width, self.height)
            return hit
        return np.take(self._map(_BOTH), idx - self.rows[0] * self.width)

    def beside(self, img: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        """In a dense band: whether the 3x3 block around each pixel (in the band) holds a pixel
        that has 3+ identical neighbours in ``img``, or in both canvases for None."""
        which = _BOTH if img is None else self._which(img)
        found = self._near[which]
        if found is None:
            found = self._near[which] = _dilated(self._map(which).reshape(-1, self.width))
        return np.take(found, idx - self.rows[0] * self.width)

    def _map(self, which: int) -> np.ndarray:
        found = self._maps[which]
        if found is None:
            if which == _BOTH:
                found = self._map(0) & self._map(1)
            else:
                found = self._count(self.canvases[which])
            self._maps[which] = found
        return found

    def _which(self, img: np.ndarray) -> int:
        for which, canvas in enumerate(self.canvases):
            if img is canvas:
                return which
        raise ValueError("not one of the two canvases of this band")

    def _count(self, img: np.ndarray) -> np.ndarray:
        width, height = self.width, self.height
        top, bottom = self.rows
        # Counted over one more row each side, so the rows of the map see all their neighbours.
        first, last = max(top - 1, 0), min(bottom + 1, height)
        canvas = img.reshape(height, width)[first:last]
        rows = last - first
        count = np.zeros((rows, width), dtype=np.int8)
        count[:, 0] = count[:, -1] = 1
        if first == 0:
            count[0] = 1
        if last == height:
            count[-1] = 1
        # Equality is symmetric: each of four directions counts for both pixels of a pair.
        for dx, dy in ((1, 0), (-1, 1), (0, 1), (1, 1)):
            x0, x1 = max(0, -dx), min(width, width - dx)
            same = (canvas[: rows - dy, x0:x1] == canvas[dy:, x0 + dx : x1 + dx]).view(np.int8)  # 0 or 1
            count[: rows - dy, x0:x1] += same
            count[dy:, x0 + dx : x1 + dx] += same
        return (count[top - first : bottom - first] >= 3).reshape(-1)


_BOTH = 2
"""`Siblings`' index of its maps for both canvases at once."""


def _dilated(mask: np.ndarray) -> np.ndarray:
    """A 2-D bool mask grown by one pixel in all eight directions (flat)."""
    rows = mask.copy()
    rows[:, 1:] |= mask[:, :-1]
    rows[:, :-1] |= mask[:, 1:]
    grown = rows.copy()
    grown[1:] |= rows[:-1]
    grown[:-1] |= rows[1:]
    return grown.reshape(-1)


class Bounds:
    """Running bounding box of flat indices (or rectangles) added to it."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.x0: int | None = None
        self.y0: int | None = None
        self.x1 = self.y1 = -1

    def add_sorted(self, idx: np.ndarray) -> None:
        """Add ascending flat indices."""
        if idx.size == 0:
            return
        cols = idx % self.width
        self.add_rect(int(cols.min()), int(idx[0] // self.width), int(cols.max()) + 1,
                      int(idx[-1] // self.width) + 1)

    def add_rect(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """Add the rectangle [x0, x1) x [y0, y1)."""
        if x0 >= x1 or y0 >= y1:
            return
        self.x0 = x0 if self.x0 is None else min(self.x0, x0)
        self.y0 = y0 if self.y0 is None else min(self.y0, y0)
        self.x1 = max(self.x1, x1)
        self.y1 = max(self.y1, y1)

    def add_mask(self, mask: np.ndarray, x_off: int, y_off: int) -> None:
        """Add the True pixels of a 2-D mask placed at (x_off, y_off)."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return
        cols = np.flatnonzero(mask.any(axis=0))
        self.add_rect(x_off + int(cols[0]), y_off + int(rows[0]),
                      x_off + int(cols[-1]) + 1, y_off + int(rows[-1]) + 1)

    def get(self) -> tuple[int, int, int, int] | None:
        if self.x0 is None or self.y0 is None:  # both are set together
            return None
        return self.x0, self.y0, self.x1, self.y1


def mark_outside_overlap(
    mask: np.ndarray, ow: int, oh: int, ignore: np.ndarray | None, bounds: Bounds
) -> int:
    """Set every pixel outside the overlap (bar ignored ones); return how many were set."""
    height, width = mask.shape
    if (ow, oh) == (width, height):
        return 0
    total = 0
    for rows, cols, x_off, y_off in (
        (slice(None), slice(ow, None), ow, 0),
        (slice(oh, None), slice(None, ow), 0, oh),
    ):
        part = mask[rows, cols]
        if part.size == 0:
            continue
        if ignore is None:
            part[...] = True
            total += part.size
            bounds.add_rect(x_off, y_off, x_off + part.shape[1], y_off + part.shape[0])
        else:
            np.logical_not(ignore[rows, cols], out=part)
            total += int(part.sum())
            bounds.add_mask(part, x_off, y_off)
    return total


def window_max(
    mask: np.ndarray, window_size: int, bounds: tuple[int, int, int, int] | None
) -> int:
    """Largest number of True pixels in any n x n window lying wholly on the canvas, n being
    ``window_size`` clamped to 1..min(width, height) as pixelmatch clamps it."""
    height, width = mask.shape
    n = max(1, min(int(window_size), width, height))
    if bounds is None:
        return 0
    x0, y0, x1, y1 = bounds
    # Windows touching the changed pixels: top-left corners in these ranges.
    wx0, wx1 = max(0, x0 - n + 1), min(width - n, x1 - 1) + 1
    wy0, wy1 = max(0, y0 - n + 1), min(height - n, y1 - 1) + 1
    cols = mask[:, wx0 : wx1 + n - 1]
    span = cols.shape[1]
    chunk = max(1, BAND_PIXELS // max(span, 1))
    best = 0
    for c0 in range(wy0, wy1, chunk):
        c1 = min(wy1, c0 + chunk)
        rows = np.zeros((c1 - c0 + n, span), dtype=np.int32)
        np.cumsum(cols[c0 : c1 + n - 1], axis=0, dtype=np.int32, out=rows[1:])
        column_sums = rows[n:] - rows[:-n]
        across = np.zeros((column_sums.shape[0], span + 1), dtype=np.int32)
        np.cumsum(column_sums, axis=1, out=across[:, 1:])
        best = max(best, int((across[:, n:] - across[:, :-n]).max()))
    return best


@dataclass
class Found:
    """What `find_changes` found: the mask so far, its bounds, and the counts of changed and
    anti-aliased pixels (the latter two also restricted to the overlap of the originals)."""

    mask: np.ndarray
    bounds: Bounds
    changed: int = 0
    changed_in_overlap: int = 0
    aa_in_overlap: int = 0


Threshold = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(flat indices, packed canvas a, packed canvas b) -> whether each pixel is over the threshold."""
Antialiased = Callable[[np.ndarray, np.ndarray, np.ndarray, Siblings], np.ndarray]
"""(packed canvas tested, the other canvas, flat indices, their band's sibling test) -> whether
each pixel is anti-aliasing. It is called only for pixels with at most two identical neighbours
in the canvas tested (`_on_slope`), which the engines' slope tests may rely on."""


def find_changes(
    a: np.ndarray,
    b: np.ndarray,
    overlap: tuple[int, int],
    ignore: np.ndarray | None,
    *,
    region: tuple[int, int] | None,
    over_threshold: Threshold,
    antialiased: Antialiased | None,
    one_neighbour_in_both: bool = False,
) -> Found:
    """The scan every engine shares: over the top-left ``region`` (default: the overlap), take
    the pixels whose packed values differ and are not ignored, keep those over the threshold,
    drop those that look anti-aliased in either image (tested in ``a`` first, then in ``b``
    for the rest), and mark the rest in a canvas-sized mask.

    ``one_neighbour_in_both`` says the engine's anti-aliasing test needs one neighbour with 3+
    identical neighbours in both images (pixelmatch's rule), not one in each (odiff's)."""
    height, width = check_inputs(a, b, ignore)
    ow, oh = overlap
    region = region or overlap
    partial = region != overlap
    a2d = a.view(np.uint32).reshape(height, width)
    b2d = b.view(np.uint32).reshape(height, width)
    a32, b32 = a2d.reshape(-1), b2d.reshape(-1)
    found = Found(np.zeros((height, width), dtype=bool), Bounds(width))
    flat = found.mask.reshape(-1)
    for idx in differing(a2d, b2d, *region, ignore):
        changed = idx[over_threshold(idx, a32, b32)]
        if antialiased is not None and changed.size:
            siblings = Siblings(a32, b32, changed, width, height)
            aa = _on_slope(antialiased, a32, b32, changed, siblings, one_neighbour_in_both)
            undecided = np.flatnonzero(~aa)
            if undecided.size:
                aa[undecided] = _on_slope(antialiased, b32, a32, changed[undecided], siblings,
                                          one_neighbour_in_both)
            excluded = changed[aa]
            found.aa_in_overlap += (
                int(np.count_nonzero(_in_overlap(excluded, width, ow, oh))) if partial else excluded.size
            )
            changed = changed[~aa]
        if changed.size:
            flat[changed] = True
            found.bounds.add_sorted(changed)
            found.changed += changed.size
            found.changed_in_overlap += (
                int(np.count_nonzero(_in_overlap(changed, width, ow, oh))) if partial else changed.size
            )
    return found


def _on_slope(
    antialiased: Antialiased, img: np.ndarray, other: np.ndarray, idx: np.ndarray,
    siblings: Siblings, one_neighbour_in_both: bool,
) -> np.ndarray:
    """``antialiased(img, other, idx, siblings)``, run only on the pixels that can be
    anti-aliasing: every engine counts an identical neighbour as equal and rules out a pixel
    with 3+ equal ones (the border counting as one), which the sibling test settles cheaply."""
    result = np.zeros(idx.size, dtype=bool)
    maybe = np.flatnonzero(~siblings(img, idx))
    if siblings.dense and maybe.size:
        # Each engine also needs its darkest or brightest neighbour to have 3+ identical
        # neighbours in img, and one of the two to have them in other (pixelmatch: the same
        # one): without such pixels around it, a pixel is no anti-aliasing.
        at = idx[maybe]
        if one_neighbour_in_both:
            maybe = maybe[siblings.beside(None, at)]
        else:
            maybe = maybe[siblings.beside(img, at) & siblings.beside(other, at)]
    if maybe.size:
        result[maybe] = antialiased(img, other, idx[maybe], siblings)
    return result


def _in_overlap(idx: np.ndarray, width: int, ow: int, oh: int) -> np.ndarray:
    return (idx % width < ow) & (idx // width < oh)


@dataclass
class Slope:
    """The neighbours of pixels under the anti-aliasing test: how many equal each pixel, and the
    brightness delta to each (one row per neighbour, at ``offsets`` from the pixel)."""

    idx: np.ndarray
    zeroes: np.ndarray | None
    deltas: np.ndarray
    offsets: np.ndarray

    def candidates(self) -> np.ndarray:
        """Positions of the pixels on a slope: at most two equal neighbours, some darker and
        some brighter ones (the first half of the detector of Vysniauskas, 2009)."""
        slope = (self.deltas.min(axis=0) < 0) & (self.deltas.max(axis=0) > 0)
        if self.zeroes is not None:
            slope &= self.zeroes <= 2
        return np.flatnonzero(slope)

    def darkest_at(self, positions: np.ndarray) -> np.ndarray:
        """Flat index of the darkest neighbour of the pixels at these positions (candidates); on
        ties the first in walking order, the one the references' strict comparisons keep.

        A candidate's darkest and brightest deltas are not 0, so neither is a missing neighbour
        (whose delta, to the pixel itself, is exactly 0): pixel plus offset is on the canvas.
        """
        darkest: np.ndarray = self.idx[positions] + self.offsets[self.deltas[:, positions].argmin(axis=0)]
        return darkest

    def brightest_at(self, positions: np.ndarray) -> np.ndarray:
        """Flat index of the brightest neighbour of the pixels at these positions (candidates;
        the first on ties)."""
        brightest: np.ndarray = self.idx[positions] + self.offsets[self.deltas[:, positions].argmax(axis=0)]
        return brightest


def slope(
    idx: np.ndarray,
    width: int,
    height: int,
    order: tuple[tuple[int, int], ...],
    delta: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
) -> Slope:
    """Walk the 8 neighbours of each pixel in ``order``; ``delta(neighbour indices)`` gives the
    brightness delta to each neighbour (only its order and sign matter, so any values ordered
    as the reference's are) and whether it counts as equal, or None when only identical
    neighbours do: the pixels have passed `many_siblings` already, so they have at most two of
    those and nothing needs counting. A missing neighbour reads the pixel itself (delta 0, which
    can be neither darker nor brighter than the pixel, so it is never picked as either) and is
    kept out of the equal count; a border pixel starts that count at 1.
    """
    around = Neighbourhood(idx, width, height)
    zeroes = None
    deltas = None
    for k, (dx, dy) in enumerate(order):
        nb, missing = around.at(dx, dy)
        d, equal = delta(nb)
        if equal is not None:
            equal[missing] = False
            zeroes = around.on_edge() if zeroes is None else zeroes
            zeroes += equal
        if deltas is None:
            deltas = np.empty((len(order), idx.size), dtype=d.dtype)
        deltas[k] = d
    offsets = np.array([dy * width + dx for dx, dy in order], dtype=idx.dtype)
    assert deltas is not None  # order always holds neighbours: the loop made deltas
    return Slope(idx, zeroes, deltas, offsets)


def antialiased_pixelmatch(
    idx: np.ndarray,
    siblings: Siblings,
    width: int,
    height: int,
    delta: Callable[[np.ndarray], np.ndarray],
    zero_if_identical: bool = False,
) -> np.ndarray:
    """pixelmatch's antialiased() (7.2.0 and main alike, but for the brightness ``delta`` of
    each centre to the neighbours given): on a slope (see `Slope.candidates`) and with 3+ equal
    siblings in both images around the darkest neighbour, or else around the brightest.
    ``zero_if_identical`` says a delta is 0 only to an identical neighbour: then no equal
    neighbours are counted, the pixels having at most two identical ones (see `Antialiased`)."""
    if zero_if_identical:
        found = slope(idx, width, height, X_MAJOR, lambda nb: (delta(nb), None))
    else:
        found = slope(idx, width, height, X_MAJOR, lambda nb: ((d := delta(nb)), d == 0))
    result = np.zeros(idx.size, dtype=bool)
    candidates = found.candidates()
    if candidates.size:
        result[candidates] = _siblings_in_both(found, candidates, siblings)
    return result


def _siblings_in_both(found: Slope, candidates: np.ndarray, siblings: Siblings) -> np.ndarray:
    # Each test runs only where it can still change the outcome.
    hit = siblings.in_both(found.darkest_at(candidates))
    rest = np.flatnonzero(~hit)
    if rest.size:
        hit[rest] = siblings.in_both(found.brightest_at(candidates[rest]))
    return hit
