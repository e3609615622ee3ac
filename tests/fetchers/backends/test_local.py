"""LocalFetcher: files under a root, and nothing outside it."""

from __future__ import annotations

import os

import pytest

from fetchers import BlobFetcher, BlobNotFound, BlobWriter, FetchError, LocalFetcher, StoreError, WriteError


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
