"""GCSFetcher against fake-gcs-server over real sockets, with faults injected by a TCP proxy."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from fetchers import BlobFetcher, BlobNotFound, FetchError, IntegrityError
from fetchers.backends.gcs import GCSFetcher
from testing.gcs import STORAGE_EMULATOR_HOST, GCSServer
from testing.proxy import LatencyProxy

pytestmark = pytest.mark.integration

BLOB = os.urandom(200_000)


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Fail a test after which a thread it started (the SDK has background ones) still runs."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - before == set()


def proxy_in_front(
    gcs_server: GCSServer, latency_proxy, monkeypatch: pytest.MonkeyPatch, **options
) -> LatencyProxy:
    """A proxy in front of the emulator, with ``STORAGE_EMULATOR_HOST`` pointing at the proxy."""
    proxy = latency_proxy(gcs_server.host, gcs_server.port, **options)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    return proxy


@pytest.fixture
def via_proxy(gcs_server: GCSServer, latency_proxy, monkeypatch: pytest.MonkeyPatch) -> LatencyProxy:
    return proxy_in_front(gcs_server, latency_proxy, monkeypatch)


@pytest.fixture
def blob(gcs_server: GCSServer, gcs_bucket: str) -> str:
    """The name of a 200 kB object in ``gcs_bucket`` holding `BLOB`."""
    gcs_server.upload(gcs_bucket, "blob", BLOB)
    return "blob"


@pytest.mark.parametrize("size", [0, 1, 65_537, 1_000_000])
def test_fetch_returns_the_object_bytes(gcs_emulator: GCSServer, gcs_bucket: str, size: int) -> None:
    data = os.urandom(size)
    key = hashlib.sha256(data).hexdigest()
    gcs_emulator.upload(gcs_bucket, key, data)
    with GCSFetcher(gcs_bucket) as fetcher:
        assert fetcher.fetch(key) == data


def test_is_a_blob_fetcher_exposing_its_pool_size(gcs_emulator: GCSServer, gcs_bucket: str) -> None:
    with GCSFetcher(gcs_bucket, max_connections=7) as fetcher:
        assert isinstance(fetcher, BlobFetcher)
        assert fetcher.max_connections == 7


@pytest.mark.parametrize("prefix", ["1/2", "/1/2/"])
def test_prefix_is_joined_with_a_slash(gcs_emulator: GCSServer, gcs_bucket: str, prefix: str) -> None:
    gcs_emulator.upload(gcs_bucket, "1/2/k", b"under the prefix")
    gcs_emulator.upload(gcs_bucket, "1/2/a/b", b"nested")
    gcs_emulator.upload(gcs_bucket, "k", b"at the root")
    with GCSFetcher(gcs_bucket, prefix=prefix) as fetcher:
        assert fetcher.fetch("k") == b"under the prefix"
        assert fetcher.fetch("a/b") == b"nested"


def test_missing_object_is_blob_not_found(gcs_emulator: GCSServer, gcs_bucket: str) -> None:
    with GCSFetcher(gcs_bucket, prefix="p") as fetcher:
        with pytest.raises(BlobNotFound) as caught:
            fetcher.fetch("absent")
    assert caught.value.key == "absent"
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, api_exceptions.NotFound)


def test_missing_bucket_is_a_store_wide_error_not_a_missing_blob(gcs_emulator: GCSServer) -> None:
    with GCSFetcher("no-such-bucket", prefix="1/2") as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch("k")
    assert not isinstance(caught.value, BlobNotFound)
    assert caught.value.store_wide and not caught.value.retryable
    assert str(caught.value).startswith("gs://no-such-bucket/1/2: 'k': ")


@pytest.mark.parametrize(
    "key", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "a\\b", "a\x00b", "a\nb"]
)
def test_invalid_key_is_rejected_without_a_request(
    via_proxy: LatencyProxy, gcs_bucket: str, key: str
) -> None:
    with GCSFetcher(gcs_bucket) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(key)
    assert type(caught.value) is FetchError
    assert not caught.value.retryable
    assert via_proxy.requests_seen == 0


def test_each_fetch_is_one_request_and_nothing_else(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str
) -> None:
    with GCSFetcher(gcs_bucket) as fetcher:
        assert fetcher.fetch(blob) == BLOB
        with pytest.raises(BlobNotFound):
            fetcher.fetch("absent")  # and one bucket metadata GET: the bucket is there
        with pytest.raises(BlobNotFound):
            fetcher.fetch("absent-too")  # the bucket is known now
        assert fetcher.fetch(blob) == BLOB
        time.sleep(0.2)  # room for any background request the SDK might start
    assert via_proxy.requests_seen == 5
    assert via_proxy.connections_accepted == 1


def test_a_client_given_is_used_as_it_is(
    gcs_server: GCSServer, latency_proxy, gcs_bucket: str, blob: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": proxy.url},
    )
    with client:
        with GCSFetcher(gcs_bucket, client=client) as fetcher:
            assert fetcher.fetch(blob) == BLOB
        assert fetcher.fetch(blob) == BLOB  # closing the fetcher left the given client open
    assert proxy.requests_seen == 2


@pytest.mark.parametrize(
    ("fault", "options", "error_type"),
    [
        ("reset", {}, FetchError),
        ("truncate", {"at_byte": 5_000}, FetchError),
        ("corrupt", {"at_byte": 100_000}, IntegrityError),
    ],
)
def test_broken_transfer_is_retryable(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str, fault: str, options: dict, error_type: type
) -> None:
    with GCSFetcher(gcs_bucket, read_timeout=5.0) as fetcher:
        via_proxy.inject(fault, **options)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(blob)
        assert type(caught.value) is error_type
        assert caught.value.retryable
        assert caught.value.key == blob
        assert caught.value.__cause__ is not None
        assert fetcher.fetch(blob) == BLOB  # the SDK did not retry; the next call works
    assert via_proxy.requests_seen == 2


def test_stalled_response_times_out_as_retryable(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str
) -> None:
    with GCSFetcher(gcs_bucket, read_timeout=0.3) as fetcher:
        via_proxy.inject("stall", stall=5.0)
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(blob)
        assert time.monotonic() - started < 4.0  # the 0.3 s read timeout, not the 5 s stall
        assert caught.value.retryable
        assert fetcher.fetch(blob) == BLOB


@pytest.mark.parametrize(
    ("fault", "options", "retryable", "retry_after"),
    [
        ("http503", {}, True, 1.0),
        ("status", {"status": 429, "retry_after": "7"}, True, 7.0),
        ("status", {"status": 500, "retry_after": None}, True, None),
        ("status", {"status": 403, "retry_after": None}, False, None),
    ],
)
def test_error_status_maps_to_retryable_and_retry_after(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str, fault: str, options: dict, retryable: bool,
    retry_after: float | None,
) -> None:
    with GCSFetcher(gcs_bucket) as fetcher:
        via_proxy.inject(fault, **options)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(blob)
        error = caught.value
        assert type(error) is FetchError
        assert (error.retryable, error.retry_after) == (retryable, retry_after)
        assert isinstance(error.__cause__, api_exceptions.GoogleAPICallError)
        assert via_proxy.url not in str(error)
        assert via_proxy.requests_seen == 1  # no retry of the SDK's own
        assert fetcher.fetch(blob) == BLOB
    assert via_proxy.connections_accepted == 1  # an error status keeps the connection


def test_unauthorized_is_not_retryable(via_proxy: LatencyProxy, gcs_bucket: str, blob: str) -> None:
    with GCSFetcher(gcs_bucket) as fetcher:
        via_proxy.inject("status", status=401, retry_after=None)
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(blob)
        assert type(caught.value) is FetchError
        assert not caught.value.retryable
        # On a 401 the SDK's session refreshes its credentials, which anonymous ones refuse.
        assert isinstance(caught.value.__cause__, auth_exceptions.GoogleAuthError)
        assert via_proxy.requests_seen == 1
        assert fetcher.fetch(blob) == BLOB


def test_concurrent_fetches_share_a_pool_of_max_connections(
    gcs_server: GCSServer, latency_proxy, monkeypatch: pytest.MonkeyPatch, gcs_bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = proxy_in_front(gcs_server, latency_proxy, monkeypatch, rtt=0.02)
    blobs = {f"k{i}": os.urandom(20_000 + i) for i in range(96)}
    for key, data in blobs.items():
        gcs_server.upload(gcs_bucket, key, data)
    threads = 32
    start = threading.Barrier(threads)

    def fetch_share(worker: int) -> dict[str, bytes]:
        start.wait(timeout=10)
        return {key: fetcher.fetch(key) for key in list(blobs)[worker::threads]}

    caplog.set_level(logging.WARNING, logger="urllib3")
    with GCSFetcher(gcs_bucket, max_connections=threads) as fetcher:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(fetch_share, range(threads), timeout=30))
    fetched = {key: data for result in results for key, data in result.items()}
    assert fetched == blobs
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert 1 < proxy.connections_accepted <= threads
    assert proxy.requests_seen == len(blobs)


@pytest.mark.parametrize(
    "options",
    [{"max_connections": 0}, {"connect_timeout": 0}, {"read_timeout": -1}],
)
def test_bad_configuration_is_refused(gcs_emulator: GCSServer, options: dict) -> None:
    with pytest.raises(ValueError):
        GCSFetcher("bucket", **options)


def test_empty_bucket_name_is_refused(gcs_emulator: GCSServer) -> None:
    with pytest.raises(ValueError):
        GCSFetcher("")
