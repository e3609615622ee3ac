"""BatchPrefetcher over each real store with faults injected: every key ends fetched or in
``.errors`` with the right class, retries are exactly the faults, and nothing hangs."""

from __future__ import annotations

import hashlib
import os

import pytest

from fetchers import BatchPrefetcher, BlobNotFound, FetchError, IntegrityError, RetryBudget, RetryPolicy
from fetchers.backends.gcs import GCSFetcher
from fetchers.backends.objectstore import ObjectstoreFetcher
from testing.gcs import STORAGE_EMULATOR_HOST

pytestmark = pytest.mark.integration

QUICK_RETRY = RetryPolicy(max_attempts=4, base_backoff=0.01, max_backoff=0.05, max_retry_after=2)
MISSING = hashlib.sha256(b"never uploaded").hexdigest()


def blobs(count: int) -> dict[str, bytes]:
    contents = [os.urandom(20_000 + 997 * i) for i in range(count)]
    return {hashlib.sha256(data).hexdigest(): data for data in contents}


def prefetcher(fetcher, workers: int = 4) -> BatchPrefetcher:
    budget = RetryBudget(initial=100, capacity=100)
    return BatchPrefetcher(fetcher, max_workers=workers, verify=True, retry=QUICK_RETRY, budget=budget)


def check_all_fetched(result, expected: dict[str, bytes]) -> None:
    assert result.blobs == expected
    assert set(result.errors) == {MISSING}
    assert isinstance(result.errors[MISSING], BlobNotFound)


# S3 (moto under waitress): the fault switch answers the next GETs, whatever their key.


@pytest.fixture
def s3_case(s3_server, s3_bucket, s3_fetcher_factory):
    data = blobs(12)
    for key, body in data.items():
        s3_server.put_object(s3_bucket, key, body)
    return s3_server, s3_bucket, s3_fetcher_factory(s3_bucket, max_connections=4, read_timeout=2), data


@pytest.mark.parametrize("mode", ["slowdown", "error500", "truncate", "reset", "stall"])
def test_s3_batch_recovers_from_transient_faults(s3_case, mode):
    server, bucket, fetcher, data = s3_case
    server.faults.set(mode, count=3, retry_after="0", seconds=3)
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all([*data, MISSING, *data])
    check_all_fetched(result, data)
    assert result.stats.retries == 3
    gets = sum(server.requests("GET", bucket, key) for key in [*data, MISSING])
    assert gets == result.stats.fetches_issued == len(data) + 1 + 3


def test_s3_permanent_and_exhausted_errors_keep_their_class(s3_case):
    server, bucket, fetcher, data = s3_case
    denied, *rest = data
    server.faults.set("denied", count=1, match=denied)
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all(data)
    assert not result.errors[denied].retryable and server.requests("GET", bucket, denied) == 1
    assert {key: result.blobs[key] for key in rest} == {key: data[key] for key in rest}

    throttled = rest[0]
    server.faults.set("slowdown", count=100, match=throttled, retry_after="0")
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all([throttled])
    server.faults.clear()
    assert result.errors[throttled].retryable
    assert server.requests("GET", bucket, throttled) == 1 + QUICK_RETRY.max_throttled_attempts


# objectstore (the test server of its HTTP protocol, through the real client).


@pytest.fixture
def objectstore_case(objectstore_server):
    data = blobs(12)
    for key, body in data.items():
        objectstore_server.put(f"1/2/{key}", body)
    fetcher = ObjectstoreFetcher.connect(
        objectstore_server.url, "preprod", scopes={"org": 1, "project": 2}, prefix="1/2",
        max_connections=4, read_timeout=2,
    )
    objectstore_server.faults.clear()
    yield objectstore_server, fetcher, data
    objectstore_server.faults.clear()
    fetcher.close()


@pytest.mark.parametrize("mode", [503, 429, 500, "reset", "truncate", "stall"])
def test_objectstore_batch_recovers_from_transient_faults(objectstore_case, mode):
    server, fetcher, data = objectstore_case
    before = server.counters.total_gets
    server.faults.inject(mode, times=3, retry_after="0", delay=3)
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all([*data, MISSING])
    check_all_fetched(result, data)
    assert result.stats.retries == 3
    assert server.counters.total_gets - before == result.stats.fetches_issued == len(data) + 1 + 3


def test_objectstore_corrupt_body_is_retried_once_then_an_integrity_error(objectstore_case):
    server, fetcher, data = objectstore_case
    healed, broken, *_ = data
    for key in (healed, broken):  # stored uncompressed, so corruption reaches the hash check
        server.put(f"1/2/{key}", data[key], compress="none")
    server.faults.inject("corrupt", times=1, key=f"1/2/{healed}")
    server.faults.inject("corrupt", times=10, key=f"1/2/{broken}")
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all(data)
    assert result.blobs[healed] == data[healed]
    assert isinstance(result.errors[broken], IntegrityError)
    assert server.counters.gets(f"1/2/{broken}") == 2
    assert len(result.blobs) == len(data) - 1


def test_objectstore_denied_is_not_retried(objectstore_case):
    server, fetcher, data = objectstore_case
    denied = next(iter(data))
    server.faults.inject(403, times=1, key=f"1/2/{denied}")
    with prefetcher(fetcher) as batch:
        result = batch.fetch_all(data)
    error = result.errors[denied]
    assert type(error) is FetchError and not error.retryable
    assert server.counters.gets(f"1/2/{denied}") == 1


# GCS (fake-gcs-server) with faults from the proxy in front of it, for the next requests.


@pytest.mark.parametrize("kind", ["http503", "reset", "truncate"])
def test_gcs_batch_recovers_from_transient_faults(gcs_server, gcs_bucket, latency_proxy, monkeypatch, kind):
    data = blobs(8)
    for key, body in data.items():
        gcs_server.upload(gcs_bucket, key, body)
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    with GCSFetcher(gcs_bucket, max_connections=4, read_timeout=2) as fetcher:
        proxy.inject(kind, count=3, at_byte=200)
        with prefetcher(fetcher) as batch:
            result = batch.fetch_all([*data, MISSING])
    check_all_fetched(result, data)
    assert result.stats.retries == 3
    assert result.stats.fetches_issued == len(data) + 1 + 3
