"""Concurrent, deduplicated, bounded, retrying retrieval over any thread-safe `BlobFetcher`."""

from __future__ import annotations

import hashlib
import queue
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import FetchError, IntegrityError
from .keys import is_sha256_hex
from .protocol import BlobFetcher, connection_limit
from .retry import RetryBudget, RetryPolicy

_END = object()


@dataclass
class BatchStats:
    """What one `fetch_all` or `iter_fetch` call did.

    ``fetches_issued`` counts calls to the fetcher (first attempts and retries) made for this
    call; a key that joined a fetch already in flight for another call (``shared``) issues
    none. ``peak_in_flight`` is the most fetches this prefetcher had running at once while
    the call's own fetches ran.
    """

    keys_requested: int = 0
    unique_keys: int = 0
    fetches_issued: int = 0
    retries: int = 0
    shared: int = 0
    bytes_fetched: int = 0
    errors: int = 0
    wall_time: float = 0.0
    peak_in_flight: int = 0


@dataclass
class BatchResult:
    """The outcome of `BatchPrefetcher.fetch_all`: every unique key is in exactly one map."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, FetchError] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)


class _Flight:
    """One fetch of one key, shared by every caller that asks for the key while it runs.

    ``stop`` is set when nobody wants the result any more (its last holder left, or the
    prefetcher closed): the fetch then makes no further attempt and cuts its retry wait short.
    """

    __slots__ = ("future", "holders", "stop")

    def __init__(self, future: Future, stop: threading.Event) -> None:
        self.future = future
        self.holders = 1
        self.stop = stop


class BatchPrefetcher:
    """Fetches batches of keys through one fetcher with a fixed set of worker threads.

    - Each unique key is fetched once per call, however often it is given; callers in other
      threads asking for the same key at the same time share that one fetch (single flight).
    - At most ``max_workers`` fetches are in flight. The workers live as long as the
      prefetcher, so consecutive batches reuse them and their connections.
    - Only retryable errors are retried, per ``retry`` (full-jitter backoff, ``Retry-After``
      honoured) and within ``budget``, shared by all calls of this prefetcher.
    - ``verify=True`` treats keys as the sha256 hex of their content and reports a body that
      does not match as an `IntegrityError` (retried per the policy).
    - `iter_fetch` keeps at most ``max_pending`` keys and about ``max_pending_bytes`` bytes
      fetched or in flight ahead of its consumer.
    - `close` (or leaving the ``with`` block) cancels pending fetches, wakes retry waits and
      joins every worker. A failure of one key never cancels or hides another's.
    """

    def __init__(
        self,
        fetcher: BlobFetcher,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        verify: bool = False,
        max_pending: int | None = None,
        max_pending_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if not isinstance(fetcher, BlobFetcher):
            raise TypeError(f"{fetcher!r} has no fetch(key) method")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        pool = connection_limit(fetcher)
        if pool is not None and pool < max_workers:
            raise ValueError(
                f"max_workers={max_workers} exceeds the fetcher's connection pool "
                f"(max_connections={pool}): size the pool to at least the concurrency"
            )
        self.fetcher = fetcher
        self.max_workers = max_workers
        self.retry = retry or RetryPolicy()
        self.budget = budget or RetryBudget()
        self.verify = verify
        self.max_pending = max_pending or 4 * max_workers
        self.max_pending_bytes = max_pending_bytes
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closed = threading.Event()
        self._in_flight = 0
        self._rng = random.Random()

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel pending fetches, interrupt retry waits and join the workers. Idempotent.

        A request already on the wire cannot be interrupted: close waits for it to end, which
        the fetcher's own timeouts bound, so that no worker or open response outlives it.
        """
        self._closed.set()
        with self._lock:
            executor, self._executor = self._executor, None
            for flight in self._flights.values():
                flight.stop.set()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def fetch_all(self, keys: Iterable[str]) -> BatchResult:
        """Fetch every unique key; return blobs and errors. Never raises a fetch error."""
        result = BatchResult()
        for key, value in self._stream(keys, result.stats, max_pending=None, max_bytes=None):
            if isinstance(value, FetchError):
                result.errors[key] = value
            else:
                result.blobs[key] = value
        return result

    def iter_fetch(
        self, keys: Iterable[str], *, stats: BatchStats | None = None
    ) -> Iterator[tuple[str, bytes | FetchError]]:
        """Yield ``(key, bytes or FetchError)`` for each unique key as its fetch completes.

        Fetching runs ahead of the consumer by at most ``max_pending`` keys and about
        ``max_pending_bytes`` bytes. Closing the iterator early (``break``, an exception in
        the consumer) cancels this call's fetches that have not started. ``stats``, when
        given, is filled in as the call runs.
        """
        return self._stream(
            keys, stats or BatchStats(), max_pending=self.max_pending, max_bytes=self.max_pending_bytes
        )

    def _stream(
        self, keys: Iterable[str], stats: BatchStats, *, max_pending: int | None, max_bytes: int | None
    ) -> Iterator[tuple[str, bytes | FetchError]]:
        if self._closed.is_set():
            raise RuntimeError("BatchPrefetcher is closed")
        started = time.monotonic()
        ordered: dict[str, None] = {}
        for key in keys:
            stats.keys_requested += 1
            ordered.setdefault(key, None)
        stats.unique_keys = len(ordered)
        todo = iter(ordered)
        done: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        held: dict[str, _Flight] = {}
        try:
            while True:
                while (max_pending is None or len(held) < max_pending) and (
                    max_bytes is None or self._bytes_allow_more(held, max_bytes)
                ):
                    key = next(todo, _END)
                    if key is _END:
                        break
                    held[key] = self._join(key, stats)
                    held[key].future.add_done_callback(lambda f, k=key: done.put((k, f)))
                if not held:
                    break
                key, future = done.get()
                del held[key]
                self._release(key, future)
                value = _outcome(key, future)
                if isinstance(value, FetchError):
                    stats.errors += 1
                else:
                    stats.bytes_fetched += len(value)
                stats.wall_time = time.monotonic() - started
                yield key, value
        finally:
            for key, flight in held.items():
                self._release(key, flight.future, cancel=True)
            stats.wall_time = time.monotonic() - started

    def _bytes_allow_more(self, held: dict[str, _Flight], max_bytes: int) -> bool:
        """Whether one more fetch fits ``max_bytes`` ahead of the consumer.

        Finished fetches count at their size, unfinished ones at the mean size of the finished;
        until a size is known, no more fetches are started than the workers can run at once.
        """
        sizes = [
            len(flight.future.result())
            for flight in held.values()
            if flight.future.done() and not flight.future.cancelled() and flight.future.exception() is None
        ]
        unfinished = sum(not flight.future.done() for flight in held.values())
        if not sizes:
            return unfinished < self.max_workers
        return sum(sizes) + unfinished * sum(sizes) // len(sizes) < max_bytes

    def _join(self, key: str, stats: BatchStats) -> _Flight:
        """Return the flight fetching ``key``, starting one unless one is under way."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.holders += 1
                stats.shared += 1
                return flight
            stop = threading.Event()
            if self._closed.is_set():
                flight = _Flight(Future(), stop)
                flight.future.cancel()
                flight.future.set_running_or_notify_cancel()
                return flight
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="snapcompare-fetch")
            flight = _Flight(self._executor.submit(self._fetch_with_retries, key, stats, stop), stop)
            self._flights[key] = flight
            return flight

    def _release(self, key: str, future: Future, *, cancel: bool = False) -> None:
        """Drop one holder of ``key``'s flight; the last one forgets it (and may cancel it)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is None or flight.future is not future:
                return
            flight.holders -= 1
            if flight.holders == 0:
                del self._flights[key]
                if cancel:
                    flight.stop.set()
                    future.cancel()

    def _fetch_with_retries(self, key: str, stats: BatchStats, stop: threading.Event) -> bytes:
        self.budget.record_request()
        retry_number = 0
        while True:
            if stop.is_set() or self._closed.is_set():
                raise FetchError(key, "cancelled before the fetch started")
            try:
                data = self._attempt(key, stats)
                if self.verify:
                    _check_digest(key, data)
                return data
            except FetchError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - any fetcher failure is reported, never lost
                error = FetchError(key, f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
            retry_number += 1
            delay = self.retry.delay(error, retry_number, self._rng)
            if delay is None:
                raise error
            if stop.is_set() or self._closed.is_set():  # nobody wants it: spend no budget on it
                raise FetchError(key, f"cancelled instead of retrying after: {error.message}") from error
            if not self.budget.try_spend():
                error.message = f"{error.message} (not retried: retry budget exhausted)"
                raise error
            with self._lock:
                stats.retries += 1
            if stop.wait(delay) or self._closed.is_set():
                raise FetchError(key, f"cancelled while waiting to retry after: {error.message}") from error

    def _attempt(self, key: str, stats: BatchStats) -> bytes:
        with self._lock:
            self._in_flight += 1
            stats.fetches_issued += 1
            stats.peak_in_flight = max(stats.peak_in_flight, self._in_flight)
        try:
            data = self.fetcher.fetch(key)
        finally:
            with self._lock:
                self._in_flight -= 1
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FetchError(key, f"fetcher returned {type(data).__name__}, not bytes")
        return bytes(data)


def _check_digest(key: str, data: bytes) -> None:
    if not is_sha256_hex(key):
        raise FetchError(key, "verify=True needs keys that are sha256 hex digests")
    if hashlib.sha256(data).hexdigest() != key.lower():
        raise IntegrityError(key, f"content of {len(data)} bytes does not match its sha256 key")


def _outcome(key: str, future: Future) -> bytes | FetchError:
    """The bytes of a finished fetch, or its error as a `FetchError`."""
    if future.cancelled():
        return FetchError(key, "cancelled: the prefetcher was closed")
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, FetchError):
        return error
    wrapped = FetchError(key, f"{type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped
