"""Ignore regions: rectangles of an image whose pixels never count as changed.

Coordinates are odiff's: ``x1:y1-x2:y2`` with both corners included, in pixels of the diff
canvas (top-left origin). On the command line several are joined by commas; in a manifest an
image's ``ignore_regions`` is a list of ``{"x1": .., "y1": .., "x2": .., "y2": ..}`` objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

_REGION = re.compile(r"(\d{1,9}):(\d{1,9})-(\d{1,9}):(\d{1,9})")
_KEYS = ("x1", "y1", "x2", "y2")


class IgnoreRegion(NamedTuple):
    """A rectangle from (x1, y1) to (x2, y2), both corners included."""

    x1: int
    y1: int
    x2: int
    y2: int

    def __str__(self) -> str:
        return f"{self.x1}:{self.y1}-{self.x2}:{self.y2}"


def parse_ignore_regions(text: str) -> tuple[IgnoreRegion, ...]:
    """Regions from odiff's syntax, ``x1:y1-x2:y2[,x1:y1-x2:y2...]``; ValueError naming the bad one."""
    regions = []
    for part in text.split(","):
        match = _REGION.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"ignore region {part.strip()!r} is not x1:y1-x2:y2 (whole pixels)")
        regions.append(_checked(IgnoreRegion(*map(int, match.groups())), str(match[0])))
    return tuple(regions)


def ignore_regions_from_json(value: Any, where: str) -> tuple[IgnoreRegion, ...]:
    """Regions from a manifest's list of ``{"x1", "y1", "x2", "y2"}`` objects; ValueError
    naming ``where`` (the field) and the bad entry."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of regions, got {type(value).__name__}")
    regions = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or set(item) != set(_KEYS):
            raise ValueError(f"{at}: expected an object with exactly x1, y1, x2, y2")
        numbers = [item[key] for key in _KEYS]
        if not all(type(n) is int and 0 <= n < 10**9 for n in numbers):
            raise ValueError(f"{at}: x1, y1, x2, y2 must be whole pixels from 0")
        regions.append(_checked(IgnoreRegion(*numbers), at))
    return tuple(regions)


def _checked(region: IgnoreRegion, label: str) -> IgnoreRegion:
    if region.x2 < region.x1 or region.y2 < region.y1:
        raise ValueError(f"ignore region {label}: inverted (x2 < x1 or y2 < y1)")
    return region


def ignore_mask(
    regions: Sequence[IgnoreRegion], width: int, height: int, label: str
) -> np.ndarray | None:
    """The HxW bool mask of ``regions`` on a width x height canvas, None when there are none.

    Raises ValueError naming ``label`` (the image) when a region reaches outside the canvas.
    """
    if not regions:
        return None
    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        if region.x2 >= width or region.y2 >= height:
            raise ValueError(
                f"{label}: ignore region {region} reaches outside the {width}x{height} canvas"
            )
        mask[region.y1 : region.y2 + 1, region.x1 : region.x2 + 1] = True
    return mask


def merged(*groups: Iterable[IgnoreRegion]) -> tuple[IgnoreRegion, ...]:
    """Every region of ``groups``, each once, in first-seen order."""
    return tuple(dict.fromkeys(region for group in groups for region in group))
