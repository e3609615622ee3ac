"""A comparison's results in a blob store, under the keys Sentry's snapshot pipeline uses.

The store's own prefix (``s3://bucket/1/2``, objectstore ``...&prefix=1/2``) plays Sentry's
``{org}/{project}``; below it, `SentryLayout` names, for artifacts ``{head}`` and ``{base}``:

- ``{head}/{base}/comparison.json`` (``application/json``), what `render_json` writes, with
  ``diff_mask_key`` the mask's full key in the store and no ``previews`` (local files);
- ``{head}/{base}/diff/{stem}.png`` (``image/png``), one mask per diffed image, ``unchanged``
  ones included (all zero), as Sentry writes them. Names sharing a stem (``a.png`` and
  ``a.jpg``) share a key, as in Sentry: the last name in name order wins, and every such
  image's ``diff_mask_key`` names that one mask;
- ``{head}/{base}/plan.json`` and ``{head}/{base}/chunks/{i}.json`` when chunks run on a
  cluster (`ResultsPublisher`), from which `finalize_from_store` rebuilds ``comparison.json``.

Every write goes through one `fetchers.BatchUploader` per publication: retryable failures
are retried within one retry budget, the rest end in `ResultsNotWritten`, which names each
key that failed. Writes replace what a key holds, so writing the same results again is harmless.

A JSON object in the store only ever names masks made with it, whatever fails and whenever a
run stops, even where an earlier run of the same ``{head}/{base}`` left one naming the same
mask keys (Sentry's keys are by name, not content; `publish_with_masks`):

- before a run writes any mask, it replaces the ``comparison.json`` (and on a cluster each
  ``chunks/{i}.json``) an earlier run may have left by its own, which names no mask;
- a mask the store does not take (a key it refuses, such as ``a//b.png``'s
  ``{head}/{base}/diff/a//b.png``, or a write that keeps failing) errors only the images
  that use it (``image_processing_failed``); the JSON naming every other mask is still written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from fetchers import (
    BatchPrefetcher,
    BatchUploader,
    BlobFetcher,
    BlobNotFound,
    BlobSource,
    BlobWriter,
    StoreError,
    StoreUnavailable,
)

from ..classify import mask_owners, path_stem
from ..engine.chunks import ChunkAssignment, ChunkFailure, ChunkResult, ComparisonPlan, finalize, store_files
from ..engine.pairs import PairOutcome
from ..model import CompareOptions, Comparison, ImageResult, Reason, Resources, Status
from .report_json import json_bytes, render_json
from .results_json import chunk_result_from_json, chunk_result_to_json, plan_from_json, plan_to_json
from .sentry_keys import fill_images, mask_image_id

JSON_TYPE = "application/json"
PNG_TYPE = "image/png"


class ResultsStore(BlobFetcher, BlobWriter, Protocol):
    """A store results are written to and, to finalize again, read back from."""


class ResultsNotWritten(Exception):
    """Some results could not be written to the results store; ``errors`` says why, by key.

    ``comparison``, when set, is the comparison whose results these were (it ran; only
    storing its results failed).
    """

    def __init__(self, store: str, errors: Mapping[str, StoreError], comparison: Comparison | None = None) -> None:
        self.store = store
        self.errors = dict(errors)
        self.comparison = comparison
        first = next(iter(self.errors.values()), None)
        super().__init__(f"{store}: {len(self.errors)} results not written"
                         + (f", first: {first}" if first is not None else ""))

    def __reduce__(self) -> tuple[Any, ...]:  # raised on cluster workers, read on the client
        return (type(self), (self.store, self.errors, self.comparison))


@dataclass(frozen=True)
class SentryLayout:
    """Sentry's keys of one comparison's results in a store whose prefix is ``{org}/{project}``."""

    prefix: str
    head_artifact_id: int
    base_artifact_id: int

    @classmethod
    def of(cls, store: object, options: CompareOptions) -> SentryLayout:
        """The layout of a comparison run with ``options`` in ``store`` (its ``prefix``, if any)."""
        return cls(getattr(store, "prefix", ""), options.head_artifact_id, options.base_artifact_id)

    @property
    def comparison_key(self) -> str:
        """``{head}/{base}/comparison.json``, relative to the store's prefix."""
        return self._key("comparison.json")

    @property
    def plan_key(self) -> str:
        """``{head}/{base}/plan.json``, relative to the store's prefix."""
        return self._key("plan.json")

    def chunk_key(self, index: int) -> str:
        """``{head}/{base}/chunks/{index}.json``, relative to the store's prefix."""
        return self._key(f"chunks/{index}.json")

    def mask_key(self, name: str) -> str:
        """Image ``name``'s mask, relative to the store's prefix (Sentry's ``diff_mask_image_id``)."""
        return mask_image_id(self.head_artifact_id, self.base_artifact_id, name)

    def full_key(self, key: str) -> str:
        """``key`` with the store's prefix: the key Sentry reports as ``diff_mask_key``."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, file: str) -> str:
        return f"{self.head_artifact_id}/{self.base_artifact_id}/{file}"


def store_form(comparison: Comparison, layout: SentryLayout) -> Comparison:
    """``comparison`` as the store holds it: mask keys in ``layout``, no local previews."""
    images = {
        name: replace(result, previews=None,
                      diff_mask_key=None if result.diff_mask_key is None
                      else layout.full_key(layout.mask_key(name)))
        for name, result in comparison.images.items()
    }
    return replace(comparison, images=images)


def mask_uploads(images: Mapping[str, ImageResult], layout: SentryLayout,
                 source: Callable[[ImageResult], BlobSource]) -> dict[str, BlobSource]:
    """The mask of each image that has one, by its key in ``layout``; the last name wins a key."""
    return {layout.mask_key(name): source(images[name])
            for name in sorted(images) if images[name].diff_mask_key is not None}


def upload(uploader: BatchUploader, blobs: Mapping[str, BlobSource], content_type: str) -> dict[str, StoreError]:
    """Write ``blobs``, replacing what their keys hold; return the errors by key.

    Raises `ResultsNotWritten` when the store cannot be used at all (naming the key that
    showed it): the other keys may then be unwritten too.
    """
    if not blobs:
        return {}
    try:
        return uploader.upload_all(blobs, content_type=content_type, skip_existing=False).errors
    except StoreUnavailable as exc:
        raise ResultsNotWritten(uploader.store_name, {exc.key: exc}) from None


def publish_with_masks(
    uploader: BatchUploader,
    layout: SentryLayout,
    images: Mapping[str, ImageResult],
    masks: Mapping[str, BlobSource],
    key: str,
    document: Callable[[dict[str, ImageResult]], bytes],
) -> tuple[dict[str, ImageResult], dict[str, StoreError]]:
    """Write ``masks`` (by key in ``layout``) and the JSON ``document`` of ``images`` under ``key``,
    so that the JSON in the store never names a mask other than the one it was made with.

    With masks to write: first ``document`` of ``images`` without mask keys, replacing what
    an earlier run left under ``key`` (it may name the masks about to be replaced; stop if
    that fails), then the masks, then ``document`` of ``images`` where each image whose mask
    could not be written is errored. Returns the images as last given to ``document`` and the
    errors by key. Raises `ResultsNotWritten` (no comparison) when the store cannot be used.
    """
    if masks:
        errors = upload(uploader, {key: document(_without_masks(images))}, JSON_TYPE)
        if errors:
            return dict(images), errors
    failed = upload(uploader, masks, PNG_TYPE)
    images = _mask_not_written(images, layout, failed)
    return images, {**failed, **upload(uploader, {key: document(images)}, JSON_TYPE)}


def _without_masks(images: Mapping[str, ImageResult]) -> dict[str, ImageResult]:
    """``images`` naming no mask, Sentry's ``diff_mask_image_id`` included."""
    return {name: result if result.diff_mask_key is None
            else replace(result, diff_mask_key=None, diff_mask_image_id=None)
            for name, result in images.items()}


def _mask_not_written(images: Mapping[str, ImageResult], layout: SentryLayout,
                      failed: Mapping[str, StoreError]) -> dict[str, ImageResult]:
    """``images`` with each one whose mask key is in ``failed`` errored, saying why."""
    out = dict(images)
    for name, result in images.items():
        error = failed.get(layout.mask_key(name)) if result.diff_mask_key is not None else None
        if error is not None:
            out[name] = ImageResult(
                name=name, status=Status.ERRORED, reason=Reason.IMAGE_PROCESSING_FAILED,
                detail=f"{name!r}: its diff mask could not be written to the results store: {error}",
                **{field: getattr(result, field) for field in _KEPT_WHEN_ERRORED},
            )
    return out


_KEPT_WHEN_ERRORED = ("head_hash", "base_hash", "before_width", "before_height", "after_width",
                      "after_height", "diff_threshold", "previews", "ignore_regions")
"""What an image whose mask was not written keeps: what it is, not what its diff found."""


def publish_comparison(
    comparison: Comparison,
    uploader: BatchUploader,
    layout: SentryLayout,
    masks: Mapping[str, BlobSource],
) -> None:
    """Write ``masks`` (see `mask_uploads`) and ``comparison.json`` as `publish_with_masks` does.

    Raises `ResultsNotWritten` naming every key that could not be written, with the comparison
    as stored (images whose mask was not written errored) when it ran.
    """
    try:
        images, errors = publish_with_masks(
            uploader, layout, comparison.images, masks, layout.comparison_key,
            lambda images: render_json(store_form(replace(comparison, images=images), layout)))
    except ResultsNotWritten as exc:
        raise ResultsNotWritten(exc.store, exc.errors, comparison) from None
    if errors:
        raise ResultsNotWritten(uploader.store_name, errors, replace(comparison, images=images))


def stored_masks_only(comparison: Comparison, plan: ComparisonPlan) -> Comparison:
    """``comparison``, run by cluster workers that stored their masks (`ResultsPublisher`),
    naming only masks they wrote: a name whose key a later candidate of ``plan`` owns
    (`ChunkAssignment.mask_shadowed`) leaves the key to it, so when that owner has no mask
    (errored, unchanged), the key holds nothing of this run and the name names no mask."""
    owners = mask_owners(c.name for chunk in plan.chunks for c in chunk.candidates)
    images = dict(comparison.images)
    for name in (name for chunk in plan.chunks for name in chunk.mask_shadowed):
        result = images[name]
        if result.diff_mask_key is not None and images[owners[path_stem(name)]].diff_mask_key is None:
            images[name] = replace(result, diff_mask_key=None, diff_mask_image_id=None)
    return replace(comparison, images=images)


def publish_plan(plan: ComparisonPlan, uploader: BatchUploader, layout: SentryLayout) -> None:
    """Write the comparison as it stands before any chunk ran (every chunk's images errored,
    no mask named: an earlier run's ``comparison.json`` may name masks the workers are about to
    replace), then ``plan.json``. Raises `ResultsNotWritten`."""
    for key, data in ((layout.comparison_key, render_json(store_form(finalize(plan, {}), layout))),
                      (layout.plan_key, json_bytes(plan_to_json(plan)))):
        errors = upload(uploader, {key: data}, JSON_TYPE)
        if errors:
            raise ResultsNotWritten(uploader.store_name, errors)


@dataclass(frozen=True)
class ResultsPublisher:
    """What a cluster worker needs to store its chunk's results itself (picklable, no secret).

    `chunk` writes the chunk's masks under Sentry's keys and ``chunks/{i}.json`` (as
    `publish_with_masks` does), and returns the result as written, with the masks' full keys
    set and their bytes dropped (the previews still travel back for the local report).
    """

    store_url: str
    layout: SentryLayout

    def chunk(self, chunk: ChunkAssignment, result: ChunkResult, store: BlobWriter,
              options: CompareOptions, resources: Resources) -> ChunkResult:
        """Store ``result``'s masks and ``chunks/{i}.json`` in ``store``; an image whose mask is not
        written is errored. Raises `ResultsNotWritten` when ``chunks/{i}.json`` is not written."""
        sink = _MaskCollector(self.layout, frozenset(chunk.mask_shadowed))
        masked = store_files(chunk, replace(result, files=tuple(o for o in result.files if o.mask_png)), sink)
        stored = replace(result, images=fill_images(masked.images, options, sink),
                         files=_previews_only(result.files))
        key = self.layout.chunk_key(chunk.chunk_index)
        with BatchUploader(store, max_workers=resources.fetch_workers) as uploader:
            images, errors = publish_with_masks(
                uploader, self.layout, stored.images, sink.uploads(), key,
                lambda images: json_bytes(chunk_result_to_json(replace(stored, images=images))))
        if key in errors:
            raise ResultsNotWritten(uploader.store_name, errors)
        return replace(stored, images=images)


class _MaskCollector:
    """An `ArtifactSink` that keeps masks by image name for upload, and no previews; the masks
    of ``shadowed`` names are not kept (the name owning their key writes it)."""

    def __init__(self, layout: SentryLayout, shadowed: frozenset[str] = frozenset()) -> None:
        self.layout = layout
        self.shadowed = shadowed
        self._masks: dict[str, bytes] = {}

    def mask(self, name: str, png: bytes) -> str:
        if name not in self.shadowed:
            self._masks[name] = png
        return self.layout.full_key(self.layout.mask_key(name))

    def previews(self, outcome: PairOutcome) -> None:
        return None

    def uploads(self) -> dict[str, bytes]:
        return {self.layout.mask_key(name): self._masks[name] for name in sorted(self._masks)}


def _previews_only(outcomes: Iterable[PairOutcome]) -> tuple[PairOutcome, ...]:
    return tuple(replace(o, mask_png=None) for o in outcomes if o.previews)


def finalize_from_store(store: ResultsStore, layout: SentryLayout, *, max_workers: int = 8) -> Comparison:
    """Rebuild ``comparison.json`` from ``plan.json`` and ``chunks/*.json`` in ``store``, write it
    and return the comparison.

    A chunk whose result is missing errors its candidates ``chunk_failed``, one whose result
    cannot be read ``chunk_result_unreadable`` (see `compare.engine.chunks.finalize`).
    Raises `ResultsNotWritten` when ``plan.json`` cannot be read (``ValueError`` when it is
    not a plan) or ``comparison.json`` cannot be written.
    """
    with BatchPrefetcher(store, max_workers=max_workers) as reader:
        fetched = reader.fetch_all([layout.plan_key])
        if layout.plan_key in fetched.errors:
            raise ResultsNotWritten(reader.store_name, fetched.errors)
        plan = plan_from_json(_json(fetched.blobs[layout.plan_key], layout.plan_key))
        keys = {chunk.chunk_index: layout.chunk_key(chunk.chunk_index) for chunk in plan.chunks}
        fetched = reader.fetch_all(keys.values())
    results: dict[int, ChunkResult | ChunkFailure] = {}
    for index, key in keys.items():
        error = fetched.errors.get(key)
        if isinstance(error, BlobNotFound):
            continue  # never written: the chunk did not finish
        if error is not None:
            results[index] = ChunkFailure(f"{key}: {error.message}", unreadable=True)
            continue
        try:
            results[index] = chunk_result_from_json(_json(fetched.blobs[key], key))
        except ValueError as exc:
            results[index] = ChunkFailure(str(exc), unreadable=True)
    comparison = stored_masks_only(finalize(plan, results), plan)
    with BatchUploader(store, max_workers=max_workers) as uploader:
        publish_comparison(comparison, uploader, layout, {})
    return comparison


def _json(data: bytes, key: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"{key}: not JSON: {exc}") from None
