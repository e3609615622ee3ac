"""Helpers the fetchers tests share: blob contents, a port nothing listens on, what a test may
leave behind, quick retries and the `StoreUnavailable` of a batch, and `Store`, one backend's
store as the contract tests see it."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from fetchers import BatchPrefetcher, BlobFetcher, ClosableFetcher, RetryPolicy, StoreUnavailable
from fetchers.backends.objectstore import ObjectstoreFetcher
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, ObjectstoreServer
from testing.proxy import LatencyProxy, ManualClock
from testing.waiting import PATIENCE


def blobs(count: int, size: int = 2_000) -> dict[str, bytes]:
    """``count`` random blobs of ``size`` bytes, by the sha256 hex of their content."""
    contents = [os.urandom(size) for _ in range(count)]
    return {hashlib.sha256(data).hexdigest(): data for data in contents}


def closed_port() -> int:
    """A local TCP port nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connections_to(port: int) -> list:
    """This process's TCP sockets to ``port`` (open, in any state but closed)."""
    return [c for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port]


def threads_left(before: set[threading.Thread]) -> list[str]:
    """The names of the threads started since ``before`` that are still running once each was
    given until `PATIENCE` has passed to end."""
    deadline = time.monotonic() + PATIENCE
    for thread in set(threading.enumerate()) - before:
        while True:
            try:
                thread.join(max(0.0, deadline - time.monotonic()))
                break
            except RuntimeError:  # listed while still being started: join refuses it yet
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
    return [thread.name for thread in set(threading.enumerate()) - before]


def runner_threads() -> list[str]:
    """The names of the batch machinery's threads still running."""
    return [t.name for t in threading.enumerate() if t.name.startswith("snapcompare-")]


QUICK_RETRY = RetryPolicy(max_attempts=4, base_backoff=0.01, max_backoff=0.05, max_retry_after=2)
"""Retries that cost a test little time."""

FAST_RETRY = RetryPolicy(max_attempts=4, base_backoff=0.0, max_backoff=0.0)
"""Retries with no backoff at all, for fakes that fail on purpose."""


def unavailable(store: BlobFetcher) -> StoreUnavailable:
    """The `StoreUnavailable` a batch of 200 keys over ``store`` ends in."""
    with BatchPrefetcher(store, max_workers=16, retry=QUICK_RETRY) as batch:
        with pytest.raises(StoreUnavailable) as info:
            batch.fetch_all(list(blobs(200, size=10)))
    return info.value


@dataclass
class Store:
    """One backend's store, as the contract tests use it.

    ``open(prefix="1/2", **options)`` builds a fetcher over the store (closed after the test);
    ``write(path, data)`` stores an object at its full path (prefix included) without going
    through a fetcher. A network store sits behind ``proxy``, on ``clock``: every request a
    fetcher makes goes through it, and a stalled answer waits until the test moves the clock.
    The rest says what the backend keeps and how it answers, where backends differ.
    """

    name: str
    open: Callable[..., ClosableFetcher]
    write: Callable[[str, bytes], None]
    proxy: LatencyProxy | None = None
    clock: ManualClock | None = None
    content_type: Callable[[str], str | None] | None = None
    """The content type stored with an object (its full path); None: the store keeps none."""
    write_method: str = "PUT"
    """The HTTP method of a write."""
    reports_retry_after: bool = True
    """Whether a ``Retry-After`` reaches the error (objectstore's client drops the headers)."""
    tells_size: bool = True
    """Whether ``stat`` tells an object's size (objectstore's server sends none)."""
    first_miss_requests: int = 1
    """Requests the first missing key costs (GCS also asks whether the bucket exists)."""
    open_named: Callable[[str], ClosableFetcher] | None = None
    """A fetcher of the bucket (objectstore: the usecase) of that name, behind the proxy."""
    open_unreachable: Callable[[], ClosableFetcher] | None = None
    """A fetcher of an endpoint nothing listens on."""
    fail_writes: Callable[[int], None] | None = None
    """Make the server answer the next writes 503; None: the server cannot (a proxy's canned
    answer cannot stand in for a request with a body)."""
    missing_cause: type[BaseException] | None = None
    """What a `BlobNotFound` is chained to; None: nothing (the client returns no object)."""
    status_cause: type[BaseException] = BaseException
    """What the error of an error status is chained to: the client's exception for it."""
    secret: str | None = None
    """The credential the fetchers send, which no error may show."""

    @property
    def requests(self) -> int:
        """Requests the store's fetchers have sent."""
        assert self.proxy is not None, f"{self.name} is not a network store"
        return self.proxy.requests_seen

    @property
    def connections(self) -> int:
        """Connections the store's fetchers have opened."""
        assert self.proxy is not None, f"{self.name} is not a network store"
        return self.proxy.connections_accepted

    def writes(self) -> int:
        """Writes the store's fetchers have sent."""
        assert self.proxy is not None, f"{self.name} is not a network store"
        return self.proxy.requests_by_method(self.write_method)


OBJECTSTORE_PREFIX = "1/2"
"""Sentry's layout: {org}/{project}/{sha256} under scopes org=1, project=2."""


@contextmanager
def objectstore_fetchers(server: ObjectstoreServer, read_timeout: float) -> Iterator[Callable[..., ObjectstoreFetcher]]:
    """A factory of fetchers on ``server`` (Sentry's scopes and prefix unless told otherwise);
    on leaving, its faults are released and disarmed and every fetcher it made is closed."""
    made: list[ObjectstoreFetcher] = []

    def make(**options: Any) -> ObjectstoreFetcher:
        options.setdefault("scopes", DEFAULT_SCOPES)
        options.setdefault("prefix", OBJECTSTORE_PREFIX)
        options.setdefault("read_timeout", read_timeout)
        fetcher = ObjectstoreFetcher.connect(server.url, DEFAULT_USECASE, **options)
        made.append(fetcher)
        return fetcher

    server.faults.clear()
    try:
        yield make
    finally:
        server.faults.release()
        server.faults.clear()
        for fetcher in made:
            fetcher.close()
