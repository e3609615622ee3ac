"""Fixtures of the fetchers tests: each backend's store as a `helpers.Store` (``local_store``,
``s3_store``, ``gcs_store``, ``objectstore_store``), and ``store``, ``network_store`` and
``bucket_store``, which run a test once per backend of their kind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from google.api_core.exceptions import GoogleAPICallError, NotFound
from objectstore_client import RequestError

from fetchers import ClosableFetcher, LocalFetcher
from fetchers.backends.gcs import GCSFetcher
from fetchers.backends.objectstore import ObjectstoreFetcher
from testing.gcs import STORAGE_EMULATOR_HOST
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE
from testing.proxy import LatencyProxy, ManualClock
from testing.s3 import CREDENTIALS

from .helpers import Store, closed_port, threads_left

Opened = Callable[[ClosableFetcher], ClosableFetcher]


@pytest.fixture
def opened() -> Iterator[Opened]:
    """``opened(fetcher)`` closes ``fetcher`` after the test; then no thread started since the
    first fetcher was opened (an SDK's background lookups, a server's connection handlers) may
    still run."""
    before: set[threading.Thread] = set()
    fetchers: list[ClosableFetcher] = []

    def keep(fetcher: ClosableFetcher) -> ClosableFetcher:
        if not fetchers:
            before.update(threading.enumerate())
        fetchers.append(fetcher)
        return fetcher

    yield keep
    for fetcher in fetchers:
        fetcher.close()
    if fetchers:
        assert threads_left(before) == []


def _proxy(latency_proxy: Callable[..., LatencyProxy], url: str, clock: ManualClock) -> LatencyProxy:
    """A proxy on ``clock`` in front of the server at ``url`` (``http://host:port``)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return latency_proxy(host, int(port), clock=clock)


@pytest.fixture
def local_store(opened: Opened, tmp_path: Path) -> Store:
    root = tmp_path / "store"

    def open_store(prefix: str = "1/2", **options: Any) -> ClosableFetcher:
        return opened(LocalFetcher.from_path(root.joinpath(prefix.strip("/")), create=True, **options))

    def write(path: str, data: bytes) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)

    return Store("local", open_store, write, missing_cause=FileNotFoundError)


@pytest.fixture
def s3_store(opened: Opened, s3_server, s3_bucket: str, s3_fetcher_factory, latency_proxy) -> Store:
    clock = ManualClock()
    proxy = _proxy(latency_proxy, s3_server.endpoint_url, clock)

    def open_store(prefix: str = "1/2", *, bucket: str = s3_bucket, **options: Any) -> ClosableFetcher:
        return opened(s3_fetcher_factory(bucket, prefix=prefix, endpoint_url=proxy.url, **options))

    def unreachable() -> ClosableFetcher:
        endpoint = f"http://127.0.0.1:{closed_port()}"
        return opened(s3_fetcher_factory("bucket", endpoint_url=endpoint, connect_timeout=1.0))

    def fail_writes(count: int) -> None:
        s3_server.faults.set("slowdown", count=count, method="PUT", retry_after="0")

    return Store(
        "s3", open_store, lambda path, data: s3_server.put_object(s3_bucket, path, data), proxy, clock,
        content_type=lambda path: s3_server.content_type(s3_bucket, path),
        open_named=lambda name: open_store(bucket=name), open_unreachable=unreachable,
        fail_writes=fail_writes, missing_cause=ClientError, status_cause=ClientError,
        secret=CREDENTIALS["aws_secret_access_key"],
    )


@pytest.fixture
def gcs_store(opened: Opened, gcs_server, gcs_bucket: str, latency_proxy,
              monkeypatch: pytest.MonkeyPatch) -> Store:
    clock = ManualClock()
    proxy = _proxy(latency_proxy, gcs_server.url, clock)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)

    def open_store(prefix: str = "1/2", *, bucket: str = gcs_bucket, **options: Any) -> ClosableFetcher:
        return opened(GCSFetcher(bucket, prefix=prefix, **options))

    def unreachable() -> ClosableFetcher:
        with monkeypatch.context() as patch:  # the endpoint is read as the client is made
            patch.setenv(STORAGE_EMULATOR_HOST, f"http://127.0.0.1:{closed_port()}")
            return opened(GCSFetcher("bucket", connect_timeout=1.0))

    return Store(
        "gcs", open_store, lambda path, data: gcs_server.upload(gcs_bucket, path, data), proxy, clock,
        content_type=lambda path: gcs_server.content_type(gcs_bucket, path), write_method="POST",
        first_miss_requests=2,
        open_named=lambda name: open_store(bucket=name), open_unreachable=unreachable, missing_cause=NotFound,
        status_cause=GoogleAPICallError,
    )


@pytest.fixture
def objectstore_store(opened: Opened, objectstore_server, latency_proxy) -> Iterator[Store]:
    clock = ManualClock()
    proxy = _proxy(latency_proxy, objectstore_server.url, clock)

    def open_store(prefix: str = "1/2", *, url: str = proxy.url, usecase: str = DEFAULT_USECASE,
                   **options: Any) -> ClosableFetcher:
        # One request a key, as the contract has it; batch requests have tests of their own.
        options.setdefault("batch", False)
        return opened(ObjectstoreFetcher.connect(url, usecase, scopes=DEFAULT_SCOPES, prefix=prefix, **options))

    def fail_writes(count: int) -> None:
        objectstore_server.faults.inject(503, times=count, method="PUT", retry_after="0")

    objectstore_server.faults.clear()
    yield Store(
        "objectstore", open_store,
        lambda path, data: objectstore_server.put(path, data, compress="none"), proxy, clock,
        content_type=objectstore_server.content_type, reports_retry_after=False, tells_size=False,
        open_named=lambda name: open_store(usecase=name),
        open_unreachable=lambda: open_store(url=f"http://127.0.0.1:{closed_port()}", connect_timeout=1.0),
        fail_writes=fail_writes, status_cause=RequestError,
    )
    objectstore_server.faults.clear()


@pytest.fixture(params=["local", "s3", "gcs", "objectstore"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each backend's store in turn."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=["s3", "gcs", "objectstore"])
def network_store(request: pytest.FixtureRequest) -> Store:
    """Each network backend's store in turn, behind its proxy."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=["s3", "gcs"])
def bucket_store(request: pytest.FixtureRequest) -> Store:
    """Each store whose fetchers name a bucket, which may not exist."""
    return request.getfixturevalue(f"{request.param}_store")
