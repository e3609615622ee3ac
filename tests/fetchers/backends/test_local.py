"""LocalFetcher: files under a root, and nothing outside it; what every store does is in
``test_contract``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fetchers import BlobNotFound, FetchError, LocalFetcher, StoreError, WriteError

pytestmark = pytest.mark.unit


@pytest.fixture
def folder(tmp_path):
    """A store's folder holding ``a`` and ``1/2/b``, next to a file ``secret`` outside it."""
    root = tmp_path / "store"
    (root / "1" / "2").mkdir(parents=True)
    (root / "a").write_bytes(b"alpha")
    (root / "1" / "2" / "b").write_bytes(b"beta")
    (tmp_path / "secret").write_bytes(b"outside")
    return root


def test_symlink_pointing_outside_the_root_is_refused(folder):
    os.symlink(folder.parent / "secret", folder / "link")
    with pytest.raises(FetchError, match="outside"):
        LocalFetcher(folder).fetch("link")


def test_symlink_loop_is_a_fetch_error(folder):
    os.symlink(folder / "loop-a", folder / "loop-b")
    os.symlink(folder / "loop-b", folder / "loop-a")
    with pytest.raises(FetchError):
        LocalFetcher(folder).fetch("loop-a")


def test_symlink_inside_the_root_is_followed(folder):
    os.symlink(folder / "a", folder / "alias")
    assert LocalFetcher(folder).fetch("alias") == b"alpha"


def test_a_symlinked_folder_inside_the_root_is_followed(folder):
    os.symlink(folder / "1", folder / "linked")
    fetcher = LocalFetcher(folder)
    assert fetcher.fetch("linked/2/b") == b"beta"
    assert fetcher.exists("linked/2/b") and fetcher.stat("linked/2/b").size == 4


@pytest.mark.parametrize("operation", ["fetch", "exists", "stat"])
def test_a_folder_swapped_for_a_symlink_as_the_key_is_read_is_not_followed(folder, tmp_path, monkeypatch, operation):
    # The swap comes between the key's resolution and its opening, as a writer of the folder may make it.
    (tmp_path / "outside" / "2").mkdir(parents=True)
    (tmp_path / "outside" / "2" / "b").write_bytes(b"outside")
    fetcher = LocalFetcher(folder)
    resolve = Path.resolve

    def resolve_then_swap(self: Path, strict: bool = False) -> Path:
        resolved = resolve(self, strict)
        if not (folder / "1").is_symlink():
            (folder / "1").rename(tmp_path / "moved")
            (folder / "1").symlink_to(tmp_path / "outside")
        return resolved

    monkeypatch.setattr(Path, "resolve", resolve_then_swap)
    with pytest.raises(FetchError) as info:
        getattr(fetcher, operation)("1/2/b")
    assert info.value.retryable and "symlink" in info.value.message


def test_a_file_on_the_keys_path_means_no_such_blob(folder):
    fetcher = LocalFetcher(folder)
    with pytest.raises(BlobNotFound):
        fetcher.fetch("a/x")
    assert fetcher.exists("a/x") is False and fetcher.stat("a/x") is None


def test_a_name_too_long_is_a_fetch_error_for_every_read(folder):
    fetcher = LocalFetcher(folder)
    for call in (fetcher.fetch, fetcher.exists, fetcher.stat):
        with pytest.raises(FetchError, match="File name too long") as info:
            call("x" * 300)
        assert not info.value.retryable


@pytest.mark.parametrize("create", [False, True])
def test_a_root_that_cannot_be_looked_at_is_refused_as_unusable(tmp_path, create):
    with pytest.raises(ValueError, match="cannot be used: File name too long"):
        LocalFetcher(tmp_path / ("x" * 300) / "store", create=create)


NOBODY = 65534
"""The unprivileged user permission tests run as when the tests run as root, who reads any folder."""


@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, Callable[[Callable[[], None]], None]]]:
    """A folder of the user the permission tests run as, and a runner of a test's body as that
    user: this process itself when it is not root; else a child forked for the body, which
    drops root's rights first (its failure fails the test)."""
    if os.geteuid() != 0:
        with tempfile.TemporaryDirectory() as folder:
            yield Path(folder), lambda body: body()
        return
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # not under root's own pytest folder, closed to others
    os.chown(folder, NOBODY, NOBODY)

    def run(body: Callable[[], None]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never back into pytest
            code = 1
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                body()
                code = 0
            except BaseException:  # noqa: BLE001 - reported, and the exit code fails the test
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the body failed as an unprivileged user (traceback above)"

    try:
        yield folder, run
    finally:
        for root, folders, _ in os.walk(folder):
            for name in folders:
                os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(folder)


@pytest.mark.parametrize("create", [False, True])
def test_a_root_this_process_may_not_read_is_refused_as_unusable(unprivileged, create):
    folder, run = unprivileged

    def body() -> None:
        (folder / "private" / "store").mkdir(parents=True)
        for closed in ("private", "private/store"):  # a folder on the way, or the root itself
            (folder / closed).chmod(0)
            try:
                with pytest.raises(ValueError, match="cannot be used: Permission denied"):
                    LocalFetcher(folder / "private" / "store", create=create)
            finally:
                (folder / closed).chmod(0o700)

    run(body)


def test_folders_that_may_be_searched_but_not_listed_are_read_through(unprivileged):
    # As reading by path needs: the right to search each folder, not to list it.
    folder, run = unprivileged

    def body() -> None:
        store = folder / "store"
        (store / "ab").mkdir(parents=True)
        (store / "ab" / "cd").write_bytes(b"blob")
        for path in (store / "ab", store):
            path.chmod(0o311)
        try:
            fetcher = LocalFetcher(store)
            assert fetcher.fetch("ab/cd") == b"blob" and fetcher.exists("ab/cd") and fetcher.stat("ab/cd").size == 4
        finally:
            for path in (store, store / "ab"):
                path.chmod(0o755)

    run(body)


def test_a_lasting_symlink_loop_is_no_race(folder, monkeypatch):
    # Python 3.13's Path.resolve leaves a loop in the path instead of raising, as emulated here:
    # the read then meets the link, and resolving again gives the same path: not retryable.
    (folder / "loop").symlink_to("loop")
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: Path(os.path.abspath(self)))
    for call in (LocalFetcher(folder).fetch, LocalFetcher(folder).stat):
        with pytest.raises(FetchError, match="symlink loop") as info:
            call("loop/x")
        assert not info.value.retryable


def test_folder_key_is_not_a_blob(folder):
    with pytest.raises(FetchError, match="folder"):
        LocalFetcher(folder).fetch("1")


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        LocalFetcher(tmp_path / "missing")


def test_put_leaves_no_temporary_file_behind(folder):
    fetcher = LocalFetcher(folder)
    fetcher.put("new/deep/blob", b"first", "image/png")
    fetcher.put("new/deep/blob", b"second", "image/png")
    assert os.listdir(folder / "new" / "deep") == ["blob"]


@pytest.mark.parametrize("key", ["../secret", "/etc/x", "a/../../x", ""])
def test_put_of_a_key_that_leaves_the_root_writes_nothing(folder, key):
    with pytest.raises(WriteError):
        LocalFetcher(folder).put(key, b"x", "image/png")
    assert (folder.parent / "secret").read_bytes() == b"outside"


def test_put_never_writes_through_a_symlinked_folder(folder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, folder / "linked")
    with pytest.raises(WriteError, match="symlink") as info:
        LocalFetcher(folder).put("linked/blob", b"x", "image/png")
    assert str(info.value).startswith(f"{folder.resolve().as_uri()}: 'linked/blob': ")
    assert list(outside.iterdir()) == []


def test_put_over_a_symlink_replaces_the_link_not_its_target(folder):
    os.symlink(folder.parent / "secret", folder / "link")
    LocalFetcher(folder).put("link", b"new", "image/png")
    assert (folder.parent / "secret").read_bytes() == b"outside"
    assert not (folder / "link").is_symlink() and (folder / "link").read_bytes() == b"new"


# --- create: a store made on first write ------------------------------------------------------


def test_create_makes_the_missing_root_and_its_parents_on_first_write(tmp_path):
    root = tmp_path / "results" / "1" / "2"
    fetcher = LocalFetcher(root, create=True)
    assert not (tmp_path / "results").exists()  # opening makes nothing
    assert fetcher.store_url == root.as_uri() and fetcher.root == root
    with pytest.raises(BlobNotFound):
        fetcher.fetch("42/41/comparison.json")
    fetcher.put("42/41/comparison.json", b"first", "application/json")
    fetcher.put("42/41/diff/a.png", b"mask", "image/png")  # the root exists now
    assert (root / "42" / "41" / "comparison.json").read_bytes() == b"first"
    assert fetcher.fetch("42/41/diff/a.png") == b"mask" and fetcher.exists("42/41/diff/a.png")
    assert LocalFetcher(root).fetch("42/41/comparison.json") == b"first"


def test_create_on_an_existing_folder_is_the_plain_store(folder):
    fetcher = LocalFetcher(folder, create=True)
    assert fetcher.root == folder.resolve() and fetcher.fetch("a") == b"alpha"
    fetcher.put("c", b"gamma", "image/png")
    assert (folder / "c").read_bytes() == b"gamma"


def test_create_under_a_symlinked_existing_folder_names_the_real_path(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")
    fetcher = LocalFetcher(tmp_path / "alias" / "new", create=True)
    assert fetcher.root == real / "new"
    fetcher.put("k", b"v", "image/png")
    assert (real / "new" / "k").read_bytes() == b"v"


@pytest.mark.parametrize("blocker", ["file", "dangling symlink"])
@pytest.mark.parametrize("where", ["root", "parent"])
def test_create_refuses_a_path_through_something_not_a_folder(tmp_path, blocker, where):
    blocked = tmp_path / "results"
    if blocker == "file":
        blocked.write_bytes(b"")
    else:
        os.symlink(tmp_path / "nowhere", blocked)
    root = blocked if where == "root" else blocked / "1" / "2"
    with pytest.raises(ValueError, match="not a folder"):
        LocalFetcher(root, create=True)
    assert not (tmp_path / "nowhere").exists()


def test_create_refuses_dot_dot_in_the_part_to_be_made(tmp_path):
    with pytest.raises(ValueError, match="cannot be created"):
        LocalFetcher(tmp_path / "missing" / ".." / "escape", create=True)
    assert not (tmp_path / "missing").exists() and not (tmp_path / "escape").exists()


def test_create_never_follows_a_symlink_planted_before_the_first_write(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    fetcher = LocalFetcher(tmp_path / "results" / "1" / "2", create=True)
    (tmp_path / "results").mkdir()
    os.symlink(outside, tmp_path / "results" / "1")
    with pytest.raises(WriteError, match="symlink") as info:
        fetcher.put("comparison.json", b"x", "application/json")
    assert str(info.value).startswith(f"{(tmp_path / 'results' / '1' / '2').as_uri()}: 'comparison.json': ")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("key", ["../secret", "a/../../x", "/etc/x"])
def test_a_created_store_keeps_keys_inside_its_root(tmp_path, key):
    (tmp_path / "secret").write_bytes(b"outside")
    fetcher = LocalFetcher(tmp_path / "results", create=True)
    with pytest.raises(StoreError) as info:
        fetcher.put(key, b"x", "image/png")
    assert not info.value.retryable
    with pytest.raises(FetchError):
        fetcher.fetch(key)
    assert (tmp_path / "secret").read_bytes() == b"outside"
