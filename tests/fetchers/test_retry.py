"""RetryPolicy and RetryBudget as values."""

from __future__ import annotations

import email.utils
import random
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial

import pytest

from fetchers import FetchError, IntegrityError, RetryBudget, RetryPolicy
from fetchers.http import is_retryable_status, parse_retry_after
from testing.waiting import PATIENCE

pytestmark = pytest.mark.unit


def retryable(retry_after=None):
    return FetchError("k", "x", retryable=True, retry_after=retry_after)


def test_full_jitter_stays_under_the_exponential_cap():
    policy = RetryPolicy(max_attempts=10, base_backoff=0.1, max_backoff=1.0)
    rng = random.Random(7)
    for retry_number, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay(retryable(), retry_number, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # jitter covers the range


def test_gives_up_after_max_attempts_and_on_permanent_errors():
    policy = RetryPolicy(max_attempts=3)
    assert policy.delay(retryable(), 2) is not None
    assert policy.delay(retryable(), 3) is None
    assert policy.delay(FetchError("k", "denied"), 1) is None


def test_retry_after_sets_a_floor_and_a_ceiling():
    policy = RetryPolicy(base_backoff=0.01, max_retry_after=5)
    assert policy.delay(retryable(retry_after=2.5), 1) == 2.5
    assert policy.delay(retryable(retry_after=6), 1) is None


def test_integrity_errors_are_retried_once():
    policy = RetryPolicy(max_attempts=5)
    assert policy.delay(IntegrityError("k"), 1) is not None
    assert policy.delay(IntegrityError("k"), 2) is None


THREADS = 8
CALLS = 1_000


def all_at_once(work: Callable[[], int]) -> list[int]:
    """What ``work()`` returns on each of `THREADS` threads, started together behind a barrier
    while the interpreter switches threads every microsecond (as often as it can)."""
    barrier = threading.Barrier(THREADS)
    results: list[int] = []

    def run() -> None:
        barrier.wait(PATIENCE)
        results.append(work())

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PATIENCE)
    finally:
        sys.setswitchinterval(switch_interval)
    assert len(results) == THREADS
    return results


def spend(budget: RetryBudget) -> int:
    """Ask ``budget`` to pay for `CALLS` retries; how many it paid for."""
    return sum(budget.try_spend() for _ in range(CALLS))


def refill(budget: RetryBudget) -> int:
    """Count `CALLS` successes in ``budget``."""
    for _ in range(CALLS):
        budget.record_success()
    return CALLS


def test_budget_is_shared_safely_between_threads():
    # Amounts in Fractions: exact, and their arithmetic is Python code, where the interpreter
    # may switch threads between a budget's reading of its tokens and its writing them back.
    # (CPython does not switch threads inside float arithmetic: with floats, a budget without
    # its lock passes too.) Over rounds of threads spending, then refilling, one budget at
    # once, every token is accounted for.
    paid_for = THREADS * CALLS // 2
    for _ in range(5):
        budget = RetryBudget(retry_cost=Fraction(1), success_refill=Fraction(1, 3), initial=Fraction(paid_for),
                             capacity=Fraction(10 * THREADS * CALLS))
        assert sum(all_at_once(partial(spend, budget))) == paid_for  # not one retry more
        assert budget.tokens == 0
        all_at_once(partial(refill, budget))
        assert budget.tokens == Fraction(THREADS * CALLS, 3)  # nor one success less


def test_budget_refills_with_successes_up_to_capacity():
    budget = RetryBudget(retry_cost=5, success_refill=1, initial=0, capacity=6)
    assert not budget.try_spend()
    for _ in range(4):
        budget.record_success()
    assert budget.tokens == 4 and not budget.try_spend()
    budget.record_success(retried=True)  # a success on a retry gives its cost back
    assert budget.tokens == 6  # capped
    assert budget.try_spend() and budget.tokens == 1 and not budget.try_spend()


def test_default_budget_retries_a_burst_of_a_hundred_and_earns_it_back():
    budget = RetryBudget()
    assert sum(budget.try_spend() for _ in range(120)) == 100
    for _ in range(100):
        budget.record_success(retried=True)
    assert budget.tokens == 500


def test_invalid_policies_are_refused():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryBudget(initial=5, capacity=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 7 ", 7.0), ("0.5", None), ("-4", None), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    in_ten_seconds = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert parse_retry_after(in_ten_seconds) == pytest.approx(10.0, abs=1.5)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT") == 0.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, True), (503, True), (500, True), (408, True), (404, False), (403, False), (200, False), (None, False)],
)
def test_retryable_statuses(status, expected):
    assert is_retryable_status(status) is expected
