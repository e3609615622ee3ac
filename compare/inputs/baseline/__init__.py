"""Base builds from git history: builds recorded in the store by commit (`records`), the
history of a checkout (`git`), and the base chosen from it and completed by Sentry's rules
(`find`)."""

from .find import (
    DEFAULT_BASE_BRANCH,
    DEFAULT_MAX_ANCESTORS,
    BaseBuild,
    NoBaseBuild,
    find_base,
    find_base_from_git,
    fold_layer,
    fold_layers,
)
from .git import (
    GitAncestry,
    GitError,
    MergeBase,
    first_parent_ancestors,
    git_ancestry,
    is_shallow,
    merge_base,
)
from .records import (
    DEFAULT_LOOKUP_WORKERS,
    BaselineError,
    BuildRecord,
    check_branch,
    check_commit,
    default_manifest_key,
    is_complete,
    manifest_json,
    read_builds,
    read_manifests,
    record_build,
    record_key,
)

__all__ = [
    "DEFAULT_BASE_BRANCH",
    "DEFAULT_LOOKUP_WORKERS",
    "DEFAULT_MAX_ANCESTORS",
    "BaseBuild",
    "BaselineError",
    "BuildRecord",
    "GitAncestry",
    "GitError",
    "MergeBase",
    "NoBaseBuild",
    "check_branch",
    "check_commit",
    "default_manifest_key",
    "find_base",
    "find_base_from_git",
    "first_parent_ancestors",
    "fold_layer",
    "fold_layers",
    "git_ancestry",
    "is_complete",
    "is_shallow",
    "manifest_json",
    "merge_base",
    "read_builds",
    "read_manifests",
    "record_build",
    "record_key",
]
