"""`MemoryBudget`: the bytes a comparison may hold at once, acquired and released by owner."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable


class MemoryBudget:
    """Accounts for bytes held against a limit, per owner (a blob, a running diff...).

    It does not block: callers ask `fits` before taking more and wait for something to be
    released when it does not (the engine collects a finished diff). ``acquire`` may take an
    owner over the limit; that is how the one diff that must always run is admitted. Used from
    one thread (the engine's coordinator).
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"memory budget must be positive, got {limit}")
        self.limit = limit
        self._held: Counter[Hashable] = Counter()
        self._used = 0

    @property
    def used(self) -> int:
        """Bytes held now, by every owner together."""
        return self._used

    def fits(self, size: int) -> bool:
        """True if ``size`` more bytes stay within the limit."""
        return self._used + size <= self.limit

    @property
    def over(self) -> bool:
        """True when more is held than the limit allows."""
        return self._used > self.limit

    def acquire(self, owner: Hashable, size: int) -> None:
        """Count ``size`` more bytes held by ``owner`` (added to what it already holds)."""
        if size < 0:
            raise ValueError(f"cannot acquire a negative size: {size}")
        self._held[owner] += size
        self._used += size

    def holds(self, owner: Hashable) -> bool:
        """True if ``owner`` holds anything (even 0 bytes acquired)."""
        return owner in self._held

    def release(self, owner: Hashable) -> int:
        """Release everything ``owner`` holds; return how many bytes that was (0 if nothing)."""
        size = self._held.pop(owner, 0)
        self._used -= size
        return size
