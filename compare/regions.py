"""Ignore regions: rectangles of an image whose pixels never count as changed.

Coordinates are odiff's: ``x1:y1-x2:y2`` with both corners included, in pixels of the diff
canvas (top-left origin). On the command line several are joined by commas; in a manifest an
image's ``ignore_regions`` is a list of ``{"x1": .., "y1": .., "x2": .., "y2": ..}`` objects.

A region applies to each canvas as far as it reaches into it (`clip`): the part past the
right or bottom edge covers nothing, and a region wholly outside a canvas does not apply to
that image at all, so one region list fits images of every size.

`IgnorePattern` gives regions to the images whose names match a glob (``--ignore-in``):
``*`` matches within one path segment (no ``/``), ``**`` across segments (``**/`` also
matches no folder at all), ``?`` one character other than ``/``; every other character
matches itself, and the glob must match the whole name. Globs are translated to RE2, so
matching takes linear time whatever the glob and the name; one too large for RE2 is refused
when parsed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import re2

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


def ignore_regions_json(regions: Iterable[IgnoreRegion]) -> list[dict[str, int]]:
    """Regions in a manifest's form, ``[{"x1", "y1", "x2", "y2"}, ...]`` (what
    `ignore_regions_from_json` reads)."""
    return [region._asdict() for region in regions]


def clip(regions: Iterable[IgnoreRegion], width: int, height: int) -> tuple[IgnoreRegion, ...]:
    """``regions`` as they apply to a width x height canvas: each cut at the canvas's right
    and bottom edges, those wholly outside it left out, each once, in order."""
    return merged(
        IgnoreRegion(region.x1, region.y1, min(region.x2, width - 1), min(region.y2, height - 1))
        for region in regions
        if region.x1 < width and region.y1 < height
    )


def ignore_mask(regions: Sequence[IgnoreRegion], width: int, height: int) -> np.ndarray | None:
    """The HxW bool mask of ``regions`` on a width x height canvas (what lies past its edges
    covers nothing), None when there are none."""
    if not regions:
        return None
    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        mask[region.y1 : region.y2 + 1, region.x1 : region.x2 + 1] = True
    return mask


def merged(*groups: Iterable[IgnoreRegion]) -> tuple[IgnoreRegion, ...]:
    """Every region of ``groups``, each once, in first-seen order."""
    return tuple(dict.fromkeys(region for group in groups for region in group))


class IgnorePattern(NamedTuple):
    """Regions for the images whose names match ``glob`` (see the module doc)."""

    glob: str
    regions: tuple[IgnoreRegion, ...]

    def matches(self, name: str) -> bool:
        """Whether ``glob`` matches the whole of ``name``."""
        return _glob_regex(self.glob).fullmatch(re2_bytes(name)) is not None


def parse_ignore_pattern(text: str) -> IgnorePattern:
    """A pattern from ``GLOB=x1:y1-x2:y2[,...]``, split at the last ``=`` (regions never hold
    one, so the glob may); ValueError naming the bad part, or the glob when RE2 cannot compile
    it (too large)."""
    glob, equals, regions = text.rpartition("=")
    if not glob:
        problem = "no glob before '='" if equals else "no '=': expected GLOB=x1:y1-x2:y2[,...]"
        raise ValueError(f"{text!r}: {problem}")
    try:
        pattern = IgnorePattern(glob, parse_ignore_regions(regions))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    check_glob(glob)
    return pattern


def check_glob(glob: str) -> str:
    """``glob`` when RE2 can compile it; ValueError naming it when it is too large."""
    _glob_regex(glob)
    return glob


def pattern_regions(patterns: Iterable[IgnorePattern], name: str) -> tuple[IgnoreRegion, ...]:
    """The regions of every pattern matching ``name``, each once, in the patterns' order."""
    return merged(*(pattern.regions for pattern in patterns if pattern.matches(name)))


_GLOB_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|[^*?]+")
_GLOB_REGEX = {"**/": rb"(?:.*/)?", "**": rb".*", "*": rb"[^/]*", "?": rb"[^/]"}
_SHOWN_GLOB = 60
"""Longest glob quoted whole in a message; a longer one is named by its start and length."""


@functools.lru_cache(maxsize=256)
def _glob_regex(glob: str) -> Any:
    """``glob`` as a compiled RE2 pattern over UTF-8 bytes (see `re2_bytes`); ValueError naming
    the glob when it is too large for RE2."""
    parts = [_GLOB_REGEX.get(token) or re.escape(re2_bytes(token)) for token in _GLOB_TOKEN.findall(glob)]
    options = re2.Options()
    options.dot_nl = True
    options.log_errors = False
    try:
        return re2.compile(b"".join(parts), options)
    except re2.error:  # every part is escaped or a fixed token: only its size can fail it
        shown = repr(glob) if len(glob) <= _SHOWN_GLOB else f"{glob[:_SHOWN_GLOB]!r}... ({len(glob):,} characters)"
        raise ValueError(f"glob {shown}: too large for RE2 to compile") from None


def re2_bytes(text: str) -> bytes:
    """``text`` as the bytes RE2 matches: UTF-8, with each lone surrogate (a byte of an
    undecodable file name, a JSON escape) as its three bytes, which RE2 reads as one character."""
    return text.encode("utf-8", "surrogatepass")
