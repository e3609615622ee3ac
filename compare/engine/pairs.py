"""The unit of work of a comparison: fetch the blobs of unique pixel-diff pairs and diff them.

A blob's life, in `stream_pairs`:

1. fetched: `BatchPrefetcher.iter_fetch` brings it in (each unique hash once, bounded ahead);
2. held: its bytes are acquired from the `MemoryBudget` until its last pair is done;
3. decoded: a pair's diff decodes it on a worker thread when both of the pair's blobs are in
   and the pair's footprint, estimated from the images' headers (never the manifests, which a
   pull request writes), fits the budget;
4. shared: a blob that several pairs use keeps its pixels (and report thumbnail), decoded once,
   counted in the budget;
5. released: after its last pair, its bytes and pixels are dropped and their bytes released.

"""

from __future__ import annotations

import functools
import threading
import traceback
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np

from fetchers import BatchPrefetcher, BatchStats, BlobFetcher, FetchError

from ..classify import PairKey
from ..imaging.decode import ImageError, ImageTooLarge, describe_error
from ..imaging.engines import Engine, get_engine
from ..imaging.fingerprint import ChangeFingerprint, fingerprint_change
from ..imaging.pixeldiff import DiffResult, diff_images, open_pair
from ..imaging.previews import crop_region, make_crops, make_previews, preview_factor
from ..model import CompareOptions, InputError, Reason, Resources, canvas_size
from ..regions import IgnoreRegion
from .budget import DecodeCost, MemoryBudget, decode_cost
from .shared import SharedImages

DIFF_BYTES_PER_PIXEL = 34
"""Bytes per canvas pixel a diff holds after decoding, beside both images' RGBA pixels: the mask
(1) and, at the peak, the change's fingerprint (`compare.imaging.fingerprint`), which grows
with the changed pixels: 34 in all when every pixel changed on images of slightly different
sizes, 29 when both fill the canvas. The scan, the mask's PNG and the previews hold less.
Measured as `compare.engine.budget.DECODE_BYTES_PER_PIXEL`, on 4000x4000 canvases of random
pixels, by each engine; odiff's anti-aliasing on images of different sizes adds about 10 MB
whatever the canvas (it tests the changed pixels in blocks)."""


@dataclass(frozen=True)
class PairTask:
    """One unique pixel diff: the blobs by hash, a name to label errors, and the regions whose
    pixels never count."""

    base_hash: str
    head_hash: str
    name: str
    ignore_regions: tuple[IgnoreRegion, ...] = ()

    @property
    def key(self) -> PairKey:
        """Which diff this is: base hash, head hash, ignore regions."""
        return self.base_hash, self.head_hash, self.ignore_regions


@dataclass(frozen=True)
class PairOutcome:
    """What a pixel diff found for one `PairTask`, or why it could not run.

    ``ignore_regions`` are the task's (part of its `key`); ``applied_regions`` are those
    regions as they applied to the diff's canvas (`compare.regions.clip`: cut at its edges,
    those wholly outside it left out), empty when the diff did not run. ``change`` holds the
    change's fingerprints (`compare.imaging.fingerprint`) when some pixel changed.
    """

    base_hash: str
    head_hash: str
    changed_pixels: int | None = None
    total_pixels: int | None = None
    aa_pixels: int | None = None
    bbox: tuple[int, int, int, int] | None = None
    before_size: tuple[int, int] | None = None
    after_size: tuple[int, int] | None = None
    reason: Reason | None = None
    detail: str | None = None
    mask_png: bytes | None = None
    previews: dict[str, bytes] | None = None
    window_max: int | None = None
    ignore_regions: tuple[IgnoreRegion, ...] = ()
    applied_regions: tuple[IgnoreRegion, ...] = ()
    change: ChangeFingerprint | None = None

    @property
    def key(self) -> PairKey:
        """The `PairTask.key` of the task this outcome is for."""
        return self.base_hash, self.head_hash, self.ignore_regions


def check_engine(options: CompareOptions) -> Engine:
    """The engine ``options`` name, after checking it exists and takes their engine options.

    Raises `InputError` naming the setting otherwise.
    """
    try:
        engine = get_engine(options.engine)
    except ValueError as exc:
        raise InputError(f"engine: {exc}") from None
    try:
        engine.check_options(options.engine_options())
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return engine


class DiffThreads:
    """The distinct threads that ran a stream's diffs (thread-safe to add to)."""

    def __init__(self) -> None:
        self._idents: set[int] = set()
        self._lock = threading.Lock()

    def add_current(self) -> None:
        """Count the calling thread."""
        with self._lock:
            self._idents.add(threading.get_ident())

    def __len__(self) -> int:
        with self._lock:
            return len(self._idents)


def stream_pairs(
    fetcher: BlobFetcher,
    options: CompareOptions,
    resources: Resources,
    tasks: Sequence[PairTask],
    *,
    on_blob: Callable[[], None] | None = None,
    stats: BatchStats | None = None,
    threads: DiffThreads | None = None,
) -> Iterator[PairOutcome]:
    """Yield one `PairOutcome` per task, in completion order, fetching each blob once, with at
    most ``resources.workers`` diffs and ``resources.fetch_workers`` fetches at a time.

    ``on_blob`` is called as each blob arrives; ``stats`` is filled with the fetch figures and
    ``threads`` with the threads that ran diffs.
    """
    return _PairStream(fetcher, options, resources, tasks, threads if threads is not None else DiffThreads()).run(
        on_blob, stats)


class _PairStream:
    """The state of one `stream_pairs` run: blobs held, pairs ready, diffs running.

    Memory: the prefetcher keeps at most a quarter of ``max_memory`` fetched ahead; everything
    held after that (each blob's bytes, the decoded pixels of blobs several pairs use, the
    footprint of each running diff as `_diff_cost` estimates it) is acquired from one
    `MemoryBudget` over the rest, except that one diff always runs, and a blob waiting for its
    partner is never dropped (it would have to be fetched again). Pairs are fetched in an order
    that holds few blobs at a time (`keys`): a base shared by many pairs is held, and decoded
    once, only while those pairs run, and a head shared across bases is not held from one
    base's pairs to another's. A shared blob's pixels are kept only while they fit the budget;
    past it each of its pairs decodes it again.
    """

    def __init__(self, fetcher: BlobFetcher, options: CompareOptions, resources: Resources,
                 tasks: Sequence[PairTask], threads: DiffThreads) -> None:
        self.fetcher = fetcher
        self.options = options
        self.resources = resources
        self.tasks = tasks
        self.threads = threads
        self.users: dict[str, list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            self.users[task.base_hash].append(index)
            self.users[task.head_hash].append(index)
        self.pending_users = {key: len(indices) for key, indices in self.users.items()}
        self.missing = [2] * len(tasks)
        self.blobs: dict[str, bytes | FetchError] = {}
        self.decodes: dict[str, DecodeCost | None] = {}
        self.images = SharedImages()
        self.ready: deque[int] = deque()
        self.running: dict[Future[PairOutcome], int] = {}
        self.fetch_budget = resources.fetch_budget
        self.budget = MemoryBudget(resources.max_memory - self.fetch_budget)

    def keys(self) -> list[str]:
        """Every blob once, pair by pair, in a depth-first walk over pairs that share a blob:
        after a pair, the next is a pair not taken yet of the most recently fetched blob that
        has one, its pairs with blobs used by no other pair first. Pairs sharing a base stay
        together; a head that pairs with two bases has its second pair taken right after its
        first, not after all of the first base's pairs (which held every such head, and its
        pixels, until the second base's turn); and a chain of bases linked by shared heads does
        not leave each base's other pairs, and so each base, waiting for the chain's end."""
        taken = [False] * len(self.tasks)
        next_use = dict.fromkeys(self.users, 0)  # where each blob's untaken pairs start in uses
        uses = {key: sorted(indices, key=functools.partial(self._inner, key)) for key, indices in self.users.items()}
        order: dict[str, None] = {}
        walk: list[str] = []  # fetched blobs that may still have pairs to take, latest on top

        def take(index: int) -> None:
            taken[index] = True
            for key in (self.tasks[index].head_hash, self.tasks[index].base_hash):  # the base on top
                if key not in order:
                    order[key] = None
                    walk.append(key)

        for first in range(len(self.tasks)):
            if taken[first]:
                continue
            take(first)
            while walk:
                pairs, position = uses[walk[-1]], next_use[walk[-1]]
                while position < len(pairs) and taken[pairs[position]]:
                    position += 1
                next_use[walk[-1]] = position
                if position == len(pairs):
                    walk.pop()
                else:
                    take(pairs[position])
        return list(order)

    def _inner(self, key: str, index: int) -> bool:
        """Whether pair ``index``'s other blob than ``key`` is used by other pairs too (False
        sorts first: a leaf's pair is done at once)."""
        task = self.tasks[index]
        other = task.head_hash if task.base_hash == key else task.base_hash
        return len(self.users[other]) > 1

    def run(self, on_blob: Callable[[], None] | None, stats: BatchStats | None) -> Iterator[PairOutcome]:
        prefetcher = BatchPrefetcher(
            self.fetcher,
            max_workers=self.resources.fetch_workers,
            verify=self.options.verify,
            max_pending_bytes=self.fetch_budget,
        )
        pool = ThreadPoolExecutor(self.resources.workers, thread_name_prefix="snapcompare-diff",
                                  initializer=self.threads.add_current)
        try:
            for key, value in prefetcher.iter_fetch(self.keys(), stats=stats):
                self.blobs[key] = value
                self.decodes[key] = (None if isinstance(value, FetchError)
                                     else decode_cost(value, self.options.exif_orientation))
                self.budget.acquire(("blob", key), _blob_bytes(value))
                if on_blob is not None:
                    on_blob()
                for index in self.users[key]:
                    self.missing[index] -= 1
                    if not self.missing[index]:
                        self.ready.append(index)
                yield from self.advance(pool)
                while self.running and self.budget.over:
                    yield from self.collect(block=True)
            while self.ready or self.running:
                yield from self.advance(pool)
                yield from self.collect(block=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            prefetcher.close()

    def advance(self, pool: ThreadPoolExecutor) -> Iterator[PairOutcome]:
        """Yield finished work and start every ready pair whose memory fits, in order.

        Waits for a running diff to finish while the next ready pair does not fit.
        """
        yield from self.collect(block=False)
        while self.ready:
            index = self.ready[0]
            task = self.tasks[index]
            before, after = self.blobs[task.base_hash], self.blobs[task.head_hash]
            if isinstance(before, FetchError) or isinstance(after, FetchError):
                self.ready.popleft()
                self.release(index)
                yield _fetch_failed(task, [blob for blob in (before, after) if isinstance(blob, FetchError)])
                continue
            cost = _diff_cost(self.decodes[task.base_hash], self.decodes[task.head_hash], self.options.max_pixels)
            if self.running and not self.budget.fits(cost):
                yield from self.collect(block=True)
                continue
            self.ready.popleft()
            self.start(index, before, after, cost, pool)

    def start(self, index: int, before: bytes, after: bytes, cost: int, pool: ThreadPoolExecutor) -> None:
        """Submit the diff of a pair whose blobs are in (``before`` and ``after``, its base's and
        its head's bytes); shared blobs are decoded once."""
        task = self.tasks[index]
        for key in (task.base_hash, task.head_hash):
            if len(self.users[key]) > 1 and not self.budget.holds(("decoded", key)):
                decoding = self.decodes[key]
                size = decoding.rgba if decoding is not None else 0
                if self.budget.fits(size + cost):  # else each of its pairs decodes it (asked again next time)
                    self.budget.acquire(("decoded", key), size)
                    self.images.keep(key)
        future = pool.submit(diff_pair, task, before, after, self.options, self.images)
        self.running[future] = index
        self.budget.acquire(("diff", index), cost)

    def collect(self, block: bool) -> Iterator[PairOutcome]:
        """Yield the outcomes of finished diffs (waiting for one when ``block``)."""
        if not self.running:
            return
        done, _ = wait(self.running, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            index = self.running.pop(future)
            self.budget.release(("diff", index))
            outcome = future.result()
            if outcome.reason is not None:  # the sizes its headers told, which a refused diff never read
                task = self.tasks[index]
                before, after = self.decodes[task.base_hash], self.decodes[task.head_hash]
                outcome = replace(outcome, before_size=before.size if before is not None else None,
                                  after_size=after.size if after is not None else None)
            self.release(index)
            yield outcome

    def release(self, index: int) -> None:
        """A pair is done with its blobs: drop each blob whose last pair this was."""
        task = self.tasks[index]
        for key in (task.base_hash, task.head_hash):
            self.pending_users[key] -= 1
            if self.pending_users[key] == 0:
                del self.blobs[key]
                del self.decodes[key]
                self.budget.release(("blob", key))
                self.budget.release(("decoded", key))
                self.images.drop(key)


def _blob_bytes(blob: bytes | FetchError) -> int:
    return 0 if isinstance(blob, FetchError) else len(blob)


def _diff_cost(before: DecodeCost | None, after: DecodeCost | None, max_pixels: int) -> int:
    """Bytes a diff holds at its peak, from what decoding its images costs (``before``, ``after``).

    Both images' RGBA pixels, from their decoding to the diff's end, and the larger of what
    decoding either holds beside its RGBA (they decode one after the other) and what the diff
    holds on its canvas (`DIFF_BYTES_PER_PIXEL`). 0 for a pair refused before decoding: a header
    that cannot be read, or a canvas over ``max_pixels``.
    """
    if before is None or after is None:
        return 0
    width, height = canvas_size(before.size, after.size)
    if width * height > max_pixels:
        return 0
    transient = max(before.peak - before.rgba, after.peak - after.rgba, width * height * DIFF_BYTES_PER_PIXEL)
    return before.rgba + after.rgba + transient


def diff_pair(
    task: PairTask,
    before: bytes,
    after: bytes,
    options: CompareOptions,
    images: SharedImages | None = None,
) -> PairOutcome:
    """Decode and diff one pair, and fingerprint its change; any failure becomes an errored
    outcome, never an exception, so one pair never stops the others.

    What an image can cause (`ImageError`, `OSError`, `MemoryError`) is
    ``image_processing_failed``. Anything else is a bug in snapcompare: ``internal_error``,
    whose detail keeps the traceback (the CLI prints it and exits 4).
    ``images`` shares the pixels and thumbnails of blobs that other pairs use too.
    """
    images = images if images is not None else SharedImages()
    ids = _PairIds(base_hash=task.base_hash, head_hash=task.head_hash, ignore_regions=task.ignore_regions)
    try:
        before_rgba, after_rgba = _decoded(task, before, after, options, images)
        result = diff_images(
            before_rgba,
            after_rgba,
            threshold=options.threshold,
            antialiasing=options.antialiasing,
            max_pixels=options.max_pixels,
            name=task.name,
            engine=options.engine,
            ignore_regions=task.ignore_regions,
            window_size=options.window_size,
            **options.engine_options(),
        )
    except ImageTooLarge as exc:
        return PairOutcome(**ids, reason=Reason.EXCEEDS_PIXEL_LIMIT, detail=str(exc))
    except ImageError as exc:
        return PairOutcome(**ids, reason=Reason.IMAGE_PROCESSING_FAILED, detail=str(exc))
    except (OSError, MemoryError) as exc:
        detail = f"{task.name!r}: {describe_error(exc)}"
        return PairOutcome(**ids, reason=Reason.IMAGE_PROCESSING_FAILED, detail=detail)
    except Exception as exc:  # noqa: BLE001 - a bug: this pair errors with its traceback, the rest go on
        return PairOutcome(**ids, reason=Reason.INTERNAL_ERROR, detail=_internal(task, "diffing", exc))
    changed = result.changed_pixels > 0
    step = "fingerprinting its change"
    try:
        change = fingerprint_change(result.mask, result.bbox, before_rgba, after_rgba)
        step = "writing its mask or previews"
        mask_png = result.mask_png() if changed else None
        previews = _previews(task, images, before_rgba, after_rgba, result) if changed and options.previews else None
    except (ImageError, OSError, MemoryError) as exc:
        detail = f"{task.name!r}: {step} failed: {describe_error(exc)}"
        return PairOutcome(**ids, reason=Reason.IMAGE_PROCESSING_FAILED, detail=detail)
    except Exception as exc:  # noqa: BLE001 - a bug: this pair errors with its traceback, the rest go on
        return PairOutcome(**ids, reason=Reason.INTERNAL_ERROR, detail=_internal(task, step, exc))
    return PairOutcome(
        **ids,
        changed_pixels=result.changed_pixels,
        total_pixels=result.total_pixels,
        aa_pixels=result.aa_pixels,
        bbox=result.bbox,
        before_size=result.before_size,
        after_size=result.after_size,
        mask_png=mask_png,
        previews=previews,
        window_max=result.window_max,
        applied_regions=result.ignore_regions,
        change=change,
    )


def _decoded(task: PairTask, before: bytes, after: bytes, options: CompareOptions,
             images: SharedImages) -> list[np.ndarray]:
    """The RGBA pixels of a pair's images, decoded or shared. Nothing here holds the opened images:
    each goes once decoded, with what its decoder held beside its pixels (a WebP's canvases, 8
    bytes a pixel), before the other decodes and the diff runs."""
    sides = list(zip((task.base_hash, task.head_hash),
                     open_pair(before, after, max_pixels=options.max_pixels, name=task.name,
                               exif_orientation=options.exif_orientation), strict=True))
    return images.pixels(sides)


class _PairIds(TypedDict):
    """The fields of a `PairOutcome` that name its `PairTask`."""

    base_hash: str
    head_hash: str
    ignore_regions: tuple[IgnoreRegion, ...]


def _internal(task: PairTask, step: str, exc: Exception) -> str:
    """The detail of a pair a bug stopped: what it was doing, then the whole traceback."""
    trace = "".join(traceback.format_exception(exc)).rstrip()
    return f"{task.name!r}: internal error while {step}:\n{trace}"


def _previews(
    task: PairTask, images: SharedImages, before: np.ndarray, after: np.ndarray, result: DiffResult
) -> dict[str, bytes]:
    """The report's pictures of a changed pair: thumbnails, the diff picture and crops."""
    factor = preview_factor(result.mask.shape[1], result.mask.shape[0])
    previews = make_previews(
        images.thumbnail(task.base_hash, before, factor),
        images.thumbnail(task.head_hash, after, factor),
        result.mask,
        result.bbox,
    )
    region = crop_region(result.mask, result.bbox)
    if region is not None:
        previews.update(make_crops(before, after, result.mask, region))
    return previews


def _fetch_failed(task: PairTask, errors: list[FetchError]) -> PairOutcome:
    detail = "; ".join(f"{'before' if e.key == task.base_hash else 'after'} blob {e}" for e in errors)
    return PairOutcome(task.base_hash, task.head_hash, reason=Reason.IMAGE_FETCH_FAILED, detail=detail,
                       ignore_regions=task.ignore_regions)
