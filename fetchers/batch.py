"""`BatchRunner`: runs one job per key of a batch against one thread-safe store, concurrently.

The machinery under `fetchers.prefetch.BatchPrefetcher` (its job: a fetch) and
`fetchers.upload.BatchUploader` (an existence check and a write): long-lived workers, one
flight per key, bounded look-ahead, one retry policy and budget, a deadline per operation, and
an early stop when the store itself is unusable.
"""

from __future__ import annotations

import functools
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import FetchError, StoreError, StoreUnavailable
from .protocol import connection_limit, describe_store
from .retry import RetryBudget, RetryPolicy

_T = TypeVar("_T")

_Done = queue.SimpleQueue["tuple[str, Future[Any]] | None"]
"""A call's queue of finished jobs, ``(key, future)``; None makes the call look at its bounds
again (the store has answered)."""

DEFAULT_DEADLINE = 120.0
"""Seconds one store operation (a fetch, an existence check, a write), its retries and their
waits included, may take before it ends in an error; see `BatchRunner`."""

_REINTERRUPT = 0.05
"""Seconds between interrupts of a request that must end: one still connecting when first
interrupted has no socket to shut down yet."""

LOOKAHEAD_PER_WORKER = 4
"""Keys a streaming call runs or holds ahead of its consumer, per worker, unless told otherwise."""

STORE_FAILURES: tuple[type[Exception], ...] = (StoreError, OSError, MemoryError)
"""What a store operation may end in for one key: a `StoreError` (the store's answer, as the
`fetchers.protocol` seams raise it), an OS error (the network, a file) or a blob too large
for memory. Anything else is a bug of the store's code or of its caller: it is never reported
as one key's failure but raised to the caller of the batch, unchanged."""


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


# A job runs one key to its end on a worker: (key, call's stats, stop event) -> value.
Job = Callable[[str, Any, threading.Event], Any]


class _Flight:
    """One job for one key, shared by every caller that asks for the key while it runs.

    ``stop`` is set when nobody wants the result any more (its last holder left, or the
    runner closed): the job then makes no further attempt and cuts its retry wait short.
    """

    __slots__ = ("future", "holders", "stop")

    def __init__(self, future: Future[Any], stop: threading.Event) -> None:
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

    An ``interrupt`` that fails with an `OSError` (the request's socket is gone already) is
    tried again; any other exception is a bug: it ends the watch and is kept as ``failure``,
    which `start` and `raise_failure` raise to the workers, and so to the batch's caller.
    """

    def __init__(self, store: object, thread_name: str) -> None:
        self._interrupt: Callable[[int], None] | None = getattr(store, "interrupt", None)
        self._thread_name = thread_name
        self._changed = threading.Condition()
        self._running: set[_Attempt] = set()
        self._cancelled = False
        self._thread: threading.Thread | None = None
        self._ended: list[threading.Thread] = []  # threads that left when idle, joined by close
        self.failure: Exception | None = None
        """The exception a failed ``interrupt`` raised; the watch has ended."""

    def start(self, ends_at: float) -> _Attempt | None:
        """Register a request the calling thread starts now; None once `cancel_all` was called.
        Raises `failure` once the watch has failed."""
        attempt = _Attempt(threading.get_ident(), ends_at)
        with self._changed:
            self.raise_failure()
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

    def raise_failure(self) -> None:
        """Raise `failure`, the original exception, if the watch has failed."""
        if self.failure is not None:
            raise self.failure

    def _watch(self) -> None:
        assert self._interrupt is not None
        with self._changed:
            try:
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
                        except OSError:
                            continue  # tried again in a moment, while the request lasts
                    self._changed.wait(_REINTERRUPT)
            except Exception as exc:  # noqa: BLE001 - handed to the workers: see `failure`
                self.failure = exc
            finally:
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
    - A job that raises anything but a `StoreError` has met a bug, not a failure of its key:
      the call that ran it raises that exception, unchanged (see `STORE_FAILURES`).
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
        self._waiting: set[_Done] = set()  # the calls' queues, woken by that answer
        self._in_flight = 0
        self._resume_at = 0.0  # monotonic time before which no request starts (throttled)
        self._rng = random.Random()

    @property
    def default_lookahead(self) -> int:
        """The ``max_pending`` of streaming calls that are given none: `LOOKAHEAD_PER_WORKER`
        keys per worker."""
        return LOOKAHEAD_PER_WORKER * self.max_workers

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
        or held ahead of the consumer; None: no bound (every key may be run before the
        consumer takes one). Raises `StoreUnavailable` per the fail-fast rule, and whatever
        else a job raised that is not a `StoreError`. Closing the iterator early cancels this
        call's jobs not yet started.
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
        done: _Done = queue.SimpleQueue()
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
                    admitted = next(todo, None)
                    if admitted is None:
                        break
                    held[admitted] = self._join(admitted, stats, job)
                    held[admitted].future.add_done_callback(functools.partial(_report_done, done, admitted))
                if not held:
                    break
                item = done.get()
                if item is None:  # the store answered: more may start now
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
                flight = _Flight(Future[Any](), stop)
                flight.future.cancel()
                flight.future.set_running_or_notify_cancel()
                return flight
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self._thread_name)
            flight = _Flight(self._executor.submit(job, key, stats, stop), stop)
            self._flights[key] = flight
            return flight

    def _release(self, key: str, future: Future[Any], *, cancel: bool = False) -> None:
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

        An `OSError` or `MemoryError` is reported as an ``error_type`` (see `STORE_FAILURES`);
        any other exception that is not a `StoreError` propagates as it is.
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
            except STORE_FAILURES as exc:
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
        """One request, watched: `_Interrupted` if the watchdog cut it short; the watchdog's own
        failure, if it failed meanwhile."""
        attempt = self._watchdog.start(ends_at)
        if attempt is None:
            raise _Interrupted("cancelled: the batch was closed")
        with self._lock:
            self._in_flight += 1
            stats.count_request()
            stats.peak_in_flight = max(stats.peak_in_flight, self._in_flight)
        failed: Exception | None = None
        try:
            value = call()
        except STORE_FAILURES as exc:
            failed = exc
        finally:
            self._watchdog.end(attempt)
            with self._lock:
                self._in_flight -= 1
        self._watchdog.raise_failure()
        if failed is not None:
            if attempt.ended_by is not None:
                raise _Interrupted(self._interrupted_reason(attempt)) from failed
            raise failed
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
            done.put(None)


class _Interrupted(Exception):
    """A request the watchdog cut short; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _report_done(done: _Done, key: str, future: Future[Any]) -> None:
    """Put a finished job in its call's queue."""
    done.put((key, future))


def _outcome(key: str, future: Future[Any]) -> Any:
    """The value of a finished job, or its `StoreError`; raises any other exception the job
    raised (a bug, see `STORE_FAILURES`) as it is, its traceback included."""
    if future.cancelled():
        return FetchError(key, "cancelled: the batch was closed")
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, StoreError):
        return error
    raise error
