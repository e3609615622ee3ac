"""Pixel diff of two images on their union canvas, by any engine of `compare.imaging.engines`
(pixelmatch 7.2.0 semantics by default), vectorised over the differing pixels only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_THRESHOLD,
    canvas_size,
    check_fraction,
    check_max_pixels,
)
from ..regions import IgnoreRegion, clip, ignore_mask
from .decode import ImageInput, ImageTooLarge, OpenedImage, open_image
from .engines import DEFAULT_ENGINE, get_engine
from .png import encode_mask


@dataclass(frozen=True, eq=False)
class DiffResult:
    """Outcome of one comparison, on the canvas both images were placed on (top-left aligned).

    ``mask`` is a bool array of the canvas (height x width), True where a pixel changed;
    ``bbox`` is (x0, y0, x1, y1) with exclusive ends, or None when nothing changed; ``aa_pixels``
    counts pixels over the threshold that were excluded as anti-aliasing; ``window_max`` is the
    largest number of changed pixels in any NxN window when a window size was given. ``engine``
    names the engine that compared them. ``ignore_regions`` are the ignore regions as they
    applied to the canvas (`compare.regions.clip`: cut at its edges, those wholly outside it
    left out), which no pixel of ``mask`` is in.
    """

    changed_pixels: int
    total_pixels: int
    aa_pixels: int
    bbox: tuple[int, int, int, int] | None
    mask: np.ndarray
    before_size: tuple[int, int]
    after_size: tuple[int, int]
    window_max: int | None = None
    engine: str = DEFAULT_ENGINE
    ignore_regions: tuple[IgnoreRegion, ...] = ()

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
    engine: str = DEFAULT_ENGINE,
    ignore_regions: Sequence[IgnoreRegion] = (),
    window_size: int | None = None,
    **engine_options: Any,
) -> DiffResult:
    """Compare two images pixel by pixel and report which pixels changed.

    ``before`` and ``after`` are encoded bytes (PNG, JPEG, WebP...), PIL images of any mode or
    HxWx4 uint8 RGBA arrays. Images of different sizes are placed top-left on the union canvas
    (padded with transparent black); each engine documents what counts there.

    ``engine`` is one of `compare.imaging.engines.ENGINES`: ``pixelmatch`` (pixelmatch 7.2.0:
    a pixel changes when its YIQ delta exceeds 35215 * threshold**2; semi-transparent pixels
    blended over its checkerboard, or over white with ``checkerboard=False``; every canvas pixel
    outside the overlap counts), ``oklab`` (pixelmatch's OKLab HyAB metric; option
    ``checkerboard``) or ``odiff`` (odiff 4.5.0: outside the overlap, every pixel that is not
    fully transparent counts; option ``padded``, compare the padded canvas as Sentry does).
    ``threshold`` (0..1) is the engine's colour sensitivity. With ``antialiasing`` on, pixels
    that look like anti-aliasing are not counted. Pixels inside ``ignore_regions`` never count:
    a region applies as far as it reaches into the canvas, and not at all when it lies wholly
    outside it (`DiffResult.ignore_regions` lists them as they applied).
    ``window_size`` N also reports the largest count in any NxN window. ``name`` labels the pair
    in error messages.

    Raises ImageTooLarge (from the headers, before decoding) when the canvas has more than
    ``max_pixels`` pixels, ImageDecodeError for undecodable bytes, ImageError for unusable
    arrays, ValueError for bad options and TypeError for unsupported input types.
    """
    check_fraction("threshold", threshold)
    chosen = get_engine(engine)
    if window_size is not None and (
        isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1
    ):
        raise ValueError(f"window_size must be a positive integer, got {window_size!r}")
    first, second = open_pair(before, after, max_pixels=max_pixels, name=name)
    width, height = canvas_size(first.size, second.size)
    applied = clip(ignore_regions, width, height)
    ignore = ignore_mask(applied, width, height)
    a = pad_to_canvas(first.rgba(), width, height)
    b = pad_to_canvas(second.rgba(), width, height)
    overlap = (min(first.size[0], second.size[0]), min(first.size[1], second.size[1]))
    scan = chosen.run(a, b, overlap, threshold=threshold, antialiasing=antialiasing, ignore=ignore,
                      window_size=window_size, options=engine_options, sizes=(first.size, second.size))
    return DiffResult(
        changed_pixels=scan.changed_pixels,
        total_pixels=width * height,
        aa_pixels=scan.aa_pixels,
        bbox=scan.bbox,
        mask=scan.mask,
        before_size=first.size,
        after_size=second.size,
        window_max=scan.window_max,
        engine=chosen.name,
        ignore_regions=applied,
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
    try:
        second = open_image(after, f"after image{suffix}", exif_orientation=exif_orientation)
    except BaseException:
        first.close()
        raise
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
