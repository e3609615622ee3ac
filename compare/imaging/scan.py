"""The result every pixel-diff engine in `compare.imaging` returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Scan:
    """One engine's comparison of two canvas-sized images.

    ``mask`` is an HxW bool array, True where a pixel counts as changed under the engine's canvas
    rule; ``changed_pixels`` is its sum. ``aa_pixels`` counts pixels inside the overlap of the two
    original images that were over the threshold but excluded as anti-aliasing. ``bbox`` is
    (x0, y0, x1, y1) with exclusive ends around the mask, or None when nothing changed.
    ``window_max`` is the largest number of changed pixels in any NxN window when the engine was
    asked for one, else None.
    """

    mask: np.ndarray
    changed_pixels: int
    aa_pixels: int
    bbox: tuple[int, int, int, int] | None
    window_max: int | None = None
