"""Choosing a comparison's base build from the history of its head, and completing it by
Sentry's rules.

`find_base` takes the history as data (the merge-base first, then its first-parent ancestors,
nearest first), so a service that knows the commit graph uses it without git;
`find_base_from_git` reads that history from a checkout (`git_ancestry`).

The base is the nearest of those commits with a complete build (`is_complete`). Each selective
build between it and the merge-base is a layer, folded onto it from the deepest up, by the rules
of Sentry's ``reconstruct_base_manifest`` and ``fold_child_onto_parent`` (getsentry/sentry
``src/sentry/preprod/snapshots/reconstruction.py`` at aeed29656e8926be7d2187921f3f47983e230ec9,
with ``categorize_image_sets`` of ``categorize.py`` at 67db565e4fa8a95689ac27f25441e160e2b766d7):

- every image a layer uploaded takes the layer's version;
- an image below the layer that the layer did not upload is kept when the layer declares it
  (``all_image_file_names``, or here also its patterns) or, declaring nothing, is selective;
  otherwise it is dropped (the layer's build removed it);
- the result is complete: not selective, nothing declared, no build-wide ``diff_threshold``
  (a comparison reads thresholds from its head only).

Whether a build is complete is decided by its manifest, as Sentry decides it; the records only
say which manifests to read. The builds up to the nearest one whose record says complete are
read in one batch; should that one's manifest be selective after all, the walk goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fetchers import BlobFetcher

from ...model import parameter
from ..manifest import Manifest
from .git import git_ancestry
from .records import (
    DEFAULT_LOOKUP_WORKERS,
    BaselineError,
    BuildRecord,
    check_commit,
    is_complete,
    read_builds,
    read_manifests,
)

DEFAULT_MAX_ANCESTORS = 100
"""Commits looked at for a base build, the merge-base included, unless told otherwise: their
records are read in one concurrent batch of that many small requests."""

DEFAULT_BASE_BRANCH = "main"
"""The branch a head is compared against unless told otherwise."""


def fold_layer(layer: Manifest, below: Manifest) -> Manifest:
    """The complete manifest of ``layer``'s build, a selective one, made from ``below``, the
    complete manifest of the build it was made over (see the module for the rules)."""
    declared = layer.declared_names()
    images = dict(layer.images)
    for name, entry in below.images.items():
        if name not in images and (declared(name) if declared is not None else layer.selective):
            images[name] = entry
    return Manifest(images=dict(sorted(images.items())), source=layer.source)


def fold_layers(complete: Manifest, layers: Sequence[Manifest]) -> Manifest:
    """``complete`` with ``layers`` folded onto it; the layers are in history order, nearest the
    merge-base first, so the last is folded first. No layers: ``complete`` itself."""
    for layer in reversed(layers):
        complete = fold_layer(layer, complete)
    return complete


@dataclass(frozen=True)
class BaseBuild:
    """The base build found: the build of ``commit``, ``ancestors_walked`` first-parent commits
    back from ``merge_base`` (0: the merge-base's own build), with the selective builds of
    ``selective_layers`` (nearest the merge-base first) folded onto it into ``manifest``.

    ``record`` is the base build's record; ``merge_base_build`` the merge-base's, if it has a
    build: what the base would have been without the walk.
    """

    commit: str
    merge_base: str
    ancestors_walked: int
    selective_layers: tuple[str, ...]
    manifest: Manifest
    record: BuildRecord
    merge_base_build: BuildRecord | None

    @property
    def message(self) -> str:
        """How the base was chosen, in one line."""
        if self.ancestors_walked:
            commits = "commit" if self.ancestors_walked == 1 else "commits"
            where = (f"the nearest complete build, {self.ancestors_walked} first-parent {commits} back from the "
                     f"merge-base {self.merge_base}")
        else:
            where = "the merge-base's complete build"
        folded = f", with {_builds(len(self.selective_layers))} folded onto it" if self.selective_layers else ""
        return f"base build: commit {self.commit}, {where}{folded}{_without_walk(self.merge_base_build)}"

    def to_json(self) -> dict[str, Any]:
        """The ``base_build`` object of a comparison's results."""
        return {"commit": self.commit, "merge_base": self.merge_base, "ancestors_walked": self.ancestors_walked,
                "selective_layers": list(self.selective_layers), "manifest_key": self.record.manifest_key,
                "uploaded_at": self.record.uploaded_at, "chosen_by": self.message,
                "without_walk": _without_walk_json(self.merge_base, self.merge_base_build)}


@dataclass(frozen=True)
class NoBaseBuild:
    """No complete build among the ``ancestors_walked + 1`` commits looked at (the merge-base
    and its first-parent ancestors; ``limit`` at most). ``selective_builds`` are the builds
    found, none of which can be completed without a complete one beneath it;
    ``merge_base_build`` is the merge-base's record, if any; ``history_note`` says when a
    shallow clone's history ended first. The ``manifest`` is empty: every head image is added.
    """

    merge_base: str
    ancestors_walked: int
    limit: int
    selective_builds: tuple[str, ...]
    merge_base_build: BuildRecord | None
    history_note: str | None = None
    manifest: Manifest = field(default_factory=lambda: Manifest(images={}, source="no base build"))

    @property
    def message(self) -> str:
        """What was looked at, why no base was found, and how to record one."""
        looked_at = self.ancestors_walked + 1
        limit = f" (the limit of {self.limit})" if looked_at >= self.limit else ""
        found = (f"; {_builds(len(self.selective_builds))} found, with no complete build beneath to fold onto"
                 if self.selective_builds else "")
        note = f"; {self.history_note}" if self.history_note else ""
        return (f"no base build: no complete build among the {looked_at} commits looked at{limit}, the "
                f"merge-base {self.merge_base} and its first-parent ancestors{found}; every head image is "
                "added. Record a complete (not selective) build of a commit of the base branch, such as "
                f"its tip, and later comparisons find it{note}")

    def to_json(self) -> dict[str, Any]:
        """The ``base_build`` object of a comparison's results."""
        return {"commit": None, "merge_base": self.merge_base, "ancestors_walked": self.ancestors_walked,
                "selective_layers": [], "selective_builds": list(self.selective_builds),
                "chosen_by": self.message,
                "without_walk": _without_walk_json(self.merge_base, self.merge_base_build)}


def find_base(
    ancestors: Sequence[str],
    store: BlobFetcher,
    *,
    max_ancestors: int = DEFAULT_MAX_ANCESTORS,
    max_workers: int = DEFAULT_LOOKUP_WORKERS,
) -> BaseBuild | NoBaseBuild:
    """The base build for a head whose merge-base with the base branch is ``ancestors[0]``.

    ``ancestors`` are full commit ids: the merge-base, then its first-parent ancestors, nearest
    first; at most ``max_ancestors`` of them are looked at. Their build records are read in
    one concurrent batch (`read_builds`), then the manifests of the builds needed. Raises
    `BaselineError` when ``ancestors`` is empty or holds a malformed id, or a record or
    manifest cannot be read; `fetchers.StoreUnavailable` when the store cannot be used.
    """
    if max_ancestors < 1:
        raise ValueError(f"{parameter('max_ancestors')} must be at least 1, got {max_ancestors}")
    commits = list(dict.fromkeys(check_commit(commit) for commit in ancestors))[:max_ancestors]
    if not commits:
        raise BaselineError("no ancestors given: the list must start with the merge-base")
    records = read_builds(store, commits, max_workers=max_workers)
    merge_base, merge_base_build = commits[0], records.get(commits[0])
    pending = [commit for commit in commits if commit in records]
    layers: list[tuple[str, Manifest]] = []
    while (anchor_at := next((i for i, c in enumerate(pending) if not records[c].selective), None)) is not None:
        batch, pending = pending[: anchor_at + 1], pending[anchor_at + 1:]
        manifests = read_manifests(store, (records[commit] for commit in batch), max_workers=max_workers)
        for commit in batch:
            anchor = manifests[commit]
            if is_complete(anchor):
                if layers:
                    folded = fold_layers(anchor, [m for _, m in layers])
                    anchor = replace(folded, source=f"{anchor.source} with {_builds(len(layers))} folded onto it")
                return BaseBuild(
                    commit=commit, merge_base=merge_base, ancestors_walked=commits.index(commit),
                    selective_layers=tuple(c for c, _ in layers), manifest=anchor,
                    record=records[commit], merge_base_build=merge_base_build,
                )
            layers.append((commit, manifests[commit]))
    selective = tuple(commit for commit in commits if commit in records)
    return NoBaseBuild(merge_base, len(commits) - 1, max_ancestors, selective, merge_base_build)


def find_base_from_git(
    repository: str | os.PathLike[str],
    store: BlobFetcher,
    base_branch: str = DEFAULT_BASE_BRANCH,
    *,
    head: str = "HEAD",
    max_ancestors: int = DEFAULT_MAX_ANCESTORS,
    max_workers: int = DEFAULT_LOOKUP_WORKERS,
) -> BaseBuild | NoBaseBuild:
    """`find_base` over the history of a git checkout: the merge-base of ``head`` with
    ``base_branch`` (``origin/<base_branch>``, else ``<base_branch>``) and its first-parent
    ancestors (`git_ancestry`). When none has a complete build and the checkout is a shallow
    clone whose history ended first, the result's ``history_note`` says how much more to fetch.
    Raises `compare.inputs.baseline.git.GitError` as well as what `find_base` raises.
    """
    ancestry = git_ancestry(repository, base_branch, head=head, limit=max_ancestors)
    found = find_base(ancestry.ancestors, store, max_ancestors=max_ancestors, max_workers=max_workers)
    if isinstance(found, NoBaseBuild):
        return replace(found, history_note=ancestry.history_note)
    return found


def _builds(count: int) -> str:
    return f"{count} selective build{'s' if count != 1 else ''}"


def _without_walk(merge_base_build: BuildRecord | None) -> str:
    if merge_base_build is None:
        return "; without the walk there would be none: the merge-base has no build"
    if merge_base_build.selective:
        return "; without the walk it would be the merge-base's selective build alone"
    return ""


def _without_walk_json(merge_base: str, record: BuildRecord | None) -> dict[str, Any] | None:
    return None if record is None else {"commit": merge_base, "selective": record.selective}
