"""A comparison as plan, chunks and finalize: the shape that runs on one machine or many.

- `plan`: categorise the manifests (`compare.classify.categorize`) and cut the pixel diff
  candidates into `ChunkAssignment`s of at most ``MAX_CHUNK_PIXELS`` canvas pixels (an unknown
  canvas counts as a phone screenshot) and ``MAX_CHUNK_PAIRS`` pairs, pairs that share a blob
  in the same chunk when they fit;
- `run_chunk`: fetch and diff one chunk's pairs (`stream_pairs`, with its own prefetcher and
  memory budget) and judge its images; masks and previews come back as bytes;
- `finalize`: merge the decided images and every chunk's, and list the changes images share
  (`change_groups`); a chunk that failed or whose result cannot be read errors its own images
  (``chunk_failed``, ``chunk_result_unreadable``) and nothing else.

Every argument and result is picklable and small (a store URL and options, never a fetcher
or a secret), and plan and chunk results read and write as JSON in the shapes of Sentry's
``plan.json`` and ``chunks/{i}.json`` (mask and preview bytes are not part of the JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Self

from fetchers import BlobFetcher, BlobWriter, ClosableFetcher, fetcher_from_url
from fetchers.protocol import describe_store

from ..classify import DiffCandidate, PairKey, categorize, mask_shadowed
from ..inputs.manifest import Manifest
from ..model import (
    ChangeGroup,
    ChangeLevel,
    CompareOptions,
    Comparison,
    ImageResult,
    Reason,
    Resources,
    Status,
    as_regions,
    canvas_size,
)
from ..regions import IgnoreRegion, merged
from .pairs import DiffThreads, PairOutcome, PairTask, check_engine, stream_pairs

MAX_CHUNK_PIXELS = 40_000_000
"""Canvas pixels of one chunk's diffs, at most (a single larger pair is a chunk of its own)."""

MAX_CHUNK_PAIRS = 100
"""Unique pairs of one chunk, at most: small images still spread over many workers."""

_DEFAULT_CANVAS = 1170 * 2532
"""The canvas a pair of unknown size counts as: a phone screenshot's."""


class ArtifactSink(Protocol):
    """Where a comparison puts the files it makes as it goes; each call returns their keys."""

    def mask(self, name: str, png: bytes) -> str | None:
        """Store image ``name``'s diff mask; return the key it is referred to by (None when the
        sink keeps no files)."""
        ...

    def previews(self, outcome: PairOutcome) -> Mapping[str, str] | None:
        """Store a pair's report previews, if it has any; return their keys by role."""
        ...


class ChunkPublisher(Protocol):
    """Stores a chunk's results where the worker that ran it is (see
    `compare.output.results_store.ResultsPublisher`); picklable, naming its store by URL."""

    @property
    def store_url(self) -> str:
        """The store the results go to, for the worker to open with its own credentials."""
        ...

    def chunk(self, chunk: ChunkAssignment, result: ChunkResult, store: BlobWriter,
              options: CompareOptions, resources: Resources) -> ChunkResult:
        """Store ``result``'s files and JSON in ``store``; return it with their keys set."""
        ...


@dataclass(frozen=True)
class ChunkCandidate:
    """One name to judge by a pixel diff, with what judging it needs from the manifests and
    every region ignored in it, as given (the comparison's, then those of the patterns matching
    its name and the image's own)."""

    name: str
    base_hash: str
    head_hash: str
    diff_threshold: float
    before_width: int | None = None
    before_height: int | None = None
    after_width: int | None = None
    after_height: int | None = None
    ignore_regions: tuple[IgnoreRegion, ...] = ()

    def __post_init__(self) -> None:
        # Read back from JSON, regions are lists.
        object.__setattr__(self, "ignore_regions", as_regions(self.ignore_regions, "ignore_regions"))

    @classmethod
    def of(cls, candidate: DiffCandidate, ignore_regions: tuple[IgnoreRegion, ...] = ()) -> ChunkCandidate:
        """The chunk candidate of a planned `DiffCandidate`, with the comparison's ``ignore_regions``."""
        base, head = candidate.base, candidate.head
        return cls(candidate.name, base.content_hash, head.content_hash, candidate.diff_threshold,
                   base.width, base.height, head.width, head.height,
                   merged(ignore_regions, candidate.ignore_regions))

    @property
    def key(self) -> PairKey:
        """The diff this name shares with others: base hash, head hash, ignore regions."""
        return self.base_hash, self.head_hash, self.ignore_regions

    @property
    def canvas_pixels(self) -> int | None:
        """The diff canvas from the manifests; None when a size is unknown."""
        before_width, before_height = self.before_width, self.before_height
        after_width, after_height = self.after_width, self.after_height
        if before_width is None or before_height is None or after_width is None or after_height is None:
            return None
        width, height = canvas_size((before_width, before_height), (after_width, after_height))
        return width * height

    @property
    def pixel_count(self) -> int:
        """The canvas a chunk is sized by: the manifests', else a phone screenshot's. Only the
        chunk's size: the worker running it admits each diff by the images' headers."""
        known = self.canvas_pixels
        return known if known is not None else _DEFAULT_CANVAS


@dataclass(frozen=True)
class ChunkAssignment:
    """The candidates one chunk judges, in name order; names sharing a pair share its diff.
    ``mask_shadowed`` names those of its candidates whose Sentry mask key a later name of the
    comparison owns (`compare.classify.mask_shadowed`), maybe one in another chunk: their masks are
    not written to a results store."""

    chunk_index: int
    candidates: tuple[ChunkCandidate, ...]
    mask_shadowed: tuple[str, ...] = ()

    def pairs(self) -> dict[PairKey, tuple[ChunkCandidate, ...]]:
        """Each unique diff (`PairKey`) with the candidates it decides."""
        grouped: dict[PairKey, list[ChunkCandidate]] = {}
        for candidate in self.candidates:
            grouped.setdefault(candidate.key, []).append(candidate)
        return {key: tuple(names) for key, names in grouped.items()}

    def tasks(self) -> list[PairTask]:
        """One `PairTask` per unique diff, labelled by its first name."""
        return [PairTask(base, head, names[0].name, regions)
                for (base, head, regions), names in self.pairs().items()]

    @property
    def blobs(self) -> frozenset[str]:
        """The hashes this chunk fetches."""
        return frozenset(h for c in self.candidates for h in (c.base_hash, c.head_hash))


@dataclass(frozen=True)
class ComparisonPlan:
    """What the manifests decide (``non_diff_images``) and the chunks of diffs left to do."""

    chunks: tuple[ChunkAssignment, ...]
    non_diff_images: Mapping[str, ImageResult]
    options: CompareOptions
    base_source: str = ""
    head_source: str = ""

    @property
    def total(self) -> int:
        """The number of images the comparison reports."""
        return len(self.non_diff_images) + sum(len(chunk.candidates) for chunk in self.chunks)

    @property
    def blobs(self) -> frozenset[str]:
        """Every hash some chunk fetches."""
        return frozenset().union(*(chunk.blobs for chunk in self.chunks))


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's judged images; ``files`` holds the outcomes whose mask or previews are not
    stored yet (`store_files` stores them and sets the images' keys)."""

    chunk_index: int
    images: Mapping[str, ImageResult]
    files: tuple[PairOutcome, ...] = field(default=(), repr=False)
    diff_threads: int = 0
    """The threads that ran the chunk's diffs."""


@dataclass(frozen=True)
class ChunkFailure:
    """Why a chunk has no result: it failed, or (``unreadable``) its result cannot be used."""

    detail: str
    unreadable: bool = False


def plan(
    base: Manifest,
    head: Manifest,
    options: CompareOptions,
    *,
    max_chunk_pixels: int = MAX_CHUNK_PIXELS,
    max_chunk_pairs: int = MAX_CHUNK_PAIRS,
) -> ComparisonPlan:
    """Categorise ``base`` and ``head`` and cut the diff candidates into chunks (see module doc).

    Raises `InputError` when the options name no engine or options it does not take, or a
    head image's ``ignore_regions`` is malformed.
    """
    check_engine(options)
    decided = categorize(base, head, max_pixels=options.max_pixels,
                         default_diff_threshold=options.diff_threshold,
                         ignore_patterns=options.ignore_patterns)
    # Keyed by the regions each name is diffed with (the comparison's and its own), so names
    # whose merged regions are equal share one diff whatever their manifests said.
    pairs: dict[PairKey, list[ChunkCandidate]] = {}
    for names in decided.pairs.values():
        for name in names:
            candidate = ChunkCandidate.of(decided.candidates[name], options.ignore_regions)
            pairs.setdefault(candidate.key, []).append(candidate)
    shadowed = mask_shadowed(c.name for candidates in pairs.values() for c in candidates)
    chunks = []
    for index, group in enumerate(_cut(pairs, max_chunk_pixels, max_chunk_pairs)):
        members = tuple(sorted((c for pair in group for c in pairs[pair]), key=lambda c: c.name))
        chunks.append(ChunkAssignment(index, members, tuple(c.name for c in members if c.name in shadowed)))
    return ComparisonPlan(tuple(chunks), decided.outcomes, options, base.source, head.source)


def _cut(
    pairs: Mapping[PairKey, Sequence[ChunkCandidate]], limit: int, max_pairs: int
) -> list[list[PairKey]]:
    """Pairs packed in order into chunks of at most ``limit`` pixels and ``max_pairs`` pairs.

    Pairs linked by shared blobs form a group that goes into one chunk whole when it fits
    (each shared blob is then fetched and decoded once); a larger group is split pair by
    pair, pairs with the same base next to each other.
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for base_hash, head_hash, _ in pairs:
        parent[root(base_hash)] = root(head_hash)
    groups: dict[str, list[PairKey]] = {}
    for pair in pairs:
        groups.setdefault(root(pair[0]), []).append(pair)

    chunks: list[list[PairKey]] = []
    current: list[PairKey] = []
    size = 0

    def add(members: list[PairKey]) -> None:
        """Put ``members`` in the current chunk, after closing it if they do not fit."""
        nonlocal current, size
        cost = sum(pairs[pair][0].pixel_count for pair in members)
        if current and (size + cost > limit or len(current) + len(members) > max_pairs):
            chunks.append(current)
            current, size = [], 0
        current.extend(members)
        size += cost

    for group in groups.values():
        if sum(pairs[pair][0].pixel_count for pair in group) <= limit and len(group) <= max_pairs:
            add(group)
            continue
        bases = {pair[0]: position for position, pair in reversed(list(enumerate(group)))}
        for pair in sorted(group, key=lambda pair: bases[pair[0]]):
            add([pair])
    if current:
        chunks.append(current)
    return chunks


class StoreFetcher(BlobFetcher, Protocol):
    """A `BlobFetcher` that releases its connections, by ``close()`` or ``with``: what every
    fetcher snapcompare ships is (a `fetchers.ClosableFetcher`)."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def store_fetcher(url: str, **options: Any) -> StoreFetcher:
    """`fetchers.fetcher_from_url` (``url``, ``options``), typed as what each of its backends is:
    a fetcher that releases its connections. Raises what it raises."""
    fetcher = fetcher_from_url(url, **options)
    if not isinstance(fetcher, ClosableFetcher):  # every backend of fetcher_from_url is one
        raise TypeError(f"{describe_store(fetcher)} cannot be closed")
    return fetcher


def worker_fetcher(url: str, resources: Resources) -> StoreFetcher:
    """The fetcher of store ``url`` on the process that runs chunks, credentials from its own
    environment (each store's own convention, see `fetchers.registry.BACKENDS`)."""
    return store_fetcher(url, max_connections=resources.fetch_workers, max_blob_bytes=resources.fetch_budget)


def run_chunk(chunk: ChunkAssignment, store: str | BlobFetcher, options: CompareOptions,
              resources: Resources) -> ChunkResult:
    """Fetch, diff and judge one chunk from ``store`` (a store URL, opened and closed here, or
    a fetcher) within ``resources``; the masks and previews come back as bytes in ``files``."""
    if isinstance(store, str):
        with closing(worker_fetcher(store, resources)) as fetcher:
            return run_chunk(chunk, fetcher, options, resources)
    pairs = chunk.pairs()
    images: dict[str, ImageResult] = {}
    files = []
    threads = DiffThreads()
    for outcome in stream_pairs(store, options, resources, chunk.tasks(), threads=threads):
        images.update(judge(pairs[outcome.key], outcome, options))
        if outcome.mask_png is not None or outcome.previews:
            files.append(outcome)
    return ChunkResult(chunk.chunk_index, dict(sorted(images.items())), tuple(files), len(threads))


def judge(
    candidates: Iterable[ChunkCandidate], outcome: PairOutcome, options: CompareOptions
) -> dict[str, ImageResult]:
    """The results of the candidates a pair's outcome decides, without file keys; ``changed``
    as `CompareOptions.is_changed` says. Every image with changed pixels, ``changed`` or not,
    carries its change's ids (``change_group``, ``similar_change``)."""
    return {candidate.name: _judge(candidate, outcome, options) for candidate in candidates}


def _judge(candidate: ChunkCandidate, outcome: PairOutcome, options: CompareOptions) -> ImageResult:
    common = _identity(candidate)
    # Sizes read from the images' headers win over what the manifests declared.
    if outcome.before_size is not None:
        common["before_width"], common["before_height"] = outcome.before_size
    if outcome.after_size is not None:
        common["after_width"], common["after_height"] = outcome.after_size
    if outcome.reason is not None:
        return ImageResult(status=Status.ERRORED, reason=outcome.reason, detail=outcome.detail, **common)
    # A diffed image lists its regions as they applied to its canvas; an errored one as given.
    common["ignore_regions"] = outcome.applied_regions or None
    changed_pixels, total_pixels = outcome.changed_pixels, outcome.total_pixels
    assert changed_pixels is not None and total_pixels is not None  # an outcome without a reason counted both
    ratio = changed_pixels / total_pixels
    change = outcome.change
    # A size change is a change, but where images are padded as Sentry pads them (its statuses).
    canvas_changed = (outcome.before_size is not None and outcome.after_size is not None
                      and outcome.before_size != outcome.after_size)
    changed = (options.is_changed(ratio, candidate.diff_threshold, outcome.window_max)
               or (canvas_changed and not options.padded))
    return ImageResult(
        status=Status.CHANGED if changed else Status.UNCHANGED,
        canvas_changed=canvas_changed,
        changed_pixels=outcome.changed_pixels,
        total_pixels=outcome.total_pixels,
        diff_ratio=ratio,
        aa_pixels=outcome.aa_pixels,
        bbox=outcome.bbox,
        window_max=outcome.window_max,
        change_group=change.identical if change is not None else None,
        similar_change=change.similar if change is not None else None,
        **common,
    )


def _identity(candidate: ChunkCandidate) -> dict[str, Any]:
    return {
        "name": candidate.name,
        "base_hash": candidate.base_hash,
        "head_hash": candidate.head_hash,
        "diff_threshold": candidate.diff_threshold,
        "before_width": candidate.before_width,
        "before_height": candidate.before_height,
        "after_width": candidate.after_width,
        "after_height": candidate.after_height,
        "ignore_regions": candidate.ignore_regions or None,
    }


def with_files(
    images: Mapping[str, ImageResult], outcome: PairOutcome, sink: ArtifactSink
) -> dict[str, ImageResult]:
    """``images`` (those one outcome decided) after storing its mask and previews in ``sink``."""
    previews = sink.previews(outcome)
    return {
        name: replace(
            result,
            # An outcome without mask bytes keeps the key its mask was stored under elsewhere.
            diff_mask_key=(sink.mask(name, outcome.mask_png) if outcome.mask_png is not None
                           else result.diff_mask_key),
            previews=previews,
        )
        for name, result in images.items()
    }


def store_files(chunk: ChunkAssignment, result: ChunkResult, sink: ArtifactSink) -> ChunkResult:
    """``result`` with its masks and previews stored in ``sink`` and their keys set."""
    pairs = chunk.pairs()
    images = dict(result.images)
    for outcome in result.files:
        names = [c.name for c in pairs.get(outcome.key, ()) if c.name in images]
        images.update(with_files({name: images[name] for name in names}, outcome, sink))
    return replace(result, images=images, files=())


def finalize(
    plan: ComparisonPlan,
    results: Mapping[int, ChunkResult | ChunkFailure],
    *,
    stats: Mapping[str, float | int | str] | None = None,
) -> Comparison:
    """The comparison from the plan and each chunk's result, by chunk index, with its
    `change_groups`.

    A chunk without a result, or with a `ChunkFailure`, errors its own candidates
    (``chunk_failed``; ``chunk_result_unreadable`` for an unreadable one, or one whose images
    are not exactly its candidates).
    """
    images = dict(plan.non_diff_images)
    for chunk in plan.chunks:
        outcome = results.get(chunk.chunk_index)
        if outcome is None:
            outcome = ChunkFailure(f"chunk {chunk.chunk_index} did not finish")
        elif isinstance(outcome, ChunkResult) and set(outcome.images) != {c.name for c in chunk.candidates}:
            outcome = ChunkFailure(f"chunk {chunk.chunk_index}'s result does not match its assignment",
                                   unreadable=True)
        if isinstance(outcome, ChunkResult):
            images.update(outcome.images)
            continue
        reason = Reason.CHUNK_RESULT_UNREADABLE if outcome.unreadable else Reason.CHUNK_FAILED
        for candidate in chunk.candidates:
            images[candidate.name] = ImageResult(status=Status.ERRORED, reason=reason, detail=outcome.detail,
                                                 **_identity(candidate))
    return Comparison(
        images=dict(sorted(images.items())),
        options=plan.options,
        base_source=plan.base_source,
        head_source=plan.head_source,
        stats=dict(stats or {}),
        change_groups=change_groups(images),
    )


def change_groups(images: Mapping[str, ImageResult]) -> tuple[ChangeGroup, ...]:
    """The changes that two or more ``changed`` images share, at each level: one group per
    identical-change id (``change_group``) and one per similar-change id (``similar_change``)
    held by two or more of them, largest first (then identical before similar, then by id).

    A group's images are in name order and its representative is the first of them. An image
    whose id names no group is the only changed image with that change; ``unchanged`` images
    (their changed pixels within their threshold) keep their ids but are in no group.
    """
    members: dict[tuple[ChangeLevel, str], list[str]] = {}
    for name in sorted(images):
        result = images[name]
        if result.status is not Status.CHANGED:
            continue
        for level, change in ((ChangeLevel.IDENTICAL, result.change_group),
                              (ChangeLevel.SIMILAR, result.similar_change)):
            if change is not None:
                members.setdefault((level, change), []).append(name)
    levels = list(ChangeLevel)
    groups = [ChangeGroup(change, level, tuple(names), names[0])
              for (level, change), names in members.items() if len(names) > 1]
    return tuple(sorted(groups, key=lambda g: (-len(g.images), levels.index(g.level), g.id)))
