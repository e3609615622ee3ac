"""When to try a failed fetch again, and how long to wait first.

`RetryPolicy` is a value: configured once and shared by every worker thread. `RetryBudget` is
the one piece of shared mutable state: it caps retries at a fraction of requests so that a
store which is throttling everyone is not hammered by retries on top.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .errors import FetchError, IntegrityError


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a key gets and how long to wait between them.

    Only errors marked ``retryable`` are retried. The n-th retry (n = 1, 2, ...) waits a
    uniformly random time in ``[0, min(max_backoff, base_backoff * 2 ** (n - 1))]``, "full
    jitter", which spreads the retries of many keys that failed together. With the defaults
    (``base_backoff=0.1``, ``max_backoff=5``) the caps are 0.1 s, 0.2 s, 0.4 s for the three
    retries that ``max_attempts=4`` allows.

    A server's ``Retry-After`` is honoured: the wait is then at least what it asked for. A
    server asking for more than ``max_retry_after`` seconds is not retried at all.
    An `IntegrityError` (a body that does not hash to its key) is retried at most
    ``integrity_retries`` times, since a store that keeps serving bad bytes will not improve.
    """

    max_attempts: int = 4
    base_backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0
    integrity_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff times must not be negative")

    def delay(self, error: FetchError, retry_number: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based) after ``error``; None: give up."""
        if not error.retryable or retry_number >= self.max_attempts:
            return None
        if isinstance(error, IntegrityError) and retry_number > self.integrity_retries:
            return None
        if error.retry_after is not None and error.retry_after > self.max_retry_after:
            return None
        cap = min(self.max_backoff, self.base_backoff * 2 ** (retry_number - 1))
        jittered = (rng or random).uniform(0.0, cap)
        return max(jittered, error.retry_after or 0.0)


class RetryBudget:
    """A token bucket that limits retries to a fraction of first attempts.

    It starts with ``initial`` tokens; every first attempt deposits ``ratio`` tokens (up to
    ``capacity``) and every retry withdraws one. With the defaults a burst of failures may
    retry 10 times, and steady failure may retry at most one request in five. Thread-safe.
    """

    def __init__(self, *, ratio: float = 0.2, initial: float = 10.0, capacity: float = 100.0) -> None:
        if ratio < 0 or initial < 0 or capacity < initial:
            raise ValueError("need ratio >= 0 and 0 <= initial <= capacity")
        self._ratio = ratio
        self._capacity = capacity
        self._tokens = initial
        self._lock = threading.Lock()

    def record_request(self) -> None:
        """Count a first attempt."""
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        """Take one token for a retry; False when the budget is exhausted."""
        with self._lock:
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        """Tokens left."""
        with self._lock:
            return self._tokens
