"""Approval carry-over: a previously approved ``comparison.json`` still applies when the changes match.

The fingerprints are Sentry's (``_build_comparison_fingerprints`` in its preprod
``approval.py``), one per image, as ``(name, status, head_hash, previous_image_file_name)``:

- ``unchanged`` and ``skipped`` images have none;
- ``changed`` and ``added``: ``(name, status, head_hash, None)``, none without a head hash;
- ``renamed``: ``(name, "renamed", head_hash, previous name)``, none when either is missing;
- ``removed`` and ``errored``: ``(name, status, None, None)``.

An approval carries over when the approved comparison's set equals this one's and is not
empty (Sentry approves nothing when there are no changes). Sentry also accepts images whose
head hash alone differs when a pixel diff against the approved image shows no change; that
needs the approved build's images and is not done here: such a run is not carried over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..model import Approval, ApprovalMismatch, ImageResult, Status, result_status
from .manifest import MAX_MANIFEST_IMAGES, ManifestError, decode_json

Fingerprint = tuple[str, str, str | None, str | None]


MAX_APPROVED_IMAGES = 2 * MAX_MANIFEST_IMAGES
"""Most images an approved comparison may hold: those of a base and a head at the manifest bound."""


def fingerprint(name: str, status: str, head_hash: str | None,
                previous_image_file_name: str | None) -> Fingerprint | None:
    """One image's fingerprint, or None when Sentry leaves the image out."""
    if status in (Status.UNCHANGED, Status.SKIPPED):
        return None
    if status in (Status.CHANGED, Status.ADDED):
        return (name, status, head_hash, None) if head_hash else None
    if status == Status.RENAMED:
        if head_hash and previous_image_file_name:
            return (name, status, head_hash, previous_image_file_name)
        return None
    return (name, status, None, None)


def comparison_fingerprints(images: Mapping[str, ImageResult]) -> frozenset[Fingerprint]:
    """The fingerprint set of a comparison's images."""
    return _collect(
        fingerprint(name, r.status.value, r.head_hash, r.previous_image_file_name)
        for name, r in images.items()
    )


def approved_fingerprints(data: bytes, source: str) -> frozenset[Fingerprint]:
    """The fingerprint set of an approved ``comparison.json`` (ours or Sentry's).

    Only ``images`` and, per image, ``status``, ``head_hash`` and ``previous_image_file_name``
    are read, and ``known_changes``: the images it set aside (not ``counted``) are left out,
    as a comparison's own are (see `compare.builds.compare_builds`). Raises `ManifestError`
    naming ``source`` and the field at fault, or when it has more than `MAX_APPROVED_IMAGES`
    images.
    """
    decoded = decode_json(data, source)
    images = decoded.get("images") if isinstance(decoded, Mapping) else None
    if not isinstance(images, Mapping):
        raise ManifestError(source, "images", "expected a JSON object of image results")
    if len(images) > MAX_APPROVED_IMAGES:
        raise ManifestError(source, "images", f"{len(images):,} images, more than a comparison of two "
                            f"builds may have ({MAX_APPROVED_IMAGES:,})")
    aside = _set_aside(decoded.get("known_changes"), source)
    found = []
    for name, entry in images.items():
        at = f"images[{json.dumps(name, ensure_ascii=False)}]"
        status = result_status(entry)
        if status is None:
            raise ManifestError(source, at, "expected an object with a known status")
        if name in aside:
            continue
        head_hash = _optional_text(source, f"{at}.head_hash", entry.get("head_hash"))
        previous = _optional_text(source, f"{at}.previous_image_file_name",
                                  entry.get("previous_image_file_name"))
        found.append(fingerprint(name, status, head_hash, previous))
    return _collect(found)


def fingerprint_digest(fingerprints: Iterable[Fingerprint]) -> str:
    """A sha256 hex digest naming a fingerprint set (sorted, as JSON)."""
    canonical = json.dumps(sorted(fingerprints, key=lambda f: [x or "" for x in f]),
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def carry_over(images: Mapping[str, ImageResult], approved: frozenset[Fingerprint],
               source: str) -> Approval | ApprovalMismatch | None:
    """How the approval of ``source`` applies to ``images``.

    An `Approval` when its fingerprints equal those of ``images``; an `ApprovalMismatch` naming
    the images on either side whose fingerprints differ when they do not; None when ``images``
    have no changes to approve.
    """
    current = comparison_fingerprints(images)
    if not current:
        return None
    if current == approved:
        return Approval(carried_over_from=source, fingerprint=fingerprint_digest(current),
                        images=tuple(sorted(f[0] for f in current)))
    return ApprovalMismatch(
        source=source,
        unapproved=tuple(sorted({f[0] for f in current - approved})),
        not_present=tuple(sorted({f[0] for f in approved - current})),
    )


def _set_aside(known: Any, source: str) -> frozenset[str]:
    """The names a comparison's ``known_changes`` set aside (none when it has none, or counted them)."""
    if known is None:
        return frozenset()
    names = known.get("images") if isinstance(known, Mapping) else None
    counted = known.get("counted") if isinstance(known, Mapping) else None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) \
            or not isinstance(counted, bool):
        raise ManifestError(source, "known_changes", "expected an object with images (names) and counted")
    return frozenset() if counted else frozenset(names)


def _collect(fingerprints: Iterable[Fingerprint | None]) -> frozenset[Fingerprint]:
    return frozenset(f for f in fingerprints if f is not None)


def _optional_text(source: str, at: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ManifestError(source, at, "expected a string or null")
    return value
