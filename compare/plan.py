"""Sorting the images of a base and a head manifest into statuses, before anything is fetched.

`categorize` decides every status the manifests alone can decide and lists the rest as pixel
diff candidates, with the pairs to diff and the blobs to fetch. Its decided images are final
`ImageResult`s; the candidates are judged later, by the engine.

Rules, for a base name B and a head name H:

- B == H, same hash: ``unchanged``; never fetched.
- B == H, different hash: a diff candidate, unless the manifests' sizes already show that the
  diff canvas (widest width x tallest height of the two) is over ``max_pixels``: then
  ``errored`` with ``exceeds_pixel_limit``. An unknown size counts as 1, so only pairs known
  to be too large are errored here; the rest are checked again from the real image headers.
- H only in the head: ``added``, unless renamed.
- B only in the base: ``removed``, ``skipped`` or renamed, as the head manifest says:

  - with ``all_image_file_names`` (whatever ``selective`` says): B in the list is present but
    not uploaded, so ``skipped``; B not in the list is gone: renamed or ``removed``;
  - ``selective`` without a list: renamed or ``skipped``;
  - otherwise: renamed or ``removed``.

  Head images count as present whether listed or not. The base manifest is taken as complete:
  its own ``selective`` and list are ignored.
- ``renamed``: a head-only name and a base-only name that may be gone (not listed as present)
  with the same hash, paired before the leftovers become removed or skipped. A name the head
  lists as present is never a rename source: that image still exists, so an identical new name
  is an addition. One old and one new name of a hash pair directly; when more share it, pairs
  are chosen greedily by name similarity (`difflib.SequenceMatcher` ratio of old and new name,
  highest first; ties by new name, then old name) and the leftovers stay unpaired. That costs
  old x new ratios per hash, about 2 s for 300 old and 300 new names sharing one hash. A
  renamed image is reported under its head name with ``previous_image_file_name``; its base
  name gets no status of its own.

The threshold a candidate is judged against later is the head image's ``diff_threshold``, else
the head manifest's, else ``default_diff_threshold``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

from .inputs.manifest import ImageEntry, Manifest
from .model import (
    DEFAULT_MAX_PIXELS,
    ImageResult,
    Reason,
    Status,
    canvas_size,
    check_fraction,
    check_max_pixels,
)

@dataclass(frozen=True)
class DiffCandidate:
    """A name whose base and head hashes differ, to be judged by a pixel diff.

    ``diff_threshold`` is the resolved fraction of changed pixels above which it is ``changed``.
    """

    name: str
    base: ImageEntry
    head: ImageEntry
    diff_threshold: float

    @property
    def canvas_pixels(self) -> int | None:
        """The diff canvas (larger width x larger height) from the manifests, None if a size is unknown."""
        sizes = [(entry.width, entry.height) for entry in (self.base, self.head)]
        if None in (size for pair in sizes for size in pair):
            return None
        width, height = canvas_size(*sizes)
        return width * height

    @property
    def pair(self) -> tuple[str, str]:
        """``(base hash, head hash)``: the diff this name needs."""
        return self.base.content_hash, self.head.content_hash


@dataclass(frozen=True)
class Plan:
    """Everything decided before fetching, and the work left to do.

    - ``outcomes``: final statuses known now (unchanged, added, removed, renamed, skipped,
      errored), by reported name, in name order.
    - ``candidates``: names that need a pixel diff, in name order; each ends as changed,
      unchanged or errored.
    - ``pairs``: each unique ``(base hash, head hash)`` to diff once, with the candidate names
      that share its result, in order of first name.
    - ``blobs``: every hash that must be fetched, i.e. both sides of every pair and nothing else.

    Every name of base and head is accounted for exactly once: as a key of ``outcomes`` or
    ``candidates`` (disjoint), or as the ``previous_image_file_name`` of a renamed outcome.
    """

    outcomes: Mapping[str, ImageResult]
    candidates: Mapping[str, DiffCandidate]
    pairs: Mapping[tuple[str, str], tuple[str, ...]]
    blobs: frozenset[str]

    @property
    def total(self) -> int:
        """The number of images the comparison reports (renamed images count once)."""
        return len(self.outcomes) + len(self.candidates)

    def counts(self) -> dict[Status, int]:
        """Images per status among ``outcomes``, every status present (candidates not counted)."""
        counted = Counter(outcome.status for outcome in self.outcomes.values())
        return {status: counted[status] for status in Status}


def categorize(
    base: Manifest,
    head: Manifest,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    default_diff_threshold: float = 0.0,
) -> Plan:
    """Categorise every image of ``base`` and ``head`` from the manifests alone (see module doc)."""
    check_max_pixels(max_pixels)
    check_fraction("default_diff_threshold", default_diff_threshold)

    listed = head.all_image_file_names
    head_only = [name for name in head.images if name not in base.images]
    base_only = [name for name in base.images if name not in head.images]
    still_present = set(base_only) & listed if listed is not None else set()
    rename_sources = [name for name in base_only if name not in still_present]
    renames = _pair_renames(
        {name: base.images[name].content_hash for name in rename_sources},
        {name: head.images[name].content_hash for name in head_only},
    )
    renamed_from = set(renames.values())
    leftover_status = Status.SKIPPED if head.selective and listed is None else Status.REMOVED

    outcomes: dict[str, ImageOutcome] = {}
    candidates: dict[str, DiffCandidate] = {}
    for name in base_only:
        if name in renamed_from:
            continue
        status = Status.SKIPPED if name in still_present else leftover_status
        outcomes[name] = _decided(name, status, base=base.images[name])
    for name in head_only:
        entry = head.images[name]
        if name in renames:
            previous = base.images[renames[name]]
            outcomes[name] = _decided(name, Status.RENAMED, base=previous, head=entry,
                                      previous_image_file_name=previous.name)
        else:
            outcomes[name] = _decided(name, Status.ADDED, head=entry)
    for name, entry in head.images.items():
        before = base.images.get(name)
        if before is None:
            continue
        if before.content_hash == entry.content_hash:
            outcomes[name] = _decided(name, Status.UNCHANGED, base=before, head=entry)
        elif (known := _known_canvas(before, entry))[0] * known[1] > max_pixels:
            width, height = known
            detail = (
                f"{name!r}: comparison canvas {width}x{height} = {width * height} pixels "
                f"(from the manifests) exceeds max_pixels={max_pixels}"
            )
            outcomes[name] = _decided(name, Status.ERRORED, base=before, head=entry,
                                      reason=Reason.EXCEEDS_PIXEL_LIMIT, detail=detail)
        else:
            threshold = _first_set(entry.diff_threshold, head.diff_threshold,
                                   default_diff_threshold)
            candidates[name] = DiffCandidate(name, before, entry, threshold)

    candidates = dict(sorted(candidates.items()))
    pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, candidate in candidates.items():
        pairs[candidate.pair].append(name)
    return Plan(
        outcomes=dict(sorted(outcomes.items())),
        candidates=candidates,
        pairs={pair: tuple(names) for pair, names in pairs.items()},
        blobs=frozenset(h for pair in pairs for h in pair),
    )


def _pair_renames(sources: Mapping[str, str], targets: Mapping[str, str]) -> dict[str, str]:
    """Pair base names (``sources``) with head names (``targets``) of equal hash: new -> old."""
    sources_by_hash: dict[str, list[str]] = defaultdict(list)
    for name, content_hash in sources.items():
        sources_by_hash[content_hash].append(name)
    targets_by_hash: dict[str, list[str]] = defaultdict(list)
    for name, content_hash in targets.items():
        targets_by_hash[content_hash].append(name)

    renames: dict[str, str] = {}
    for content_hash, new_names in targets_by_hash.items():
        old_names = sources_by_hash.get(content_hash)
        if old_names:
            renames.update(_pair_by_similarity(old_names, new_names))
    return renames


def _pair_by_similarity(old_names: list[str], new_names: list[str]) -> Iterator[tuple[str, str]]:
    """Greedily pair the most similar names first; yields (new, old)."""
    if len(old_names) == 1 and len(new_names) == 1:
        yield new_names[0], old_names[0]
        return
    scored = sorted(
        (-SequenceMatcher(None, old, new).ratio(), new, old)
        for old in old_names
        for new in new_names
    )
    used_old: set[str] = set()
    used_new: set[str] = set()
    for _, new, old in scored:
        if new not in used_new and old not in used_old:
            used_new.add(new)
            used_old.add(old)
            yield new, old


def _known_canvas(base: ImageEntry, head: ImageEntry) -> tuple[int, int]:
    """A lower bound of the diff canvas from declared sizes; unknown sides count as 1."""
    return canvas_size(*((entry.width or 1, entry.height or 1) for entry in (base, head)))


def _first_set(*values: float | None) -> float:
    return next(value for value in values if value is not None)


def _decided(
    name: str,
    status: Status,
    *,
    base: ImageEntry | None = None,
    head: ImageEntry | None = None,
    previous_image_file_name: str | None = None,
    reason: Reason | None = None,
    detail: str | None = None,
) -> ImageResult:
    return ImageResult(
        name=name,
        status=status,
        base_hash=base.content_hash if base else None,
        head_hash=head.content_hash if head else None,
        previous_image_file_name=previous_image_file_name,
        reason=reason,
        detail=detail,
        before_width=base.width if base else None,
        before_height=base.height if base else None,
        after_width=head.width if head else None,
        after_height=head.height if head else None,
    )
