"""The comparison on this machine: plan, then stream every chunk's blobs into diffs, judge each
pair as it finishes, hand masks and previews to an `ArtifactSink`, and finalize.

It is `compare.engine.chunks`' plan / chunks / finalize with the chunks run as one stream
(one prefetcher and one memory budget over all of them, so fetching never waits at a chunk's
end); `compare.engine.distributed` runs the same chunks on a Dask cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fetchers import BatchStats, BlobFetcher

from ..inputs.manifest import Manifest
from ..model import CompareOptions, Comparison, ImageResult, Resources
from .chunks import ArtifactSink, ChunkResult, finalize, judge, plan, with_files
from .pairs import DiffThreads, stream_pairs

__all__ = ["ArtifactSink", "Progress", "run_comparison"]


@dataclass(frozen=True)
class Progress:
    """Where a running comparison is."""

    images_total: int
    blobs_total: int
    blobs_fetched: int
    pairs_total: int
    pairs_done: int
    phase: str


def run_comparison(
    base: Manifest,
    head: Manifest,
    fetcher: BlobFetcher,
    options: CompareOptions,
    *,
    artifacts: ArtifactSink,
    resources: Resources | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Comparison:
    """Compare ``head`` against ``base``: every image of both ends with exactly one status.

    ``resources`` are this process's (default: `Resources()`).

    Masks and previews go to ``artifacts`` as pairs finish; reports are written separately
    (see `compare.output.reports`).
    """
    started = time.monotonic()
    comparison_plan = plan(base, head, options)
    chunks = comparison_plan.chunks
    pairs = {pair: (chunk.chunk_index, names) for chunk in chunks for pair, names in chunk.pairs().items()}
    tasks = [task for chunk in chunks for task in chunk.tasks()]
    blobs_total = len(comparison_plan.blobs)
    images: dict[int, dict[str, ImageResult]] = {chunk.chunk_index: {} for chunk in chunks}
    counters = {"blobs": 0, "pairs": 0}

    def report(phase: str) -> None:
        if progress is not None:
            progress(Progress(comparison_plan.total, blobs_total, counters["blobs"], len(tasks),
                              counters["pairs"], phase))

    def blob_arrived() -> None:
        counters["blobs"] += 1
        report("comparing")

    report("comparing")
    fetch_stats = BatchStats()
    threads = DiffThreads()
    for outcome in stream_pairs(fetcher, options, resources or Resources(), tasks, on_blob=blob_arrived,
                                stats=fetch_stats, threads=threads):
        index, names = pairs[outcome.key]
        images[index].update(with_files(judge(names, outcome, options), outcome, artifacts))
        counters["pairs"] += 1
        report("comparing")
    report("done")
    stats = {"wall_time": time.monotonic() - started, "pairs_diffed": len(tasks), "blobs": blobs_total,
             "diff_threads": len(threads)}
    stats.update({f"fetch_{k}": v for k, v in vars(fetch_stats).items() if v})
    results = {index: ChunkResult(index, chunk_images) for index, chunk_images in images.items()}
    return finalize(comparison_plan, results, stats=stats)
