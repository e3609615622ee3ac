"""Writers, bursts and store-wide failures over each real store: blobs written by `put` read
back, a burst of throttling at the start costs time and no image, and a misconfigured store
(no such bucket, denied credentials, nothing listening) ends a batch early with
`StoreUnavailable` naming the store."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid

import pytest

from fetchers import (
    BatchPrefetcher,
    BatchUploader,
    BlobNotFound,
    BlobWriter,
    RetryPolicy,
    StoreUnavailable,
    fetcher_from_url,
)
from fetchers.backends.gcs import GCSFetcher
from fetchers.backends.objectstore import TOKEN_ENV, ObjectstoreFetcher
from fetchers.backends.s3 import S3Fetcher
from testing.gcs import STORAGE_EMULATOR_HOST
from testing.objectstore import serve_objectstore
from testing.s3 import REGION

pytestmark = pytest.mark.integration

QUICK_RETRY = RetryPolicy(base_backoff=0.01, max_backoff=0.05)


def blobs(count: int, size: int = 2_000) -> dict[str, bytes]:
    contents = [os.urandom(size) for _ in range(count)]
    return {hashlib.sha256(data).hexdigest(): data for data in contents}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_round_trip(store: BlobWriter) -> dict[str, bytes]:
    """Upload blobs twice through `BatchUploader`; both times every blob reads back."""
    data = blobs(6)
    with BatchUploader(store, max_workers=4) as uploader:
        first = uploader.upload_all(data, content_type="image/png", verify=True)
        second = uploader.upload_all(data, content_type="image/png", verify=True)
    assert sorted(first.written) == sorted(data) and not first.errors
    assert second.written == [] and sorted(second.skipped) == sorted(data)
    assert all(store.exists(key) for key in data) and not store.exists("absent")
    with BatchPrefetcher(store, max_workers=4, verify=True) as prefetcher:
        assert prefetcher.fetch_all(data).blobs == data
    return data


def unavailable(store, keys=None) -> StoreUnavailable:
    keys = keys or list(blobs(200, size=10))
    with BatchPrefetcher(store, max_workers=16, retry=QUICK_RETRY) as prefetcher:
        with pytest.raises(StoreUnavailable) as info:
            prefetcher.fetch_all(keys)
    return info.value


# S3 (moto under waitress, with its fault middleware).


def test_s3_put_and_exists(s3_server, s3_bucket, s3_fetcher_factory):
    fetcher = s3_fetcher_factory(s3_bucket, prefix="1/2", max_connections=4)
    data = check_round_trip(fetcher)
    key = next(iter(data))
    assert s3_server.requests("PUT", s3_bucket, f"1/2/{key}") == 1
    head = s3_server._admin.head_object(Bucket=s3_bucket, Key=f"1/2/{key}")
    assert head["ContentType"] == "image/png"


@pytest.mark.parametrize("burst", [20, 60])
def test_s3_burst_of_slowdowns_at_the_start_costs_no_image(s3_server, s3_bucket, s3_fetcher_factory, burst):
    data = blobs(300, size=500)
    for key, body in data.items():
        s3_server.put_object(s3_bucket, key, body)
    s3_server.faults.set("slowdown", count=burst, retry_after="1")
    with BatchPrefetcher(s3_fetcher_factory(s3_bucket), max_workers=32, verify=True) as prefetcher:
        result = prefetcher.fetch_all(data)
    assert result.blobs == data and not result.errors
    assert result.stats.retries == burst


def test_s3_missing_bucket_is_store_unavailable(s3_server, s3_fetcher_factory):
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    before = s3_server.total_requests()
    error = unavailable(s3_fetcher_factory(bucket, prefix="1/2"))
    assert s3_server.total_requests() - before <= 12
    assert str(error) == f"s3://{bucket}/1/2: store unavailable: S3 NoSuchBucket (HTTP 404)"


def test_s3_denied_credentials_are_store_unavailable(s3_server, s3_bucket, s3_fetcher_factory):
    s3_server.faults.set("denied", count=1000)
    before = s3_server.total_requests()
    error = unavailable(s3_fetcher_factory(s3_bucket))
    assert s3_server.total_requests() - before <= 12
    assert "AccessDenied (HTTP 403)" in str(error) and str(error).startswith(f"s3://{s3_bucket}/")


def test_s3_endpoint_down_is_store_unavailable(s3_env):
    fetcher = S3Fetcher("bucket", endpoint_url=f"http://127.0.0.1:{closed_port()}", region_name=REGION)
    with fetcher:
        error = unavailable(fetcher)
    assert "cannot connect" in str(error) and error.cause.retryable


def test_s3_missing_blob_is_named_with_its_store(s3_bucket, s3_fetcher_factory):
    with pytest.raises(BlobNotFound) as info:
        s3_fetcher_factory(s3_bucket, prefix="1/2").fetch("feed")
    assert str(info.value) == f"s3://{s3_bucket}/1/2: 'feed': no such blob"


# GCS (fake-gcs-server; the proxy in front of it answers with statuses when told).


def test_gcs_put_and_exists(gcs_server, gcs_bucket, latency_proxy, monkeypatch):
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    with GCSFetcher(gcs_bucket, prefix="1/2", max_connections=4) as fetcher:
        check_round_trip(fetcher)
    assert proxy.requests_by_method("POST") == 6  # one upload per blob, the first time only


def test_gcs_missing_bucket_is_store_unavailable(gcs_emulator):
    with GCSFetcher("no-such-bucket", prefix="p") as fetcher:
        error = unavailable(fetcher)
    assert str(error).startswith("gs://no-such-bucket/p: store unavailable: ")


def test_gcs_denied_is_store_unavailable(gcs_server, gcs_bucket, latency_proxy, monkeypatch):
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    proxy.inject("status", 1000, status=403, retry_after=None)
    with GCSFetcher(gcs_bucket) as fetcher:
        error = unavailable(fetcher)
    assert proxy.requests_seen <= 12 and "HTTP 403" in str(error)


def test_gcs_endpoint_down_is_store_unavailable(monkeypatch):
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, f"http://127.0.0.1:{closed_port()}")
    with GCSFetcher("bucket") as fetcher:
        error = unavailable(fetcher)
    assert "cannot connect" in str(error)


# objectstore (its protocol's test server, through the real client).


def objectstore(url: str, **options) -> ObjectstoreFetcher:
    host = url.removeprefix("http://")
    return fetcher_from_url(f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2", **options)


def test_objectstore_put_and_exists(objectstore_server):
    puts = objectstore_server.counters.total("PUT")
    with objectstore(objectstore_server.url, max_connections=4) as fetcher:
        check_round_trip(fetcher)
    assert objectstore_server.counters.total("PUT") - puts == 6


def test_objectstore_put_retries_a_throttled_write(objectstore_server):
    objectstore_server.faults.inject(503, times=2, method="PUT", retry_after="0")
    with objectstore(objectstore_server.url, max_connections=4) as fetcher:
        with BatchUploader(fetcher, max_workers=4, retry=QUICK_RETRY) as uploader:
            data = blobs(5)
            result = uploader.upload_all(data)
    assert sorted(result.written) == sorted(data) and result.stats.retries == 2


def test_objectstore_burst_of_throttling_at_the_start_costs_no_image(objectstore_server):
    data = blobs(300, size=500)
    for key, body in data.items():
        objectstore_server.put(f"1/2/{key}", body)
    objectstore_server.faults.inject(429, times=15, retry_after="1")
    objectstore_server.faults.inject(503, times=15, retry_after="1")
    with objectstore(objectstore_server.url, max_connections=32) as fetcher:
        with BatchPrefetcher(fetcher, max_workers=32, verify=True) as prefetcher:
            result = prefetcher.fetch_all(data)
    assert result.blobs == data and not result.errors
    assert result.stats.retries == 30


def test_objectstore_without_the_token_is_store_unavailable():
    with serve_objectstore(token="s3cret-token") as server:
        with objectstore(server.url) as fetcher:
            error = unavailable(fetcher)
        assert server.counters.total("GET") <= 12
        with objectstore(server.url, token="s3cret-token", max_connections=4) as fetcher:
            check_round_trip(fetcher)
    assert "HTTP 401" in str(error) and "s3cret" not in str(error)
    assert str(error).startswith("objectstore+http://127.0.0.1:")
    assert "/preprod?org=1&project=2&prefix=1/2: " in str(error)


def test_objectstore_denied_says_how_to_give_a_token_or_that_it_was_refused(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token, wrong = "s3cret-" + uuid.uuid4().hex, "wr0ng-" + uuid.uuid4().hex
    with serve_objectstore(token=token) as server:
        with objectstore(server.url) as fetcher:
            without = unavailable(fetcher)
            with BatchUploader(fetcher, max_workers=4, retry=QUICK_RETRY) as uploader:
                with pytest.raises(StoreUnavailable) as writing:
                    uploader.upload_all(blobs(20, size=10))
        with objectstore(server.url, token=wrong) as fetcher:
            refused = unavailable(fetcher)
        monkeypatch.setenv(TOKEN_ENV, wrong)
        with objectstore(server.url) as fetcher:
            refused_from_env = unavailable(fetcher)

    for error in (without, writing.value):
        assert str(error).endswith(
            "store unavailable: objectstore answered HTTP 401: no token is configured: "
            "set SNAPCOMPARE_OBJECTSTORE_TOKEN or pass --objectstore-token-file FILE"), str(error)
    for error in (refused, refused_from_env):
        assert str(error).endswith(
            "store unavailable: objectstore answered HTTP 401: the configured token was refused "
            "(wrong, expired, or not valid for this usecase and scope)"), str(error)
    for error in (without, writing.value, refused, refused_from_env):
        assert str(error).startswith("objectstore+http://127.0.0.1:")
        for text in (str(error), repr(error), str(error.cause), repr(error.cause)):
            assert token not in text and wrong not in text


def test_objectstore_forbidden_without_a_token_says_how_to_give_one(objectstore_server, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    objectstore_server.faults.inject(403, times=1000)
    try:
        with objectstore(objectstore_server.url) as fetcher:
            error = unavailable(fetcher)
    finally:
        objectstore_server.faults.clear()
    assert "HTTP 403: no token is configured: set SNAPCOMPARE_OBJECTSTORE_TOKEN" in str(error)


def test_objectstore_endpoint_down_is_store_unavailable():
    with objectstore(f"http://127.0.0.1:{closed_port()}") as fetcher:
        error = unavailable(fetcher)
    assert "ConnectionError" in str(error) or "refused" in str(error).lower()


def test_s3_upload_to_a_missing_bucket_stops_after_a_few_requests(s3_server, s3_fetcher_factory):
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    before = s3_server.total_requests()
    with BatchUploader(s3_fetcher_factory(bucket), max_workers=16, retry=QUICK_RETRY) as uploader:
        with pytest.raises(StoreUnavailable) as info:
            uploader.upload_all(blobs(100, size=10))
    assert s3_server.total_requests() - before <= 12
    assert str(info.value) == f"s3://{bucket}/: store unavailable: S3 NoSuchBucket (HTTP 404)"


def test_gcs_upload_to_a_missing_bucket_stops_after_a_few_requests(gcs_server, latency_proxy, monkeypatch):
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    with GCSFetcher("no-such-bucket", max_connections=16) as fetcher:
        with BatchUploader(fetcher, max_workers=16, retry=QUICK_RETRY) as uploader:
            with pytest.raises(StoreUnavailable) as info:
                uploader.upload_all(blobs(100, size=10))
    assert proxy.requests_seen <= 12 and proxy.requests_by_method("POST") == 0
    assert "GCS bucket does not exist" in str(info.value)


def test_s3_store_that_stays_throttled_ends_the_batch_within_the_budget(s3_server, s3_bucket, s3_fetcher_factory):
    data = blobs(50, size=100)
    for key, body in data.items():
        s3_server.put_object(s3_bucket, key, body)
    s3_server.faults.set("slowdown", count=100_000, retry_after="0")
    before = s3_server.total_requests()
    with BatchPrefetcher(s3_fetcher_factory(s3_bucket), max_workers=8, retry=QUICK_RETRY) as prefetcher:
        result = prefetcher.fetch_all(data)
    s3_server.faults.clear()
    assert set(result.errors) == set(data) and all(e.throttled for e in result.errors.values())
    assert s3_server.total_requests() - before == len(data) + result.stats.retries <= len(data) + 500 // 5
