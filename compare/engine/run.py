"""The comparison: plan from the manifests, stream the pairs' blobs into diffs, give every
image its status and hand masks and previews to an `ArtifactSink` (`compare.engine.pairs` does
the fetching and diffing)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from fetchers import BatchStats, BlobFetcher

from ..inputs.manifest import Manifest
from ..model import CompareOptions, Comparison, ImageResult, Status
from ..plan import Plan, categorize
from .pairs import PairOutcome, PairTask, stream_pairs


@dataclass(frozen=True)
class Progress:
    """Where a running comparison is."""

    images_total: int
    blobs_total: int
    blobs_fetched: int
    pairs_total: int
    pairs_done: int
    phase: str


class ArtifactSink(Protocol):
    """Where a comparison puts the files it makes as it goes; each call returns their keys."""

    def mask(self, name: str, png: bytes) -> str:
        """Store image ``name``'s diff mask; return the key it is referred to by."""
        ...

    def previews(self, outcome: PairOutcome) -> Mapping[str, str] | None:
        """Store a pair's report previews, if it has any; return their keys by role."""
        ...


def run_comparison(
    base: Manifest,
    head: Manifest,
    fetcher: BlobFetcher,
    options: CompareOptions,
    *,
    artifacts: ArtifactSink,
    progress: Callable[[Progress], None] | None = None,
) -> Comparison:
    """Compare ``head`` against ``base``: every image of both ends with exactly one status.

    Masks and previews go to ``artifacts`` as pairs finish; reports are written separately
    (see `compare.output.reports`).
    """
    started = time.monotonic()
    plan = categorize(base, head, max_pixels=options.max_pixels, default_diff_threshold=options.diff_threshold)
    results = dict(plan.outcomes)
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

    report("comparing")
    fetch_stats = BatchStats()
    for outcome in stream_pairs(fetcher, options, tasks, on_blob=blob_arrived, stats=fetch_stats):
        names = plan.pairs[(outcome.base_hash, outcome.head_hash)]
        previews = artifacts.previews(outcome)
        for name in names:
            result = _judge(plan, name, outcome, previews)
            if outcome.mask_png is not None:
                result = replace(result, diff_mask_key=artifacts.mask(name, outcome.mask_png))
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


def _tasks(plan: Plan) -> list[PairTask]:
    return [
        PairTask(base_hash, head_hash, names[0], plan.candidates[names[0]].canvas_pixels)
        for (base_hash, head_hash), names in plan.pairs.items()
    ]


def _judge(plan: Plan, name: str, outcome: PairOutcome, previews: Mapping[str, str] | None) -> ImageResult:
    """The status of candidate ``name`` from its pair's outcome."""
    candidate = plan.candidates[name]
    # Sizes read from the images' headers win over what the manifests declared.
    before = outcome.before_size or (candidate.base.width, candidate.base.height)
    after = outcome.after_size or (candidate.head.width, candidate.head.height)
    common = {
        "name": name,
        "base_hash": outcome.base_hash,
        "head_hash": outcome.head_hash,
        "diff_threshold": candidate.diff_threshold,
        "before_width": before[0],
        "before_height": before[1],
        "after_width": after[0],
        "after_height": after[1],
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
