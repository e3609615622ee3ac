"""BatchPrefetcher behaviour through its public API, over a scripted in-memory fetcher."""

from __future__ import annotations

import hashlib
import threading
import time
import traceback
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchers import (
    BatchPrefetcher,
    BatchStats,
    BlobNotFound,
    FetchError,
    IntegrityError,
    RetryBudget,
    RetryPolicy,
    StoreUnavailable,
)
from testing.waiting import PATIENCE, wait_until

from .helpers import FAST_RETRY

pytestmark = pytest.mark.unit


def blob_for(key: str) -> bytes:
    return f"blob:{key}".encode() * 3


class ScriptedFetcher:
    """Thread-safe fake store: per key, a script of outcomes for successive attempts.

    An outcome is "ok", "missing", "retry" (retryable error), "fatal" (non-retryable),
    "boom" (an OS error, as a socket raises), "bug" (an ``IndexError``: a bug of the store's
    code) or "corrupt" (wrong bytes). When the script runs out the last outcome repeats.
    Records attempts per key and the peak number of concurrent calls. A test's subclass holds
    a fetch (counted, in flight) in `hold`.
    """

    def __init__(self, scripts=None, *, retry_after: float | None = None):
        self.scripts = scripts or {}
        self.retry_after = retry_after
        self.calls: Counter[str] = Counter()
        self.completed = 0
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    def fetch(self, key: str) -> bytes:
        with self.lock:
            attempt = self.calls[key]
            self.calls[key] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            self.hold(key)
            script = self.scripts.get(key, ["ok"])
            outcome = script[min(attempt, len(script) - 1)]
            if outcome == "missing":
                raise BlobNotFound(key)
            if outcome == "retry":
                raise FetchError(key, "throttled", retryable=True, retry_after=self.retry_after)
            if outcome == "fatal":
                raise FetchError(key, "denied")
            if outcome == "boom":
                raise ConnectionResetError("socket exploded")
            if outcome == "bug":
                raise IndexError("planted")
            if outcome == "corrupt":
                return b"not the content"
            return blob_for(key)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.completed += 1

    def hold(self, key: str) -> None:
        """Called as each fetch starts, once counted; returns at once."""


def no_fetch_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("snapcompare-fetch")]


def expected_attempts(script: list[str], policy: RetryPolicy) -> int:
    """Attempts the policy makes for a script (unbounded budget)."""
    for attempt in range(policy.max_attempts):
        outcome = script[min(attempt, len(script) - 1)]
        if outcome != "retry":
            return attempt + 1
    return policy.max_attempts


OUTCOMES = st.sampled_from(["ok", "missing", "retry", "fatal", "boom"])  # "bug" ends a call: see below


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.sampled_from([f"k{i}" for i in range(25)]), max_size=80),
    scripts=st.dictionaries(
        st.sampled_from([f"k{i}" for i in range(25)]), st.lists(OUTCOMES, min_size=1, max_size=5)
    ),
    workers=st.integers(1, 6),
)
def test_every_unique_key_resolved_once_with_exact_fetch_counts(keys, scripts, workers):
    fetcher = ScriptedFetcher(scripts)
    budget = RetryBudget(initial=1000, capacity=1000)
    with BatchPrefetcher(fetcher, max_workers=workers, retry=FAST_RETRY, budget=budget) as prefetcher:
        result = prefetcher.fetch_all(keys)

    unique = set(keys)
    assert set(result.blobs) | set(result.errors) == unique
    assert not set(result.blobs) & set(result.errors)
    for key in unique:
        script = scripts.get(key, ["ok"])
        attempts = expected_attempts(script, FAST_RETRY)
        assert fetcher.calls[key] == attempts, key
        final = script[min(attempts - 1, len(script) - 1)]
        if final == "ok":
            assert result.blobs[key] == blob_for(key)
        else:
            error = result.errors[key]
            assert error.key == key
            assert isinstance(error, BlobNotFound) == (final == "missing")
            assert error.retryable == (final == "retry")
            if final == "boom":
                assert isinstance(error.__cause__, ConnectionResetError)
    stats = result.stats
    assert stats.keys_requested == len(keys)
    assert stats.unique_keys == len(unique)
    assert stats.fetches_issued == sum(fetcher.calls.values()) == len(unique) + stats.retries
    assert stats.errors == len(result.errors)
    assert stats.bytes_fetched == sum(map(len, result.blobs.values()))
    assert fetcher.peak <= workers and stats.peak_in_flight <= workers
    assert no_fetch_threads()


def test_concurrency_reaches_but_never_exceeds_max_workers():
    all_in = threading.Barrier(5)

    class Meeting(ScriptedFetcher):
        def hold(self, key):
            if "k01" <= key <= "k05":  # once k00 has answered, five fetches wait for each other
                all_in.wait(PATIENCE)

    fetcher = Meeting()
    with BatchPrefetcher(fetcher, max_workers=5) as prefetcher:
        result = prefetcher.fetch_all([f"k{i:02}" for i in range(40)])
    assert len(result.blobs) == 40
    assert fetcher.peak == 5
    assert result.stats.peak_in_flight == 5


def test_batches_reuse_the_same_workers():
    fetcher = ScriptedFetcher()
    with BatchPrefetcher(fetcher, max_workers=3) as prefetcher:
        prefetcher.fetch_all(["a", "b", "c"])
        first = {t.ident for t in threading.enumerate() if t.name.startswith("snapcompare-fetch")}
        prefetcher.fetch_all(["d", "e", "f", "g"])
        second = {t.ident for t in threading.enumerate() if t.name.startswith("snapcompare-fetch")}
    assert first and first <= second and len(second) <= 3
    assert no_fetch_threads()


def test_concurrent_callers_share_one_fetch_of_the_same_key():
    release = threading.Event()
    entered = threading.Event()

    class Gated(ScriptedFetcher):
        def fetch(self, key):
            entered.set()
            assert release.wait(5)
            return super().fetch(key)

    fetcher = Gated()
    results: dict[str, object] = {}
    second_stats = BatchStats()
    with BatchPrefetcher(fetcher, max_workers=4) as prefetcher:
        first = threading.Thread(target=lambda: results.update(a=prefetcher.fetch_all(["shared", "x"])))
        first.start()
        assert entered.wait(5)
        second = threading.Thread(
            target=lambda: results.update(b=dict(prefetcher.iter_fetch(["shared", "y"], stats=second_stats)))
        )
        second.start()
        wait_until(lambda: second_stats.shared == 1)  # the second caller joined the running fetch
        release.set()
        first.join(5)
        second.join(5)
    assert fetcher.calls["shared"] == 1
    assert results["a"].blobs["shared"] == results["b"]["shared"] == blob_for("shared")
    assert second_stats.fetches_issued == 1  # only "y"


def test_iter_fetch_yields_as_fetches_complete():
    release = threading.Event()

    class SlowOne(ScriptedFetcher):
        def fetch(self, key):
            if key == "slow":
                assert release.wait(5)
            return super().fetch(key)

    fetcher = SlowOne()
    order = []
    with BatchPrefetcher(fetcher, max_workers=4) as prefetcher:
        for key, _ in prefetcher.iter_fetch(["slow", "a", "b", "c"]):
            order.append(key)
            if len(order) == 3:
                release.set()  # the others arrived while "slow" was still in flight
    assert order[-1] == "slow" and sorted(order) == ["a", "b", "c", "slow"]
    assert fetcher.calls == Counter({"slow": 1, "a": 1, "b": 1, "c": 1})


def test_iter_fetch_stays_bounded_with_a_slow_consumer():
    # While the consumer holds a key, the call holds at most max_pending - 1 others: once their
    # fetches have run, nothing more starts until the consumer asks for the next key.
    fetcher = ScriptedFetcher()
    with BatchPrefetcher(fetcher, max_workers=2, max_pending=5) as prefetcher:
        consumed = 0
        for _key, _value in prefetcher.iter_fetch([f"k{i}" for i in range(30)]):
            consumed += 1
            expected = min(consumed + 4, 30)
            wait_until(lambda expected=expected: sum(fetcher.calls.values()) >= expected)
            assert sum(fetcher.calls.values()) == expected
    assert consumed == 30


def test_iter_fetch_bounds_bytes_held_ahead_of_the_consumer():
    # Blobs of one size, four to the budget: once a size is known (the first blob's, by the time
    # the consumer has it), the call holds three fetched blobs besides the one its consumer has,
    # never more. (Before any size is known: test_iter_fetch_bounds_bytes_before_any_size_is_known.)
    size = len(blob_for("k00"))
    fetcher = ScriptedFetcher()
    with BatchPrefetcher(fetcher, max_workers=2, max_pending=100, max_pending_bytes=4 * size) as prefetcher:
        for consumed, _ in enumerate(prefetcher.iter_fetch([f"k{i:02}" for i in range(60)]), start=1):
            expected = min(consumed + 3, 60)
            wait_until(lambda expected=expected: fetcher.completed >= expected)
            assert fetcher.completed == expected


def test_iter_fetch_bounds_bytes_before_any_size_is_known():
    # k01..k03 hold three of the four workers, and no size of a blob held is known: so those are
    # all the call admitted, and another call's key goes straight to the fourth worker.
    release = threading.Event()

    class Gated(ScriptedFetcher):
        def hold(self, key):
            if key not in ("k00", "probe"):
                assert release.wait(PATIENCE)

    fetcher = Gated()
    size = len(blob_for("k00"))
    with BatchPrefetcher(fetcher, max_workers=4, max_pending=100, max_pending_bytes=2 * size) as prefetcher:
        stream = prefetcher.iter_fetch([f"k{i:02}" for i in range(60)])
        probe = threading.Thread(target=prefetcher.fetch_all, args=(["probe"],))
        try:
            assert next(stream)[0] == "k00"
            probe.start()
            wait_until(lambda: fetcher.calls["probe"] == 1)  # a fifth admitted key would hold it back
            assert set(fetcher.calls) <= {"k00", "k01", "k02", "k03", "probe"}
        finally:
            release.set()
            stream.close()
            if probe.ident is not None:
                probe.join()


def test_stats_are_filled_for_iter_fetch():
    stats = BatchStats()
    with BatchPrefetcher(ScriptedFetcher(), max_workers=2) as prefetcher:
        started = time.monotonic()
        items = dict(prefetcher.iter_fetch(["a", "b", "a"], stats=stats))
        elapsed = time.monotonic() - started
    assert set(items) == {"a", "b"}
    assert (stats.keys_requested, stats.unique_keys, stats.fetches_issued) == (3, 2, 2)
    assert 0 < stats.wall_time <= elapsed  # the call's own time, taken within it


def test_consumer_exception_cancels_pending_fetches():
    # Two keys hold the two workers when the consumer fails; of the keys admitted behind them
    # none may start: a key of another call, queued after them, runs next.
    release = threading.Event()

    class Gated(ScriptedFetcher):
        def hold(self, key):
            if key not in ("k0", "k1", "k2", "probe"):
                assert release.wait(PATIENCE)

    fetcher = Gated()
    with BatchPrefetcher(fetcher, max_workers=2, max_pending=50) as prefetcher:
        with pytest.raises(KeyboardInterrupt):
            for index, _ in enumerate(prefetcher.iter_fetch([f"k{i}" for i in range(200)])):
                if index == 2:
                    wait_until(lambda: sum(fetcher.calls.values()) == 5)  # k3 and k4 hold the workers
                    raise KeyboardInterrupt
        release.set()
        assert prefetcher.fetch_all(["probe"]).blobs == {"probe": blob_for("probe")}
    assert set(fetcher.calls) == {"k0", "k1", "k2", "k3", "k4", "probe"}
    assert no_fetch_threads()


def test_abandoned_fetch_stops_retrying():
    # One worker: "slow" (its first attempt on the wire when the consumer leaves) ends before the
    # key of another call runs, and it ends without a retry.
    release = threading.Event()

    class Throttled(ScriptedFetcher):
        def hold(self, key):
            if key == "slow":
                assert release.wait(PATIENCE)

    fetcher = Throttled({"slow": ["retry"]}, retry_after=0.0)
    budget = RetryBudget(retry_cost=1, success_refill=0, initial=1.0, capacity=1.0)
    with BatchPrefetcher(fetcher, max_workers=1, retry=RetryPolicy(max_attempts=10), budget=budget) as prefetcher:
        stream = prefetcher.iter_fetch(["fast", "slow"])
        assert next(stream)[0] == "fast"
        wait_until(lambda: fetcher.calls["slow"] == 1)
        stream.close()  # nobody wants "slow" any more; its first attempt is on the wire
        release.set()
        prefetcher.fetch_all(["probe"])
        assert fetcher.calls["slow"] == 1
    assert budget.tokens == 1.0  # an abandoned fetch spends no retry budget
    assert no_fetch_threads()


def test_close_interrupts_retry_waits():
    # The store asks for a minute's wait before the retry: close must not wait for it.
    fetcher = ScriptedFetcher({"k": ["retry"]}, retry_after=60.0)
    prefetcher = BatchPrefetcher(fetcher, max_workers=1, retry=RetryPolicy(max_retry_after=120))
    stats = BatchStats()
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.update(prefetcher.iter_fetch(["k"], stats=stats)))
    worker.start()
    wait_until(lambda: stats.retries == 1)  # the retry is waiting
    closer = threading.Thread(target=prefetcher.close, daemon=True)
    closer.start()
    closer.join(PATIENCE)
    assert not closer.is_alive()
    worker.join()
    assert "cancelled" in outcome["k"].message
    assert no_fetch_threads()


def test_closed_prefetcher_refuses_new_batches():
    prefetcher = BatchPrefetcher(ScriptedFetcher())
    prefetcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        prefetcher.fetch_all(["a"])


def test_retry_after_is_honoured():
    # The policy has no backoff at all, so the wait before a retry is the store's Retry-After:
    # one that would outlast the key's deadline is not started and the key is not retried (a
    # runner that did not wait what the store asked would retry at once); one that fits is
    # waited, then the key is retried.
    policy = RetryPolicy(max_attempts=4, base_backoff=0, max_backoff=0, max_retry_after=120)
    too_late = ScriptedFetcher({"k": ["retry", "ok"]}, retry_after=60.0)
    with BatchPrefetcher(too_late, max_workers=1, retry=policy, deadline=30) as prefetcher:
        result = prefetcher.fetch_all(["k"])
    assert too_late.calls["k"] == 1 and result.stats.retries == 0
    assert result.errors["k"].message == "throttled (not retried: the 30 s deadline would pass)"
    in_time = ScriptedFetcher({"k": ["retry", "ok"]}, retry_after=0.05)
    with BatchPrefetcher(in_time, max_workers=1, retry=policy, deadline=30) as prefetcher:
        result = prefetcher.fetch_all(["k"])
    assert in_time.calls["k"] == 2 and result.stats.retries == 1
    assert result.blobs["k"] == blob_for("k")


def test_retry_after_longer_than_allowed_is_not_retried():
    fetcher = ScriptedFetcher({"k": ["retry", "ok"]}, retry_after=120.0)
    with BatchPrefetcher(fetcher, retry=RetryPolicy(max_retry_after=10)) as prefetcher:
        result = prefetcher.fetch_all(["k"])
    assert fetcher.calls["k"] == 1 and result.errors["k"].retryable


def test_retry_budget_limits_retries_across_keys():
    keys = [f"k{i}" for i in range(6)]
    fetcher = ScriptedFetcher({key: ["retry"] for key in keys})
    budget = RetryBudget(retry_cost=1, success_refill=0, initial=2.0, capacity=2.0)
    with BatchPrefetcher(fetcher, max_workers=2, retry=FAST_RETRY, budget=budget) as prefetcher:
        result = prefetcher.fetch_all(keys)
    assert result.stats.retries == 2
    assert sum(fetcher.calls.values()) == len(keys) + 2
    assert set(result.errors) == set(keys)
    assert all("budget" in error.message and error.retryable for error in result.errors.values())


def test_budget_exhaustion_keeps_the_error_class():
    good = b"content"
    key = hashlib.sha256(good).hexdigest()
    fetcher = ScriptedFetcher({key: ["corrupt"]})
    budget = RetryBudget(retry_cost=1, success_refill=0, initial=0.0, capacity=1.0)
    with BatchPrefetcher(fetcher, verify=True, retry=FAST_RETRY, budget=budget) as prefetcher:
        error = prefetcher.fetch_all([key]).errors[key]
    assert isinstance(error, IntegrityError) and "budget" in error.message


def test_verify_retries_a_corrupt_body_once_then_reports_it():
    good = b"the real content"
    key = hashlib.sha256(good).hexdigest()

    class Store(ScriptedFetcher):
        def fetch(self, k):
            body = super().fetch(k)
            return body if body == b"not the content" else good

    flaky = Store({key: ["corrupt", "ok"]})
    broken = Store({key: ["corrupt"]})
    with BatchPrefetcher(flaky, verify=True, retry=FAST_RETRY) as prefetcher:
        assert prefetcher.fetch_all([key]).blobs[key] == good
    with BatchPrefetcher(broken, verify=True, retry=FAST_RETRY) as prefetcher:
        error = prefetcher.fetch_all([key]).errors[key]
    assert isinstance(error, IntegrityError)
    assert broken.calls[key] == 2


def test_verify_rejects_keys_that_are_not_sha256():
    with BatchPrefetcher(ScriptedFetcher(), verify=True) as prefetcher:
        error = prefetcher.fetch_all(["not-a-hash"]).errors["not-a-hash"]
    assert "sha256" in error.message and not error.retryable


def test_a_fetcher_returning_non_bytes_is_an_error():
    class Wrong:
        def fetch(self, key):
            return 42

    with BatchPrefetcher(Wrong()) as prefetcher:
        assert "int" in prefetcher.fetch_all(["a"]).errors["a"].message


def test_a_bug_in_the_fetcher_reaches_the_caller_as_it_is():
    fetcher = ScriptedFetcher({"bad": ["bug"]})
    with BatchPrefetcher(fetcher, max_workers=2, retry=FAST_RETRY) as prefetcher:
        with pytest.raises(IndexError, match="^planted$") as caught:
            prefetcher.fetch_all(["a", "bad", "b"])
        assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "fetch"  # raised there
        assert caught.value.__cause__ is None and caught.value.__context__ is None
        with pytest.raises(IndexError, match="^planted$"):
            list(prefetcher.iter_fetch(["bad"]))
        assert prefetcher.fetch_all(["c"]).blobs == {"c": blob_for("c")}  # the prefetcher still works
    assert fetcher.calls["bad"] == 2  # once per call: a bug is not retried
    assert no_fetch_threads()


def test_a_failing_interrupt_reaches_the_caller_as_it_is():
    interrupted = threading.Event()

    class BrokenInterrupt(ScriptedFetcher):
        def hold(self, key):
            assert interrupted.wait(PATIENCE)  # a request that only the deadline ends

        def interrupt(self, thread_id):
            interrupted.set()
            raise TypeError("planted")

    with BatchPrefetcher(BrokenInterrupt(), max_workers=1, deadline=0.01) as prefetcher:
        with pytest.raises(TypeError, match="^planted$") as caught:
            prefetcher.fetch_all(["k"])
    assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "interrupt"
    assert no_fetch_threads()


def test_refuses_more_workers_than_the_fetchers_connection_pool():
    class Pooled(ScriptedFetcher):
        max_connections = 4

    with pytest.raises(ValueError, match="max_connections=4"):
        BatchPrefetcher(Pooled(), max_workers=8)
    BatchPrefetcher(Pooled(), max_workers=4).close()


def test_rejects_objects_without_fetch():
    with pytest.raises(TypeError):
        BatchPrefetcher(object())


class UnusableStore(ScriptedFetcher):
    """Every fetch fails with one store-wide error (after ``fine`` keys that work)."""

    def __init__(self, error: FetchError, fine=()):
        super().__init__()
        self.error = error
        self.fine = set(fine)

    def fetch(self, key: str) -> bytes:
        data = super().fetch(key)
        if key in self.fine:
            return data
        raise FetchError(key, self.error.message, retryable=self.error.retryable, store_wide=True)


@pytest.mark.parametrize("retryable", [False, True])
def test_a_store_wide_failure_raises_store_unavailable_after_a_few_requests(retryable):
    fetcher = UnusableStore(FetchError("k", "S3 NoSuchBucket (HTTP 404)", retryable=retryable))
    keys = [f"k{i}" for i in range(300)]
    with BatchPrefetcher(fetcher, max_workers=32, retry=FAST_RETRY) as prefetcher:
        with pytest.raises(StoreUnavailable) as info:
            prefetcher.fetch_all(keys)
        with pytest.raises(StoreUnavailable):
            list(prefetcher.iter_fetch(keys))
    assert sum(fetcher.calls.values()) <= 2 * 5 * FAST_RETRY.max_attempts
    assert "NoSuchBucket" in str(info.value) and info.value.cause.store_wide


def test_missing_blobs_are_not_a_store_failure():
    fetcher = ScriptedFetcher({f"k{i}": ["missing"] for i in range(50)})
    with BatchPrefetcher(fetcher, max_workers=8) as prefetcher:
        result = prefetcher.fetch_all(f"k{i}" for i in range(50))
    assert len(result.errors) == 50 and all(isinstance(e, BlobNotFound) for e in result.errors.values())


def test_a_store_that_answered_reports_later_store_wide_errors_per_key():
    keys = [f"k{i}" for i in range(20)]
    fetcher = UnusableStore(FetchError("k", "HTTP 403"), fine=keys[:1])
    with BatchPrefetcher(fetcher, max_workers=1, retry=FAST_RETRY) as prefetcher:
        result = prefetcher.fetch_all(keys)
    assert list(result.blobs) == keys[:1] and set(result.errors) == set(keys[1:])


def test_fail_fast_can_be_turned_off():
    fetcher = UnusableStore(FetchError("k", "HTTP 403"))
    with BatchPrefetcher(fetcher, max_workers=4, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(f"k{i}" for i in range(10))
    assert len(result.errors) == 10 and fetcher.peak <= 4


def test_a_retry_held_by_a_throttle_pause_that_outlasts_its_deadline_is_not_made():
    # Gates, not sleeps, order the story. "b" fails at once, its retry due at once, but the
    # budget holds the payment for it until "a" has been throttled. "a" starts when "c" ends,
    # 1.5 s after "b" (the one wait for time itself, so that "a"'s deadline comes 1.5 s after
    # "b"'s), and asks every client to hold off for 0.5 s: until "b"'s deadline at least. Held
    # by that pause, "b"'s retry could start only after its deadline: it is not made. "a"'s own
    # retry is due 1.5 s before its deadline. Only a stop of the whole process for 1.5 s, at one
    # of a few instructions or during "a"'s wait, could change any of that.
    deadline, late, hold_off = 2.0, 1.5, 0.5
    stats = BatchStats()
    attempts: Counter[str] = Counter()
    lock = threading.Lock()
    b_started: list[float] = []
    b_paying = threading.Event()

    class PausingStore:
        def fetch(self, key: str) -> bytes:
            with lock:
                attempts[key] += 1
                attempt = attempts[key]
            if key == "b" and attempt == 1:
                b_started.append(time.monotonic())  # after its deadline was set
                raise FetchError(key, "HTTP 500", retryable=True)
            if key == "c":  # then "a", on this worker
                wait_until(lambda: b_paying.is_set() and time.monotonic() >= b_started[0] + late)
            if key == "a" and attempt == 1:
                raise FetchError(key, "HTTP 429", retryable=True, throttled=True, retry_after=hold_off)
            return blob_for(key)

    class HoldingBudget(RetryBudget):
        """Holds the payment for the first retry, "b"'s, until "a"'s retry, and its pause, is set."""

        def try_spend(self) -> bool:
            if not b_paying.is_set():
                b_paying.set()
                wait_until(lambda: stats.retries == 1)
            return super().try_spend()

    policy = RetryPolicy(base_backoff=0, max_backoff=0)
    with BatchPrefetcher(PausingStore(), max_workers=2, deadline=deadline, fail_fast_after=0, retry=policy,
                         budget=HoldingBudget()) as prefetcher:
        outcomes = dict(prefetcher.iter_fetch(["b", "c", "a"], stats=stats))
    assert outcomes["a"] == blob_for("a") and outcomes["c"] == blob_for("c")
    assert attempts == Counter({"a": 2, "b": 1, "c": 1})
    error = outcomes["b"]
    assert isinstance(error, FetchError) and error.message == "HTTP 500 (not retried: the 2 s deadline passed)"


def test_a_store_that_has_answered_is_not_declared_unusable_by_a_later_call():
    # Its keys speak for themselves: a read that timed out mid-body, say, is that key's error.
    class AnsweredOnce:
        def fetch(self, key: str) -> bytes:
            if key == "first":
                return b"blob"
            raise FetchError(key, "nothing read within the read timeout", retryable=False, store_wide=True)

    with BatchPrefetcher(AnsweredOnce(), max_workers=2) as prefetcher:
        assert prefetcher.fetch_all(["first"]).blobs == {"first": b"blob"}
        result = prefetcher.fetch_all(["a", "b", "c", "d"])
    assert sorted(result.errors) == ["a", "b", "c", "d"]
