"""LocalFetcher: files under a root, and nothing outside it."""

from __future__ import annotations

import os

import pytest

from fetchers import BlobFetcher, BlobNotFound, BlobWriter, FetchError, LocalFetcher, StoreError, WriteError

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    (root / "1" / "2").mkdir(parents=True)
    (root / "a").write_bytes(b"alpha")
    (root / "1" / "2" / "b").write_bytes(b"beta")
    (tmp_path / "secret").write_bytes(b"outside")
    return root


def test_reads_files_by_relative_key(store):
    fetcher = LocalFetcher(store)
    assert isinstance(fetcher, BlobFetcher)
    assert fetcher.fetch("a") == b"alpha"
    assert fetcher.fetch("1/2/b") == b"beta"


def test_missing_key_is_blob_not_found(store):
    with pytest.raises(BlobNotFound) as info:
        LocalFetcher(store).fetch("nope")
    assert info.value.key == "nope" and not info.value.retryable


@pytest.mark.parametrize("key", ["../secret", "1/../../secret", "/etc/passwd", "", "a/", "./a", "a\x00b"])
def test_keys_that_escape_or_are_malformed_are_refused(store, key):
    with pytest.raises(FetchError) as info:
        LocalFetcher(store).fetch(key)
    assert not isinstance(info.value, BlobNotFound)
    assert not info.value.retryable


def test_symlink_pointing_outside_the_root_is_refused(store):
    os.symlink(store.parent / "secret", store / "link")
    with pytest.raises(FetchError, match="outside"):
        LocalFetcher(store).fetch("link")


def test_symlink_loop_is_a_fetch_error(store):
    os.symlink(store / "loop-a", store / "loop-b")
    os.symlink(store / "loop-b", store / "loop-a")
    with pytest.raises(FetchError):
        LocalFetcher(store).fetch("loop-a")


def test_symlink_inside_the_root_is_followed(store):
    os.symlink(store / "a", store / "alias")
    assert LocalFetcher(store).fetch("alias") == b"alpha"


def test_folder_key_is_not_a_blob(store):
    with pytest.raises(FetchError, match="folder"):
        LocalFetcher(store).fetch("1")


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        LocalFetcher(tmp_path / "missing")


def test_put_writes_atomically_and_exists_tells(store):
    fetcher = LocalFetcher(store)
    assert isinstance(fetcher, BlobWriter)
    assert not fetcher.exists("new/deep/blob")
    fetcher.put("new/deep/blob", b"first", "image/png")
    fetcher.put("new/deep/blob", b"second", "image/png")
    assert fetcher.fetch("new/deep/blob") == b"second" and fetcher.exists("new/deep/blob")
    assert os.listdir(store / "new" / "deep") == ["blob"]  # no temporary file left behind


@pytest.mark.parametrize("key", ["../secret", "/etc/x", "a/../../x", ""])
def test_put_refuses_keys_that_leave_the_root(store, key):
    with pytest.raises(StoreError) as info:
        LocalFetcher(store).put(key, b"x", "image/png")
    assert not info.value.retryable
    assert (store.parent / "secret").read_bytes() == b"outside"


def test_put_never_writes_through_a_symlinked_folder(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, store / "linked")
    with pytest.raises(WriteError, match="symlink") as info:
        LocalFetcher(store).put("linked/blob", b"x", "image/png")
    assert str(info.value).startswith(f"{store.resolve().as_uri()}: 'linked/blob': ")
    assert list(outside.iterdir()) == []


def test_put_over_a_symlink_replaces_the_link_not_its_target(store):
    os.symlink(store.parent / "secret", store / "link")
    LocalFetcher(store).put("link", b"new", "image/png")
    assert (store.parent / "secret").read_bytes() == b"outside"
    assert not (store / "link").is_symlink() and (store / "link").read_bytes() == b"new"


def test_errors_name_the_store(store):
    with pytest.raises(BlobNotFound) as info:
        LocalFetcher(store).fetch("nope")
    assert str(info.value) == f"{store.resolve().as_uri()}: 'nope': no such blob"


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


def test_create_on_an_existing_folder_is_the_plain_store(store):
    fetcher = LocalFetcher(store, create=True)
    assert fetcher.root == store.resolve() and fetcher.fetch("a") == b"alpha"
    fetcher.put("c", b"gamma", "image/png")
    assert (store / "c").read_bytes() == b"gamma"


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
