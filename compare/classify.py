"""Sorting the images of a base and a head manifest into statuses, before anything is fetched.

`categorize` decides every status the manifests alone can decide and lists the rest as pixel
diff candidates, with the pairs to diff and the blobs to fetch. Its decided images are final
`ImageResult`s; the candidates are judged later, by the engine.

The rules are Sentry's (``categorize.py`` and ``comparison.py`` of its preprod snapshots), for a
base name B and a head name H; only the head manifest's ``selective`` and declared names
(``all_image_file_names`` or ``all_image_file_names_as_regex``) matter, the base is taken as
complete:

- B == H, same hash: ``unchanged``; never fetched.
- B == H, different hash: a diff candidate, unless the manifests' sizes already show that the
  diff canvas (widest width x tallest height of the two) is over ``max_pixels``: then
  ``errored`` with ``exceeds_pixel_limit``. An unknown size counts as 1, so only pairs known
  to be too large are errored here; the rest are checked again from the real image headers.
- H only in the head: ``added``, unless renamed.
- B only in the base: with declared names, B declared is ``skipped`` (present, not uploaded)
  and B not declared is ``removed``; ``selective`` without declared names: ``skipped``;
  otherwise ``removed``; in every case unless renamed.
- ``renamed``, in two passes. Pass 1 pairs added names with removed names of the same hash;
  pass 2 (only when something is skipped) pairs the added names left with skipped names of
  the same hash, so a new name can take over a declared-but-not-uploaded old name. One old and
  one new name of a hash pair directly; when more share it, pairs are chosen greedily by
  ``difflib.SequenceMatcher(None, new, old).ratio()``, highest first, with no minimum, so
  ``min(old, new)`` pairs are always made and the leftovers keep their status. Ties go to the
  smaller new name, then the smaller old name (Sentry's order on ties depends on set
  iteration, so it is not reproducible there). A renamed image is reported under its head
  name with ``previous_image_file_name``; its base name gets no status of its own.
- An image a folder manifest could not read (`Manifest.unreadable`) is ``errored`` with
  ``image_processing_failed`` and the reason in ``detail``, whichever side it is on; so is a
  folder it could not list (named with a final ``/``), and every image of the other side
  under that folder, which the manifests alone cannot place.

Similarity pairing is bounded, whatever the names' number and length, by one `RatioBudget`
for the whole comparison: at most `EXACT_PAIRS` new x old pairs of names and `EXACT_CHARACTERS`
characters, the names counted once per pair (so 20,000 pairs of names of 25 characters on
average), over every hash and both passes, hashes with the fewest pairs first. While a hash's
ratios fit in what is left, every one is computed and the greedy pairing is Sentry's exactly.
Otherwise no ratio is computed for it: each new name is scored only against its `NEIGHBOURS`
nearest old names on each side in two sort orders (by name, and by the name written
backwards), by the characters the two share at their start and at their end
(``2 * (prefix + suffix) / (len(new) + len(old))``, the ratio the matching blocks at both ends
alone give), which is n log n sorting plus a few comparisons of each name's ends; the greedy
walk over those scores (highest first, ties by name as above) is repeated on the names left
(the exact pass once their ratios fit in the budget), and after `NEIGHBOUR_ROUNDS` rounds what
is left is paired in name order. The result equals Sentry's wherever each name's most
similar counterpart is the one sharing the longest prefix or suffix with it, i.e. names that
differ only in a folder (same suffix) or only in an ending (same prefix), which is what renames
look like; it may differ when the most similar name is neither, and the last-resort pairing in
name order ignores similarity.

The threshold a candidate is judged against later is the head image's ``diff_threshold``, else
the head manifest's, else ``default_diff_threshold``; the base's are never read. Likewise a
candidate's ignore regions are those of the ``ignore_patterns`` whose globs match its name,
then the head image's ``ignore_regions`` (a list of ``{"x1", "y1", "x2", "y2"}`` objects,
corners included; see `compare.regions`); a malformed one in any head image is an
`InputError` naming the manifest, the image and the field. Names share a diff only when their
hashes and their regions are the same (regions as given: each diff clips them to its canvas).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from heapq import heapify, heappop, heappush

from .inputs.manifest import ImageEntry, Manifest, ManifestError, ignore_regions_of, quoted
from .model import (
    DEFAULT_MAX_PIXELS,
    ImageResult,
    InputError,
    Reason,
    Status,
    canvas_size,
    check_fraction,
    check_max_pixels,
)
from .regions import IgnorePattern, IgnoreRegion, merged, pattern_regions

PairKey = tuple[str, str, tuple[IgnoreRegion, ...]]
"""What makes two names share one diff: base hash, head hash and ignore regions."""

EXACT_PAIRS = 20_000
"""Most new x old pairs of names whose similarity ratios one comparison computes."""

EXACT_CHARACTERS = 1_000_000
"""Most characters, summed over those pairs (each pair's two names), whose ratios one comparison
computes: a ratio costs about its names' length, and up to 1.2 us a character (names of 200
characters), so the exact passes together stay near a second whatever the names."""

EXACT_LENGTH_PRODUCTS = 20_000_000
"""Most products of the two names' lengths, summed over those pairs: a ratio's worst case grows
with that product (names of few distinct characters, about 80 ns a product for 199-character
names over two letters), so these ratios too stay within about two seconds."""

NEIGHBOURS = 1
"""Old names scored per new name and direction in each sort order, beyond the ratio budget."""

NEIGHBOUR_ROUNDS = 4
"""Neighbour rounds before the names left are paired in name order."""


@dataclass(frozen=True)
class DiffCandidate:
    """A name whose base and head hashes differ, to be judged by a pixel diff.

    ``diff_threshold`` is the resolved fraction of changed pixels above which it is ``changed``;
    ``ignore_regions`` are those of the patterns matching its name, then the head image's own.
    """

    name: str
    base: ImageEntry
    head: ImageEntry
    diff_threshold: float
    ignore_regions: tuple[IgnoreRegion, ...] = ()

    @property
    def canvas_pixels(self) -> int | None:
        """The diff canvas (larger width x larger height) from the manifests, None if a size is unknown."""
        base, head = self.base, self.head
        if base.width is None or base.height is None or head.width is None or head.height is None:
            return None
        width, height = canvas_size((base.width, base.height), (head.width, head.height))
        return width * height

    @property
    def pair(self) -> tuple[str, str]:
        """``(base hash, head hash)``: the diff this name needs."""
        return self.base.content_hash, self.head.content_hash

    @property
    def key(self) -> PairKey:
        """The diff this name shares with others: its pair and its ignore regions."""
        return (*self.pair, self.ignore_regions)


@dataclass(frozen=True)
class Plan:
    """Everything decided before fetching, and the work left to do.

    - ``outcomes``: final statuses known now (unchanged, added, removed, renamed, skipped,
      errored), by reported name, in name order.
    - ``candidates``: names that need a pixel diff, in name order; each ends as changed,
      unchanged or errored.
    - ``pairs``: each unique `PairKey` (base hash, head hash, ignore regions) to diff once,
      with the candidate names that share its result, in order of first name.
    - ``blobs``: every hash that must be fetched, i.e. both sides of every pair and nothing else.

    Every name of base and head is accounted for exactly once: as a key of ``outcomes`` or
    ``candidates`` (disjoint), or as the ``previous_image_file_name`` of a renamed outcome.
    """

    outcomes: Mapping[str, ImageResult]
    candidates: Mapping[str, DiffCandidate]
    pairs: Mapping[PairKey, tuple[str, ...]]
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
    ignore_patterns: Sequence[IgnorePattern] = (),
) -> Plan:
    """Categorise every image of ``base`` and ``head`` from the manifests alone (see module doc).

    ``ignore_patterns`` add their regions to the candidates whose names they match.
    """
    check_max_pixels(max_pixels)
    check_fraction("default_diff_threshold", default_diff_threshold)

    outcomes: dict[str, ImageResult] = {}
    unreadable = _unreadable(base, head)
    for name, detail in unreadable.items():
        outcomes[name] = _decided(name, Status.ERRORED, base=base.images.get(name),
                                  head=head.images.get(name), reason=Reason.IMAGE_PROCESSING_FAILED,
                                  detail=detail)
    head_images = {n: e for n, e in head.images.items() if n not in unreadable}
    try:
        regions = {name: ignore_regions_of(head, name) for name in head_images}
    except ManifestError as exc:
        raise InputError(str(exc)) from None
    base_images = {n: e for n, e in base.images.items() if n not in unreadable}

    added = [name for name in head_images if name not in base_images]
    base_only = [name for name in base_images if name not in head_images]
    declared = head.declared_names()
    if declared is not None:
        skipped = [name for name in base_only if declared(name)]
    else:
        skipped = base_only if head.selective else []
    skipped_set = set(skipped)
    removed = [name for name in base_only if name not in skipped_set]

    head_hashes = {name: head_images[name].content_hash for name in added}
    budget = RatioBudget()
    renames = pair_renames(head_hashes, {n: base_images[n].content_hash for n in removed}, budget)
    if skipped:
        left = {name: h for name, h in head_hashes.items() if name not in renames}
        renames |= pair_renames(left, {n: base_images[n].content_hash for n in skipped}, budget)
    renamed_from = set(renames.values())

    candidates: dict[str, DiffCandidate] = {}
    for name in base_only:
        if name not in renamed_from:
            status = Status.SKIPPED if name in skipped_set else Status.REMOVED
            outcomes[name] = _decided(name, status, base=base_images[name])
    for name in added:
        entry = head_images[name]
        if name in renames:
            previous = base_images[renames[name]]
            outcomes[name] = _decided(name, Status.RENAMED, base=previous, head=entry,
                                      previous_image_file_name=previous.name)
        else:
            outcomes[name] = _decided(name, Status.ADDED, head=entry)
    for name, entry in head_images.items():
        before = base_images.get(name)
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
            ignored = merged(pattern_regions(ignore_patterns, name), regions[name])
            candidates[name] = DiffCandidate(name, before, entry, threshold, ignored)

    candidates = dict(sorted(candidates.items()))
    pairs: dict[PairKey, list[str]] = defaultdict(list)
    for name, candidate in candidates.items():
        pairs[candidate.key].append(name)
    return Plan(
        outcomes=dict(sorted(outcomes.items())),
        candidates=candidates,
        pairs={key: tuple(names) for key, names in pairs.items()},
        blobs=frozenset(h for key in pairs for h in key[:2]),
    )


class RatioBudget:
    """The similarity ratios left to one comparison: `EXACT_PAIRS` new x old pairs of names,
    `EXACT_CHARACTERS` characters and `EXACT_LENGTH_PRODUCTS`, over all its hashes and both
    rename passes."""

    def __init__(self) -> None:
        self.pairs = EXACT_PAIRS
        self.characters = EXACT_CHARACTERS
        self.products = EXACT_LENGTH_PRODUCTS

    def spend(self, new: Sequence[str], old: Sequence[str]) -> bool:
        """Take every ratio of ``new`` x ``old`` from the budget if all fit in what is left;
        whether they did."""
        new_length, old_length = sum(map(len, new)), sum(map(len, old))
        pairs = len(new) * len(old)
        characters = len(old) * new_length + len(new) * old_length
        products = new_length * old_length  # the sum, over the pairs, of their names' lengths multiplied
        if pairs > self.pairs or characters > self.characters or products > self.products:
            return False
        self.pairs -= pairs
        self.characters -= characters
        self.products -= products
        return True


def pair_renames(new: Mapping[str, str], old: Mapping[str, str],
                 budget: RatioBudget | None = None) -> dict[str, str]:
    """Pair new names with old names of equal hash (both given as name -> hash): new -> old.

    Within a hash, names pair by similarity (see the module doc); the rest stay unpaired.
    Hashes take their ratios from ``budget`` (a new one when not given), those with the fewest
    new x old pairs first, then by hash.
    """
    old_by_hash: dict[str, list[str]] = defaultdict(list)
    for name, content_hash in old.items():
        old_by_hash[content_hash].append(name)
    new_by_hash: dict[str, list[str]] = defaultdict(list)
    for name, content_hash in new.items():
        new_by_hash[content_hash].append(name)

    groups = sorted((len(names) * len(old_by_hash[content_hash]), content_hash)
                    for content_hash, names in new_by_hash.items() if content_hash in old_by_hash)
    budget = budget or RatioBudget()
    renames: dict[str, str] = {}
    for _, content_hash in groups:
        renames.update(pair_by_similarity(new_by_hash[content_hash], old_by_hash[content_hash], budget))
    return renames


def pair_by_similarity(new_names: Iterable[str], old_names: Iterable[str],
                       budget: RatioBudget | None = None) -> dict[str, str]:
    """Greedily pair the most similar new and old names first: new -> old, ``min`` of both many.

    Ratios are computed while ``budget`` (a new one when not given) has room for all those of
    the names left, else the names are paired by their ends (see the module doc).
    """
    new, old = sorted(new_names), sorted(old_names)
    if len(new) == 1 and len(old) == 1:
        return {new[0]: old[0]}
    budget = budget or RatioBudget()
    pairs: dict[str, str] = {}
    for _ in range(NEIGHBOUR_ROUNDS + 1):
        if not new or not old:
            return pairs
        if budget.spend(new, old):
            pairs.update(_greedy((n, o) for n in new for o in old))
            return pairs
        pairs.update(_greedy_by_ends(_neighbours(new, old)))
        paired_old = set(pairs.values())
        new = [name for name in new if name not in pairs]
        old = [name for name in old if name not in paired_old]
    # The leftovers may differ in number: pair as many as both have, the rest stay unpaired.
    pairs.update(zip(new, old, strict=False))
    return pairs


def _neighbours(new: list[str], old: list[str]) -> set[tuple[str, str]]:
    """(new, old) pairs of each new name with its nearest old names by name and by reversed name."""
    found: set[tuple[str, str]] = set()
    by_name: tuple[Callable[[str], str], ...] = (lambda name: name, lambda name: name[::-1])
    for key in by_name:
        keyed = sorted((key(name), name) for name in old)
        keys = [k for k, _ in keyed]
        for name in new:
            at = bisect_left(keys, key(name))
            for _, match in keyed[max(0, at - NEIGHBOURS): at + NEIGHBOURS]:
                found.add((name, match))
    return found


def _greedy(candidates: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pair (new, old) candidates from the highest ``SequenceMatcher(None, new, old).ratio()`` down.

    Same result as sorting every pair by (-ratio, new, old) and walking the list, with fewer
    ratios computed: each pair enters a heap under ``quick_ratio()``, an upper bound of its
    ratio, and its ratio is computed only when that bound reaches the top. At an equal value
    a bound comes out before an exact ratio, so no pair is taken while one that might tie or
    beat it is unknown; pairs whose names are already taken are dropped unscored.
    """
    heap: list[tuple[float, int, str, str]] = []
    matchers: dict[str, SequenceMatcher[str]] = {}
    for new, old in candidates:
        # A matcher indexes its second sequence once: keep one per old name.
        matcher = matchers.get(old) or matchers.setdefault(old, SequenceMatcher(None, b=old))
        matcher.set_seq1(new)
        heap.append((-matcher.quick_ratio(), _BOUND, new, old))
    heapify(heap)
    pairs: dict[str, str] = {}
    used_old: set[str] = set()
    while heap:
        value, kind, new, old = heappop(heap)
        if new in pairs or old in used_old:
            continue
        if kind == _BOUND:
            matcher = matchers[old]
            matcher.set_seq1(new)
            heappush(heap, (-matcher.ratio(), _EXACT, new, old))
        else:
            pairs[new] = old
            used_old.add(old)
    return pairs


_BOUND, _EXACT = 0, 1


def _greedy_by_ends(candidates: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pair (new, old) candidates from the most shared characters at both ends down (see the
    module doc), ties by new name, then old name."""
    scored = sorted((-_ends_ratio(new, old), new, old) for new, old in candidates)
    pairs: dict[str, str] = {}
    used_old: set[str] = set()
    for _, new, old in scored:
        if new not in pairs and old not in used_old:
            pairs[new] = old
            used_old.add(old)
    return pairs


def _ends_ratio(a: str, b: str) -> float:
    """``2 * (prefix + suffix) / (len(a) + len(b))`` for the characters ``a`` and ``b`` share at
    their start and, in what is left, at their end."""
    limit = min(len(a), len(b))
    prefix = _shared_length(a, b, limit, at_end=False)
    suffix = _shared_length(a, b, limit - prefix, at_end=True)
    return 2 * (prefix + suffix) / (len(a) + len(b))


def _shared_length(a: str, b: str, limit: int, *, at_end: bool) -> int:
    """How many characters (at most ``limit``) ``a`` and ``b`` share at their start, or at their
    end.

    Compared a slice at a time (slices growing twice as long, then halved over the first slice
    that differs), so the work is C comparisons of about twice the shared length, not a Python
    step per character.
    """
    def part(text: str, start: int, stop: int) -> str:  # characters start..stop from the chosen end
        return text[len(text) - stop:len(text) - start] if at_end else text[start:stop]

    same, step = 0, 64
    while same < limit:  # the first `same` characters are shared
        stop = min(limit, same + step)
        if part(a, same, stop) != part(b, same, stop):
            while stop - same > 1:  # the first difference is within same..stop
                middle = (same + stop) // 2
                if part(a, same, middle) == part(b, same, middle):
                    same = middle
                else:
                    stop = middle
            return same
        same, step = stop, step * 2
    return same


def _unreadable(base: Manifest, head: Manifest) -> dict[str, str]:
    """Why each name a folder manifest could not read is errored, by name: the names in its
    ``unreadable`` (the head's reason when both have one), and the other side's images under a
    folder it could not list."""
    details: dict[str, str] = {}
    for side, manifest, other in (("base", base, head), ("head", head, base)):
        for name, reason in manifest.unreadable.items():
            details[name] = f"{side} image {'folder' if name.endswith('/') else 'file'}: {reason}"
        folders = _outermost(name for name in manifest.unreadable if name.endswith("/"))
        for name in other.images:
            at = bisect_right(folders, name) - 1
            if at >= 0 and name.startswith(folders[at]):
                details[name] = f"{side} image folder {quoted(folders[at])}: {manifest.unreadable[folders[at]]}"
    return details


def _outermost(folders: Iterable[str]) -> list[str]:
    """The ``folders`` (names ending in ``/``) inside none of the others, in name order.

    No one of them starts another, so the one a name is under, if any, is the last at or
    before it in name order.
    """
    outermost: list[str] = []
    for folder in sorted(folders):
        if not outermost or not folder.startswith(outermost[-1]):
            outermost.append(folder)
    return outermost


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


def path_stem(name: str) -> str:
    """Sentry's ``_image_name_to_path_stem``: ``dir\\sub/x.y.png`` -> ``dir/sub/x.y``, ``v1.2/home`` -> ``v1``."""
    stem = name.replace("\\", "/").strip("/")
    return stem.rsplit(".", 1)[0] if "." in stem else stem


def mask_owners(names: Iterable[str]) -> dict[str, str]:
    """The name owning each Sentry mask key (a `path_stem`) of ``names``: the last name of a stem
    in name order wins its key, as in Sentry."""
    return {path_stem(name): name for name in sorted(names)}


def mask_shadowed(names: Iterable[str]) -> frozenset[str]:
    """The ``names`` whose Sentry mask key a later name in name order also has, and so owns
    (`mask_owners`)."""
    names = list(names)
    owners = mask_owners(names)
    return frozenset(name for name in names if owners[path_stem(name)] != name)

