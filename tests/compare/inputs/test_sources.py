"""compare.inputs.sources: a manifest read from the store is retried as blobs are and names
the store when it fails; input files are read only when regular and within their bound."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from compare.inputs.sources import open_side, read_input
from fetchers import BlobNotFound, FetchError, LocalFetcher, fetcher_from_url
from testing.files import make_fifo
from testing.objectstore import serve_objectstore

pytestmark = pytest.mark.integration


def test_a_missing_store_manifest_names_the_local_store(tmp_path):
    store = LocalFetcher(tmp_path)
    with pytest.raises(ValueError) as info:
        open_side("store:manifests/main.json", role="base", store=store)
    assert str(info.value) == (
        f"base 'store:manifests/main.json': no such blob (in {tmp_path.resolve().as_uri()})")


def test_a_missing_store_manifest_names_the_bucket_and_prefix(s3_bucket, s3_fetcher_factory):
    store = s3_fetcher_factory(s3_bucket, prefix="snapshots/preprod")
    with pytest.raises(ValueError) as info:
        read_input("store:manifests/main.json", store, "--approved")
    assert str(info.value) == (
        f"--approved 'store:manifests/main.json': no such blob (in s3://{s3_bucket}/snapshots/preprod)")


def test_a_denied_store_manifest_names_the_store_and_never_a_token():
    with serve_objectstore(token="s3cr3t-token") as server:
        host = server.url.removeprefix("http://")
        url = f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2"
        with fetcher_from_url(url, token="wr0ng-token") as store:
            with pytest.raises(ValueError) as info:
                read_input("store:41/manifest.json", store, "head")
    assert str(info.value).startswith("head 'store:41/manifest.json': objectstore answered HTTP 401: ")
    assert str(info.value).endswith(f" (in {url})")
    assert "s3cr3t" not in str(info.value) and "wr0ng" not in str(info.value)


def test_a_store_without_a_url_is_named_by_its_type():
    class MemoryStore:
        def fetch(self, key: str) -> bytes:
            raise BlobNotFound(key)

    with pytest.raises(ValueError, match=r"^head 'store:k': no such blob \(in MemoryStore\)$"):
        read_input("store:k", MemoryStore(), "head")


MANIFEST = {"images": {"home.png": {"content_hash": "a" * 64, "width": 1, "height": 1}}}


@pytest.fixture
def objectstore_fetcher(objectstore_server) -> Iterator:
    objectstore_server.faults.clear()
    host = objectstore_server.url.removeprefix("http://")
    with fetcher_from_url(f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2") as store:
        yield store
    objectstore_server.faults.clear()


@pytest.mark.parametrize("fault", [503, 429, 500, "reset", "truncate"])
def test_store_inputs_are_retried_as_blob_reads_are(objectstore_server, objectstore_fetcher, fault):
    key = f"manifests/{fault}.json"
    objectstore_server.put(f"1/2/{key}", json.dumps(MANIFEST).encode())
    objectstore_server.faults.inject(fault, times=2, key=f"1/2/{key}", retry_after="0")
    side = open_side(f"store:{key}", role="base", store=objectstore_fetcher)
    assert list(side.manifest.images) == ["home.png"]
    objectstore_server.faults.inject(fault, times=1, key=f"1/2/{key}", retry_after="0")
    data, source = read_input(f"store:{key}", objectstore_fetcher, "--approved")
    assert json.loads(data) == MANIFEST and source == f"store:{key}"
    assert objectstore_server.counters.gets(f"1/2/{key}") == 3 + 2


def test_a_store_input_that_keeps_failing_names_the_store(objectstore_server, objectstore_fetcher):
    objectstore_server.faults.inject(503, times=100, key="1/2/m.json", retry_after="0")
    with pytest.raises(ValueError, match=r"^head 'store:m.json': objectstore answered HTTP 503 \(in objectstore"):
        read_input("store:m.json", objectstore_fetcher, "head")


def test_a_fifo_given_as_an_input_file_is_never_opened_and_named_for_what_it_is(tmp_path):
    make_fifo(tmp_path / "base.json")
    with pytest.raises(ValueError, match=r"^base '.*base.json': not a regular file \(a FIFO\)$"):
        open_side(tmp_path / "base.json", role="base")
    with pytest.raises(ValueError, match=r"^approved '/dev/null': not a regular file \(a character device\)$"):
        read_input("/dev/null", None, "approved")


def test_an_image_file_swapped_for_a_fifo_after_hashing_errors_on_read(tmp_path):
    (tmp_path / "home.png").write_bytes(b"not yet a fifo")
    side = open_side(tmp_path, role="head")
    (tmp_path / "home.png").unlink()
    make_fifo(tmp_path / "home.png")
    with pytest.raises(FetchError, match="not a regular file \\(a FIFO\\)"):
        side.fetcher.fetch(side.manifest.images["home.png"].content_hash)


def test_inputs_over_their_size_bound_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("compare.inputs.sources.MAX_MANIFEST_BYTES", 10)
    (tmp_path / "head.json").write_text(json.dumps(MANIFEST))
    with pytest.raises(ValueError, match=r"^head '.*head.json': 135 bytes, more than the 10 allowed$"):
        open_side(tmp_path / "head.json", role="head")
    store = LocalFetcher(tmp_path)
    with pytest.raises(ValueError, match=r"^--approved 'store:head.json': 135 bytes, more than the 50 allowed$"):
        read_input("store:head.json", store, "--approved", max_bytes=50)
