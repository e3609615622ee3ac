"""Fixtures shared by the tests of tests/compare: a real git history made by the test
(tests/compare/inputs/test_builds.py and tests/compare/test_base_from_git.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


class Repository:
    """A git repository made by the test, with fixed authors and dates."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        self.ticks = 0
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *arguments: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *arguments], check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str) -> str:
        self.ticks += 1
        date = f"2025-01-01T00:{self.ticks // 60:02d}:{self.ticks % 60:02d}Z"
        subprocess.run(["git", "-C", str(self.path), "commit", "-q", "--allow-empty", "-m", message], check=True,
                       env={**self.env, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        return self.git("rev-parse", "HEAD")

    def clone(self, into: Path, *options: str) -> Path:
        subprocess.run(["git", "clone", "-q", *options, self.path.as_uri(), str(into)], check=True, env=self.env)
        return into

    def run_in(self, clone: Path, *arguments: str) -> None:
        subprocess.run(["git", "-C", str(clone), *arguments], check=True, env=self.env)


@pytest.fixture
def git_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Git with no configuration but the test's, as every git the test and the library run."""
    home = tmp_path / "home"
    home.mkdir()
    values = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Test",
              "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
              "GIT_COMMITTER_EMAIL": "test@example.com"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


class History:
    """main: m1 - m2 - m3 - m4 (merges side: s1, made from m2) - m5 - m6; feature: m5 - f1 - f2.

    The merge-base of feature with main is m5; its first-parent ancestors are m4, m3, m2, m1
    (s1 is not one)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        repo = self.repo = Repository(root / "repo", env)
        self.m1, self.m2 = repo.commit("m1"), repo.commit("m2")
        repo.git("branch", "side")
        self.m3 = repo.commit("m3")
        repo.git("checkout", "-q", "side")
        self.s1 = repo.commit("s1")
        repo.git("checkout", "-q", "main")
        repo.git("merge", "-q", "--no-ff", "-m", "m4", "side")
        self.m4 = repo.git("rev-parse", "HEAD")
        self.m5 = repo.commit("m5")
        repo.git("checkout", "-q", "-b", "feature")
        self.f1, self.f2 = repo.commit("f1"), repo.commit("f2")
        repo.git("checkout", "-q", "main")
        self.m6 = repo.commit("m6")
        repo.git("checkout", "-q", "feature")


@pytest.fixture
def history(tmp_path, git_env) -> History:
    return History(tmp_path, git_env)


@pytest.fixture
def no_store_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that chooses its store itself: none comes from this process's environment."""
    monkeypatch.delenv("SNAPCOMPARE_STORE", raising=False)
    monkeypatch.delenv("SNAPCOMPARE_OBJECTSTORE_TOKEN", raising=False)
