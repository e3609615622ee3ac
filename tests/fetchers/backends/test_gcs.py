"""GCSFetcher against fake-gcs-server over real sockets, with faults injected by a TCP proxy: what
only GCS does, its SDK's own requests, threads and checks; what every store does is in
``test_contract``."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from requests.adapters import DEFAULT_POOLSIZE

from fetchers import BatchPrefetcher, BlobNotFound, FetchError, IntegrityError, WriteError
from fetchers.backends import UnsupportedSDK
from fetchers.backends.gcs import GCSFetcher, _store_error
from testing.gcs import STORAGE_EMULATOR_HOST, GCSServer
from testing.proxy import LatencyProxy

from ..helpers import threads_left

pytestmark = pytest.mark.integration

BLOB = os.urandom(200_000)


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail a test after which a thread it started (the SDK has background ones) still runs."""
    before = set(threading.enumerate())
    yield
    assert threads_left(before) == []


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


def test_each_fetch_is_one_request_and_nothing_else(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str
) -> None:
    before = set(threading.enumerate())
    with GCSFetcher(gcs_bucket) as fetcher:
        assert fetcher.fetch(blob) == BLOB
        with pytest.raises(BlobNotFound):
            fetcher.fetch("absent")  # and one bucket metadata GET: the bucket is there
        with pytest.raises(BlobNotFound):
            fetcher.fetch("absent-too")  # the bucket is known now
        assert fetcher.fetch(blob) == BLOB
        # A request of the SDK's own would run on a thread of its own: none runs now, and one
        # that has ended has had its request counted below.
        assert set(threading.enumerate()) - before == set()
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
            assert fetcher.max_connections == DEFAULT_POOLSIZE  # the client's pool, read back
            assert fetcher.fetch(blob) == BLOB
        assert fetcher.fetch(blob) == BLOB  # closing the fetcher left the given client open
        with pytest.raises(ValueError, match="exceeds the store's connection pool"):
            BatchPrefetcher(fetcher, max_workers=DEFAULT_POOLSIZE + 1)
    assert proxy.requests_seen == 2


def test_a_corrupt_body_is_an_integrity_error_of_its_own(
    via_proxy: LatencyProxy, gcs_bucket: str, blob: str
) -> None:
    with GCSFetcher(gcs_bucket, read_timeout=5.0) as fetcher:
        via_proxy.inject("corrupt", at_byte=100_000)
        with pytest.raises(IntegrityError) as caught:  # the SDK checks the object's checksum
            fetcher.fetch(blob)
        assert caught.value.retryable and caught.value.key == blob
        assert isinstance(caught.value.__cause__, DataCorruption)
        assert fetcher.fetch(blob) == BLOB
    assert via_proxy.requests_seen == 2


def test_a_put_past_the_sdks_multipart_threshold_is_still_one_request(
    via_proxy: LatencyProxy, gcs_server: GCSServer, gcs_bucket: str
) -> None:
    data = os.urandom(9 * 1024 * 1024)  # the SDK's public uploads go resumable past 8 MiB
    with GCSFetcher(gcs_bucket) as fetcher:
        fetcher.put("big", data, "image/png")
        assert (via_proxy.requests_seen, via_proxy.requests_by_method("POST")) == (1, 1)
        assert fetcher.fetch("big") == data
    assert gcs_server.content_type(gcs_bucket, "big") == "image/png"


def test_a_bucket_name_gcs_refuses_closes_the_client_made_for_it(
    gcs_emulator: GCSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[storage.Client] = []
    close = storage.Client.close

    def recorded_close(self: storage.Client) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(storage.Client, "close", recorded_close)
    with pytest.raises(ValueError, match="Bucket names"):
        GCSFetcher("-bad-")
    assert len(closed) == 1


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


def test_a_client_without_bucket_metadata_cache_is_refused_by_name(
    gcs_emulator: GCSServer, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = storage.Client.__init__

    def without_cache(self: storage.Client, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        del self._bucket_metadata_cache

    monkeypatch.setattr(storage.Client, "__init__", without_cache)
    with pytest.raises(UnsupportedSDK, match=r"^google-cloud-storage \S+ is not supported: "
                                             r"Client\._bucket_metadata_cache is missing; "
                                             r"install google-cloud-storage>=3\.11,<4$"):
        GCSFetcher(gcs_bucket)


def test_a_client_whose_http_session_changed_is_refused_by_name(
    gcs_emulator: GCSServer, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.Client, "_http", property(lambda self: object()))
    with pytest.raises(UnsupportedSDK, match=r"Client\._http is of type object, not AuthorizedSession; "
                                             r"install google-cloud-storage>=3\.11,<4$"):
        GCSFetcher(gcs_bucket)


def test_a_bucket_check_answered_503_is_asked_again(gcs_server, via_proxy):
    # The fault is armed as the first bucket metadata GET is sent (the bucket's own method,
    # wrapped: a proxy cannot tell it from the object GET before it).
    with GCSFetcher(f"missing-{os.urandom(4).hex()}") as fetcher:
        exists, calls = fetcher._bucket.exists, []

        def failing_first(**kwargs):
            calls.append(1)
            if len(calls) == 1:
                via_proxy.inject("status", status=503, retry_after=None)
            return exists(**kwargs)

        fetcher._bucket.exists = failing_first
        with pytest.raises(BlobNotFound):  # the bucket could not be told missing: the key's own 404
            fetcher.fetch("a")
        for key in ("b", "c"):
            with pytest.raises(FetchError) as caught:
                fetcher.fetch(key)
            assert caught.value.store_wide and "bucket does not exist" in caught.value.message
    assert len(calls) == 2


def test_over_a_client_certificate_the_sdks_pool_is_not_taken_for_one_sized_here(tmp_path, monkeypatch):
    # Where google-auth mounts its client-certificate adapter (its pool of 10) on https://, the
    # fetcher does not say its pool is 10, which would refuse compare's 32 fetch workers, nor 32.
    credentials = tmp_path / "adc.json"
    credentials.write_text(json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y",
                                       "refresh_token": "z", "quota_project_id": "p"}))
    monkeypatch.delenv(STORAGE_EMULATOR_HOST, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))

    def configure_mtls_channel(self, client_cert_callback=None):  # as google-auth does with a certificate
        self._is_mtls = True
        self.mount("https://", requests.adapters.HTTPAdapter())

    monkeypatch.setattr(AuthorizedSession, "configure_mtls_channel", configure_mtls_channel)
    with GCSFetcher("some-bucket", project="p") as fetcher:
        assert fetcher._client._http.is_mtls and fetcher.max_connections is None
        with BatchPrefetcher(fetcher, max_workers=32):
            pass


def test_a_write_answered_503_is_a_retryable_write_error() -> None:
    # What the SDK raises for a 503, as the fetcher words it (a proxy cannot answer a write for
    # the fake server: the rest of the request's body would reach the server as a request).
    error = _store_error("k", api_exceptions.ServiceUnavailable("upload refused"), WriteError)
    assert type(error) is WriteError and error.retryable and error.throttled and "HTTP 503" in error.message
