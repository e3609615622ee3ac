"""Known changes: changes seen before on the same screens, which a comparison can set aside.

A known change is an image name with a similar-change id (``similar_change``, ``s1-...``, see
`compare.imaging.fingerprint`): that screen changed that way before. A ``changed`` image whose
change is known for its name gets ``known_change: true`` (`apply_known_changes`); the command
line then leaves it out of the exit code unless ``--fail-on-known-changes``.

The match is per name and at the similar level. Per name, as Argos keeps its ignored changes
per test: a flaky change on one screen never excuses a change on another. At the similar level,
as Argos' auto-ignore uses its coarse fingerprint: a flaky change that comes back with other
colours or a few pixels more or less (a spinner or a caret caught in another state) is often
still known, where the identical level would need it pixel for pixel (two images with the same
identical id have the same similar id, so exact repeats are known as well; on the benchmark
corpus the similar id outlived a change of colours in 82 of 152 changes). The price: a real
change on that screen whose mask has the same coarse shape as the known one is set aside too
(on that corpus, a text edit and a 3-pixel shift of one tall page share a similar id; no two
other changes of one page do). A
change that differs every time in shape (a clock showing other digits) is never known at either
level; ignore its region (``--ignore-in``) instead.

Where known changes come from (`read_known_changes`):

- a ``comparison.json``: each image's name with its ``similar_change``;
- a known-changes file (`known_changes_file`, written by ``snapcompare known-changes``): the
  changes seen at least ``min_count`` times in the last ``last`` of several comparisons
  (`count_known_changes`), as ``{"snapcompare_known_changes": 1, "level": "similar",
  "min_count", "last", "comparisons": [their sources, oldest first], "changes": [{"name",
  "similar_change", "count"}]}``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..model import ImageResult, KnownChanges, Status, result_status
from .manifest import ManifestError, decode_json, quoted, shown_value

KnownChange = tuple[str, str]
"""(image name, similar-change id)."""

FORMAT_KEY = "snapcompare_known_changes"
FORMAT_VERSION = 1
DEFAULT_MIN_COUNT = 3
DEFAULT_LAST = 7

_SIMILAR_ID = re.compile(r"s1-[0-9a-f]{16}")


def read_known_changes(data: bytes, source: str) -> frozenset[KnownChange]:
    """The known changes of ``data``: a ``comparison.json`` or a known-changes file.

    Raises `ManifestError` naming ``source`` and the field at fault.
    """
    decoded = decode_json(data, source)
    if isinstance(decoded, Mapping) and FORMAT_KEY in decoded:
        return _file_changes(decoded, source)
    if isinstance(decoded, Mapping) and "images" in decoded:
        return comparison_changes(decoded, source)
    raise ManifestError(source, "", "expected a comparison.json (with images) or a known-changes "
                        f"file (with {FORMAT_KEY}, from snapcompare known-changes)")


def comparison_changes(decoded: Any, source: str) -> frozenset[KnownChange]:
    """The changes of a decoded ``comparison.json``: every ``changed`` image's name with its
    ``similar_change`` (an ``unchanged`` image's change stayed within what is allowed: it is
    no change that came back). Raises `ManifestError` naming ``source`` and the field."""
    images = decoded.get("images") if isinstance(decoded, Mapping) else None
    if not isinstance(images, Mapping):
        raise ManifestError(source, "images", "expected a JSON object of image results")
    found = []
    for name, entry in images.items():
        at = f"images[{quoted(name)}]"
        status = result_status(entry)
        if status is None:
            raise ManifestError(source, at, "expected an image result (an object with a known status)")
        change = entry.get("similar_change")
        if change is not None:
            change = _similar_id(change, source, f"{at}.similar_change")
            if status == Status.CHANGED:
                found.append((name, change))
    return frozenset(found)


def count_known_changes(comparisons: Sequence[frozenset[KnownChange]], *, min_count: int = DEFAULT_MIN_COUNT,
                        last: int = DEFAULT_LAST) -> dict[KnownChange, int]:
    """The changes found in at least ``min_count`` of the last ``last`` ``comparisons`` (each
    given as its changes, oldest first), with the number of those comparisons holding each."""
    if min_count < 1 or last < 1:
        raise ValueError("min_count and last must be at least 1")
    counts = Counter(change for changes in comparisons[-last:] for change in changes)
    return {change: count for change, count in sorted(counts.items()) if count >= min_count}


def known_changes_file(counts: Mapping[KnownChange, int], sources: Iterable[str], *,
                       min_count: int, last: int) -> dict[str, Any]:
    """The known-changes file's data: ``counts`` from `count_known_changes` over the
    comparisons read from ``sources`` (those counted, oldest first)."""
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "level": "similar",
        "min_count": min_count,
        "last": last,
        "comparisons": list(sources),
        "changes": [{"name": name, "similar_change": change, "count": count}
                    for (name, change), count in sorted(counts.items())],
    }


def apply_known_changes(images: Mapping[str, ImageResult], known: frozenset[KnownChange], source: str, *,
                        counted: bool = False) -> tuple[dict[str, ImageResult], KnownChanges]:
    """``images`` with ``known_change`` set on every ``changed`` one (whether its name and
    ``similar_change`` are in ``known``; never for one whose size changed, a change of its own),
    and the `KnownChanges` naming those that are."""
    marked = dict(images)
    for name, result in images.items():
        if result.status is Status.CHANGED:
            known_change = (name, result.similar_change) in known and not result.canvas_changed
            marked[name] = replace(result, known_change=known_change)
    found = tuple(sorted(name for name, result in marked.items() if result.known_change))
    return marked, KnownChanges(source, found, counted)


def _file_changes(decoded: Mapping[str, Any], source: str) -> frozenset[KnownChange]:
    if type(decoded[FORMAT_KEY]) is not int or decoded[FORMAT_KEY] != FORMAT_VERSION:
        raise ManifestError(
            source, FORMAT_KEY, f"expected format {FORMAT_VERSION}, got {shown_value(decoded[FORMAT_KEY])}"
        )
    if decoded.get("level") != "similar":
        raise ManifestError(source, "level", f"expected \"similar\", got {shown_value(decoded.get('level'))}")
    changes = decoded.get("changes")
    if not isinstance(changes, list):
        raise ManifestError(source, "changes", "expected a list of known changes")
    found = []
    for index, entry in enumerate(changes):
        at = f"changes[{index}]"
        if not isinstance(entry, Mapping):
            raise ManifestError(source, at, "expected an object with name and similar_change")
        name = entry.get("name")
        if not isinstance(name, str):
            raise ManifestError(source, f"{at}.name", "expected an image name (a string)")
        found.append((name, _similar_id(entry.get("similar_change"), source, f"{at}.similar_change")))
    return frozenset(found)


def _similar_id(value: Any, source: str, at: str) -> str:
    if not isinstance(value, str) or not _SIMILAR_ID.fullmatch(value):
        raise ManifestError(
            source, at, f"expected a similar-change id (s1- and 16 hex digits), got {shown_value(value)}"
        )
    return value
