"""The store contract, checked against every backend: a local folder, S3 (moto under waitress),
GCS (fake-gcs-server) and objectstore (its protocol's test server, through the real client).

Each network store sits behind a proxy on a manual clock (see ``conftest``): the proxy counts
the fetchers' requests and connections, answers with the statuses and breaks the transfers a
test asks for, and holds a stalled answer until the test moves the clock. What a backend
cannot be asked (a local folder has no connections; objectstore has no buckets) is said by the
fixture a test runs on: ``store`` (all), ``network_store``, ``bucket_store`` (S3, GCS).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from fetchers import (
    BatchPrefetcher,
    BatchUploader,
    BlobFetcher,
    BlobNotFound,
    BlobTooLarge,
    BlobWriter,
    FetchError,
    IntegrityError,
    RetryBudget,
    StoreError,
    StoreUnavailable,
    WriteError,
)
from fetchers.http import is_connect_failure
from testing.waiting import PATIENCE, wait_until

from ..helpers import QUICK_RETRY, Store, blobs, connections_to, unavailable

pytestmark = pytest.mark.integration

MISSING = hashlib.sha256(b"never written").hexdigest()
DATA = os.urandom(200_000)
INVALID_KEYS = ["", "/abs", "a//b", "a/", "./a", "a/./b", "../x", "a/..", "a/../b", "1/../../secret",
                "a\\b", "a\nb", "a\x00b", "a/x\ud800.png"]
MISSING_BUCKET = {"s3": "S3 NoSuchBucket (HTTP 404)", "gcs": "GCS bucket does not exist (HTTP 404)"}


def written(store: Store, count: int = 1, size: int = 2_000) -> dict[str, bytes]:
    """``count`` blobs written to the store under the contract's prefix, ``1/2``."""
    data = blobs(count, size)
    for key, body in data.items():
        store.write(f"1/2/{key}", body)
    return data


def quick_batch(store: BlobFetcher, workers: int = 4) -> BatchPrefetcher:
    """A verifying prefetcher with quick retries and budget to spare."""
    budget = RetryBudget(initial=100, capacity=100)
    return BatchPrefetcher(store, max_workers=workers, verify=True, retry=QUICK_RETRY, budget=budget)


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1_000, 65_537, 1_000_007])
def test_a_fetch_returns_the_exact_bytes_with_one_request(store: Store, size: int) -> None:
    data = os.urandom(size)
    store.write("1/2/blob", data)
    fetcher = store.open()
    assert isinstance(fetcher, BlobFetcher) and isinstance(fetcher, BlobWriter)
    assert fetcher.fetch("blob") == data
    assert fetcher.fetch("blob") == data
    if store.proxy is not None:
        assert store.requests == 2  # a GET each: no HEAD, no lookup first


def test_a_blob_over_max_blob_bytes_is_refused_and_the_fetcher_goes_on(store: Store) -> None:
    limit = 300_000
    fits = os.urandom(limit)
    store.write("1/2/fits", fits)
    store.write("1/2/over", os.urandom(limit + 1))
    store.write("1/2/far/over", os.urandom(5_000_000))
    fetcher = store.open(max_blob_bytes=limit)

    assert fetcher.fetch("fits") == fits
    for key in ("over", "far/over"):
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(key)
        assert type(caught.value) is BlobTooLarge and not caught.value.retryable
        assert caught.value.message.startswith("blob too large: ") and f"{limit:,}" in caught.value.message
    assert fetcher.fetch("fits") == fits
    for wrong in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_blob_bytes"):
            store.open(max_blob_bytes=wrong)


@pytest.mark.parametrize("prefix", ["1/2", "/1/2/"])
def test_the_prefix_is_joined_with_a_slash(store: Store, prefix: str) -> None:
    store.write("1/2/k", b"under the prefix")
    store.write("1/2/a/b", b"nested")
    store.write("k", b"at the root")
    fetcher = store.open(prefix)
    assert fetcher.fetch("k") == b"under the prefix"
    assert fetcher.fetch("a/b") == b"nested"
    assert store.open("").fetch("k") == b"at the root"
    assert store.open("").fetch("1/2/k") == b"under the prefix"
    with pytest.raises(BlobNotFound):
        store.open("1/3").fetch("k")


def test_a_key_with_reserved_characters_round_trips(store: Store) -> None:
    key = f"dir {uuid.uuid4().hex}/a+b;c=d%e?f#g&h"
    store.write(f"1/2/{key}", b"reserved")
    fetcher = store.open()
    assert fetcher.fetch(key) == b"reserved"
    fetcher.put(f"{key}-put", b"written", "image/png")
    assert fetcher.fetch(f"{key}-put") == b"written"


def test_a_missing_key_is_blob_not_found_naming_its_store(store: Store) -> None:
    fetcher = store.open()
    with pytest.raises(BlobNotFound):
        fetcher.fetch("absent")
    before = store.requests if store.proxy is not None else 0
    with pytest.raises(BlobNotFound) as caught:
        fetcher.fetch("absent")
    error = caught.value
    assert error.key == "absent" and not error.retryable and not error.store_wide
    assert str(error) == f"{fetcher.store_url}: 'absent': no such blob"
    if store.missing_cause is None:
        assert error.__cause__ is None
    else:
        assert isinstance(error.__cause__, store.missing_cause)
    if store.proxy is not None:
        assert store.requests - before == 1  # the bucket, if asked about, is known by now
    assert fetcher.exists("absent") is False and fetcher.stat("absent") is None


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_an_invalid_key_is_refused_without_a_request(store: Store, key: str) -> None:
    fetcher = store.open()
    calls = [(fetcher.fetch, FetchError), (fetcher.exists, FetchError),
             (lambda k: fetcher.put(k, b"x", "image/png"), WriteError)]
    for call, kind in calls:
        with pytest.raises(StoreError) as caught:
            call(key)
        assert type(caught.value) is kind
        assert caught.value.key == key and not caught.value.retryable
    if store.proxy is not None:
        assert (store.requests, store.connections) == (0, 0)


# --- failures of the store --------------------------------------------------------------------


def test_a_missing_bucket_is_a_store_wide_error_that_ends_a_batch_early(bucket_store: Store) -> None:
    store = bucket_store
    assert store.open_named is not None
    fetcher = store.open_named(f"missing-{uuid.uuid4().hex[:8]}")
    for call in (fetcher.fetch, fetcher.exists):
        with pytest.raises(FetchError) as caught:
            call("k")
        error = caught.value
        assert type(error) is FetchError  # not a missing blob
        assert error.store_wide and not error.retryable
        assert str(error) == f"{fetcher.store_url}: 'k': {MISSING_BUCKET[store.name]}"

    before = store.requests
    assert str(unavailable(fetcher)) == f"{fetcher.store_url}: store unavailable: {MISSING_BUCKET[store.name]}"
    assert store.requests - before <= 12

    before = store.requests
    with BatchUploader(fetcher, max_workers=16, retry=QUICK_RETRY) as uploader:
        with pytest.raises(StoreUnavailable) as info:
            uploader.upload_all(blobs(100, size=10))
    assert str(info.value) == f"{fetcher.store_url}: store unavailable: {MISSING_BUCKET[store.name]}"
    assert store.requests - before <= 12 and store.writes() == 0


def test_a_missing_bucket_is_asked_about_once(bucket_store: Store) -> None:
    store = bucket_store
    assert store.open_named is not None
    fetcher = store.open_named(f"missing-{uuid.uuid4().hex[:8]}")
    for key in ("a", "b", "c", "d"):
        with pytest.raises(FetchError) as caught:
            fetcher.exists(key)
        assert caught.value.store_wide
    assert store.requests == 4 + 1  # one metadata request each, and the bucket's once


def test_a_corrupt_body_is_an_integrity_error_with_or_without_a_size_limit(bucket_store: Store) -> None:
    # The SDKs check a body against the object's checksum when they read it to its end.
    store = bucket_store
    store.write("1/2/k", DATA)
    for limit in (None, 1_000_000):
        fetcher = store.open(max_blob_bytes=limit)
        store.proxy.inject("corrupt", at_byte=100_000)
        with pytest.raises(IntegrityError) as caught:
            fetcher.fetch("k")
        assert caught.value.retryable and caught.value.key == "k"
        assert fetcher.fetch("k") == DATA
    assert store.requests == 4


def test_a_write_answered_404_is_a_write_error(bucket_store: Store) -> None:
    # A gateway in front of the store, or a wrong route: nothing a missing blob would explain.
    fetcher = bucket_store.open()
    bucket_store.proxy.inject("status", status=404, retry_after=None)
    with pytest.raises(StoreError) as caught:
        fetcher.put("k", b"data", "image/png")
    error = caught.value
    assert type(error) is WriteError and not error.retryable and "404" in error.message
    fetcher.put("k", b"data", "image/png")
    assert fetcher.fetch("k") == b"data"


@pytest.mark.parametrize(
    ("status", "retry_after", "retryable"),
    [(503, "1", True), (429, "7", True), (500, None, True), (502, None, True),
     (403, None, False), (401, None, False), (400, None, False)],
)
def test_an_error_status_is_classified_and_keeps_the_connection(
    network_store: Store, status: int, retry_after: str | None, retryable: bool
) -> None:
    store = network_store
    store.write("1/2/k", DATA)
    fetcher = store.open()
    store.proxy.inject("status", status=status, retry_after=retry_after)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch("k")
    error = caught.value
    assert type(error) is FetchError and error.key == "k"
    assert error.retryable is retryable
    assert error.store_wide is (status in (401, 403))
    assert error.throttled is (status in (429, 503))
    assert error.retry_after == (float(retry_after) if retry_after and store.reports_retry_after else None)
    # GCS's client answers a 401 by refreshing its credentials; that fails (they are anonymous
    # here), and the error is the refresh's, the answer and its connection left behind.
    refreshed = (store.name, status) == ("gcs", 401)
    if not refreshed:
        assert str(status) in error.message and isinstance(error.__cause__, store.status_cause)
    assert store.proxy.url not in error.message and (store.secret is None or store.secret not in str(error))
    assert store.requests == 1  # the SDK did not retry
    assert fetcher.fetch("k") == DATA
    assert store.connections == (2 if refreshed else 1)


@pytest.mark.parametrize(("fault", "options"), [("reset", {}), ("truncate", {"at_byte": 5_000})])
def test_a_broken_transfer_is_retryable(network_store: Store, fault: str, options: dict) -> None:
    store = network_store
    store.write("1/2/blob", DATA)
    fetcher = store.open(read_timeout=PATIENCE)
    store.proxy.inject(fault, **options)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch("blob")
    error = caught.value
    assert type(error) is FetchError and error.retryable
    assert error.key == "blob" and error.__cause__ is not None
    assert fetcher.fetch("blob") == DATA
    assert store.requests == 2


def test_a_stalled_answer_ends_at_the_read_timeout(network_store: Store) -> None:
    store = network_store
    store.write("1/2/k", DATA)
    # Long enough that a loaded machine still reads the later, healthy answer within it.
    fetcher = store.open(read_timeout=2.0)
    store.proxy.inject("stall", stall=60.0)  # the clock stays put: only the read timeout ends it
    with ThreadPoolExecutor(1) as aside:
        fetching = aside.submit(fetcher.fetch, "k")
        try:
            error = fetching.exception(timeout=PATIENCE)
        finally:
            store.clock.advance(60.0)  # lets a fetch the read timeout failed to end finish
    assert isinstance(error, FetchError) and error.retryable and "Timeout" in error.message
    assert store.requests == 1
    assert fetcher.fetch("k") == DATA


def test_an_answer_held_back_less_than_the_read_timeout_is_read(network_store: Store) -> None:
    store = network_store
    store.write("1/2/k", DATA)
    fetcher = store.open(read_timeout=3 * PATIENCE)
    store.proxy.inject("stall", stall=1.0)
    with ThreadPoolExecutor(1) as aside:
        fetching = aside.submit(fetcher.fetch, "k")
        wait_until(lambda: store.proxy.responses_seen == 1)
        store.clock.advance(1.0)
        assert fetching.result(timeout=PATIENCE) == DATA


def test_an_unreachable_endpoint_is_retryable_and_ends_a_batch_early(network_store: Store) -> None:
    assert network_store.open_unreachable is not None
    fetcher = network_store.open_unreachable()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch("k")
    error = caught.value
    assert error.retryable and error.store_wide and "cannot connect" in error.message
    assert is_connect_failure(error.__cause__)
    unusable = unavailable(fetcher)
    assert "cannot connect" in str(unusable) and unusable.cause.retryable


def test_a_denied_store_is_unavailable_to_reads_and_writes(network_store: Store) -> None:
    store = network_store
    fetcher = store.open()
    store.proxy.inject("status", 1000, status=403, retry_after=None)
    error = unavailable(fetcher)
    assert store.requests <= 12
    assert "HTTP 403" in str(error) and str(error).startswith(f"{fetcher.store_url}: store unavailable: ")
    with BatchUploader(fetcher, max_workers=4, retry=QUICK_RETRY) as uploader:
        with pytest.raises(StoreUnavailable) as writing:
            uploader.upload_all(blobs(20, size=10))
    assert "HTTP 403" in str(writing.value) and store.writes() == 0


def test_a_store_that_never_answers_is_unavailable_after_a_few_requests(network_store: Store) -> None:
    # It accepts connections and says nothing: each key would wait out its read timeout,
    # the run at most fetch_workers keys at a time.
    store = network_store
    fetcher = store.open(read_timeout=0.2)
    fetcher.exists("warm")  # GCS asks about its bucket once, before the store goes quiet
    before = store.requests
    store.proxy.inject("stall", 1000, stall=300)  # on the proxy's manual clock: never forwarded
    error = unavailable(fetcher)
    assert "nothing read within the read timeout" in str(error) and error.cause.store_wide
    assert store.requests - before <= 16  # the first keys' attempts, not the 200 keys'


# --- connections ------------------------------------------------------------------------------


def test_one_connection_serves_bodies_misses_and_error_statuses(network_store: Store) -> None:
    store = network_store
    data = {f"k{size}": os.urandom(size) for size in (10, 70_000, 900_000)}
    for key, body in data.items():
        store.write(f"1/2/{key}", body)
    fetcher = store.open()
    for _ in range(3):
        for key, body in data.items():
            assert fetcher.fetch(key) == body
        with pytest.raises(BlobNotFound):
            fetcher.fetch("absent")
        store.proxy.inject("status", status=503)
        with pytest.raises(FetchError):
            fetcher.fetch("k10")
    assert store.connections == 1


@pytest.mark.parametrize("pool", [32, 4])
def test_concurrent_fetches_share_a_pool_of_max_connections(
    network_store: Store, caplog: pytest.LogCaptureFixture, pool: int
) -> None:
    # 32 threads fetch 3 keys each; the first 32 answers are held until all 32 requests are
    # on the wire, so that every thread needs a connection at once. A pool of 4 is the control:
    # the same load overflows it, and urllib3 says so.
    store, threads = network_store, 32
    data = {f"k{i:03d}": os.urandom(16_384 + i) for i in range(3 * threads)}
    for key, body in data.items():
        store.write(f"1/2/{key}", body)
    keys = sorted(data)
    fetcher = store.open(max_connections=pool)
    caplog.set_level(logging.WARNING, logger="urllib3")
    store.proxy.inject("stall", threads, stall=1.0)
    with ThreadPoolExecutor(threads) as workers:
        shares = [workers.submit(lambda mine=keys[i::threads]: {key: fetcher.fetch(key) for key in mine})
                  for i in range(threads)]
        try:
            wait_until(lambda: store.proxy.responses_seen == threads)
        finally:
            store.clock.advance(1.0)
        fetched = {key: body for share in shares for key, body in share.result(timeout=PATIENCE).items()}
    assert fetched == data and store.requests == len(data)
    full = [record for record in caplog.records if "Connection pool is full" in record.getMessage()]
    if pool == threads:
        assert full == [] and store.connections == threads  # one each while all were held, then reused
    else:
        assert full and store.connections > pool


def test_close_releases_every_connection(network_store: Store) -> None:
    store = network_store
    store.write("1/2/k", DATA)
    fetcher = store.open()
    assert fetcher.fetch("k") == DATA
    assert connections_to(store.proxy.port) != []
    fetcher.close()
    assert connections_to(store.proxy.port) == []


# --- configuration ----------------------------------------------------------------------------


def test_the_pool_size_is_what_was_asked(store: Store) -> None:
    if store.proxy is None:
        assert store.open(max_connections=7).max_connections is None  # no pool, no limit
        return
    assert store.open().max_connections == 32
    assert store.open(max_connections=7).max_connections == 7


@pytest.mark.parametrize("options", [{"max_connections": 0}, {"connect_timeout": 0}, {"read_timeout": -1}])
def test_bad_configuration_is_refused(network_store: Store, options: dict) -> None:
    with pytest.raises(ValueError):
        network_store.open(**options)


def test_an_empty_bucket_or_usecase_name_is_refused(network_store: Store) -> None:
    assert network_store.open_named is not None
    with pytest.raises(ValueError):
        network_store.open_named("")


# --- writing ----------------------------------------------------------------------------------


def test_put_replaces_the_blob_with_one_request_and_exists_tells(store: Store) -> None:
    fetcher = store.open()
    assert fetcher.exists("new/deep/blob") is False and fetcher.stat("new/deep/blob") is None
    writes = store.writes() if store.proxy is not None else 0
    fetcher.put("new/deep/blob", b"first", "image/png")
    fetcher.put("new/deep/blob", b"second", "image/png")
    assert fetcher.fetch("new/deep/blob") == b"second"
    size = fetcher.stat("new/deep/blob").size
    assert fetcher.exists("new/deep/blob") and size == (len(b"second") if store.tells_size else None)
    if store.content_type is not None:
        assert store.content_type("1/2/new/deep/blob") == "image/png"
    if store.proxy is not None:
        assert store.writes() - writes == 2


def test_a_batch_upload_writes_each_blob_once_and_reads_back(store: Store) -> None:
    data = blobs(6)
    fetcher = store.open(max_connections=4)
    with BatchUploader(fetcher, max_workers=4) as uploader:
        first = uploader.upload_all(data, content_type="image/png", verify=True)
        second = uploader.upload_all(data, content_type="image/png", verify=True)
    assert sorted(first.written) == sorted(data) and not first.errors
    assert second.written == [] and sorted(second.skipped) == sorted(data)
    assert all(fetcher.exists(key) for key in data) and not fetcher.exists("absent")
    with BatchPrefetcher(fetcher, max_workers=4, verify=True) as prefetcher:
        assert prefetcher.fetch_all(data).blobs == data
    if store.proxy is not None:
        assert store.writes() == len(data)


def test_a_throttled_write_is_retried(network_store: Store) -> None:
    if network_store.fail_writes is None:
        pytest.skip(f"{network_store.name}: its server fails no write, and a proxy cannot answer for a body")
    network_store.fail_writes(2)
    data = blobs(5)
    with BatchUploader(network_store.open(max_connections=4), max_workers=4, retry=QUICK_RETRY) as uploader:
        result = uploader.upload_all(data)
    assert sorted(result.written) == sorted(data) and result.stats.retries == 2


# --- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "options"), [
    ("status", {"status": 503, "retry_after": "0"}),
    ("status", {"status": 429, "retry_after": "0"}),
    ("status", {"status": 500, "retry_after": None}),
    ("reset", {}),
    ("truncate", {"at_byte": 1_000}),
    ("stall", {"stall": 60.0}),  # the clock stays put: the read timeout ends each
], ids=["503", "429", "500", "reset", "truncate", "stall"])
def test_a_batch_recovers_from_transient_faults(network_store: Store, fault: str, options: dict) -> None:
    store = network_store
    data = written(store, 12, size=20_000)
    fetcher = store.open(max_connections=4, read_timeout=2)
    store.proxy.inject(fault, 3, **options)
    with quick_batch(fetcher) as batch:
        result = batch.fetch_all([*data, MISSING, *data])
    assert result.blobs == data
    assert set(result.errors) == {MISSING} and isinstance(result.errors[MISSING], BlobNotFound)
    assert result.stats.retries == 3
    assert result.stats.fetches_issued == len(data) + 1 + 3
    assert store.requests == result.stats.fetches_issued + store.first_miss_requests - 1


def test_permanent_and_exhausted_errors_keep_their_class(network_store: Store) -> None:
    store = network_store
    data = written(store, 6)
    denied, *rest = data
    fetcher = store.open(max_connections=4)
    store.proxy.inject("status", status=403, retry_after=None)  # the first request: one worker goes in order
    with quick_batch(fetcher, workers=1) as batch:
        result = batch.fetch_all(data)
    assert type(result.errors[denied]) is FetchError and not result.errors[denied].retryable
    assert result.blobs == {key: data[key] for key in rest}
    assert store.requests == len(data)  # the denied key was not retried

    store.proxy.inject("status", 100, status=503, retry_after="0")
    with quick_batch(fetcher) as batch:
        result = batch.fetch_all([rest[0]])
    store.proxy.clear_faults()
    assert result.errors[rest[0]].retryable and result.errors[rest[0]].throttled
    assert store.requests == len(data) + QUICK_RETRY.max_throttled_attempts


def test_a_corrupt_body_is_retried_once_then_an_integrity_error(network_store: Store) -> None:
    store = network_store
    data = written(store, 2, size=20_000)
    healed, broken = data
    fetcher = store.open(max_connections=4)
    store.proxy.inject("corrupt", at_byte=10_000)  # the first request: one worker goes in order
    with quick_batch(fetcher, workers=1) as batch:
        assert batch.fetch_all([healed]).blobs == {healed: data[healed]}
        store.proxy.inject("corrupt", 10, at_byte=10_000)
        result = batch.fetch_all([broken])
    assert isinstance(result.errors[broken], IntegrityError) and not result.blobs
    assert store.requests == 2 + 2


@pytest.mark.parametrize(("burst", "status"), [(20, 503), (60, 429)])
def test_a_burst_of_throttling_at_the_start_costs_no_image(network_store: Store, burst: int, status: int) -> None:
    store = network_store
    data = written(store, 300, size=500)
    store.proxy.inject("status", burst, status=status, retry_after="1")
    with BatchPrefetcher(store.open(max_connections=32), max_workers=32, verify=True) as batch:
        result = batch.fetch_all(data)
    assert result.blobs == data and not result.errors
    assert result.stats.retries == burst


def test_a_store_that_stays_throttled_ends_the_batch_within_the_budget(network_store: Store) -> None:
    store = network_store
    data = written(store, 50, size=100)
    store.proxy.inject("status", 100_000, status=503, retry_after="0")
    with BatchPrefetcher(store.open(max_connections=8), max_workers=8, retry=QUICK_RETRY) as batch:
        result = batch.fetch_all(data)
    store.proxy.clear_faults()
    assert set(result.errors) == set(data) and all(error.throttled for error in result.errors.values())
    assert store.requests == len(data) + result.stats.retries <= len(data) + 500 // 5
