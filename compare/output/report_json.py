"""``comparison.json``: the machine-readable report, compatible with Sentry's comparison manifest.

It validates as Sentry's ``ComparisonManifest``. Sentry's fields: ``head_artifact_id`` and
``base_artifact_id`` (from the options, 0 when not given), ``summary`` (``total`` and a count
per status) and ``images`` keyed by file name with ``status, head_hash, base_hash,
changed_pixels, total_pixels, diff_mask_key, diff_mask_image_id, before_width, before_height,
after_width, after_height, aligned_height, reason, previous_image_file_name``.
snapcompare adds per image ``diff_ratio, aa_pixels, bbox`` (``[x0, y0, x1, y1]``, exclusive
ends), ``diff_threshold`` (the share of changed pixels the image was judged against),
``detail`` (what went wrong, in words), ``previews``, ``diff_mask_image_id``, ``aligned_height``,
``window_max`` (the most changed pixels in any NxN window, with ``--window-size``),
``ignore_regions`` (a list of ``{"x1", "y1", "x2", "y2"}``, corners included, in a manifest's
form, as they applied to the image's canvas), ``change_group`` and ``similar_change`` (the
identical-change and similar-change ids of an image with changed pixels, see
`compare.imaging.fingerprint`), ``known_change`` (with known changes given: whether a
changed image's change is a known one) and ``canvas_changed`` (a diffed image's before and
after sizes differ); and at the top level ``options`` (with
``engine``, ``engine_options``, ``window_size``, ``window_min``, ``ignore_regions`` and
``ignore_patterns``, ``[{"glob", "regions"}]`` from ``--ignore-in``), ``algorithm_version`` (the chosen
engine's version), ``base_source``, ``head_source``, ``stats``, ``approval``,
``approval_mismatch``, ``change_groups``, ``known_changes`` and ``base_build``. ``change_groups`` lists the
changes two or more changed images share, largest first: ``{"id", "level", "images",
"representative"}`` (``level`` ``identical`` or ``similar``; ``id`` is the images'
``change_group`` or ``similar_change``). ``known_changes`` is ``{"source", "images",
"counted"}`` when known changes were given (where they came from, the changed images whose
change is a known one, and whether they count in the exit code), else ``null``. With
``--approved``: ``approval`` is ``{"carried_over_from", "fingerprint", "images"}`` when the
approved comparison carries over (where it came from, the digest of the fingerprints both
share, and the names of the images whose changes it covers), else ``null``;
``approval_mismatch`` is ``{"source", "unapproved", "not_present"}`` when it was given but does
not carry over (where it came from, the names of the images whose change here it does not
hold, and of those whose approved change is not here), else ``null``.
``base_build`` says how the base was chosen from the head's git history (``--base-from-git``):
``{"commit", "merge_base", "ancestors_walked", "selective_layers", "manifest_key",
"uploaded_at", "chosen_by", "without_walk"}`` (the base build's commit, the merge-base of the
head with the base branch, how many first-parent commits back from it the base is, the commits
of the selective builds folded onto it, nearest the merge-base first, where its manifest is
and when it was uploaded, all that in words, and ``{"commit", "selective"}`` of the
merge-base's own build, what the base would have been without the walk, or ``null`` when it
has none); when no base build was found, ``commit`` is ``null``, ``selective_builds`` lists
the selective builds found with nothing to fold them onto and every head image is ``added``;
``null`` when the base was given.
Sentry's model ignores these fields. Every image has every field, ``null`` when it does not
apply. Images and name lists are in name order, so equal comparisons give equal bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from typing import Any

from ..imaging.engines import get_engine
from ..model import CompareOptions, Comparison, ImageResult
from ..regions import ignore_regions_json


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """Return the report as JSON-ready data (what `render_json` writes)."""
    options = comparison.options
    approval, mismatch, known = comparison.approval, comparison.approval_mismatch, comparison.known_changes
    return {
        "head_artifact_id": options.head_artifact_id,
        "base_artifact_id": options.base_artifact_id,
        "summary": comparison.summary,
        "images": {
            name: image_dict(comparison.images[name]) for name in sorted(comparison.images)
        },
        "options": options_dict(options),
        "algorithm_version": get_engine(options.engine).version,
        "base_source": comparison.base_source,
        "head_source": comparison.head_source,
        "stats": dict(sorted(comparison.stats.items())),
        "approval": None if approval is None else {
            "carried_over_from": approval.carried_over_from,
            "fingerprint": approval.fingerprint,
            "images": sorted(approval.images),
        },
        "approval_mismatch": None if mismatch is None else {
            "source": mismatch.source,
            "unapproved": sorted(mismatch.unapproved),
            "not_present": sorted(mismatch.not_present),
        },
        "change_groups": [
            {"id": group.id, "level": group.level.value, "images": list(group.images),
             "representative": group.representative}
            for group in comparison.change_groups
        ],
        "known_changes": None if known is None else {
            "source": known.source,
            "images": sorted(known.images),
            "counted": known.counted,
        },
        "base_build": None if comparison.base_build is None else dict(comparison.base_build),
    }


def options_dict(options: CompareOptions) -> dict[str, Any]:
    """The options that decide the figures: engine and its own options, thresholds, windows."""
    engine = get_engine(options.engine)
    return {
        "engine": engine.name,
        "engine_options": {name: getattr(options, name) for name in sorted(engine.options)},
        "threshold": options.threshold,
        "antialiasing": options.antialiasing,
        "diff_threshold": options.diff_threshold,
        "max_pixels": options.max_pixels,
        "window_size": options.window_size,
        "window_min": options.window_min,
        "ignore_regions": ignore_regions_json(options.ignore_regions) or None,
        "ignore_patterns": [{"glob": pattern.glob, "regions": ignore_regions_json(pattern.regions)}
                            for pattern in options.ignore_patterns] or None,
    }


def image_dict(result: ImageResult) -> dict[str, Any]:
    """Return one image's entry of ``images``: every `ImageResult` field but the name, in order."""
    entry = {field.name: _json_value(getattr(result, field.name)) for field in _IMAGE_FIELDS}
    entry["ignore_regions"] = ignore_regions_json(result.ignore_regions or ()) or None
    return entry


_IMAGE_FIELDS = [field for field in fields(ImageResult) if field.name != "name"]


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(sorted(value.items())) or None
    return value


def render_json(comparison: Comparison) -> bytes:
    """Return ``comparison.json``'s bytes: indented UTF-8 JSON ending in a newline.

    Raises ValueError if a figure is NaN or infinite, which JSON cannot hold.
    """
    return json_bytes(comparison_dict(comparison))


def json_bytes(data: Any) -> bytes:
    """``data`` as indented UTF-8 JSON ending in a newline; ValueError for NaN or infinity."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    # A name read from a file system may hold lone surrogates (undecodable bytes), which UTF-8
    # cannot encode; they only occur inside JSON strings, where backslashreplace spells them as
    # the JSON escape \udcXX, so the file stays valid and reads back to the same name.
    return (text + "\n").encode("utf-8", errors="backslashreplace")
