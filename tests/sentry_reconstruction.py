"""Sentry's reconstruction of a complete base manifest from selective builds, re-declared for
conformance tests.

Our own transcription of getsentry/sentry ``src/sentry/preprod/snapshots/reconstruction.py`` at
commit aeed29656e8926be7d2187921f3f47983e230ec9 (``fold_child_onto_parent``,
``reconstruct_base_manifest``) and of ``categorize_image_sets`` in
``src/sentry/preprod/snapshots/categorize.py`` at 67db565e4fa8a95689ac27f25441e160e2b766d7, over
the models of `tests.sentry_models`. Sentry follows the chain of builds through its database
(each build's ``base_sha`` names the previous one); here the chain is given as data: the
manifests of the builds, the base first, then each build's predecessor.

What carries over:

- categorizing a child against a complete parent: the child's names are matched or added;
  with ``all_image_file_names``, parent names outside the list are removed and listed ones the
  child did not upload are skipped; selective without a list, every parent name the child did
  not upload is skipped; otherwise those are removed;
- folding: matched and added take the child's metadata, skipped the parent's, removed are
  dropped; the result is ``selective=False`` with no ``diff_threshold`` or list;
- the walk: a build is the complete anchor when its manifest is not selective and has no
  ``all_image_file_names``; the selective ones before it are folded onto it, the deepest
  first; a build whose manifest is missing defers (``incomplete``); a chain with no anchor is
  ``incomplete`` when the deepest build's predecessor may still arrive, else
  ``unresolvable``; so is a chain deeper than ``MAX_CHAIN_DEPTH`` builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.sentry_models import ImageMetadata, SnapshotManifest

MAX_CHAIN_DEPTH = 50


def categorize_image_sets(
    head: SnapshotManifest, base: SnapshotManifest
) -> tuple[set[str], set[str], set[str], set[str]]:
    """``(matched, added, removed, skipped)`` names of ``head`` against the complete ``base``."""
    head_names, base_names = set(head.images), set(base.images)
    not_uploaded = base_names - head_names
    if head.all_image_file_names is not None:
        listed = set(head.all_image_file_names)
        removed, skipped = base_names - listed, not_uploaded & listed
    elif head.selective:
        removed, skipped = set(), not_uploaded
    else:
        removed, skipped = not_uploaded, set()
    return head_names & base_names, head_names - base_names, removed, skipped


def fold_child_onto_parent(child: SnapshotManifest, parent: SnapshotManifest) -> SnapshotManifest:
    """The child's complete manifest: its own images, plus the parent's it skipped."""
    matched, added, _removed, skipped = categorize_image_sets(child, parent)
    images: dict[str, ImageMetadata] = {name: child.images[name] for name in matched | added}
    images.update((name, parent.images[name]) for name in skipped)
    return SnapshotManifest(images=images, selective=False)


@dataclass
class ReconstructionResult:
    manifest: SnapshotManifest | None = None
    incomplete: bool = False
    unresolvable: bool = False


def reconstruct_base_manifest(
    chain: Sequence[SnapshotManifest | None], *, ancestor_missing: bool = False
) -> ReconstructionResult:
    """Fold the chain's selective builds onto its first complete one.

    ``chain[0]`` is the base build's manifest, each next one its predecessor's (None: not
    uploaded yet); ``ancestor_missing`` says the deepest build names a predecessor with no build.
    """
    layers: list[SnapshotManifest] = []
    for depth, manifest in enumerate(chain):
        if depth >= MAX_CHAIN_DEPTH:
            return ReconstructionResult(unresolvable=True)
        if manifest is None:
            return ReconstructionResult(incomplete=True)
        if not manifest.selective and manifest.all_image_file_names is None:
            complete = manifest
            for layer in reversed(layers):
                complete = fold_child_onto_parent(layer, complete)
            return ReconstructionResult(manifest=complete)
        layers.append(manifest)
    if ancestor_missing:
        return ReconstructionResult(incomplete=True)
    return ReconstructionResult(unresolvable=True)
