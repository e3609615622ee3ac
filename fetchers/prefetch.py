"""Concurrent, deduplicated, bounded, retrying batches over a thread-safe store.

`BatchRunner` is the machinery: long-lived workers, one flight per key, bounded look-ahead, one
retry policy and budget, and an early stop when the store itself is unusable. `BatchPrefetcher`
reads through it (`BlobFetcher.fetch`); `fetchers.upload.BatchUploader` writes through it
(`BlobWriter.exists` and ``put``).
"""

from __future__ import annotations

import hashlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import FetchError, IntegrityError, StoreError, StoreUnavailable
from .keys import is_sha256_hex
from .protocol import BlobFetcher, connection_limit, describe_store
from .retry import RetryBudget, RetryPolicy

_END = object()
_WAKE = object()  # put in a call's queue of finished jobs to make it look at its bounds again
_T = TypeVar("_T")

DEFAULT_DEADLINE = 120.0
"""Seconds one store operation (a fetch, an existence check, a write), its retries and their
waits included, may take before it ends in an error; see `BatchRunner`."""

_REINTERRUPT = 0.05
"""Seconds between interrupts of a request that must end: one still connecting when first
interrupted has no socket to shut down yet."""


@dataclass
class CallStats:
    """What one batch call did, whichever way it went.

    A key that joined a flight already under way for another call (``shared``) issues no
    request. ``peak_in_flight`` is the most requests the runner had running at once while the
    call's own requests ran.
    """

    keys_requested: int = 0
    unique_keys: int = 0
    retries: int = 0
    shared: int = 0
    errors: int = 0
    wall_time: float = 0.0
    peak_in_flight: int = 0

    def count_request(self) -> None:
        """One request (a first attempt or a retry) was issued for this call."""
        raise NotImplementedError


@dataclass
class BatchStats(CallStats):
    """What one `fetch_all` or `iter_fetch` call did; ``fetches_issued`` counts every call to
    the fetcher (first attempts and retries)."""

    fetches_issued: int = 0
    bytes_fetched: int = 0

    def count_request(self) -> None:
        self.fetches_issued += 1


@dataclass
class BatchResult:
    """The outcome of `BatchPrefetcher.fetch_all`: every unique key is in exactly one map."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, FetchError] = field(default_factory=dict)
    stats: BatchStats = field(default_factory=BatchStats)


# A job runs one key to its end on a worker: (key, call's stats, stop event) -> value.
Job = Callable[[str, Any, threading.Event], Any]


class _Flight:
    """One job for one key, shared by every caller that asks for the key while it runs.

    ``stop`` is set when nobody wants the result any more (its last holder left, or the
    runner closed): the job then makes no further attempt and cuts its retry wait short.
    """

    __slots__ = ("future", "holders", "stop")

    def __init__(self, future: Future, stop: threading.Event) -> None:
        self.future = future
        self.holders = 1
        self.stop = stop


class _StoreHealth:
    """Decides, from one call's first outcomes, that the store itself is unusable.

    Until the store has given one answer that is not a store-wide failure, the call keeps at
    most ``threshold`` jobs in flight; once ``threshold`` keys (or all of the call's keys, if
    fewer) in a row end in the same store-wide error, the store is declared unavailable.
    """

    def __init__(self, threshold: int, unique_keys: int) -> None:
        self.needed = min(threshold, unique_keys)
        self.streak = 0
        self.last: tuple[type, str] | None = None

    def verdict(self, value: object) -> StoreError | None:
        """The error that shows the store is unusable, after this outcome; else None."""
        if not (isinstance(value, StoreError) and value.store_wide):
            self.needed = 0  # the store answered: from here on, every key speaks for itself
            return None
        if not self.needed:
            return None
        cause = (type(value), value.message)
        self.streak = self.streak + 1 if cause == self.last else 1
        self.last = cause
        return value if self.streak >= self.needed else None


class _Attempt:
    """One request on a worker thread, the time it must end by, and why it was cut short."""

    __slots__ = ("thread_id", "ends_at", "ended_by")

    def __init__(self, thread_id: int, ends_at: float) -> None:
        self.thread_id = thread_id
        self.ends_at = ends_at
        self.ended_by: str | None = None  # "deadline" or "close" once interrupted


class _Watchdog:
    """Interrupts the requests that pass their deadline, and all of them on `cancel_all`.

    A thread, running while requests do (started by the first, ending when none is left, and
    joined by `close`), waits for the earliest deadline and calls the store's
    ``interrupt(thread_id)`` (see `BlobFetcher`) for each request past it, again every
    `_REINTERRUPT` seconds until the request ends. A store without ``interrupt`` gets no
    thread: its deadlines are checked between attempts only.
    """

    def __init__(self, store: object, thread_name: str) -> None:
        self._interrupt: Callable[[int], None] | None = getattr(store, "interrupt", None)
        self._thread_name = thread_name
        self._changed = threading.Condition()
        self._running: set[_Attempt] = set()
        self._cancelled = False
        self._thread: threading.Thread | None = None
        self._ended: list[threading.Thread] = []  # threads that left when idle, joined by close

    def start(self, ends_at: float) -> _Attempt | None:
        """Register a request the calling thread starts now; None once `cancel_all` was called."""
        attempt = _Attempt(threading.get_ident(), ends_at)
        with self._changed:
            if self._cancelled:
                return None
            self._running.add(attempt)
            if self._interrupt is not None and self._thread is None:
                self._ended = [thread for thread in self._ended if thread.is_alive()]
                self._thread = threading.Thread(target=self._watch, name=self._thread_name)
                self._thread.start()
            self._changed.notify()
        return attempt

    def end(self, attempt: _Attempt) -> None:
        """The request has returned or raised."""
        with self._changed:
            self._running.discard(attempt)
            self._changed.notify()

    def cancel_all(self) -> None:
        """Interrupt every request now and refuse new ones (the batch is closing)."""
        with self._changed:
            self._cancelled = True
            for attempt in self._running:
                attempt.ended_by = attempt.ended_by or "close"
            self._changed.notify()

    def close(self) -> None:
        """Join the watchdog threads (once the workers have ended, none is left waiting)."""
        with self._changed:
            threads = [*self._ended, *([self._thread] if self._thread is not None else [])]
        for thread in threads:
            thread.join()

    def _watch(self) -> None:
        assert self._interrupt is not None
        with self._changed:
            while self._running:
                now = time.monotonic()
                for attempt in self._running:
                    if attempt.ended_by is None and attempt.ends_at <= now:
                        attempt.ended_by = "deadline"
                due = [attempt for attempt in self._running if attempt.ended_by is not None]
                if not due:
                    self._changed.wait(min(attempt.ends_at for attempt in self._running) - now)
                    continue
                # Under the lock: a thread must `end` its attempt before it starts another, so
                # no interrupt meant for one request reaches the next.
                for attempt in due:
                    try:
                        self._interrupt(attempt.thread_id)
                    except Exception:  # noqa: BLE001 - one failed interrupt must not end the watch
                        continue
                self._changed.wait(_REINTERRUPT)
            self._ended.append(threading.current_thread())
            self._thread = None


class BatchRunner:
    """Runs jobs on batches of keys against one store with a fixed set of worker threads.

    - Each unique key runs once per call, however often it is given; callers in other threads
      asking for the same key at the same time share that one run (single flight).
    - At most ``max_workers`` requests are in flight. The workers live as long as the runner,
      so consecutive batches reuse them and their connections.
    - Only retryable errors are retried, per ``retry`` (full-jitter backoff, ``Retry-After``
      honoured) and within ``budget``, which all calls share and successes refill.
    - A throttled answer (429, 503, S3 ``SlowDown``) holds every request back, first attempts
      included, until its retry is due: the store asked all its clients to slow down, so a
      burst costs each key a retry or two rather than a retry per request that raced it.
    - Fail fast: until the store has answered once, a call runs at most ``fail_fast_after``
      keys at a time, and when that many keys in a row (or all of them, if fewer) fail for one
      store-wide reason (no such bucket, 401/403, connection refused after retries) the call
      raises `StoreUnavailable` instead of reporting each key. A missing key is not that.
      ``fail_fast_after=0`` turns this off.
    - Deadline: one store operation (a fetch, an existence check, a write), its retries and
      their waits included, ends within ``deadline`` seconds (`DEFAULT_DEADLINE`, 120 s), even
      when the store trickles its answer a byte at a time: a request still running then is
      interrupted (the store's ``interrupt``, which every network backend has) and the key
      ends in a non-retryable error saying so. A retry that could not start before the
      deadline is not made. The store's read timeout still bounds each wait for bytes.
    - `close` (or leaving the ``with`` block) cancels pending jobs, wakes retry waits,
      interrupts the requests on the wire and joins every worker (and the watchdog thread
      that enforces deadlines): nothing it started outlives it. A failure of one key never
      cancels or hides another's.
    """

    def __init__(
        self,
        store: object,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        fail_fast_after: int = 3,
        deadline: float = DEFAULT_DEADLINE,
        thread_name: str = "snapcompare-store",
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if fail_fast_after < 0:
            raise ValueError(f"fail_fast_after must not be negative, got {fail_fast_after}")
        if not deadline > 0:
            raise ValueError(f"deadline must be positive, got {deadline}")
        pool = connection_limit(store)
        if pool is not None and pool < max_workers:
            raise ValueError(
                f"max_workers={max_workers} exceeds the store's connection pool "
                f"(max_connections={pool}): size the pool to at least the concurrency"
            )
        self.max_workers = max_workers
        self.retry = retry or RetryPolicy()
        self.budget = budget or RetryBudget()
        self.fail_fast_after = fail_fast_after
        self.deadline = deadline
        self.store_name = describe_store(store)
        self._thread_name = thread_name
        self._watchdog = _Watchdog(store, f"{thread_name}-watchdog")
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closed = threading.Event()
        self._answered = threading.Event()  # the store gave one answer that was not store-wide
        self._waiting: set[queue.SimpleQueue] = set()  # the calls' queues, woken by that answer
        self._in_flight = 0
        self._resume_at = 0.0  # monotonic time before which no request starts (throttled)
        self._rng = random.Random()

    def __enter__(self) -> BatchRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel pending jobs, interrupt retry waits and requests on the wire, and join the
        workers and the watchdog. Idempotent.

        A store without ``interrupt`` cannot have a request on the wire cut short: close then
        waits for it to end, which the store's own timeouts bound.
        """
        self._closed.set()
        with self._lock:
            executor, self._executor = self._executor, None
            for flight in self._flights.values():
                flight.stop.set()
        self._watchdog.cancel_all()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._watchdog.close()

    def stream(
        self,
        keys: Iterable[str],
        stats: CallStats,
        job: Job,
        *,
        max_pending: int | None,
        max_bytes: int | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, job's value or StoreError)`` for each unique key as its job ends.

        At most ``max_pending`` keys (and, for byte values, about ``max_bytes`` bytes) are run
        or held ahead of the consumer; None: no bound. Raises `StoreUnavailable` per the
        fail-fast rule. Closing the iterator early cancels this call's jobs not yet started.
        """
        if self._closed.is_set():
            raise RuntimeError(f"{type(self).__name__} is closed")
        started = time.monotonic()
        ordered: dict[str, None] = {}
        for key in keys:
            stats.keys_requested += 1
            ordered.setdefault(key, None)
        stats.unique_keys = len(ordered)
        health = _StoreHealth(self.fail_fast_after, len(ordered))
        todo = iter(ordered)
        done: queue.SimpleQueue[tuple[str, Future] | object] = queue.SimpleQueue()
        held: dict[str, _Flight] = {}
        with self._lock:
            self._waiting.add(done)
        try:
            while True:
                while (
                    (max_pending is None or len(held) < max_pending)
                    and (max_bytes is None or self._bytes_allow_more(held, max_bytes))
                    and (self._answered.is_set() or not health.needed or len(held) < health.needed)
                ):
                    key = next(todo, _END)
                    if key is _END:
                        break
                    held[key] = self._join(key, stats, job)
                    held[key].future.add_done_callback(lambda f, k=key: done.put((k, f)))
                if not held:
                    break
                item = done.get()
                if item is _WAKE:  # the store answered: more may start now
                    continue
                key, future = item
                del held[key]
                self._release(key, future)
                value = _outcome(key, future)
                unusable = health.verdict(value)
                if unusable is not None:
                    raise StoreUnavailable(unusable.store or self.store_name, unusable)
                if isinstance(value, StoreError):
                    stats.errors += 1
                stats.wall_time = time.monotonic() - started
                yield key, value
        finally:
            with self._lock:
                self._waiting.discard(done)
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

    def _join(self, key: str, stats: CallStats, job: Job) -> _Flight:
        """Return the flight running ``key``, starting one unless one is under way."""
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
                self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self._thread_name)
            flight = _Flight(self._executor.submit(job, key, stats, stop), stop)
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

    def with_retries(
        self,
        key: str,
        call: Callable[[], _T],
        stats: CallStats,
        stop: threading.Event,
        *,
        error_type: type[StoreError] = FetchError,
    ) -> _T:
        """Run ``call`` (one request about ``key``) until it succeeds, may not be retried, or
        passes the deadline.

        Any exception that is not a `StoreError` is reported as an ``error_type``.
        """
        ends_at = time.monotonic() + self.deadline
        retry_number = 0
        while True:
            if stop.is_set() or self._closed.is_set() or self._held_back(stop):
                raise error_type(key, "cancelled before the request started")
            try:
                value = self._attempt(call, stats, ends_at)
                self.budget.record_success(retried=retry_number > 0)
                return value
            except _Interrupted as exc:
                raise error_type(key, exc.reason) from exc.__cause__
            except StoreError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - any store failure is reported, never lost
                error = error_type(key, f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
            if not error.store_wide:
                self._mark_answered()
            retry_number += 1
            delay = self.retry.delay(error, retry_number, self._rng)
            if delay is None:
                raise error
            if stop.is_set() or self._closed.is_set():  # nobody wants it: spend no budget on it
                raise error_type(key, f"cancelled instead of retrying after: {error.message}") from error
            if time.monotonic() + delay >= ends_at:
                error.message = f"{error.message} (not retried: the {self.deadline:g} s deadline would pass)"
                raise error
            if not self.budget.try_spend():
                error.message = f"{error.message} (not retried: retry budget exhausted)"
                raise error
            with self._lock:
                stats.retries += 1
                if error.throttled:
                    self._resume_at = max(self._resume_at, time.monotonic() + delay)
            if stop.wait(delay) or self._closed.is_set():
                raise error_type(key, f"cancelled while waiting to retry after: {error.message}") from error

    def _held_back(self, stop: threading.Event) -> bool:
        """Wait until the throttled store's pause, as it stands now, ends; True if stopped.

        A pause extended while a request waits does not hold it again: requests released
        together go together, and a key failing again alone cannot keep the others waiting.
        """
        with self._lock:
            remaining = self._resume_at - time.monotonic()
        return remaining > 0 and (stop.wait(remaining) or self._closed.is_set())

    def _attempt(self, call: Callable[[], _T], stats: CallStats, ends_at: float) -> _T:
        """One request, watched: `_Interrupted` if the watchdog cut it short."""
        attempt = self._watchdog.start(ends_at)
        if attempt is None:
            raise _Interrupted("cancelled: the batch was closed")
        with self._lock:
            self._in_flight += 1
            stats.count_request()
            stats.peak_in_flight = max(stats.peak_in_flight, self._in_flight)
        try:
            value = call()
        except Exception as exc:
            if attempt.ended_by is not None:
                raise _Interrupted(self._interrupted_reason(attempt)) from exc
            raise
        finally:
            self._watchdog.end(attempt)
            with self._lock:
                self._in_flight -= 1
        self._mark_answered()
        return value

    def _interrupted_reason(self, attempt: _Attempt) -> str:
        if attempt.ended_by == "deadline":
            return f"no complete answer within the {self.deadline:g} s deadline (request interrupted)"
        return "cancelled: the batch was closed (request interrupted)"

    def _mark_answered(self) -> None:
        """The store has answered: lift the fail-fast bound of the calls waiting on it."""
        if self._answered.is_set():
            return
        with self._lock:
            self._answered.set()
            waiting = list(self._waiting)
        for done in waiting:
            done.put(_WAKE)


class BatchPrefetcher(BatchRunner):
    """Fetches batches of keys through one fetcher on a `BatchRunner`'s workers.

    Everything `BatchRunner` says holds, with a key's job being one fetch (and its retries).
    ``verify=True`` treats keys as the sha256 hex of their content and reports a body that
    does not match as an `IntegrityError` (retried per the policy). `iter_fetch` keeps at
    most ``max_pending`` keys and about ``max_pending_bytes`` bytes fetched or in flight
    ahead of its consumer. ``deadline`` bounds each key's fetch, retries included (see
    `BatchRunner`). Calls never raise a per-key fetch error, only `StoreUnavailable`.
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
        fail_fast_after: int = 3,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if not isinstance(fetcher, BlobFetcher):
            raise TypeError(f"{fetcher!r} has no fetch(key) method")
        super().__init__(
            fetcher, max_workers=max_workers, retry=retry, budget=budget, fail_fast_after=fail_fast_after,
            deadline=deadline, thread_name="snapcompare-fetch",
        )
        self.fetcher = fetcher
        self.verify = verify
        self.max_pending = max_pending or 4 * max_workers
        self.max_pending_bytes = max_pending_bytes

    def __enter__(self) -> BatchPrefetcher:
        return self

    def fetch_all(self, keys: Iterable[str]) -> BatchResult:
        """Fetch every unique key; return blobs and errors. Raises only `StoreUnavailable`."""
        result = BatchResult()
        for key, value in self._fetching(keys, result.stats, max_pending=None, max_bytes=None):
            if isinstance(value, StoreError):
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
        given, is filled in as the call runs. Raises `StoreUnavailable` (see `BatchRunner`).
        """
        return self._fetching(
            keys, stats if stats is not None else BatchStats(),
            max_pending=self.max_pending, max_bytes=self.max_pending_bytes,
        )

    def _fetching(
        self, keys: Iterable[str], stats: BatchStats, *, max_pending: int | None, max_bytes: int | None
    ) -> Iterator[tuple[str, bytes | FetchError]]:
        for key, value in self.stream(keys, stats, self._fetch, max_pending=max_pending, max_bytes=max_bytes):
            if not isinstance(value, StoreError):
                stats.bytes_fetched += len(value)
            yield key, value

    def _fetch(self, key: str, stats: BatchStats, stop: threading.Event) -> bytes:
        return self.with_retries(key, lambda: self._read(key), stats, stop)

    def _read(self, key: str) -> bytes:
        data = self.fetcher.fetch(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise FetchError(key, f"fetcher returned {type(data).__name__}, not bytes")
        data = bytes(data)
        if self.verify:
            check_digest(key, data)
        return data


class _Interrupted(Exception):
    """A request the watchdog cut short; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_digest(key: str, data: bytes) -> None:
    """Raise `IntegrityError` unless ``data`` hashes to ``key`` (a sha256 hex digest)."""
    if not is_sha256_hex(key):
        raise FetchError(key, "verify=True needs keys that are sha256 hex digests")
    if hashlib.sha256(data).hexdigest() != key.lower():
        raise IntegrityError(key, f"content of {len(data)} bytes does not match its sha256 key")


def _outcome(key: str, future: Future) -> Any:
    """The value of a finished job, or its error as a `StoreError`."""
    if future.cancelled():
        return FetchError(key, "cancelled: the batch was closed")
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, StoreError):
        return error
    wrapped = FetchError(key, f"{type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped
