"""The history a base build is looked for in, read from a git checkout by ``git`` itself.

Every call runs ``git -C <repository> <fixed arguments>`` as a subprocess, never through a shell.
Revisions given by the caller are resolved by ``rev-parse --end-of-options`` (so none is read as
an option); the commands after it see only full commit ids, followed by ``--`` where git takes
paths. Variables that point git at another repository (``GIT_DIR`` and the like) are left out
of its environment, so the repository given is the one read.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ...model import parameter
from .records import BaselineError

GIT_TIMEOUT = 60.0
"""Seconds one git command may take."""

_REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                         "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE")


class GitError(BaselineError):
    """Git could not tell what was asked of ``repository``; the message says why."""

    def __init__(self, repository: str | os.PathLike[str], message: str) -> None:
        self.repository = os.fspath(repository)
        self.message = message
        super().__init__(f"git repository {self.repository}: {message}")


class MergeBase(NamedTuple):
    """The commits of ``head`` and of the base branch (found as ``base_ref``), and their merge-base."""

    head: str
    base_ref: str
    base: str
    merge_base: str


@dataclass(frozen=True)
class GitAncestry:
    """Where a base build is looked for: the merge-base of ``head`` with the base branch (found
    as ``base_ref``) and its first-parent ancestors.

    ``ancestors`` starts with the merge-base, nearest first, at most ``limit`` commits. ``shallow``
    says the repository is a shallow clone; ``history_note`` is set when its history ended
    before ``limit`` commits were seen, and says how much more to fetch.
    """

    head: str
    base_ref: str
    merge_base: str
    ancestors: tuple[str, ...]
    limit: int
    shallow: bool
    history_note: str | None = None


def git_ancestry(
    repository: str | os.PathLike[str], base_branch: str, *, head: str = "HEAD", limit: int
) -> GitAncestry:
    """The merge-base of ``head`` with ``base_branch`` in ``repository`` and its first-parent
    ancestors (`merge_base`, `first_parent_ancestors`), noting a shallow clone whose history
    ends too soon. Raises `GitError`."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    found = merge_base(repository, base_branch, head=head)
    ancestors = tuple(first_parent_ancestors(repository, found.merge_base, limit))
    shallow = is_shallow(repository)
    note = None
    if shallow and len(ancestors) < limit:
        ahead = max(_count(repository, found.merge_base, tip) for tip in (found.head, found.base))
        note = (f"the repository is a shallow clone whose history stops {len(ancestors)} commits back from "
                f"the merge-base, short of the {limit} looked at: fetch more of it (git fetch "
                f"--deepen={limit - len(ancestors)}, or a fetch depth of at least {ahead + limit}; "
                "fetch depth 0 fetches all of it)")
    return GitAncestry(found.head, found.base_ref, found.merge_base, ancestors, limit, shallow, note)


def merge_base(
    repository: str | os.PathLike[str], base_branch: str, *, head: str = "HEAD"
) -> MergeBase:
    """The merge-base of ``head`` with the base branch.

    The base branch is looked for as ``origin/<base_branch>``, then as ``<base_branch>``. Raises
    `GitError` when ``head`` or the branch names no commit, or when the two have no common
    ancestor (in a shallow clone, saying so and the fetch depth that would help).
    """
    if not base_branch:
        raise GitError(repository, f"{parameter('base_branch')} is empty: expected a branch name")
    head_commit = resolve(repository, head)
    if head_commit is None:
        raise GitError(repository, f"{head!r} names no commit")
    for ref in (f"origin/{base_branch}", base_branch):
        base_commit = resolve(repository, ref)
        if base_commit is not None:
            break
    else:
        raise GitError(repository, f"neither origin/{base_branch} nor {base_branch} names a commit: "
                       f"fetch the base branch first (git fetch origin {base_branch})")
    done = _run(repository, "merge-base", head_commit, base_commit)
    if done.returncode == 0:
        return MergeBase(head_commit, ref, base_commit, done.stdout.strip())
    if done.returncode == 1 and not done.stderr.strip():
        if is_shallow(repository):
            raise GitError(repository, f"{head} and {ref} have no common commit in the history this shallow "
                           "clone has: fetch all of it (fetch depth 0) or deepen it (git fetch --deepen=N)")
        raise GitError(repository, f"{head} and {ref} have no common commit")
    raise _failed(repository, "merge-base", done)


def first_parent_ancestors(repository: str | os.PathLike[str], commit: str, limit: int) -> list[str]:
    """``commit`` and its first-parent ancestors, nearest first, at most ``limit`` commits (fewer
    where the history ends). Raises `GitError`."""
    resolved = resolve(repository, commit)
    if resolved is None:
        raise GitError(repository, f"{commit!r} names no commit")
    return run_git(repository, "rev-list", "--first-parent", f"--max-count={limit}", resolved, "--").split()


def is_shallow(repository: str | os.PathLike[str]) -> bool:
    """Whether ``repository`` is a shallow clone (some of its history is not fetched)."""
    return run_git(repository, "rev-parse", "--is-shallow-repository").strip() == "true"


def resolve(repository: str | os.PathLike[str], revision: str) -> str | None:
    """The full id of the commit ``revision`` names, None when it names none."""
    done = _run(repository, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if done.returncode == 0:
        return done.stdout.strip()
    if done.stderr.strip():
        raise _failed(repository, "rev-parse", done)
    return None


def _count(repository: str | os.PathLike[str], ancestor: str, tip: str) -> int:
    """How many commits ``tip`` has that ``ancestor`` has not."""
    return int(run_git(repository, "rev-list", "--count", f"^{ancestor}", tip, "--"))


def run_git(
    repository: str | os.PathLike[str], *arguments: str, environment: Mapping[str, str] | None = None
) -> str:
    """The output of ``git -C <repository> <arguments>``, run as this module runs git, with
    ``environment`` added to its environment. Raises `GitError` when it fails."""
    done = _run(repository, *arguments, environment=environment)
    if done.returncode != 0:
        raise _failed(repository, arguments[0], done)
    return done.stdout


def _run(
    repository: str | os.PathLike[str], *arguments: str, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    variables.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    variables.update(environment or {})
    try:
        return subprocess.run(["git", "-C", os.fspath(repository), *arguments], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", env=variables,
                              timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise GitError(repository, "git is not installed (no git on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(repository, f"git {arguments[0]} took longer than {GIT_TIMEOUT:g} s") from None


def _failed(repository: str | os.PathLike[str], command: str, done: subprocess.CompletedProcess[str]) -> GitError:
    lines = done.stderr.strip().splitlines()
    said = lines[-1][:300] if lines else f"exit status {done.returncode}"
    return GitError(repository, f"git {command} failed: {said}")
