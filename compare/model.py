"""The vocabulary every layer of a comparison shares: statuses, reasons, options, results, limits.

This module sits below everything else in `compare`: inputs, planning, imaging, the engine,
the outputs and the CLI all speak in these terms, and it imports none of them.
"""

from __future__ import annotations

import numbers
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from .regions import IgnorePattern, IgnoreRegion, check_glob

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest diff canvas (width x height) compared by default."""

DEFAULT_THRESHOLD = 0.1
"""pixelmatch's default per-pixel colour sensitivity."""

MIN_MAX_MEMORY = 64 * 1024 * 1024
"""The smallest memory budget a comparison accepts."""

DEFAULT_MAX_MEMORY = 1024 * 1024 * 1024
"""The memory budget of a process that is given none."""

DEFAULT_FETCH_WORKERS = 32
"""Concurrent fetches of a process that is given no number."""

MAX_ARTIFACT_ID = 2**63 - 1
"""The largest artifact id: Sentry's ids are 64-bit signed integers."""


class InputError(ValueError):
    """An input or setting a comparison cannot start with; the message names it (see
    `parameter`)."""


_PARAMETER_NAMES: ContextVar[Mapping[str, str]] = ContextVar("snapcompare_parameter_names",
                                                             default=MappingProxyType({}))


def parameter(name: str) -> str:
    """How an error names the parameter ``name`` (``out_dir``, ``results_store``...): as the
    caller's vocabulary set by `parameter_names` says (the CLI's flags), else by its own name."""
    return _PARAMETER_NAMES.get().get(name, name)


@contextmanager
def parameter_names(names: Mapping[str, str]) -> Iterator[None]:
    """Within this block (in this thread), errors name parameters as ``names`` maps them."""
    token = _PARAMETER_NAMES.set({**_PARAMETER_NAMES.get(), **names})
    try:
        yield
    finally:
        _PARAMETER_NAMES.reset(token)


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a real number from 0 to 1, else raise ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def check_max_pixels(value: object) -> int:
    """Return ``value`` if it is a positive integer, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {value!r}")
    return int(value)


def canvas_size(*sizes: tuple[int, int]) -> tuple[int, int]:
    """The diff canvas of images of these (width, height) sizes: the largest width and height.

    Images are placed top-left on it; every pixel outside their overlap counts as changed.
    """
    return max(width for width, _ in sizes), max(height for _, height in sizes)


class Status(StrEnum):
    """An image's final status. Iteration order is the order of the report's summary."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"
    ADDED = "added"
    REMOVED = "removed"
    ERRORED = "errored"
    RENAMED = "renamed"
    SKIPPED = "skipped"


def result_status(entry: object) -> Status | None:
    """The status of an image result as JSON holds it (an object with ``status``); None when
    ``entry`` is not an object or its status is none of `Status`'s."""
    status = entry.get("status") if isinstance(entry, Mapping) else None
    return Status(status) if isinstance(status, str) and status in Status.__members__.values() else None

DIFFERENCES = frozenset({Status.CHANGED, Status.ADDED, Status.REMOVED, Status.RENAMED})
"""The statuses that make a comparison report differences."""


class Reason(StrEnum):
    """Why an image is ``errored``."""

    IMAGE_FETCH_FAILED = "image_fetch_failed"
    IMAGE_PROCESSING_FAILED = "image_processing_failed"
    EXCEEDS_PIXEL_LIMIT = "exceeds_pixel_limit"
    CHUNK_FAILED = "chunk_failed"
    CHUNK_RESULT_UNREADABLE = "chunk_result_unreadable"
    INTERNAL_ERROR = "internal_error"
    """A bug in snapcompare stopped this image; its detail holds the traceback."""


@dataclass(frozen=True)
class CompareOptions:
    """The settings of one comparison: what it is, the same wherever its chunks run.

    They are written into ``plan.json`` and (those that decide the figures) ``comparison.json``;
    what one process may use to run it is `Resources`, which each process decides for itself.

    ``threshold`` and ``antialiasing`` are the pixel diff's (the engine's per-pixel colour
    sensitivity from 0 to 1: a YIQ distance for ``pixelmatch`` and ``odiff``, an OKLab one for
    ``oklab``; anti-aliased pixels not counted); ``diff_threshold`` is the share of changed
    pixels above which an image is ``changed`` unless its manifest says otherwise.
    ``verify`` checks every fetched blob against its sha256 key; ``previews`` makes the report's
    pictures of each changed, added, removed and renamed image. ``exif_orientation`` turns JPEG,
    WebP and TIFF images upright as their EXIF orientation says before comparing them.

    ``head_artifact_id`` and ``base_artifact_id`` are the Sentry artifact ids written into
    ``comparison.json`` and its ``diff_mask_image_id``s (0 when not known);
    ``require_sizes`` makes manifest images need ``width`` and ``height``, as Sentry's do;
    ``follow_symlinks`` lets a folder's symlinks lead outside it.

    ``engine`` names the pixel-diff engine (a key of `compare.imaging.engines.ENGINES`; this
    layer cannot see them, so the name and the engine's options are checked when the
    comparison is planned, before anything is fetched). ``checkerboard`` is an option of
    ``pixelmatch`` and ``oklab`` (blend semi-transparent pixels over their checkerboard, else
    over white); ``padded`` is ``odiff``'s (compare the images padded to the union canvas, as
    Sentry runs odiff, instead of by odiff's own rule for sizes that differ); setting either
    with an engine that lacks it is an error. ``ignore_regions`` (canvas coordinates, corners included) apply to every
    image, ``ignore_patterns`` to the head images whose names their globs match, on top of the
    regions a head image's manifest entry gives; each region applies to an image's canvas as far
    as it reaches into it, and not at all to an image it lies wholly outside of.

    ``window_size`` N and ``window_min`` K add a second rule for ``changed``: an image is
    ``changed`` only if its share of changed pixels is over its ``diff_threshold`` *and* some
    NxN window holds more than K changed pixels (``window_max > window_min``), so scattered
    noise stays ``unchanged`` while a compact change does not. ``window_size`` alone only
    reports ``window_max``; ``window_min`` needs ``window_size``.
    """

    threshold: float = DEFAULT_THRESHOLD
    antialiasing: bool = True
    diff_threshold: float = 0.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    verify: bool = True
    previews: bool = True
    exif_orientation: bool = True
    head_artifact_id: int = 0
    base_artifact_id: int = 0
    require_sizes: bool = True
    follow_symlinks: bool = False
    engine: str = "pixelmatch"
    checkerboard: bool = True
    padded: bool = False
    window_size: int | None = None
    window_min: int | None = None
    ignore_regions: tuple[IgnoreRegion, ...] = ()
    ignore_patterns: tuple[IgnorePattern, ...] = ()

    def __post_init__(self) -> None:
        if not all(0 <= i <= MAX_ARTIFACT_ID for i in (self.head_artifact_id, self.base_artifact_id)):
            raise ValueError(f"artifact ids must be integers from 0 to {MAX_ARTIFACT_ID}")
        check_fraction("threshold", self.threshold)
        check_fraction("diff_threshold", self.diff_threshold)
        check_max_pixels(self.max_pixels)
        if not isinstance(self.engine, str) or not self.engine:
            raise ValueError(f"engine must be an engine's name, got {self.engine!r}")
        if self.window_size is not None and not _positive_int(self.window_size):
            raise ValueError(f"window_size must be a positive integer, got {self.window_size!r}")
        if self.window_min is not None:
            if isinstance(self.window_min, bool) or not isinstance(self.window_min, int) or self.window_min < 0:
                raise ValueError(f"window_min must be an integer >= 0, got {self.window_min!r}")
            if self.window_size is None:
                raise ValueError("window_min needs window_size")
        # Plans read back from JSON give regions as lists; they are stored as IgnoreRegions.
        object.__setattr__(self, "ignore_regions", as_regions(self.ignore_regions, "ignore_regions"))
        object.__setattr__(self, "ignore_patterns", _as_patterns(self.ignore_patterns))

    def engine_options(self) -> dict[str, object]:
        """The engine's own options that differ from their defaults, as the engine takes them."""
        return {**({} if self.checkerboard else {"checkerboard": False}),
                **({"padded": True} if self.padded else {})}

    def is_changed(self, ratio: float, diff_threshold: float, window_max: int | None) -> bool:
        """The rule for ``changed``: over ``diff_threshold``, and over ``window_min`` when set."""
        if ratio <= diff_threshold:
            return False
        return self.window_min is None or (window_max is not None and window_max > self.window_min)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Resources:
    """What one process may use to run (its part of) a comparison; not part of the comparison.

    ``workers`` diff threads, ``fetch_workers`` concurrent fetches (and store connections),
    ``max_memory`` bytes held for blobs and decoded images at once. A process given none uses
    `Resources()`: a diff thread per usable core. A cluster worker decides its own with
    `for_cluster_worker`, never from the client's.
    """

    workers: int = field(default_factory=usable_cores)
    fetch_workers: int = DEFAULT_FETCH_WORKERS
    max_memory: int = DEFAULT_MAX_MEMORY

    @property
    def fetch_budget(self) -> int:
        """The bytes of blobs fetched ahead of the diffs: a quarter of ``max_memory``; also
        the most bytes one blob may have (a larger one is that image's error, never read)."""
        return self.max_memory // 4

    def __post_init__(self) -> None:
        if not (_positive_int(self.workers) and _positive_int(self.fetch_workers)):
            raise ValueError(f"workers and fetch_workers must be integers >= 1, got "
                             f"{self.workers!r} and {self.fetch_workers!r}")
        if not _positive_int(self.max_memory) or self.max_memory < MIN_MAX_MEMORY:
            raise ValueError(f"max_memory must be at least 64 MiB, got {self.max_memory!r} bytes")

    @classmethod
    def for_cluster_worker(cls, threads: int, memory_limit: int | None) -> Resources:
        """A cluster worker's resources for each chunk it runs, from its own ``threads`` (chunks
        that run at once) and ``memory_limit`` (bytes, None or 0 when it has none).

        The cluster gives the parallelism: one diff thread per chunk. The memory budget is half
        the worker's limit shared by its threads (decoders, masks and previews need the rest),
        at most the default and at least the smallest budget.
        """
        max_memory = DEFAULT_MAX_MEMORY
        if memory_limit:
            max_memory = min(DEFAULT_MAX_MEMORY, max(MIN_MAX_MEMORY, memory_limit // max(threads, 1) // 2))
        return cls(workers=1, max_memory=max_memory)


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def as_regions(value: object, where: str) -> tuple[IgnoreRegion, ...]:
    """``value`` (IgnoreRegions or 4-number sequences) as a tuple of `IgnoreRegion`; ValueError
    naming ``where`` otherwise."""
    try:
        # Anything not iterable as regions raises TypeError, which is the answer here.
        regions = tuple(IgnoreRegion(*map(_whole, region)) for region in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a sequence of (x1, y1, x2, y2) regions, got {value!r}") from None
    for region in regions:
        if min(region) < 0 or region.x2 < region.x1 or region.y2 < region.y1:
            raise ValueError(f"{where}: region {region} is negative or inverted")
    return regions


def _as_patterns(value: object) -> tuple[IgnorePattern, ...]:
    """``value`` ((glob, regions) pairs, lists when read back from JSON) as a tuple of
    `IgnorePattern`; ValueError otherwise."""
    try:
        # Anything not iterable as pairs raises TypeError, which is the answer here.
        pairs = [(glob, regions) for glob, regions in value]  # type: ignore[attr-defined]
        valid = all(isinstance(glob, str) for glob, _ in pairs)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"ignore_patterns must be a sequence of (glob, regions) pairs, got {value!r}")
    return tuple(IgnorePattern(check_glob(glob), as_regions(regions, f"ignore_patterns[{glob!r}]"))
                 for glob, regions in pairs)


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(value)
    return int(value)


@dataclass(frozen=True)
class ImageResult:
    """The status of one image, reported under ``name``, with the figures that decided it.

    Fields after ``name`` are in the order ``comparison.json`` lists them. Hashes and sizes are
    those of the sides the image has (``base_*``/``before_*`` from the base, ``head_*``/
    ``after_*`` from the head; a renamed image has both, with the same hash); sizes read from
    the images' headers win over the manifests'. ``reason`` and ``detail`` (in words) are set
    only for ``errored``, ``previous_image_file_name`` only for ``renamed``. The pixel figures
    are set for images that were diffed; ``diff_mask_key`` and ``previews`` are paths relative
    to the output folder (``previews`` maps ``before``, ``after`` and ``diff`` to small
    pictures for people, and ``crop-before``, ``crop-after`` and ``crop-diff`` to
    full-resolution crops of the changed area). ``diff_mask_image_id`` (``{head_artifact_id}/{base_artifact_id}/
    diff/{stem}.png``) and ``aligned_height`` (the diff canvas's height) are Sentry's, set for
    diffed images as Sentry sets them. ``window_max`` (the most changed pixels in any NxN
    window) is set when the comparison has a ``window_size``; ``ignore_regions`` lists the
    regions a diffed image was compared with (the comparison's, the matching patterns', its
    own) as they applied to its canvas (clipped; those wholly outside it left out), None when
    none applied; an errored image lists them as given.

    Every diffed image with changed pixels (``changed``, or ``unchanged`` within its threshold)
    carries its change's fingerprints (`compare.imaging.fingerprint`), ids stable across runs:
    ``change_group`` the identical-change id (``i1-...``: the same changed pixels, relative to
    their bounding box, with the same before and after colours), ``similar_change`` the
    similar-change id (``s1-...``: a coarse fingerprint of the mask's shape). An id names a
    `ChangeGroup` of `Comparison.change_groups` when two or more ``changed`` images share it.
    ``known_change`` is set on ``changed`` images when known changes were given
    (`Comparison.known_changes`): True when the image's change is a known one, else False.
    ``canvas_changed`` is set on diffed images: True when the two images' sizes differ. Such an
    image is ``changed`` whatever its pixels, unless the comparison pads images as Sentry does
    (``padded``), where Sentry's status stands and the flag alone says the size changed.
    """

    name: str
    status: Status
    head_hash: str | None = None
    base_hash: str | None = None
    changed_pixels: int | None = None
    total_pixels: int | None = None
    diff_mask_key: str | None = None
    before_width: int | None = None
    before_height: int | None = None
    after_width: int | None = None
    after_height: int | None = None
    reason: Reason | None = None
    previous_image_file_name: str | None = None
    diff_ratio: float | None = None
    aa_pixels: int | None = None
    bbox: tuple[int, int, int, int] | None = None
    diff_threshold: float | None = None
    detail: str | None = None
    previews: Mapping[str, str] | None = None
    diff_mask_image_id: str | None = None
    aligned_height: int | None = None
    window_max: int | None = None
    ignore_regions: tuple[IgnoreRegion, ...] | None = None
    change_group: str | None = None
    similar_change: str | None = None
    known_change: bool | None = None
    canvas_changed: bool | None = None


class ChangeLevel(StrEnum):
    """How alike the changes of a `ChangeGroup`'s images are."""

    IDENTICAL = "identical"
    SIMILAR = "similar"


@dataclass(frozen=True)
class ChangeGroup:
    """Images sharing one change: its ``id`` (the change's fingerprint, stable across runs),
    the ``level`` at which they share it, their names (sorted) and the one shown for all (the
    first of them)."""

    id: str
    level: ChangeLevel
    images: tuple[str, ...]
    representative: str


@dataclass(frozen=True)
class KnownChanges:
    """Known changes a comparison was given (``--known-changes``): where they came from, the
    names of the ``changed`` images whose change is one of them (sorted), and whether those
    images still count as differences (``--fail-on-known-changes``) or are set aside."""

    source: str
    images: tuple[str, ...] = ()
    counted: bool = False


@dataclass(frozen=True)
class Approval:
    """A previous approval that carries over: the comparison it came from, the shared
    fingerprint and the names of the images whose changes it covers (sorted)."""

    carried_over_from: str
    fingerprint: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalMismatch:
    """An approval that was given but does not carry over, and why: ``unapproved`` names the
    images whose change here the approval does not hold (a new change, or another one than was
    approved), ``not_present`` the images whose approved change is not here (sorted)."""

    source: str
    unapproved: tuple[str, ...]
    not_present: tuple[str, ...]


@dataclass
class Comparison:
    """Every image's result (keyed by file name) and how the comparison ran."""

    images: dict[str, ImageResult]
    options: CompareOptions
    base_source: str = ""
    head_source: str = ""
    stats: dict[str, float | int | str] = field(default_factory=dict)
    """How the run went: counts, seconds, bytes; a note is text (``fetch_batch_fallback``)."""
    approval: Approval | None = None
    """Set when an approved comparison's fingerprints equal this one's (``--approved``)."""
    approval_mismatch: ApprovalMismatch | None = None
    """Set when an approved comparison was given but its fingerprints differ from this one's."""
    change_groups: tuple[ChangeGroup, ...] = ()
    """The changes two or more ``changed`` images share, at both levels (each image's
    ``change_group`` and ``similar_change`` name one, if any), largest first, then identical
    before similar, then by id."""
    known_changes: KnownChanges | None = None
    """Set when known changes were given: their source and the images whose change they hold."""
    artifacts_dir: Path | None = None
    """The folder the images' ``diff_mask_key``s and ``previews`` are relative to, set by
    `compare.builds.compare_builds` to its ``out_dir``; None when unknown (a comparison put
    together by hand), and then they are looked for where the reports are written."""
    base_build: Mapping[str, object] | None = None
    """How the base build was chosen from the head's git history, when it was: the ``to_json()``
    of the `compare.inputs.baseline.BaseBuild` (or `NoBaseBuild`, and then every head image is
    added) given to `compare.builds.compare_builds` as its base; None when the base was given."""

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
        return any(result.status in DIFFERENCES for result in self.images.values())

    @property
    def set_aside(self) -> tuple[str, ...]:
        """The ``changed`` images whose change is a known one that does not count (sorted)."""
        known = self.known_changes
        return () if known is None or known.counted else known.images

    @property
    def counted_summary(self) -> dict[str, int]:
        """`summary` without the known changes `set_aside` among the ``changed`` (``total``
        still counts them)."""
        summary = self.summary
        summary[Status.CHANGED.value] -= len(self.set_aside)
        return summary

    @property
    def has_counted_differences(self) -> bool:
        """True when any image differs, apart from the known changes `set_aside`."""
        aside = frozenset(self.set_aside)
        return any(result.status in DIFFERENCES and name not in aside for name, result in self.images.items())

    @property
    def has_errors(self) -> bool:
        """True when any image errored."""
        return any(result.status is Status.ERRORED for result in self.images.values())
