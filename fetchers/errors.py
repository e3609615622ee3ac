"""The errors a fetch can end in.

Callers branch on two things: whether the blob is known to be absent (`BlobNotFound`) and
whether trying again may help (`FetchError.retryable`). The SDK exception that caused an error
is chained as ``__cause__``.
"""

from __future__ import annotations

from typing import Any


class FetchError(Exception):
    """A blob could not be fetched.

    ``key`` is the key as the caller gave it (without any fetcher prefix). ``retryable`` says
    whether the same request may succeed later: throttling, timeouts, resets, truncated bodies
    and 5xx are; missing keys, denied access, invalid keys and bad configuration are not.
    ``retry_after`` is the server's requested delay in seconds, when it sent one.
    """

    def __init__(
        self,
        key: str,
        message: str = "",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.key = key
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(key, message)

    def __str__(self) -> str:
        return f"{self.key!r}: {self.message}" if self.message else repr(self.key)

    def __reduce__(self) -> tuple[Any, ...]:  # keep keyword-only state across pickling
        return (_rebuild, (type(self), self.key, self.message, self.retryable, self.retry_after))


def _rebuild(
    cls: type[FetchError], key: str, message: str, retryable: bool, retry_after: float | None
) -> FetchError:
    error = cls.__new__(cls)
    FetchError.__init__(error, key, message, retryable=retryable, retry_after=retry_after)
    return error


class BlobNotFound(FetchError):
    """The store answered that no blob exists under the key."""

    def __init__(self, key: str, message: str = "no such blob") -> None:
        super().__init__(key, message, retryable=False)


class IntegrityError(FetchError):
    """The body received does not hash to the key it was asked for (truncated or corrupt)."""

    def __init__(self, key: str, message: str = "content does not match its sha256 key") -> None:
        super().__init__(key, message, retryable=True)
