"""Pictures of the images a reviewer judges without a diff: added, removed and renamed ones.

A comparison decides these statuses from the manifests alone and fetches nothing for them. A
reviewer still has to see what was added or removed, so when previews are on,
`add_single_previews` fetches each of their blobs once (through `BatchPrefetcher`, after the
run), makes a whole-image preview of it as the pair previews are made (`make_thumbnail`, at
most `PREVIEW_WIDTH` wide) and stores it through the run's `ArtifactSink`:

- added: ``after``, from the head blob;
- removed: ``before``, from the base blob;
- renamed: ``before`` and ``after``, both of the one blob a rename has (one file).

A picture is only a picture: a blob that cannot be fetched or decoded, or whose image is over
``max_pixels``, leaves the image without previews (the report says its picture is unavailable)
and never changes its status. Memory is bounded as in `compare.engine.pairs`: a quarter of
``max_memory`` for blobs fetched ahead, the rest for the blobs being pictured and their
decoding (`compare.engine.budget.decode_cost`), with one decode always allowed to run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from fetchers import BatchPrefetcher, BlobFetcher, FetchError, StoreUnavailable

from ..imaging.decode import ImageError, open_image
from ..imaging.previews import make_thumbnail, preview_factor
from ..model import CompareOptions, Comparison, ImageResult, Resources, Status
from .budget import MemoryBudget, decode_cost
from .chunks import ArtifactSink
from .pairs import PairOutcome

SINGLE_ROLES: Mapping[Status, tuple[str, ...]] = {
    Status.ADDED: ("after",),
    Status.REMOVED: ("before",),
    Status.RENAMED: ("before", "after"),
}
"""The preview roles each status without a diff gets, all from the image's one blob."""


def add_single_previews(
    comparison: Comparison, fetcher: BlobFetcher, sink: ArtifactSink, options: CompareOptions,
    resources: Resources | None = None,
) -> Comparison:
    """``comparison`` with a picture of every added, removed and renamed image in ``previews``.

    Does nothing (and fetches nothing) unless ``options.previews``. Blobs come from ``fetcher``
    (the run's: base and head), each once; pictures go to ``sink`` as pair previews do. An
    image whose picture cannot be made keeps ``previews`` None; a store that becomes
    unavailable ends the fetching, and the images not done yet keep None too.
    """
    if not options.previews:
        return comparison
    users = _blob_users(comparison.images.values())
    if not users:
        return comparison
    images = dict(comparison.images)
    for key, jpeg in _thumbnails(fetcher, options, resources or Resources(), list(users)):
        for name in users[key]:
            result = images[name]
            roles = SINGLE_ROLES[result.status]
            stored = sink.previews(PairOutcome(key, key, previews=dict.fromkeys(roles, jpeg)))
            images[name] = replace(result, previews=stored)
    return replace(comparison, images=images)


def _blob_users(results: Iterable[ImageResult]) -> dict[str, list[str]]:
    """The blob each image without a diff is shown from, with the names that show it."""
    users: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if result.status in SINGLE_ROLES:
            key = result.head_hash if result.status is not Status.REMOVED else result.base_hash
            if key:
                users[key].append(result.name)
    return dict(users)


def _thumbnails(
    fetcher: BlobFetcher, options: CompareOptions, resources: Resources, keys: list[str]
) -> Iterator[tuple[str, bytes]]:
    """Yield (blob key, preview JPEG) for each blob of ``keys`` whose picture could be made."""
    fetch_budget = resources.fetch_budget
    budget = MemoryBudget(resources.max_memory - fetch_budget)
    running: dict[Future[bytes | None], str] = {}
    prefetcher = BatchPrefetcher(fetcher, max_workers=resources.fetch_workers, verify=options.verify,
                                 max_pending_bytes=fetch_budget)
    pool = ThreadPoolExecutor(resources.workers, thread_name_prefix="snapcompare-single")

    def collect(block: bool) -> Iterator[tuple[str, bytes]]:
        done, _ = wait(running, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            key = running.pop(future)
            budget.release(key)
            jpeg = future.result()
            if jpeg is not None:
                yield key, jpeg

    try:
        try:
            for key, blob in prefetcher.iter_fetch(keys):
                if isinstance(blob, FetchError):
                    continue
                cost = _preview_cost(blob, options)
                while running and not budget.fits(cost):
                    yield from collect(block=True)
                budget.acquire(key, cost)
                running[pool.submit(single_preview, blob, options)] = key
                yield from collect(block=False)
        except StoreUnavailable:
            pass  # the pictures not fetched yet stay unavailable; the comparison stands
        while running:
            yield from collect(block=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        prefetcher.close()


def _preview_cost(blob: bytes, options: CompareOptions) -> int:
    """Bytes `single_preview` holds at its peak: the blob and its decoding (the thumbnail holds
    less), or the blob alone when it is refused before decoding."""
    decoding = decode_cost(blob, options.exif_orientation)
    if decoding is None or decoding.pixels > options.max_pixels:
        return len(blob)
    return len(blob) + decoding.peak


def single_preview(blob: bytes, options: CompareOptions) -> bytes | None:
    """The whole-image preview JPEG of one blob, as a pair's are made; None when the blob is
    not an image that can be decoded within ``options.max_pixels``."""
    try:
        opened = open_image(blob, exif_orientation=options.exif_orientation)
    except ImageError:  # only a picture: its image keeps its status
        return None
    try:
        width, height = opened.size
        if width * height > options.max_pixels:
            return None
        return make_thumbnail(opened.rgba(), preview_factor(width, height)).jpeg
    except (ImageError, OSError, MemoryError):  # only a picture: its image keeps its status
        return None
    finally:
        opened.close()
