"""`BatchRunner`: runs one job per key of a batch against one thread-safe store, concurrently.

The machinery under `fetchers.prefetch.BatchPrefetcher` (its job: a fetch) and
`fetchers.upload.BatchUploader` (an existence check and a write): long-lived workers, one
flight per key, bounded look-ahead, one retry policy and budget, a deadline per operation, and
an early stop when the store itself is unusable. `Groups` runs keys many to a request instead,
for stores that answer many keys at once, with the same promises per key.
"""

from __future__ import annotations

import functools
import itertools
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import BatchUnsupported, FetchError, StoreError, StoreUnavailable
from .protocol import connection_limit, describe_store
from .retry import RetryBudget, RetryPolicy

_T = TypeVar("_T")
_E = TypeVar("_E", bound=StoreError)

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
    call's own requests ran. Keys run in groups (`Groups`) count one operation each as a
    request (`count_request`); ``batch_requests`` counts the requests that carried them, and
    ``batch_fallback`` says why the call's keys went one a request after all (the store has no
    batch requests), "" otherwise.
    """

    keys_requested: int = 0
    unique_keys: int = 0
    retries: int = 0
    shared: int = 0
    errors: int = 0
    wall_time: float = 0.0
    peak_in_flight: int = 0
    batch_requests: int = 0
    batch_fallback: str = ""

    def count_request(self) -> None:
        """One request (a first attempt or a retry) was issued for this call."""
        raise NotImplementedError


# A job runs one key to its end on a worker: (key, call's stats, stop event) -> value.
Job = Callable[[str, Any, threading.Event], Any]

# A group job is one request about many keys: it yields (key, value or StoreError) for each key
# as its answer arrives, and raises for a failure of the whole request (see `Groups`).
GroupJob = Callable[[Sequence[str]], Iterator[tuple[str, Any]]]

GROUP_SPREAD = 6
"""Requests a queue of keys is spread over at once, each on its own connection: what one
connection carries per round trip is bounded by its window, so a large answer goes faster
over a few."""

MIN_GROUP = 100
"""Keys a request carries at least, unless fewer are queued (or the fetcher's limit, the
expected bytes or `BLIND_GROUP` allow fewer): a queue goes in at most ``len(queue) // MIN_GROUP``
requests (in one below twice this), so that they cost at most one request per `MIN_GROUP` keys."""

BLIND_GROUP = 16
"""Keys a request of blobs carries at least while no blob's size is known: a queue is then
spread over up to `GROUP_SPREAD` requests of this many keys or more, since the blobs may be
large and one request's bytes come over one connection, as fast as its window allows
(`bench_fetch`: 150 blobs of 3 MB on average took 1.6 times as long in one request as by
single GETs at RTT 20 ms). Requests that bring no blobs (existence checks) are not spread so."""

_JOIN_SLICE = 64  # keys admitted under one hold of the runner's lock: its workers wait no longer

REFILL_AT = 0.75
"""While keys go in groups, a streaming call that has filled its look-ahead admits keys again
only once what it holds has fallen to this share of it: then as many as fit, many to a
request, rather than one key a request each time its consumer takes one."""


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
        self._wake = threading.Condition(self._lock)  # wakes the groups' retry timers (see `Groups`)
        self._flights: dict[str, _Flight] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closed = threading.Event()
        self._answered = threading.Event()  # the store gave one answer that was not store-wide
        self._waiting: set[_Done] = set()  # the calls' queues, woken by that answer
        self._in_flight = 0
        self._resume_at = 0.0  # monotonic time before which no request starts (throttled)
        self._rng = random.Random()
        self._lanes: list[Groups] = []  # closed with the runner

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
            self._wake.notify_all()
        self._watchdog.cancel_all()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._watchdog.close()
        for groups in self._lanes:
            groups.close()

    def stream(
        self,
        keys: Iterable[str],
        stats: CallStats,
        job: Job,
        *,
        max_pending: int | None,
        max_bytes: int | None = None,
        groups: Groups | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, job's value or StoreError)`` for each unique key as its job ends.

        At most ``max_pending`` keys (and, for byte values, about ``max_bytes`` bytes) are run
        or held ahead of the consumer; None: no bound (every key may be run before the
        consumer takes one). With ``groups`` (while it is on), the keys admitted go to it and
        run many to a request instead of one ``job`` each, and a full look-ahead refills from
        `REFILL_AT`. Raises `StoreUnavailable` per the
        fail-fast rule, and whatever else a job raised that is not a `StoreError`. Closing the
        iterator early cancels this call's jobs not yet started.
        """
        if self._closed.is_set():
            raise RuntimeError(f"{type(self).__name__} is closed")
        started = time.monotonic()
        listed = list(keys)
        stats.keys_requested += len(listed)
        ordered = dict.fromkeys(listed)
        del listed  # the call holds on to the unique keys only
        stats.unique_keys += len(ordered)
        # Once the store has answered, no call declares it unusable: its keys speak for themselves.
        health = _StoreHealth(self.fail_fast_after, 0 if self._answered.is_set() else len(ordered))
        todo = iter(ordered)
        done: _Done = queue.SimpleQueue()
        held: dict[str, _Flight] = {}
        ahead = _Ahead()
        with self._lock:
            self._waiting.add(done)
        refill = True  # below the bounds, and keys go one a request or it refills from low water
        fresh: list[_Entry] = []  # keys admitted for groups, not yet handed to them
        woken = True  # the store has just answered: what the fail-fast rule held back may go now

        def room(share: float) -> int | None:
            """How many more keys fit the bounds scaled by ``share``; None: no bound."""
            fits = None if max_pending is None else math.ceil(max_pending * share) - len(held)
            if max_bytes is not None:
                fits = _least(fits, self._bytes_room(ahead, len(held), int(max_bytes * share)))
            return fits

        try:
            while True:
                grouped = groups is not None and groups.on
                # Nothing held: a refill, whatever a tiny bound scaled by REFILL_AT says.
                refill = refill or not grouped or not held or _some(room(REFILL_AT))
                while refill:
                    fits = room(1.0)
                    if not (grouped or self._answered.is_set() or not health.needed):
                        fits = _least(fits, health.needed - len(held))
                    admitted = list(itertools.islice(todo, fits)) if _some(fits) else []
                    if not admitted:
                        break
                    flights = self._join(admitted, stats, job, groups, fresh)
                    held.update(zip(admitted, flights, strict=True))
                    for key, flight in zip(admitted, flights, strict=True):
                        flight.future.add_done_callback(functools.partial(_report_done, done, key, ahead))
                refill = refill and _some(room(1.0))  # a refill goes on while there is room
                if groups is not None and (fresh or woken):
                    groups.add(fresh)  # all at once, so that they go in one request
                    fresh = []
                    groups.dispatch()
                if not held:
                    break
                item = done.get()
                self._watchdog.raise_failure()
                woken = item is None
                if item is None:  # the store answered: more may start now
                    continue
                key, future = item
                del held[key]
                ahead.taken(future)
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

    def _bytes_room(self, ahead: _Ahead, held: int, max_bytes: int) -> int | None:
        """How many more fetches fit ``max_bytes`` ahead of the consumer, ``held`` keys being
        held or run now; None: no bound.

        Finished fetches count at their size, unfinished ones at the mean size of those the
        call has fetched; until a size is known, no more fetches are started than the workers
        can run at once.
        """
        held_bytes, finished, mean = ahead.state()
        unfinished = held - finished
        if mean is None:
            return self.max_workers - unfinished
        if not mean:  # blobs of (about) no bytes: only what is held counts
            return None if held_bytes < max_bytes else 0
        return -(-(max_bytes - held_bytes - unfinished * mean) // mean)  # the ceiling

    def _join(
        self, keys: list[str], stats: CallStats, job: Job, groups: Groups | None, fresh: list[_Entry]
    ) -> list[_Flight]:
        """The flight running each of ``keys``, starting one for each that has none under way:
        a job of its own, or, while ``groups`` is on, an entry appended to ``fresh`` for the
        caller to hand to ``groups``."""
        flights = []
        for start in range(0, len(keys), _JOIN_SLICE):
            with self._lock:
                grouped = groups is not None and groups.on
                for key in keys[start:start + _JOIN_SLICE]:
                    flight = self._flights.get(key)
                    if flight is not None:
                        flight.holders += 1
                        stats.shared += 1
                        flights.append(flight)
                        continue
                    stop = threading.Event()
                    if self._closed.is_set():
                        flight = _Flight(Future[Any](), stop)
                        flight.future.cancel()
                        flight.future.set_running_or_notify_cancel()
                        flights.append(flight)
                        continue
                    if grouped:
                        entry = _Entry(key, stats, stop, ends_at=time.monotonic() + self.deadline)
                        fresh.append(entry)
                        flight = _Flight(entry.future, stop)
                    else:
                        flight = _Flight(self._executor_locked().submit(job, key, stats, stop), stop)
                    self._flights[key] = flight
                    flights.append(flight)
        return flights

    def _executor_locked(self) -> ThreadPoolExecutor:
        """The workers, started on first use; the caller holds the lock and the runner is open."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self._thread_name)
        return self._executor

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any] | None:
        """Run ``fn(*args)`` on a worker; None once the runner is closed."""
        with self._lock:
            if self._closed.is_set():
                return None
            return self._executor_locked().submit(fn, *args)

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
        error: StoreError | None = None
        while True:
            if stop.is_set() or self._closed.is_set() or self._held_back(stop, ends_at):
                raise error_type(key, "cancelled before the request started")
            if time.monotonic() >= ends_at:  # the throttle pause outlasted it
                raise _not_sent(key, error, self.deadline, error_type)
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
            delay = self._retry_wait(key, error, retry_number, stop, ends_at, error_type)
            if isinstance(delay, StoreError):
                raise delay
            if not self.budget.try_spend():
                raise _budget_spent(error)
            self._count_retry(stats, error, delay)
            if stop.wait(delay) or self._closed.is_set():
                raise error_type(key, f"cancelled while waiting to retry after: {error.message}") from error

    def _retry_wait(
        self, key: str, error: StoreError, retry_number: int, stop: threading.Event, ends_at: float,
        error_type: type[StoreError],
    ) -> float | StoreError:
        """The wait before retry ``retry_number`` of ``key`` after ``error``, or the error the
        key ends in: ``error`` when the policy or the deadline (``ends_at``) says no more, a
        cancellation when nobody wants it (no budget is spent on it then)."""
        delay = self.retry.delay(error, retry_number, self._rng)
        if delay is None:
            return error
        if stop.is_set() or self._closed.is_set():
            cancelled = error_type(key, f"cancelled instead of retrying after: {error.message}")
            cancelled.__cause__ = error
            return cancelled
        if time.monotonic() + delay >= ends_at:
            error.message = f"{error.message} (not retried: the {self.deadline:g} s deadline would pass)"
            return error
        return delay

    def _count_retry(self, stats: CallStats, error: StoreError, delay: float) -> None:
        """A retry of ``stats``' call is due after ``delay``; a throttled store holds every
        request until then."""
        with self._lock:
            stats.retries += 1
            if error.throttled:
                self._resume_at = max(self._resume_at, time.monotonic() + delay)

    def _held_back(self, stop: threading.Event, ends_at: float) -> bool:
        """Wait until the throttled store's pause, as it stands now, ends, or until ``ends_at``
        (a deadline) if sooner; True if stopped.

        A pause extended while a request waits does not hold it again: requests released
        together go together, and a key failing again alone cannot keep the others waiting.
        """
        with self._lock:
            remaining = min(self._resume_at, ends_at) - time.monotonic()
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


@dataclass(eq=False)
class _Entry:
    """One key's place in `Groups`: its flight's future, its call, and its retries so far."""

    key: str
    stats: CallStats
    stop: threading.Event
    future: Future[Any] = field(default_factory=Future)
    ends_at: float = 0.0
    retries: int = 0
    ready_at: float = 0.0
    started: bool = False


class Groups:
    """Runs a `BatchRunner`'s keys many to a request: ``run(keys)`` (a `GroupJob`) on the
    runner's workers, for at most ``max_keys()`` keys and about ``max_bytes`` expected bytes a
    request, while ``max_keys()`` is above 0.

    Every promise the runner makes per key holds per key here: one flight per key, a deadline
    from the moment it was admitted, the retry policy and the throttle pause. A key's value is
    handed over the moment ``run`` yields it, not when its request ends. The keys of one request
    that failed alone (a throttled operation, say) or that it left unanswered (it failed as a
    whole, or broke off) are retried together, after one backoff, as one retry from the budget,
    since they were one request; each key's retries still follow the policy and its deadline.
    What is queued is sent at once, spread evenly over up to `GROUP_SPREAD` requests of at
    least `MIN_GROUP` keys each (`BLIND_GROUP` while no blob's size is known; no more requests
    than the workers free). The fail-fast rule counts requests here, not keys: until the store
    has answered, at most the runner's ``fail_fast_after`` requests are out (each carrying its
    share of the keys), so a call costs no round trip of its own to learn that the store is
    there. Once ``run`` raises
    `BatchUnsupported` (and ``max_keys()`` turns 0), the keys go one ``fallback`` job each,
    and every call that had keys in the groups says why in its ``batch_fallback``.

    A request whose keys nobody wants any more is abandoned between two answers. Thread-safe;
    created by the runner's subclass with the runner, and closed with it.
    """

    def __init__(
        self,
        runner: BatchRunner,
        run: GroupJob,
        *,
        max_keys: Callable[[], int],
        fallback: Job,
        max_bytes: int | None = None,
        error_type: type[StoreError] = FetchError,
    ) -> None:
        self._runner = runner
        self._run = run
        self._max_keys = max_keys
        self._fallback = fallback
        self._max_bytes = max_bytes
        self._error_type = error_type
        self._queue: list[_Entry] = []
        self._running = 0  # group requests on the workers
        self._size = 0  # the size of request the keys queued for a free slot were cut for
        self._timer = False  # a worker waits for the first queued retry to fall due
        self._timer_at = math.inf  # when it dispatches (an earlier retry queued meanwhile moves it)
        self._detached = False  # its call has ended (see `detach`)
        self._sizes = threading.Lock()  # guards the two below, which answers update
        self._fetched_bytes = 0
        self._fetched = 0
        self.note = ""
        """Why keys went one a request after all ("" while groups work)."""
        runner._lanes.append(self)

    @property
    def on(self) -> bool:
        """Whether keys admitted now go in groups."""
        return self._max_keys() > 0

    def add(self, entries: list[_Entry]) -> None:
        """Queue keys admitted together (cancelled, if the runner has closed meanwhile)."""
        with self._runner._lock:
            if not self._runner._closed.is_set():
                self._queue += entries
                return
        self._cancelled(entries)

    def dispatch(self) -> None:
        """Send what is queued and due, as the class says; start the retry timer if needed."""
        runner = self._runner
        groups: list[list[_Entry]] = []
        singles: list[_Entry] = []
        dropped: list[_Entry] = []
        timer = False
        with runner._lock:
            if runner._closed.is_set():
                return
            now = time.monotonic()
            live = []
            for entry in self._queue:
                if entry.stop.is_set() or entry.future.cancelled():
                    dropped.append(entry)
                else:
                    live.append(entry)
            ready = [entry for entry in live if entry.ready_at <= now]
            limit = self._max_keys()
            if limit <= 0:
                singles, self._queue = live, []
            else:
                groups = self._cut(ready, limit)
                sent = {id(entry) for group in groups for entry in group}
                self._queue = [entry for entry in live if id(entry) not in sent]
                self._running += len(groups)
            if not self._timer and any(entry.ready_at > now for entry in self._queue):
                self._timer = timer = True
            elif self._timer and (singles or any(entry.ready_at <= now for entry in self._queue)):
                runner._wake.notify_all()  # keys wait: perhaps for the timer's worker (see `_in_the_way`)
        for entry in dropped:
            self._fail(entry, self._error_type(entry.key, "cancelled before the request started"))
        for group in groups:
            self._submit(self._send, group)
        for entry in singles:
            self._submit(self._one, [entry])
        if timer:
            self._submit(self._wait_for_retries, [])

    def _cut(self, ready: list[_Entry], limit: int) -> list[list[_Entry]]:
        """The requests to send now from the ``ready`` keys, in order (the runner's lock held).

        Keys that wait for a free slot are cut again into requests no smaller than those they
        were cut for (``_size``), so that a queue spread over requests is not spread again as
        its first ones leave."""
        free = self._free(timer=self._timer)
        if not ready:
            self._size = 0  # no key waits for a slot any more (sent, or dropped)
            return []
        if free <= 0:
            return []
        with self._sizes:
            fetched, fetched_bytes = self._fetched, self._fetched_bytes
        blind = self._max_bytes is not None and not fetched  # blobs of no known size yet: see BLIND_GROUP
        group = BLIND_GROUP if blind else MIN_GROUP
        size = min(limit, math.ceil(len(ready) / max(1, min(GROUP_SPREAD, len(ready) // group))))
        if self._max_bytes is not None and fetched_bytes:  # none yet, or all empty: no estimate
            size = min(size, max(1, self._max_bytes * fetched // fetched_bytes))
        size = max(size, min(self._size, limit))
        count = math.ceil(len(ready) / size)  # as even as they go: none far smaller than the rest
        groups = [ready[i * len(ready) // count:(i + 1) * len(ready) // count] for i in range(count)]
        self._size = size if len(groups) > free else 0
        return groups[:free]

    def _free(self, *, timer: bool) -> int:
        """How many requests may start now, the retry timer's worker counted as busy or not
        (the runner's lock held)."""
        runner = self._runner
        free = runner.max_workers - self._running - timer
        if runner.fail_fast_after and not runner._answered.is_set():
            free = min(free, runner.fail_fast_after - self._running)  # fail fast, counted in requests
        return free

    def _in_the_way(self) -> bool:
        """Whether the retry timer should give its worker up and dispatch now (the runner's
        lock held): keys are ready that only its worker keeps from going, or no queued key
        waits for a retry any more (keys sent one a request once batches are off, say), rather
        than hold the worker until a retry falls due."""
        now = time.monotonic()
        if not any(entry.ready_at > now for entry in self._queue):
            return True
        return self._free(timer=False) > 0 and any(entry.ready_at <= now for entry in self._queue)

    def _submit(self, work: Callable[[list[_Entry]], None], entries: list[_Entry]) -> None:
        """Run ``work(entries)`` on a worker; if it never runs (the runner closed), the entries
        end cancelled."""
        future = self._runner._submit(work, entries)
        if future is None:
            self._cancelled(entries)
        else:
            future.add_done_callback(lambda ran: self._cancelled(entries) if ran.cancelled() else None)

    def _cancelled(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self._fail(entry, self._error_type(entry.key, "cancelled: the batch was closed"))

    def _wait_for_retries(self, _: list[_Entry]) -> None:
        """Wait until the first queued retry not yet due falls due (one queued meanwhile that
        falls due sooner shortens the wait; keys ready that need this worker, or the runner
        closing, end it), then dispatch."""
        runner = self._runner
        with runner._lock:
            now = time.monotonic()
            self._timer_at = min((entry.ready_at for entry in self._queue if entry.ready_at > now), default=now)
            while (not runner._closed.is_set() and not self._in_the_way()
                   and (remaining := self._timer_at - time.monotonic()) > 0):
                runner._wake.wait(remaining)
            self._timer = False
            self._timer_at = math.inf
        self.dispatch()
        self._forget_when_idle()

    def _one(self, entries: list[_Entry]) -> None:
        """A key's own ``fallback`` job, its outcome on its future."""
        (entry,) = entries
        if not self._start(entry):
            return
        if self.note:
            entry.stats.batch_fallback = self.note
        try:
            value = self._fallback(entry.key, entry.stats, entry.stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            entry.future.set_exception(exc)
        else:
            entry.future.set_result(value)

    def _start(self, entry: _Entry) -> bool:
        """Mark a queued entry's future running; False if nobody wants it any more."""
        if not entry.started:
            if not entry.future.set_running_or_notify_cancel():
                return False
            entry.started = True
        if entry.stop.is_set() or self._runner._closed.is_set():
            self._fail(entry, self._error_type(entry.key, "cancelled before the request started"))
            return False
        return True

    def _send(self, entries: list[_Entry]) -> None:
        """One group request on a worker; dispatches what is queued when it ends."""
        try:
            self._request(entries)
        except BaseException as exc:  # noqa: BLE001 - a bug (the watchdog's, say): the keys' callers get it
            for entry in entries:
                self._fail(entry, exc)
        finally:
            with self._runner._lock:
                self._running -= 1
            self.dispatch()
            self._forget_when_idle()

    def _request(self, entries: list[_Entry]) -> None:
        runner = self._runner
        # A throttled store's pause first, as it stands now: a key whose deadline comes first
        # ends then, unsent; what is wanted, and in time, is known after it.
        with runner._lock:
            resume_at = runner._resume_at
        while (now := time.monotonic()) < resume_at:
            if runner._closed.wait(min(resume_at, min(entry.ends_at for entry in entries)) - now):
                self._cancelled(entries)
                return
            entries = self._in_time(entries, time.monotonic())
            if not entries:
                return
        live = [entry for entry in self._in_time(entries, now) if self._start(entry)]
        if not live:
            return
        attempt = runner._watchdog.start(min(entry.ends_at for entry in live))
        if attempt is None:
            self._cancelled(live)
            return
        with runner._lock:
            runner._in_flight += 1
            for stats in {id(entry.stats): entry.stats for entry in live}.values():
                stats.batch_requests += 1
                stats.peak_in_flight = max(stats.peak_in_flight, runner._in_flight)
            for entry in live:
                entry.stats.count_request()
        pending = {entry.key: entry for entry in live}
        retry = _RequestRetry()
        failure: BaseException | None = None
        answers: Iterator[tuple[str, Any]] | None = None
        try:
            answers = self._run(list(pending))
            for key, value in answers:
                if key in pending:
                    self._answered(pending.pop(key), value, retry)
                if pending and (runner._closed.is_set() or all(e.stop.is_set() for e in pending.values())):
                    break  # nobody wants the rest: the request is abandoned
        except BaseException as exc:  # noqa: BLE001 - sorted out below, once the request has ended
            failure = exc
        finally:
            if answers is not None:
                close_answers(answers)
            runner._watchdog.end(attempt)
            with runner._lock:
                runner._in_flight -= 1
        self._after(list(pending.values()), failure, attempt, retry)

    def _in_time(self, entries: list[_Entry], now: float) -> list[_Entry]:
        """Those of ``entries`` whose deadline is still ahead at ``now``; the others end, unsent."""
        for entry in entries:
            if entry.ends_at <= now and self._start(entry):
                self._fail(entry, _not_sent(entry.key, None, self._runner.deadline, self._error_type))
        return [entry for entry in entries if entry.ends_at > now]

    def _after(
        self, pending: list[_Entry], failure: BaseException | None, attempt: _Attempt, retry: _RequestRetry
    ) -> None:
        """Settle the keys a request did not answer: retried (as ``retry`` says), failed, or
        sent one by one."""
        runner = self._runner
        try:
            runner._watchdog.raise_failure()
        except Exception as exc:  # noqa: BLE001 - the watchdog's bug reaches every caller
            failure = exc
        if failure is not None and not isinstance(failure, STORE_FAILURES):
            for entry in pending:
                entry.future.set_exception(failure)
            return
        if not pending:
            return
        if attempt.ended_by is not None:
            reason = runner._interrupted_reason(attempt)
            now = time.monotonic()
            for entry in pending:
                if attempt.ended_by == "close" or entry.ends_at <= now:
                    self._fail(entry, self._error_type(entry.key, reason))
                else:  # cut short for another key's deadline: sent again as it was
                    self._requeue(entry, now)
            return
        if isinstance(failure, BatchUnsupported):
            self.note = failure.message
            for entry in pending:
                entry.stats.batch_fallback = self.note
                self._submit(self._one, [entry])
            return
        if failure is None:
            for entry in pending:
                if entry.stop.is_set() or runner._closed.is_set():
                    self._fail(entry, self._error_type(entry.key, "cancelled: its request was abandoned"))
                else:
                    self._retry(entry, self._error_type(entry.key, "the answer did not include this key",
                                                        retryable=True), retry)
            return
        if not isinstance(failure, StoreError):
            failure = self._error_type(pending[0].key, f"{type(failure).__name__}: {failure}")
        if not failure.store_wide:
            runner._mark_answered()
        retrying = [(entry, delay) for entry in pending
                    if (delay := self._retry_delay(entry, self._copy(entry.key, failure))) is not None]
        if retrying and not retry.pay(runner.budget):
            for entry, _ in retrying:
                self._fail(entry, _budget_spent(self._copy(entry.key, failure)))
            return
        for entry, delay in retrying:
            self._schedule(entry, failure, retry.due(delay, failure))

    def _answered(self, entry: _Entry, value: Any, retry: _RequestRetry) -> None:
        """One key's answer: its value handed over, or its error retried (as ``retry`` says) or
        reported."""
        runner = self._runner
        if isinstance(value, StoreError):
            if not value.store_wide:
                runner._mark_answered()
            self._retry(entry, value, retry)
            self.dispatch()  # its retry goes out when due, not when this request ends
            return
        runner.budget.record_success(retried=entry.retries > 0)
        if isinstance(value, (bytes, bytearray, memoryview)):
            with self._sizes:
                self._fetched_bytes += len(value)
                self._fetched += 1
        # The value first, then the word that the store answered: a streaming call's consumer
        # then takes the value before it admits the next keys, not after.
        entry.future.set_result(value)
        runner._mark_answered()

    def _retry(self, entry: _Entry, error: StoreError, retry: _RequestRetry) -> None:
        """Retry one key that failed alone in ``retry``'s request, as `BatchRunner.with_retries`
        would, but with the budget and the time of its request's retry; else fail it."""
        delay = self._retry_delay(entry, error)
        if delay is None:
            return
        if not retry.pay(self._runner.budget):
            self._fail(entry, _budget_spent(error))
            return
        self._schedule(entry, error, retry.due(delay, error))

    def _retry_delay(self, entry: _Entry, error: StoreError) -> float | None:
        """The wait before ``entry``'s next attempt after ``error``; None (the entry failed with
        it) when the policy, the deadline or its callers say it is not tried again."""
        entry.retries += 1
        delay = self._runner._retry_wait(entry.key, error, entry.retries, entry.stop, entry.ends_at,
                                         self._error_type)
        if isinstance(delay, StoreError):
            self._fail(entry, delay)
            return None
        return delay

    def _schedule(self, entry: _Entry, error: StoreError, ready_at: float) -> None:
        """Queue ``entry`` again, due at ``ready_at``; a throttled store holds every request."""
        self._runner._count_retry(entry.stats, error, max(0.0, ready_at - time.monotonic()))
        self._requeue(entry, ready_at)

    def _requeue(self, entry: _Entry, ready_at: float) -> None:
        with self._runner._lock:
            entry.ready_at = ready_at
            self._queue.append(entry)
            if ready_at < self._timer_at:  # the waiting timer must dispatch it sooner
                self._timer_at = ready_at
                self._runner._wake.notify_all()

    def _copy(self, key: str, error: StoreError) -> StoreError:
        """``key``'s own error for a failure of its whole request, the request's chained."""
        copy = self._error_type(key, error.message, retryable=error.retryable, retry_after=error.retry_after,
                                store_wide=error.store_wide, throttled=error.throttled, store=error.store)
        copy.__cause__ = error
        return copy

    def _fail(self, entry: _Entry, error: BaseException) -> None:
        """End ``entry`` in ``error``, unless it has ended already or its future was cancelled
        before it started."""
        if not entry.started and not entry.future.set_running_or_notify_cancel():
            return
        entry.started = True
        if not entry.future.done():
            entry.future.set_exception(error)

    def close(self) -> None:
        """End every queued key cancelled (the runner has closed)."""
        with self._runner._lock:
            queued, self._queue = self._queue, []
        self._cancelled(queued)

    def detach(self) -> None:
        """Groups made for one call, which has ended: its queued keys that no other call waits
        for end cancelled; those another call joined go on, and the runner forgets these groups
        once nothing is queued or running."""
        with self._runner._lock:
            self._detached = True
        self.dispatch()  # drops what nobody wants
        self._forget_when_idle()

    def _forget_when_idle(self) -> None:
        runner = self._runner
        with runner._lock:
            if self._detached and not (self._queue or self._running or self._timer) and self in runner._lanes:
                runner._lanes.remove(self)


class _RequestRetry:
    """The retries of the keys one group request left unanswered or failed alone: one retry
    from the budget for them all, since they were one request (a store throttling a request
    answers each of its operations 429), and one time they are due, so that those failed by
    then go again together."""

    def __init__(self) -> None:
        self.paid = False
        self.ready_at: float | None = None
        self.delay = 0.0  # the backoff that set ready_at

    def pay(self, budget: RetryBudget) -> bool:
        """Whether the request's keys may be retried: the budget's one retry spent on the
        first call, True on the later ones; False if the budget is spent."""
        if not self.paid:
            if not budget.try_spend():
                return False
            self.paid = True
        return True

    def due(self, delay: float, error: StoreError) -> float:
        """When a key failed with ``error``, due after ``delay`` by the policy, goes again: at
        the request's retry time (set by the first key's ``delay``, and again by the next key
        to fail once that time has passed), unless its own backoff is longer or the store
        asked for a time (``Retry-After``): then after that."""
        now = time.monotonic()
        if error.retry_after is not None or (self.ready_at is not None and delay > self.delay):
            return now + delay  # a time of its own: the store's, or a longer backoff than the others'
        if self.ready_at is None or self.ready_at <= now:  # none yet, or past: a retry right away is none
            self.ready_at, self.delay = now + delay, delay
        return self.ready_at


class _Interrupted(Exception):
    """A request the watchdog cut short; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Ahead:
    """What one streaming call holds ahead of its consumer: the finished keys not yet taken
    and their bytes, the mean size of what it has fetched, and whether the consumer has taken
    any yet. Thread-safe: the workers report what finishes, the consumer's thread what it takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken_any = False
        self._finished = 0
        self._held_bytes = 0
        self._fetched_bytes = 0
        self._fetched = 0

    def finished(self, future: Future[Any]) -> bool:
        """Count a finished key; True while the consumer has taken none yet."""
        size = _size(future)
        with self._lock:
            first = not self._taken_any
            self._finished += 1
            if size is not None:
                self._held_bytes += size
                self._fetched_bytes += size
                self._fetched += 1
        return first

    def taken(self, future: Future[Any]) -> None:
        size = _size(future)
        with self._lock:
            self._taken_any = True
            self._finished -= 1
            self._held_bytes -= size or 0

    def state(self) -> tuple[int, int, int | None]:
        """Bytes held, keys finished and held, and the mean size fetched (None: none yet)."""
        with self._lock:
            mean = self._fetched_bytes // self._fetched if self._fetched else None
            return self._held_bytes, self._finished, mean


def close_answers(answers: Iterator[object]) -> None:
    """End a stream of a request's answers early (its response closed), if it can be."""
    close = getattr(answers, "close", None)
    if close is not None:
        close()


def _not_sent(key: str, error: StoreError | None, deadline: float, error_type: type[StoreError]) -> StoreError:
    """The error of a key whose deadline passed before its next request could start: its last
    attempt's ``error``, saying so, or a new one if it had none."""
    if error is None:
        return error_type(key, f"not sent: the {deadline:g} s deadline passed")
    error.message = f"{error.message} (not retried: the {deadline:g} s deadline passed)"
    return error


def _budget_spent(error: _E) -> _E:
    """``error``, saying it was not retried for want of budget."""
    error.message = f"{error.message} (not retried: retry budget exhausted)"
    return error


def _least(bound: int | None, other: int | None) -> int | None:
    """The tighter of two bounds, None being no bound."""
    return other if bound is None else bound if other is None else min(bound, other)


def _some(fits: int | None) -> bool:
    """Whether a bound (None: no bound) leaves room for at least one more."""
    return fits is None or fits > 0


def _size(future: Future[Any]) -> int | None:
    """The size of a finished job's bytes; None for any other outcome."""
    if future.cancelled() or future.exception() is not None:
        return None
    value = future.result()
    return len(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _report_done(done: _Done, key: str, ahead: _Ahead, future: Future[Any]) -> None:
    """Count a finished job and put it in its call's queue. Until the consumer has taken its
    first value, give up the GIL after each: the consumer, idle until then, takes it now
    rather than up to the interpreter's switch interval (5 ms) later while this worker goes on
    reading the next answer. (Later values come while the consumer has work; a switch for
    each would cost a flood of them about a tenth of its speed.)"""
    waited_for = ahead.finished(future)
    done.put((key, future))
    if waited_for:
        time.sleep(0)


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
