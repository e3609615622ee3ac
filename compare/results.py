"""What a comparison produces: one `ImageResult` per image and the `Comparison` around them."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from .categorize import ImageOutcome, Status

ALGORITHM_VERSION = "snapcompare-pixelmatch7-yiq/1"


@dataclass(frozen=True)
class CompareOptions:
    """Knobs of one comparison.

    ``threshold`` and ``antialiasing`` are the pixel diff's (per-pixel YIQ sensitivity,
    anti-aliased pixels not counted); ``diff_threshold`` is the share of changed pixels above
    which an image is ``changed`` unless its manifest says otherwise. ``max_memory`` bounds
    the bytes held for blobs and decoded images at once.
    """

    threshold: float = 0.1
    antialiasing: bool = True
    diff_threshold: float = 0.0
    max_pixels: int = 40_000_000
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    fetch_workers: int = 32
    max_memory: int = 1024 * 1024 * 1024
    verify: bool = True
    previews: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within 0..1, got {self.threshold}")
        if not 0.0 <= self.diff_threshold <= 1.0:
            raise ValueError(f"diff_threshold must be within 0..1, got {self.diff_threshold}")
        if self.workers < 1 or self.fetch_workers < 1:
            raise ValueError("workers and fetch_workers must be at least 1")
        if self.max_memory < 64 * 1024 * 1024:
            raise ValueError(f"max_memory must be at least 64 MiB, got {self.max_memory} bytes")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be positive")


@dataclass(frozen=True)
class ImageResult(ImageOutcome):
    """The final status of one image, with the figures of its pixel diff when it had one.

    It extends the manifests' `ImageOutcome` (names, hashes, sizes, reason): ``detail`` says in
    words what went wrong for an ``errored`` image; ``diff_mask_key`` and ``previews`` are paths
    relative to the output folder (``previews`` maps ``before``, ``after`` and ``diff`` to small
    pictures for people).
    """

    detail: str | None = None
    changed_pixels: int | None = None
    total_pixels: int | None = None
    diff_ratio: float | None = None
    aa_pixels: int | None = None
    bbox: tuple[int, int, int, int] | None = None
    diff_threshold: float | None = None
    diff_mask_key: str | None = None
    previews: Mapping[str, str] | None = None


@dataclass
class Comparison:
    """Every image's result (keyed by file name) and how the comparison ran."""

    images: dict[str, ImageResult]
    options: CompareOptions
    base_source: str = ""
    head_source: str = ""
    stats: dict[str, float | int] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        """Count per status plus ``total``; the statuses add up to the total."""
        counts = Counter(result.status for result in self.images.values())
        summary = {"total": len(self.images)}
        summary.update({status.value: counts.get(status, 0) for status in Status})
        return summary

    @property
    def has_differences(self) -> bool:
        """True when any image is changed, added, removed or renamed."""
        return any(
            result.status in (Status.CHANGED, Status.ADDED, Status.REMOVED, Status.RENAMED)
            for result in self.images.values()
        )

    @property
    def has_errors(self) -> bool:
        """True when any image errored."""
        return any(result.status is Status.ERRORED for result in self.images.values())
