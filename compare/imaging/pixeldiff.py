"""Pixel diff of two images: pixelmatch 7 semantics, vectorised over the differing pixels only."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..model import DEFAULT_MAX_PIXELS, DEFAULT_THRESHOLD, canvas_size, check_fraction, check_max_pixels
from .decode import ImageInput, ImageTooLarge, OpenedImage, open_image
from .png import encode_mask

# Largest possible YIQ delta between two colours; pixelmatch scales threshold**2 by it.
_MAX_YIQ_DELTA = 35215
# Rows are scanned in bands of about this many pixels so temporaries stay small on tall pages.
_BAND_PIXELS = 1 << 19
# Neighbour offsets (dx, dy) in pixelmatch's scan order (x outer, y inner): among equally dark or
# equally bright neighbours the first one in this order is the one whose siblings are checked.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))

# Per direction ("x-", "x+", "y-", "y+"): whether the neighbour that way lies within the canvas.
Inside = dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class DiffResult:
    """Outcome of one comparison, on the canvas both images were placed on (top-left aligned).

    ``mask`` is a bool array of the canvas (height x width), True where a pixel changed;
    ``bbox`` is (x0, y0, x1, y1) with exclusive ends, or None when nothing changed; ``aa_pixels``
    counts pixels over the threshold that were excluded as anti-aliasing.
    """

    changed_pixels: int
    total_pixels: int
    aa_pixels: int
    bbox: tuple[int, int, int, int] | None
    mask: np.ndarray
    before_size: tuple[int, int]
    after_size: tuple[int, int]

    @property
    def diff_ratio(self) -> float:
        """Changed pixels as a fraction of the canvas."""
        return self.changed_pixels / self.total_pixels

    @property
    def canvas_size(self) -> tuple[int, int]:
        """(width, height) of the canvas: the larger width and larger height of the two images."""
        return self.mask.shape[1], self.mask.shape[0]

    def mask_png(self) -> bytes:
        """The mask as a canvas-sized 1-bit PNG; decoded to grey, changed pixels are 255."""
        return encode_mask(self.mask)


def diff_images(
    before: ImageInput,
    after: ImageInput,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    antialiasing: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> DiffResult:
    """Compare two images pixel by pixel, as pixelmatch 7 does, and report which pixels changed.

    ``before`` and ``after`` are encoded bytes (PNG, JPEG, WebP), PIL images of any mode or
    HxWx4 uint8 RGBA arrays. ``threshold`` (0..1) is pixelmatch's colour sensitivity: a pixel
    changes when its YIQ delta exceeds 35215 * threshold**2. With ``antialiasing`` on, pixels that
    look like anti-aliasing in either image are not counted. Semi-transparent pixels are blended
    over pixelmatch 7's checkerboard. Images of different sizes are placed top-left on the union
    canvas and every canvas pixel outside their overlap counts as changed.

    ``name`` labels the pair in error messages.

    Raises ImageTooLarge (from the headers, before decoding) when the canvas has more than
    ``max_pixels`` pixels, ImageDecodeError for undecodable bytes, ImageError for unusable arrays
    and TypeError for unsupported input types.
    """
    check_fraction("threshold", threshold)
    first, second = open_pair(before, after, max_pixels=max_pixels, name=name)
    width, height = canvas_size(first.size, second.size)
    a = pad_to_canvas(first.rgba(), width, height)
    b = pad_to_canvas(second.rgba(), width, height)
    overlap = (min(first.size[0], second.size[0]), min(first.size[1], second.size[1]))

    scan = _Scan(a, b, overlap, threshold, antialiasing)
    scan.run()
    return DiffResult(
        changed_pixels=scan.changed,
        total_pixels=width * height,
        aa_pixels=scan.aa_count,
        bbox=scan.bbox(),
        mask=scan.mask,
        before_size=first.size,
        after_size=second.size,
    )


def open_pair(
    before: ImageInput,
    after: ImageInput,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    exif_orientation: bool = True,
) -> tuple[OpenedImage, OpenedImage]:
    """Open both inputs reading only their headers; check the union canvas against ``max_pixels``.

    Returns the two opened images (decode each with ``.rgba()``). Raises ImageTooLarge when the
    canvas (larger width x larger height) has more than ``max_pixels`` pixels, and otherwise as
    `compare.imaging.decode.open_image` (which ``exif_orientation`` is passed to). ``name`` labels
    the pair in error messages.
    """
    check_max_pixels(max_pixels)
    suffix = f" {name!r}" if name else ""
    first = open_image(before, f"before image{suffix}", exif_orientation=exif_orientation)
    second = open_image(after, f"after image{suffix}", exif_orientation=exif_orientation)
    width, height = canvas_size(first.size, second.size)
    if width * height > max_pixels:
        first.close()
        second.close()
        raise ImageTooLarge(
            f"comparison canvas{suffix} {width}x{height} = {width * height} pixels exceeds "
            f"max_pixels={max_pixels} (before {first.size[0]}x{first.size[1]}, "
            f"after {second.size[0]}x{second.size[1]})",
            pixels=width * height,
            max_pixels=max_pixels,
        )
    return first, second


def pad_to_canvas(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pad an image top-left with transparent black to the canvas (no copy when it fits already)."""
    if rgba.shape[:2] == (height, width):
        return rgba
    canvas = np.zeros((height, width, 4), dtype=np.uint8)
    canvas[: rgba.shape[0], : rgba.shape[1]] = rgba
    return canvas


def _rgba(values: np.ndarray) -> np.ndarray:
    """Packed uint32 pixels (as stored in memory) as an n x 4 uint8 array of r, g, b, a."""
    return values.view(np.uint8).reshape(-1, 4)


def _checkerboard(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Green and blue of pixelmatch 7's checkerboard behind the pixels at these flat indices.

    pixelmatch derives the pattern from the byte offset k = 4 * index; its red term uses k's
    parity, which is always even, so red is the constant 48.
    """
    k = 4.0 * flat
    green = 48 + 159 * ((k / 1.618033988749895).astype(np.int64) % 2)
    blue = 48 + 159 * ((k / 2.618033988749895).astype(np.int64) % 2)
    return green, blue


def _rgb_deltas(
    p: np.ndarray, q: np.ndarray, board: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel differences of two n x 4 RGBA pixel sets, both blended over the checkerboard.

    ``board`` gives the checkerboard's green and blue behind the pixels. For opaque pixels the
    blend reduces exactly to r1 - r2 (pixelmatch skips it), so all-opaque sets skip it too; the
    formula below equals that bit for bit on opaque pixels, so mixed sets need no split.
    """
    if p[:, 3].min(initial=255) == 255 and q[:, 3].min(initial=255) == 255:
        dr, dg, db, _ = np.subtract(p.T, q.T, dtype=np.float64)
        return dr, dg, db
    r1, g1, b1, a1 = np.ascontiguousarray(p.T, dtype=np.int32)
    r2, g2, b2, a2 = np.ascontiguousarray(q.T, dtype=np.int32)
    green, blue = board()
    da = a1 - a2
    dr = (r1 * a1 - r2 * a2 - 48 * da) / 255
    dg = (g1 * a1 - g2 * a2 - green * da) / 255
    db = (b1 * a1 - b2 * a2 - blue * da) / 255
    return dr, dg, db


def _brightness(dr: np.ndarray, dg: np.ndarray, db: np.ndarray) -> np.ndarray:
    return dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223


def _yiq_delta(dr: np.ndarray, dg: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Squared YIQ distance (unsigned; the sign pixelmatch adds only picks a picture colour)."""
    y = _brightness(dr, dg, db)
    i = dr * 0.59597799 - dg * 0.27417610 - db * 0.32180189
    q = dr * 0.21147017 - dg * 0.52261711 + db * 0.31114694
    return 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q


class _Scan:
    """One comparison of two canvas-sized RGBA arrays; fills ``mask`` and the counts."""

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        overlap: tuple[int, int],
        threshold: float,
        antialiasing: bool,
    ) -> None:
        self.height, self.width = a.shape[:2]
        self.a2d = a.view(np.uint32).reshape(self.height, self.width)
        self.b2d = b.view(np.uint32).reshape(self.height, self.width)
        self.a32 = self.a2d.reshape(-1)
        self.b32 = self.b2d.reshape(-1)
        self.overlap = overlap
        self.max_delta = _MAX_YIQ_DELTA * float(threshold) * float(threshold)
        self.antialiasing = antialiasing
        self.mask = np.zeros((self.height, self.width), dtype=bool)
        self.changed = 0
        self.aa_count = 0
        self._rows: list[int] = []
        self._cols: list[int] = []

    def run(self) -> None:
        ow, oh = self.overlap
        band = max(1, _BAND_PIXELS // ow)
        flat_mask = self.mask.reshape(-1)
        for r0 in range(0, oh, band):
            r1 = min(oh, r0 + band)
            local = np.flatnonzero(self.a2d[r0:r1, :ow] != self.b2d[r0:r1, :ow])
            if local.size == 0:
                continue
            if ow == self.width:
                idx = local + r0 * self.width
            else:
                idx = (local // ow + r0) * self.width + local % ow
            changed = self._over_threshold(idx)
            if self.antialiasing and changed.size:
                aa = self._antialiased_either(changed)
                if aa.any():
                    self.aa_count += int(np.count_nonzero(aa))
                    changed = changed[~aa]
            if changed.size:
                flat_mask[changed] = True
                self.changed += changed.size
                cols = changed % self.width
                self._rows += [int(changed[0] // self.width), int(changed[-1] // self.width)]
                self._cols += [int(cols.min()), int(cols.max())]
        self._mark_outside_overlap()

    def _over_threshold(self, idx: np.ndarray) -> np.ndarray:
        p = _rgba(self.a32[idx])
        q = _rgba(self.b32[idx])
        delta = _yiq_delta(*_rgb_deltas(p, q, lambda: _checkerboard(idx)))
        return idx[delta > self.max_delta]

    def _mark_outside_overlap(self) -> None:
        ow, oh = self.overlap
        if ow < self.width:
            self.mask[:, ow:] = True
            self._rows += [0, self.height - 1]
            self._cols += [ow, self.width - 1]
        if oh < self.height:
            self.mask[oh:, :] = True
            self._rows += [oh, self.height - 1]
            self._cols += [0, self.width - 1]
        self.changed += self.width * self.height - ow * oh

    def bbox(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) with exclusive ends around every changed pixel, or None."""
        if not self._rows:
            return None
        return min(self._cols), min(self._rows), max(self._cols) + 1, max(self._rows) + 1

    def _antialiased_either(self, idx: np.ndarray) -> np.ndarray:
        """pixelmatch's test: a pixel is anti-aliasing if it looks so in either image."""
        aa = self._antialiased(self.a32, idx)
        undecided = np.flatnonzero(~aa)
        if undecided.size:
            aa[undecided] = self._antialiased(self.b32, idx[undecided])
        return aa

    def _inside(self, x: np.ndarray, y: np.ndarray) -> Inside:
        return {
            "x-": x > 0,
            "x+": x < self.width - 1,
            "y-": y > 0,
            "y+": y < self.height - 1,
        }

    def _neighbour(
        self, idx: np.ndarray, inside: Inside, dx: int, dy: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Flat index of the (dx, dy) neighbour and whether it exists; a missing one maps to idx."""
        ok = None
        for d, neg, pos in ((dx, "x-", "x+"), (dy, "y-", "y+")):
            if d:
                flag = inside[neg if d < 0 else pos]
                ok = flag if ok is None else ok & flag
        return np.where(ok, idx + dy * self.width + dx, idx), ok

    def _on_edge(self, inside: Inside) -> np.ndarray:
        return ~(inside["x-"] & inside["x+"] & inside["y-"] & inside["y+"])

    def _antialiased(self, img: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Vectorised pixelmatch antialiased(): slope detector over the 8 neighbours in ``img``."""
        x = idx % self.width
        y = idx // self.width
        inside = self._inside(x, y)
        centre = _rgba(img[idx])
        board = functools.cache(lambda: _checkerboard(idx))
        zeroes = self._on_edge(inside).astype(np.int8)
        darkest = np.zeros(idx.size)
        brightest = np.zeros(idx.size)
        darkest_at = idx.copy()
        brightest_at = idx.copy()
        for dx, dy in _NEIGHBOURS:
            nb, ok = self._neighbour(idx, inside, dx, dy)
            # A missing neighbour reads the centre itself: delta 0, so it never becomes darkest or
            # brightest, and ``ok`` keeps it out of the equal-sibling count.
            delta = _brightness(*_rgb_deltas(centre, _rgba(img[nb]), board))
            zeroes += ok & (delta == 0)
            darker = delta < darkest
            darkest = np.where(darker, delta, darkest)
            darkest_at = np.where(darker, nb, darkest_at)
            brighter = delta > brightest
            brightest = np.where(brighter, delta, brightest)
            brightest_at = np.where(brighter, nb, brightest_at)
        result = np.zeros(idx.size, dtype=bool)
        slope = np.flatnonzero((zeroes <= 2) & (darkest < 0) & (brightest > 0))
        if slope.size:
            dark = darkest_at[slope]
            bright = brightest_at[slope]
            result[slope] = (
                self._many_siblings(self.a32, dark) & self._many_siblings(self.b32, dark)
            ) | (self._many_siblings(self.a32, bright) & self._many_siblings(self.b32, bright))
        return result

    def _many_siblings(self, img: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Vectorised pixelmatch hasManySiblings(): 3+ identical neighbours (an edge counts one)."""
        inside = self._inside(idx % self.width, idx // self.width)
        value = img[idx]
        count = self._on_edge(inside).astype(np.int8)
        for dx, dy in _NEIGHBOURS:
            nb, ok = self._neighbour(idx, inside, dx, dy)
            count += ok & (img[nb] == value)
        return count >= 3
