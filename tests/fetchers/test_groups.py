"""BatchPrefetcher over a fetcher that reads many keys a request (`fetchers.batch.Groups`),
through its public API, over a scripted in-memory `ManyFetcher`."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchers import BatchPrefetcher, BatchStats, BlobNotFound, FetchError, IntegrityError, RetryBudget, RetryPolicy
from fetchers.batch import BLIND_GROUP, GROUP_SPREAD, MIN_GROUP, REFILL_AT, BatchRunner, Groups, _Entry
from fetchers.errors import BatchUnsupported
from fetchers.protocol import ManyFetcher
from testing.waiting import PATIENCE, wait_until

from .helpers import FAST_RETRY

pytestmark = pytest.mark.unit

SIZE = 1_000


def blob_for(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest() * (SIZE // 32 + 1)


def keys(count: int, prefix: str = "k") -> list[str]:
    return [f"{prefix}{i:04}" for i in range(count)]


class AtTheCap(random.Random):
    """The retry policy's full jitter drawn at its cap, every time: no retry is then due before
    a request's last part, which a draw near 0 could make (that key going again alone)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class ScriptedMany:
    """Thread-safe fake store answering many keys a request.

    ``scripts``: per key, outcomes of its successive attempts ("ok", "missing", "retry",
    "throttled", "fatal", "corrupt"; the last repeats; "retry after S" and "throttled after
    S" ask for a retry after S seconds). ``requests``: per request, in order,
    how the whole request goes ("ok", "refused": a retryable failure before any answer,
    "cut": answers half its keys then fails, "unsupported": no batch route, "bug"); past the
    list every request is "ok". ``gate``: keys whose answer waits for the event, and so comes
    after the others of its request (``waiting``: the gated keys whose answer waits now).
    Records every request's keys, every key's attempts and single fetches.
    """

    def __init__(self, scripts=None, requests=None, *, limit: int = 1000, gate=None):
        self.scripts = scripts or {}
        self.request_script = list(requests or [])
        self.limit = limit
        self.gate: dict[str, threading.Event] = gate or {}
        self.requests: list[list[str]] = []
        self.attempts: Counter[str] = Counter()
        self.singles: Counter[str] = Counter()
        self.answered: list[str] = []
        self.waiting: set[str] = set()
        self.lock = threading.Lock()

    @property
    def batch_keys(self) -> int:
        return self.limit

    def fetch(self, key: str) -> bytes:
        with self.lock:
            self.singles[key] += 1
        return blob_for(key)

    def fetch_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes | FetchError]]:
        assert keys and len(set(keys)) == len(keys)
        if not self.limit:
            raise BatchUnsupported(keys[0], "no batch route")
        assert len(keys) <= self.limit
        with self.lock:
            number = len(self.requests)
            self.requests.append(list(keys))
        how = self.request_script[number] if number < len(self.request_script) else "ok"
        return self._answers(list(keys), how)

    def _answers(self, keys: list[str], how: str) -> Iterator[tuple[str, bytes | FetchError]]:
        if how == "refused":
            raise FetchError(keys[0], "HTTP 503", retryable=True, throttled=True)
        if how == "unsupported":
            self.limit = 0
            raise BatchUnsupported(keys[0], "no batch route")
        if how == "bug":
            raise IndexError("planted")
        # In completion order, as objectstore answers: the keys held back come last.
        keys = [key for key in keys if key not in self.gate] + [key for key in keys if key in self.gate]
        for position, key in enumerate(keys):
            if how == "cut" and position == len(keys) // 2:
                raise FetchError(key, "answer cut off", retryable=True)
            if key in self.gate:
                with self.lock:
                    self.waiting.add(key)
                assert self.gate[key].wait(PATIENCE)
                with self.lock:
                    self.waiting.discard(key)
            with self.lock:
                attempt = self.attempts[key]
                self.attempts[key] += 1
                self.answered.append(key)
            script = self.scripts.get(key, ["ok"])
            yield key, self._outcome(key, script[min(attempt, len(script) - 1)])

    @staticmethod
    def _outcome(key: str, outcome: str) -> bytes | FetchError:
        outcome, _, after = outcome.partition(" after ")
        retry_after = float(after) if after else None
        if outcome == "missing":
            return BlobNotFound(key)
        if outcome == "retry":
            return FetchError(key, "HTTP 500", retryable=True, retry_after=retry_after)
        if outcome == "throttled":
            return FetchError(key, "HTTP 429", retryable=True, throttled=True, retry_after=retry_after)
        if outcome == "fatal":
            return FetchError(key, "HTTP 400")
        if outcome == "corrupt":
            return b"not the content"
        return blob_for(key)


def no_fetch_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("snapcompare-fetch")]


def test_the_scripted_store_is_a_many_fetcher():
    assert isinstance(ScriptedMany(), ManyFetcher)


def test_every_unique_key_is_one_operation_in_few_requests():
    fetcher = ScriptedMany()
    wanted = keys(700)
    with BatchPrefetcher(fetcher, max_workers=16) as prefetcher:
        result = prefetcher.fetch_all(wanted + wanted[::-1] + wanted[:100])
    assert result.blobs == {key: blob_for(key) for key in wanted} and not result.errors
    assert fetcher.attempts == Counter(dict.fromkeys(wanted, 1)) and not fetcher.singles
    assert len(fetcher.requests) <= GROUP_SPREAD
    assert max(len(request) for request in fetcher.requests) == math.ceil(700 / GROUP_SPREAD)
    assert result.stats.batch_requests == len(fetcher.requests)
    assert result.stats.fetches_issued == 700 and result.stats.unique_keys == 700
    assert no_fetch_threads()


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 2_500), workers=st.integers(1, 16), known=st.booleans())
def test_a_queue_goes_in_few_even_requests_of_min_group_keys_or_more(count, workers, known):
    # Once a blob's size is known, at least MIN_GROUP keys a request; before, BLIND_GROUP, all
    # sent at once here (keys cut blind that wait for a slot are cut again, by the sizes known
    # by then, into requests no smaller).
    fetcher = ScriptedMany()
    workers = workers if known else max(workers, GROUP_SPREAD)
    with BatchPrefetcher(fetcher, max_workers=workers, fail_fast_after=3 if known else 0) as prefetcher:
        if known:
            prefetcher.fetch_all(["first"])
            fetcher.requests.clear()
        result = prefetcher.fetch_all(keys(count))
    assert len(result.blobs) == count
    sizes = sorted(len(request) for request in fetcher.requests)
    assert sum(sizes) == count
    group = MIN_GROUP if known else BLIND_GROUP
    assert len(sizes) == max(1, min(GROUP_SPREAD, count // group))
    assert sizes[0] >= min(count, group) and sizes[-1] - sizes[0] <= 1


def test_keys_cut_blind_that_wait_are_cut_again_by_the_sizes_known_and_later_keys_too():
    # Until the store answers, 3 requests of the 6 cut blind go; the 75 keys left are cut once
    # sizes are known (small blobs: one request), and a later call's keys by the same rule.
    fetcher = ScriptedMany()
    with BatchPrefetcher(fetcher, max_workers=16, fail_fast_after=3) as prefetcher:
        prefetcher.fetch_all(keys(6 * 25))
        first = [len(request) for request in fetcher.requests]
        fetcher.requests.clear()
        prefetcher.fetch_all(keys(2_000, prefix="n"))
    assert sorted(first) == [25, 25, 25, 75]  # requests sent by different workers: in any order
    assert len(fetcher.requests) == GROUP_SPREAD and min(map(len, fetcher.requests)) >= MIN_GROUP


def test_a_key_that_fails_alone_is_retried_while_its_request_still_runs():
    wanted = keys(10)
    late, slow = threading.Event(), threading.Event()
    fetcher = ScriptedMany({wanted[8]: ["retry", "ok"]}, gate={wanted[8]: late, wanted[9]: slow})
    with BatchPrefetcher(fetcher, max_workers=4, retry=FAST_RETRY) as prefetcher:
        results = []
        caller = threading.Thread(target=lambda: results.append(prefetcher.fetch_all(wanted)))
        caller.start()
        wait_until(lambda: len(fetcher.answered) == 8)  # the store has answered: no more wake-ups
        late.set()
        wait_until(lambda: fetcher.attempts[wanted[8]] == 2)  # while the first request waits on the last key
        assert len(fetcher.requests) == 2 and fetcher.requests[1] == [wanted[8]]
        slow.set()
        caller.join(PATIENCE)
    assert results[0].blobs == {key: blob_for(key) for key in wanted} and not results[0].errors


def test_until_the_store_answers_only_fail_fast_after_requests_are_out():
    release = threading.Event()
    fetcher = ScriptedMany(gate={key: release for key in keys(700)})
    answered_when_sent: list[int] = []
    fetch_many = fetcher.fetch_many

    def counting(batch):
        answered_when_sent.append(len(fetcher.answered))
        return fetch_many(batch)

    fetcher.fetch_many = counting
    with BatchPrefetcher(fetcher, max_workers=16, fail_fast_after=3) as prefetcher:
        caller = threading.Thread(target=prefetcher.fetch_all, args=(keys(700),))
        caller.start()
        wait_until(lambda: len(answered_when_sent) == 3)
        release.set()
        caller.join(PATIENCE)
    assert answered_when_sent[:3] == [0, 0, 0] and all(answered_when_sent[3:])


def test_a_request_never_exceeds_the_fetchers_batch_keys():
    fetcher = ScriptedMany(limit=50)
    with BatchPrefetcher(fetcher, max_workers=4) as prefetcher:
        result = prefetcher.fetch_all(keys(500))
    assert len(result.blobs) == 500
    assert max(len(request) for request in fetcher.requests) == 50


def test_empty_blobs_size_no_request_by_bytes():
    # Blobs of 0 bytes give no estimate of a request's bytes: requests go by count alone.
    class Empty(ScriptedMany):
        def fetch_many(self, batch):
            for key, value in super().fetch_many(batch):
                yield key, b"" if isinstance(value, bytes) else value

    fetcher = Empty()
    with BatchPrefetcher(fetcher, max_workers=4, max_batch_bytes=10 * SIZE) as prefetcher:
        first = prefetcher.fetch_all(keys(20, prefix="first"))
        result = prefetcher.fetch_all(keys(300))
    assert first.blobs == dict.fromkeys(keys(20, prefix="first"), b"")
    assert result.blobs == dict.fromkeys(keys(300), b"") and not result.errors
    assert len(fetcher.requests) == 1 + 3


def test_requests_are_sized_by_expected_bytes():
    # Once blobs are known to be about SIZE bytes, a request carries about max_batch_bytes.
    fetcher = ScriptedMany()
    with BatchPrefetcher(fetcher, max_workers=4, max_batch_bytes=10 * SIZE) as prefetcher:
        prefetcher.fetch_all(keys(20, prefix="first"))
        sent = len(fetcher.requests)
        result = prefetcher.fetch_all(keys(200))
    assert len(result.blobs) == 200
    assert max(len(request) for request in fetcher.requests[sent:]) == 9


def test_concurrent_callers_share_one_operation_per_key():
    # Each caller's first key tells the size of a blob; the forty keys they share are answered
    # only once all three callers have asked for every one of them.
    release = threading.Event()
    fetcher = ScriptedMany(gate={key: release for key in keys(40)})
    stats = [BatchStats() for _ in range(3)]
    results: list[dict[str, object]] = []

    def call(number: int) -> None:
        results.append(dict(prefetcher.iter_fetch([f"size{number}", *keys(40)], stats=stats[number])))

    # Held requests hold workers: enough for every caller's (at most five each) to be sent.
    with BatchPrefetcher(fetcher, max_workers=16, fail_fast_after=0) as prefetcher:
        callers = [threading.Thread(target=call, args=(number,)) for number in range(3)]
        for caller in callers:
            caller.start()
        wait_until(lambda: sum(s.shared for s in stats) == 80)
        release.set()
        for caller in callers:
            caller.join(PATIENCE)
    assert len(results) == 3 and all(len(result) == 41 for result in results)
    assert fetcher.attempts == Counter(dict.fromkeys([*keys(40), "size0", "size1", "size2"], 1))


def test_blobs_are_handed_over_as_their_answers_arrive():
    # The request's last key is held back: every other blob reaches the consumer before it.
    wanted = keys(30)
    last = threading.Event()
    fetcher = ScriptedMany(gate={wanted[-1]: last})
    with BatchPrefetcher(fetcher, max_workers=2, fail_fast_after=0) as prefetcher:
        stream = prefetcher.iter_fetch(wanted)
        received = [next(stream)[0] for _ in range(29)]
        assert set(received) == set(wanted[:-1]) and wanted[-1] not in fetcher.answered
        last.set()
        assert next(stream)[0] == wanted[-1]
        assert next(stream, None) is None


def test_a_key_that_fails_alone_is_retried_alone_within_the_budget():
    scripts = {"k0003": ["throttled", "throttled", "ok"], "k0004": ["missing"], "k0005": ["fatal"]}
    fetcher = ScriptedMany(scripts)
    budget = RetryBudget()
    with BatchPrefetcher(fetcher, max_workers=4, retry=FAST_RETRY, budget=budget) as prefetcher:
        result = prefetcher.fetch_all(keys(20))
    assert result.blobs["k0003"] == blob_for("k0003")
    assert isinstance(result.errors["k0004"], BlobNotFound) and not result.errors["k0005"].retryable
    assert set(result.errors) == {"k0004", "k0005"}
    assert fetcher.attempts["k0003"] == 3 and fetcher.attempts["k0004"] == 1
    assert [request for request in fetcher.requests if "k0003" in request][1:] == [["k0003"], ["k0003"]]
    assert result.stats.retries == 2 and result.stats.fetches_issued == 22
    assert budget.tokens == 500  # two retries spent, and given back by the retried success


def test_the_keys_a_request_failed_alone_cost_one_retry_and_go_again_together():
    # A store throttling a request answers each operation 429: that is one request to retry,
    # not one per key, or one busy answer would spend the budget a whole run shares.
    fetcher = ScriptedMany({key: ["throttled"] for key in keys(10)})
    budget = RetryBudget(capacity=15, retry_cost=5, success_refill=0)
    patient = RetryPolicy(max_attempts=10, max_throttled_attempts=10, base_backoff=0.2, max_backoff=0.2)
    with BatchPrefetcher(fetcher, max_workers=2, retry=patient, budget=budget, fail_fast_after=0) as prefetcher:
        prefetcher._rng = AtTheCap()
        result = prefetcher.fetch_all(keys(10))
    assert len(result.errors) == 10
    assert fetcher.requests == [keys(10)] * 4  # the budget's 3 retries, each of the whole request
    assert all("retry budget exhausted" in error.message for error in result.errors.values())


def test_a_request_refused_as_a_whole_is_retried_as_one():
    # One token pays for one retry: the whole request is one.
    wanted = keys(2 * BLIND_GROUP - 1)  # one request while no size is known
    fetcher = ScriptedMany(requests=["refused"])
    budget = RetryBudget(capacity=5, retry_cost=5, success_refill=0)
    with BatchPrefetcher(fetcher, max_workers=2, retry=FAST_RETRY, budget=budget, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(wanted)
    assert len(result.blobs) == len(wanted) and result.stats.retries == len(wanted)
    assert fetcher.requests == [wanted, wanted] and fetcher.attempts == Counter(dict.fromkeys(wanted, 1))


def test_a_request_refused_as_a_whole_goes_again_as_one_after_one_backoff():
    fetcher = ScriptedMany(requests=["refused"])  # a 503 without Retry-After: the policy's jittered backoff
    patient = RetryPolicy(base_backoff=0.2, max_backoff=0.2)
    with BatchPrefetcher(fetcher, max_workers=4, retry=patient, fail_fast_after=0) as prefetcher:
        prefetcher._rng = AtTheCap()
        result = prefetcher.fetch_all(keys(10))
    assert len(result.blobs) == 10 and fetcher.requests == [keys(10), keys(10)]


def test_an_answer_cut_off_keeps_what_arrived_and_retries_the_rest():
    fetcher = ScriptedMany(requests=["cut"])
    with BatchPrefetcher(fetcher, max_workers=2, retry=FAST_RETRY, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(keys(10))
    assert len(result.blobs) == 10
    assert fetcher.attempts == Counter(dict.fromkeys(keys(10), 1))
    assert fetcher.requests == [keys(10), keys(10)[5:]]


def test_verification_retries_a_corrupt_blob_once_then_reports_it():
    fetcher = ScriptedMany({"a" * 64: ["corrupt"]})
    good = hashlib.sha256(b"x").hexdigest()
    fetcher.scripts[good] = ["ok"]
    with BatchPrefetcher(fetcher, max_workers=2, verify=True, retry=FAST_RETRY) as prefetcher:
        result = prefetcher.fetch_all(["a" * 64])
    assert isinstance(result.errors["a" * 64], IntegrityError)
    assert fetcher.attempts["a" * 64] == 2


def test_iter_fetch_keeps_to_the_memory_budget_and_refills_in_groups():
    # Ten blobs fit the budget: no more keys are asked for than fit, and once full, none until
    # a quarter of it is free again: requests of several keys, not one or two a key. The gates
    # make the order certain: the look-ahead is full of keys not yet answered when the consumer
    # takes its second blob, and a blob or two of room is not yet a reason to send a request.
    first, rest = threading.Event(), threading.Event()
    wanted = keys(100)
    fetcher = ScriptedMany(gate={wanted[0]: first, **dict.fromkeys(wanted[2:11], rest)})
    budget = 10 * len(blob_for("k"))
    with BatchPrefetcher(fetcher, max_workers=2, max_pending_bytes=budget, fail_fast_after=0) as prefetcher:
        stream = prefetcher.iter_fetch(wanted)
        taken = [next(stream)[0]]
        first.set()
        taken.append(next(stream)[0])
        wait_until(lambda: len(fetcher.requests) == 2)  # sent as the consumer came back for more
        assert taken == [wanted[1], wanted[0]] and fetcher.requests == [wanted[:2], wanted[2:11]]
        rest.set()
        for key, _ in stream:
            taken.append(key)
            with fetcher.lock:
                asked = sum(len(request) for request in fetcher.requests)
            assert asked <= len(taken) + 10
    assert sorted(taken) == wanted
    refill = math.ceil(10 * (1 - REFILL_AT))  # the share of the look-ahead a refill waits for
    assert all(len(request) >= refill for request in fetcher.requests[2:-1]), [len(r) for r in fetcher.requests]


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 60), budget=st.integers(1, 5 * SIZE), workers=st.integers(1, 4),
       grouped=st.booleans())
def test_iter_fetch_hands_over_every_key_once_whatever_its_byte_budget(count, budget, workers, grouped):
    # A budget smaller than any blob, even of one byte, still lets one key go at a time.
    wanted = keys(count)
    fetcher = ScriptedMany(limit=1000 if grouped else 0)
    with BatchPrefetcher(fetcher, max_workers=workers, fail_fast_after=0, max_pending_bytes=budget) as prefetcher:
        taken = [key for key, _ in prefetcher.iter_fetch(wanted)]
    assert sorted(taken) == wanted


def test_a_byte_budget_below_one_byte_is_refused():
    with pytest.raises(ValueError, match="max_pending_bytes"):
        BatchPrefetcher(ScriptedMany(), max_pending_bytes=0)


def test_closing_the_iterator_cancels_keys_not_yet_requested():
    # The request carrying k0005 and k0006 answers its other keys, then waits at k0005, and
    # the consumer leaves. No request is sent for the keys still queued, and the request is
    # abandoned after k0005, before k0006.
    wanted = keys(500)
    hold = threading.Event()
    fetcher = ScriptedMany(gate={wanted[5]: hold, wanted[6]: hold}, limit=100)
    with BatchPrefetcher(fetcher, max_workers=1, fail_fast_after=0, max_pending=200) as prefetcher:
        stream = prefetcher.iter_fetch(wanted)
        for _ in range(5):
            next(stream)
        wait_until(lambda: wanted[5] in fetcher.waiting)
        stream.close()
        sent = len(fetcher.requests)
        hold.set()
        prefetcher.fetch_all(["probe"])
    assert fetcher.requests[sent:] == [["probe"]]
    assert wanted[5] in fetcher.answered and wanted[6] not in fetcher.answered
    assert no_fetch_threads()


def test_close_ends_a_call_waiting_for_a_retry():
    fetcher = ScriptedMany({"k0000": ["retry"]})
    prefetcher = BatchPrefetcher(fetcher, max_workers=1,
                                 retry=RetryPolicy(base_backoff=60, max_backoff=60, max_attempts=2))
    stats = BatchStats()
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.update(prefetcher.iter_fetch(["k0000"], stats=stats)))
    worker.start()
    wait_until(lambda: stats.retries == 1)
    prefetcher.close()
    worker.join(PATIENCE)
    assert not worker.is_alive() and "cancelled" in outcome["k0000"].message
    assert no_fetch_threads()


def test_a_store_without_batches_falls_back_to_one_request_a_key_once():
    fetcher = ScriptedMany(requests=["unsupported"])
    with BatchPrefetcher(fetcher, max_workers=4, fail_fast_after=0) as prefetcher:
        first = prefetcher.fetch_all(keys(30))
        second = prefetcher.fetch_all(keys(30, prefix="n"))
    assert len(first.blobs) == 30 and len(second.blobs) == 30
    assert len(fetcher.requests) == 1 and sum(fetcher.singles.values()) == 60
    assert first.stats.batch_fallback == "no batch route" == second.stats.batch_fallback


def test_a_bug_in_the_fetcher_reaches_the_caller_as_it_is():
    fetcher = ScriptedMany(requests=["bug"])
    with BatchPrefetcher(fetcher, max_workers=2) as prefetcher:
        with pytest.raises(IndexError, match="planted"):
            prefetcher.fetch_all(keys(5))
    assert no_fetch_threads()


def test_a_key_past_its_deadline_is_not_retried():
    fetcher = ScriptedMany({"k0000": ["retry"]})
    policy = RetryPolicy(base_backoff=10, max_backoff=10, max_attempts=3)
    with BatchPrefetcher(fetcher, max_workers=1, retry=policy, deadline=0.5) as prefetcher:
        result = prefetcher.fetch_all(["k0000"])
    # Full jitter may draw a wait that still fits: then the second attempt fails for good.
    assert "deadline" in result.errors["k0000"].message or fetcher.attempts["k0000"] == 2


def test_a_retry_queued_while_the_timer_waits_for_a_later_one_goes_out_when_due():
    gate = threading.Event()
    fetcher = ScriptedMany({"late": ["retry after 20", "ok"], "soon": ["retry after 0.05", "ok"]},
                           gate={"soon": gate})
    taken: list[str] = []
    with BatchPrefetcher(fetcher, max_workers=2, fail_fast_after=0,
                         retry=RetryPolicy(base_backoff=0, max_backoff=0)) as prefetcher:
        call = prefetcher.iter_fetch(["late", "soon"])

        def consume() -> None:
            taken.extend(key for key, _ in itertools.islice(call, 1))

        consumer = threading.Thread(target=consume)
        consumer.start()
        wait_until(lambda: fetcher.attempts["late"] == 1)  # its retry, 20 s away, holds the timer
        gate.set()
        consumer.join(PATIENCE)
        assert not consumer.is_alive(), "a retry due in 0.05 s waited for one due in 20 s"
        call.close()
    assert taken == ["soon"] and fetcher.requests == [["late", "soon"], ["soon"]]


def test_keys_abandoned_during_a_throttle_pause_are_never_sent():
    fetcher = ScriptedMany({"t": ["throttled after 0.3", "ok"]})
    with BatchPrefetcher(fetcher, max_workers=4, fail_fast_after=0,
                         retry=RetryPolicy(base_backoff=0, max_backoff=0)) as prefetcher:
        stats = BatchStats()
        first = prefetcher.iter_fetch(["d", "e", "t"], stats=stats)
        taken = next(first)[0]
        wait_until(lambda: stats.retries == 1)  # "t" was throttled: no request starts for 0.3 s
        held = ({"d", "e"} - {taken}).pop()  # fetched, not taken yet
        second = prefetcher.iter_fetch([held, "x", "y"])
        assert next(second)[0] == held  # while "x" and "y" wait in their request for the pause
        time.sleep(0.05)  # their request has begun (whichever way this goes, they must not be sent)
        second.close()
        assert "t" in {key for key, _ in first}  # the pause is over
        assert prefetcher.fetch_all(["z"]).blobs  # a request after it, while the runner is open
    assert not [request for request in fetcher.requests if {"x", "y"} & set(request)]


def test_a_failed_watchdog_reaches_every_call_and_none_hangs():
    interrupted = threading.Event()

    class BuggyInterrupt(ScriptedMany):
        def interrupt(self, thread_id: int) -> None:
            interrupted.set()
            raise RuntimeError("planted interrupt bug")

    gate = threading.Event()
    fetcher = BuggyInterrupt(gate={"slow": gate})
    outcomes: list[object] = []
    with BatchPrefetcher(fetcher, max_workers=2, deadline=0.2, fail_fast_after=0) as prefetcher:

        def call(keys: list[str]) -> None:
            try:
                outcomes.append(prefetcher.fetch_all(keys))
            except RuntimeError as exc:
                outcomes.append(exc)

        first = threading.Thread(target=call, args=(["slow"],))
        first.start()
        assert interrupted.wait(PATIENCE)
        gate.set()
        first.join(PATIENCE)
        later = threading.Thread(target=call, args=(["k0000", "k0001"],))
        later.start()
        later.join(PATIENCE)
        assert not first.is_alive() and not later.is_alive()
    assert [str(outcome) for outcome in outcomes] == ["planted interrupt bug"] * 2


@contextmanager
def _a_request_in_a_pause(pause: float) -> Iterator[tuple[_Entry, _Entry, list[tuple[object, ...]]]]:
    """Groups' own seam (`Groups.add` takes the runner's entries), on a runner closed on leaving:
    a throttle pause of ``pause`` s, and two keys queued in it for one request: "near", a retry
    whose deadline falls 0.1 s into the pause, and "fresh", due long after it. Yields both and
    the events, in order: "near" ending (with its error), each request sent (with whether the
    pause, as the runner holds it, was over)."""
    events: list[tuple[object, ...]] = []
    with BatchRunner(ScriptedMany(), max_workers=2, fail_fast_after=0, deadline=30) as runner:
        runner._count_retry(BatchStats(), FetchError("t", "HTTP 429", retryable=True, throttled=True), pause)
        pause_ends = runner._resume_at

        def run(keys):
            events.append(("sent", list(keys), time.monotonic() >= pause_ends))
            for key in keys:
                yield key, blob_for(key)

        groups = Groups(runner, run, max_keys=lambda: 100, fallback=lambda *_: None)
        stats = BatchStats()
        near = _Entry("near", stats, threading.Event(), ends_at=pause_ends - pause + 0.1)
        fresh = _Entry("fresh", stats, threading.Event(), ends_at=pause_ends + 30)
        near.future.add_done_callback(lambda done: events.append(("ended", done.exception())))
        groups.add([near, fresh])
        groups.dispatch()
        yield near, fresh, events


def test_a_request_whose_first_deadline_falls_inside_a_throttle_pause_waits_out_the_pause():
    # The retry fails unsent at its own deadline, while the pause still holds the fresh key; the
    # fresh key goes alone once the pause is over. What ends, why and in what order, not seconds.
    # A pause longer than any test: "near" ends at its deadline all the same, and nothing goes.
    with _a_request_in_a_pause(3600.0) as (near, fresh, events):
        wait_until(lambda: events)
        error = near.future.exception()
        assert events == [("ended", error)] and not fresh.future.done()
    assert type(error) is FetchError and error.message == "not sent: the 30 s deadline passed"
    assert "cancelled" in str(fresh.future.exception(PATIENCE))  # by the close, still held
    assert events == [("ended", error)]
    # A short one: once "near" has ended, "fresh" goes alone, after the pause.
    with _a_request_in_a_pause(0.6) as (near, fresh, events):
        assert fresh.future.result(PATIENCE) == blob_for("fresh")
    error = near.future.exception()
    assert type(error) is FetchError and error.message == "not sent: the 30 s deadline passed"
    assert events == [("ended", error), ("sent", ["fresh"], True)]


@pytest.mark.parametrize("batches", ["on", "switched off meanwhile"])
def test_with_one_worker_a_fresh_key_does_not_wait_for_a_pending_retry(batches):
    # The retry timer waits on a worker; with one worker, keys that become ready take it over
    # (sent one a request, once batches are off).
    fetcher = ScriptedMany({"late": ["retry after 20", "ok"]})
    with BatchPrefetcher(fetcher, max_workers=1, fail_fast_after=0,
                         retry=RetryPolicy(base_backoff=0, max_backoff=0)) as prefetcher:
        stats = BatchStats()
        late = prefetcher.iter_fetch(["late"], stats=stats)
        waiting = threading.Thread(target=lambda: list(late))
        waiting.start()
        wait_until(lambda: stats.retries == 1)  # its retry is 20 s away
        if batches != "on":
            fetcher.limit = 0

        outcome: dict[str, object] = {}
        fresh = threading.Thread(target=lambda: outcome.update(prefetcher.fetch_all(["fresh"]).blobs))
        fresh.start()
        fresh.join(PATIENCE)
        assert not fresh.is_alive(), "a fresh key waited for a retry 20 s away"
        assert outcome == {"fresh": blob_for("fresh")}
        if batches == "on":
            assert fetcher.requests == [["late"], ["fresh"]]
        else:
            assert fetcher.requests == [["late"]] and fetcher.singles["fresh"] == 1
    waiting.join(PATIENCE)
    assert not waiting.is_alive()


def test_a_key_with_a_longer_backoff_than_its_request_s_others_keeps_it():
    from fetchers.batch import _RequestRetry

    error = FetchError("k", "HTTP 500", retryable=True)
    retry = _RequestRetry()
    first = retry.due(0.2, error)
    assert retry.due(0.1, error) == first  # goes with the first
    assert retry.due(6.4, error) > first + 6  # its own, longer backoff
    assert retry.due(0.3, FetchError("k", "HTTP 503", retryable=True, retry_after=0.3)) > first  # the store's time
