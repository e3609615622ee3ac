"""RetryPolicy and RetryBudget as values."""

from __future__ import annotations

import email.utils
import random
import threading
import time

import pytest

from fetchers import FetchError, IntegrityError, RetryBudget, RetryPolicy
from fetchers.http import is_retryable_status, parse_retry_after

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


def test_budget_is_shared_safely_between_threads():
    budget = RetryBudget(retry_cost=1, success_refill=0, initial=50, capacity=50)
    spent = []
    threads = [threading.Thread(target=lambda: spent.extend(budget.try_spend() for _ in range(20))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert spent.count(True) == 50


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
