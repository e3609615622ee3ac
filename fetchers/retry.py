"""When to try a failed fetch again, and how long to wait first.

`RetryPolicy` is a value: configured once and shared by every worker thread. `RetryBudget` is
the one piece of shared mutable state: a quota that successes refill, so that a burst of
failures is retried in full while a store that keeps failing is not hammered by retries.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .errors import IntegrityError, StoreError


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
    A throttled key (the store asked to slow down: 429, 503) gets up to
    ``max_throttled_attempts``: a burst of throttling costs time, and the `RetryBudget`, not
    the key, bounds how long a store that stays throttled is tried.
    """

    max_attempts: int = 4
    max_throttled_attempts: int = 10
    base_backoff: float = 0.1
    max_backoff: float = 5.0
    max_retry_after: float = 30.0
    integrity_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_throttled_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff times must not be negative")

    def delay(self, error: StoreError, retry_number: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based) after ``error``; None: give up."""
        limit = max(self.max_attempts, self.max_throttled_attempts) if error.throttled else self.max_attempts
        if not error.retryable or retry_number >= limit:
            return None
        if isinstance(error, IntegrityError) and retry_number > self.integrity_retries:
            return None
        if error.retry_after is not None and error.retry_after > self.max_retry_after:
            return None
        cap = min(self.max_backoff, self.base_backoff * 2 ** (retry_number - 1))
        jittered = (rng or random).uniform(0.0, cap)
        return max(jittered, error.retry_after or 0.0)


class RetryBudget:
    """A retry quota in the style of botocore's standard retry mode, shared by all workers.

    It holds up to ``capacity`` tokens (full at the start). A retry withdraws ``retry_cost``; a
    success deposits ``success_refill``, or gives back ``retry_cost`` when it came after a
    retry. With the defaults (500, 5, 1) a burst of 100 failed requests is retried in full,
    and a healthy store earns that back as it answers: a burst at the start costs time, not
    images. A store that keeps failing empties the quota and every later failure is final, so
    retries never multiply a dead store's load. Thread-safe.
    """

    def __init__(
        self,
        *,
        capacity: float = 500.0,
        retry_cost: float = 5.0,
        success_refill: float = 1.0,
        initial: float | None = None,
    ) -> None:
        initial = capacity if initial is None else initial
        if retry_cost <= 0 or success_refill < 0 or not 0 <= initial <= capacity:
            raise ValueError("need retry_cost > 0, success_refill >= 0 and 0 <= initial <= capacity")
        self._capacity = capacity
        self._cost = retry_cost
        self._refill = success_refill
        self._tokens = initial
        self._lock = threading.Lock()

    def record_success(self, *, retried: bool = False) -> None:
        """Count a successful request; ``retried``: it succeeded on a retry."""
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + (self._cost if retried else self._refill))

    def try_spend(self) -> bool:
        """Take one retry's cost; False when the quota cannot pay for it."""
        with self._lock:
            if self._tokens >= self._cost:
                self._tokens -= self._cost
                return True
            return False

    @property
    def tokens(self) -> float:
        """Tokens left."""
        with self._lock:
            return self._tokens
