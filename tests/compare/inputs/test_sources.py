"""compare.inputs.sources: a manifest read from the store names the store when it fails."""

from __future__ import annotations

import pytest

from compare.inputs.sources import open_side, read_input
from fetchers import BlobNotFound, LocalFetcher, fetcher_from_url
from testing.objectstore import serve_objectstore


def test_a_missing_store_manifest_names_the_local_store(tmp_path):
    store = LocalFetcher(tmp_path)
    with pytest.raises(ValueError) as info:
        open_side("store:manifests/main.json", role="base", store=store)
    assert str(info.value) == (
        f"--base 'store:manifests/main.json': no such blob (in {tmp_path.resolve().as_uri()})")


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
                read_input("store:41/manifest.json", store, "--head")
    assert str(info.value).startswith("--head 'store:41/manifest.json': objectstore answered HTTP 401: ")
    assert str(info.value).endswith(f" (in {url})")
    assert "s3cr3t" not in str(info.value) and "wr0ng" not in str(info.value)


def test_a_store_without_a_url_is_named_by_its_type():
    class MemoryStore:
        def fetch(self, key: str) -> bytes:
            raise BlobNotFound(key)

    with pytest.raises(ValueError, match=r"^--head 'store:k': no such blob \(in MemoryStore\)$"):
        read_input("store:k", MemoryStore(), "--head")
