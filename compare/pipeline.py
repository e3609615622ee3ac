"""The comparison: plan from the manifests, stream blobs in, diff pairs as they complete.

Fetching and diffing overlap: blobs arrive through `BatchPrefetcher.iter_fetch` in pair order,
a pair goes to the diff pool as soon as both its blobs are in, and a blob is dropped once its
last pair is done. Memory stays within ``CompareOptions.max_memory``: a quarter for blobs
fetched ahead, the rest for the pairs being decoded and diffed.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from fetchers import BatchPrefetcher, BatchStats, BlobFetcher, FetchError, fetcher_from_url

from .categorize import ImageOutcome, Plan, Reason, Status, categorize
from .image import ImageError, ImageTooLarge
from .manifest import Manifest
from .previews import make_previews
from .pixeldiff import diff_images, open_pair
from .results import CompareOptions, Comparison, ImageResult

# Bytes per canvas pixel that one diff holds at its peak: two decoded RGBA images padded to
# the canvas, the mask and the scan's temporaries.
_BYTES_PER_PIXEL = 24
_DEFAULT_CANVAS = 1170 * 2532


@dataclass(frozen=True)
class PairTask:
    """One unique pixel diff: the blobs by hash, a name to label errors, the canvas if known."""

    base_hash: str
    head_hash: str
    name: str
    canvas_pixels: int | None = None


@dataclass(frozen=True)
class PairOutcome:
    """What a pixel diff found for one `PairTask`, or why it could not run."""

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


@dataclass(frozen=True)
class Progress:
    """Where a running comparison is."""

    images_total: int
    blobs_total: int
    blobs_fetched: int
    pairs_total: int
    pairs_done: int
    phase: str


def diff_chunk(store_url: str, options: CompareOptions, chunk: Sequence[PairTask]) -> list[PairOutcome]:
    """Fetch and diff one chunk of pairs from the store at ``store_url``.

    A pure function of picklable arguments, so chunks can run in other processes or on other
    machines; each outcome is self-contained (figures, mask PNG, previews).
    """
    with closing(fetcher_from_url(store_url, max_connections=options.fetch_workers)) as fetcher:
        return list(stream_pairs(fetcher, options, chunk))


def stream_pairs(
    fetcher: BlobFetcher,
    options: CompareOptions,
    tasks: Sequence[PairTask],
    *,
    on_blob: Callable[[], None] | None = None,
    stats: BatchStats | None = None,
) -> Iterator[PairOutcome]:
    """Yield one `PairOutcome` per task, in completion order, fetching each blob once.

    ``on_blob`` is called as each blob arrives; ``stats`` is filled with the fetch figures.
    """
    return _PairStream(fetcher, options, tasks).run(on_blob, stats)


class _PairStream:
    """The state of one `stream_pairs` run: blobs held, pairs waiting, diffs running.

    Memory: the prefetcher keeps at most a quarter of ``max_memory`` fetched ahead; blobs held
    for their pairs plus the estimated footprint of running diffs stay within the rest, except
    that one diff always runs, and a blob waiting for its partner is never dropped (it would
    have to be fetched again). Pairs are fetched grouped by base hash, so a base shared by many
    pairs is held only while those pairs run.
    """

    def __init__(self, fetcher: BlobFetcher, options: CompareOptions, tasks: Sequence[PairTask]) -> None:
        self.fetcher = fetcher
        self.options = options
        self.tasks = tasks
        self.users: dict[str, list[int]] = defaultdict(list)
        for index, task in enumerate(tasks):
            self.users[task.base_hash].append(index)
            self.users[task.head_hash].append(index)
        self.pending_users = {key: len(indices) for key, indices in self.users.items()}
        self.missing = [2] * len(tasks)
        self.blobs: dict[str, bytes | FetchError] = {}
        self.held_bytes = 0
        self.running: dict[Future, tuple[int, int]] = {}
        self.running_cost = 0
        self.fetch_budget = options.max_memory // 4
        self.budget = options.max_memory - self.fetch_budget

    def keys(self) -> list[str]:
        """Every blob once, pair by pair, pairs that share a base next to each other."""
        group = {key: position for position, key in enumerate(dict.fromkeys(t.base_hash for t in self.tasks))}
        order = sorted(range(len(self.tasks)), key=lambda index: group[self.tasks[index].base_hash])
        return list(dict.fromkeys(key for i in order for key in (self.tasks[i].base_hash, self.tasks[i].head_hash)))

    def run(self, on_blob: Callable[[], None] | None, stats: BatchStats | None) -> Iterator[PairOutcome]:
        prefetcher = BatchPrefetcher(
            self.fetcher,
            max_workers=self.options.fetch_workers,
            verify=self.options.verify,
            max_pending_bytes=self.fetch_budget,
        )
        pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="snapcompare-diff")
        try:
            for key, value in prefetcher.iter_fetch(self.keys(), stats=stats):
                self.blobs[key] = value
                self.held_bytes += 0 if isinstance(value, FetchError) else len(value)
                if on_blob is not None:
                    on_blob()
                for index in self.users[key]:
                    self.missing[index] -= 1
                    if not self.missing[index]:
                        yield from self.start(index, pool)
                yield from self.collect(block=False)
                while self.running and self.held_bytes + self.running_cost > self.budget:
                    yield from self.collect(block=True)
            while self.running:
                yield from self.collect(block=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            prefetcher.close()

    def start(self, index: int, pool: ThreadPoolExecutor) -> Iterator[PairOutcome]:
        """Submit the diff of a pair whose blobs are in, once its memory fits the budget."""
        task = self.tasks[index]
        before, after = self.blobs[task.base_hash], self.blobs[task.head_hash]
        failed = [blob for blob in (before, after) if isinstance(blob, FetchError)]
        if failed:
            self.release(index)
            yield _fetch_failed(task, failed)
            return
        cost = (task.canvas_pixels or _DEFAULT_CANVAS) * _BYTES_PER_PIXEL
        while self.running and self.held_bytes + self.running_cost + cost > self.budget:
            yield from self.collect(block=True)
        self.running[pool.submit(diff_pair, task, before, after, self.options)] = (index, cost)
        self.running_cost += cost

    def collect(self, block: bool) -> Iterator[PairOutcome]:
        """Yield the outcomes of finished diffs (waiting for one when ``block``)."""
        if not self.running:
            return
        done, _ = wait(self.running, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            index, cost = self.running.pop(future)
            self.running_cost -= cost
            self.release(index)
            yield future.result()

    def release(self, index: int) -> None:
        """A pair is done with its blobs: drop each blob whose last pair this was."""
        task = self.tasks[index]
        for key in (task.base_hash, task.head_hash):
            self.pending_users[key] -= 1
            if self.pending_users[key] == 0:
                blob = self.blobs.pop(key)
                self.held_bytes -= 0 if isinstance(blob, FetchError) else len(blob)


def diff_pair(task: PairTask, before: bytes, after: bytes, options: CompareOptions) -> PairOutcome:
    """Decode and diff one pair; any failure becomes an errored outcome, never an exception."""
    ids = {"base_hash": task.base_hash, "head_hash": task.head_hash}
    try:
        first, second = open_pair(before, after, max_pixels=options.max_pixels, name=task.name)
        before_rgba, after_rgba = first.rgba(), second.rgba()
        result = diff_images(
            before_rgba,
            after_rgba,
            threshold=options.threshold,
            antialiasing=options.antialiasing,
            max_pixels=options.max_pixels,
        )
    except ImageTooLarge as exc:
        return PairOutcome(**ids, reason=Reason.EXCEEDS_PIXEL_LIMIT, detail=str(exc))
    except ImageError as exc:
        return PairOutcome(**ids, reason=Reason.IMAGE_PROCESSING_FAILED, detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken pair errors itself, not the comparison
        detail = f"{task.name!r}: {type(exc).__name__}: {exc}"
        return PairOutcome(**ids, reason=Reason.IMAGE_PROCESSING_FAILED, detail=detail)
    changed = result.changed_pixels > 0
    return PairOutcome(
        **ids,
        changed_pixels=result.changed_pixels,
        total_pixels=result.total_pixels,
        aa_pixels=result.aa_pixels,
        bbox=result.bbox,
        before_size=result.before_size,
        after_size=result.after_size,
        mask_png=result.mask_png() if changed else None,
        previews=(
            make_previews(before_rgba, after_rgba, result.mask, result.bbox)
            if changed and options.previews
            else None
        ),
    )


def _fetch_failed(task: PairTask, errors: list[FetchError]) -> PairOutcome:
    detail = "; ".join(f"{'before' if e.key == task.base_hash else 'after'} blob {e}" for e in errors)
    return PairOutcome(task.base_hash, task.head_hash, reason=Reason.IMAGE_FETCH_FAILED, detail=detail)


def run_comparison(
    base: Manifest,
    head: Manifest,
    fetcher: BlobFetcher,
    options: CompareOptions,
    *,
    out_dir: Path,
    progress: Callable[[Progress], None] | None = None,
) -> Comparison:
    """Compare ``head`` against ``base``: every image of both ends with exactly one status.

    Writes masks to ``out_dir/diff/`` and previews to ``out_dir/previews/``; reports are
    written separately (see `compare.reports`).
    """
    started = time.monotonic()
    plan = categorize(base, head, max_pixels=options.max_pixels, default_diff_threshold=options.diff_threshold)
    results = {name: _decided(outcome, options) for name, outcome in plan.outcomes.items()}
    tasks = _tasks(plan)
    counters = {"blobs": 0, "pairs": 0}

    def report(phase: str) -> None:
        if progress is not None:
            progress(
                Progress(plan.total, len(plan.blobs), counters["blobs"], len(tasks), counters["pairs"], phase)
            )

    def blob_arrived() -> None:
        counters["blobs"] += 1
        report("comparing")

    out_dir = Path(out_dir)
    writer = _ArtifactWriter(out_dir)
    report("comparing")
    fetch_stats = BatchStats()
    for outcome in stream_pairs(fetcher, options, tasks, on_blob=blob_arrived, stats=fetch_stats):
        names = plan.pairs[(outcome.base_hash, outcome.head_hash)]
        previews = writer.previews(outcome)
        for name in names:
            result = _judge(plan, name, outcome, previews)
            if outcome.mask_png is not None:
                result = replace(result, diff_mask_key=writer.mask(name, outcome.mask_png))
            results[name] = result
        counters["pairs"] += 1
        report("comparing")
    report("done")
    stats = {"wall_time": time.monotonic() - started, "pairs_diffed": len(tasks), "blobs": len(plan.blobs)}
    stats.update({f"fetch_{k}": v for k, v in vars(fetch_stats).items() if v})
    return Comparison(
        images=dict(sorted(results.items())),
        options=options,
        base_source=base.source,
        head_source=head.source,
        stats=stats,
    )


def _decided(outcome: ImageOutcome, options: CompareOptions) -> ImageResult:
    """The result of an image whose status the manifests alone decided."""
    result = ImageResult(**vars(outcome))
    if outcome.reason is Reason.EXCEEDS_PIXEL_LIMIT:
        width = max(outcome.before_width or 0, outcome.after_width or 0)
        height = max(outcome.before_height or 0, outcome.after_height or 0)
        detail = (
            f"{outcome.name!r}: comparison canvas {width}x{height} = {width * height} pixels "
            f"(from the manifests) exceeds max_pixels={options.max_pixels}"
        )
        result = replace(result, detail=detail)
    return result


def _tasks(plan: Plan) -> list[PairTask]:
    tasks = []
    for (base_hash, head_hash), names in plan.pairs.items():
        candidate = plan.candidates[names[0]]
        sizes = (candidate.base.width, candidate.base.height, candidate.head.width, candidate.head.height)
        canvas = None
        if None not in sizes:
            canvas = max(sizes[0], sizes[2]) * max(sizes[1], sizes[3])
        tasks.append(PairTask(base_hash, head_hash, names[0], canvas))
    return tasks


def _judge(plan: Plan, name: str, outcome: PairOutcome, previews: dict[str, str] | None) -> ImageResult:
    """The status of candidate ``name`` from its pair's outcome."""
    candidate = plan.candidates[name]
    sizes = {
        "before_width": candidate.base.width,
        "before_height": candidate.base.height,
        "after_width": candidate.head.width,
        "after_height": candidate.head.height,
    }
    if outcome.before_size is not None:
        sizes = {
            "before_width": outcome.before_size[0],
            "before_height": outcome.before_size[1],
            "after_width": outcome.after_size[0],
            "after_height": outcome.after_size[1],
        }
    common = {
        "name": name,
        "base_hash": outcome.base_hash,
        "head_hash": outcome.head_hash,
        "diff_threshold": candidate.diff_threshold,
        **sizes,
    }
    if outcome.reason is not None:
        return ImageResult(status=Status.ERRORED, reason=outcome.reason, detail=outcome.detail, **common)
    ratio = outcome.changed_pixels / outcome.total_pixels
    return ImageResult(
        status=Status.CHANGED if ratio > candidate.diff_threshold else Status.UNCHANGED,
        changed_pixels=outcome.changed_pixels,
        total_pixels=outcome.total_pixels,
        diff_ratio=ratio,
        aa_pixels=outcome.aa_pixels,
        bbox=outcome.bbox,
        previews=previews,
        **common,
    )


class _ArtifactWriter:
    """Writes masks and previews under the output folder, at collision-free paths."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def mask(self, name: str, png: bytes) -> str:
        return self._write(f"diff/{safe_file_name(name)}.png", png)

    def previews(self, outcome: PairOutcome) -> dict[str, str] | None:
        if not outcome.previews:
            return None
        pair = f"{outcome.base_hash[:16]}-{outcome.head_hash[:16]}"
        return {kind: self._write(f"previews/{pair}/{file}", data) for kind, (file, data) in _named(outcome.previews)}

    def _write(self, relative: str, data: bytes) -> str:
        path = self.out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return relative


def _named(previews: dict[str, bytes]) -> Iterator[tuple[str, tuple[str, bytes]]]:
    for kind, data in previews.items():
        extension = "png" if data.startswith(b"\x89PNG") else "jpg"
        yield kind, (f"{kind}.{extension}", data)


def safe_file_name(name: str) -> str:
    """A single file name for image ``name``, distinct for every distinct name.

    Every character but ASCII letters, digits and ``._-~`` is percent-encoded, ``/`` included
    (``icons/home.png`` -> ``icons%2Fhome.png``), and ``.`` and ``..`` are spelled ``%2E``, so
    names can neither leave the folder nor collide as a file and a folder. A name too long for a file system maps to ``%%`` and its
    sha256, a form percent-encoding never produces.
    """
    encoded = quote(name, safe="", errors="surrogatepass")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")  # quote never writes %2E, so this stays distinct
    if len(encoded) > 200:
        return "%%" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded
