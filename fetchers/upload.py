"""`BatchUploader`: writes batches of blobs through a `BlobWriter` on the batch machinery."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from .errors import StoreError, WriteError
from .prefetch import BatchRunner, CallStats, check_digest
from .protocol import BlobWriter
from .retry import RetryBudget, RetryPolicy

BlobSource = bytes | Callable[[], bytes]
"""A blob to upload: its bytes, or a function that reads them (called only if it is written)."""


@dataclass
class UploadStats(CallStats):
    """What one `upload_all` or `iter_upload` call did.

    ``requests_issued`` counts existence checks and writes, retries included; ``written``
    the blobs put, ``skipped`` those the store already held.
    """

    requests_issued: int = 0
    written: int = 0
    skipped: int = 0
    bytes_written: int = 0

    def count_request(self) -> None:
        self.requests_issued += 1


@dataclass
class UploadResult:
    """The outcome of `BatchUploader.upload_all`: every unique key is in exactly one of them."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, StoreError] = field(default_factory=dict)
    stats: UploadStats = field(default_factory=UploadStats)


class BatchUploader(BatchRunner):
    """Uploads batches of blobs concurrently, each key once, skipping what the store has.

    Everything `BatchRunner` says holds (bounded concurrency, single flight, one retry policy
    and budget for existence checks and writes alike, `StoreUnavailable` on a store-wide
    failure), with a key's job being: ``exists(key)``; if the store has it, done (skipped);
    else read the source, check it hashes to the key when ``verify``, and ``put`` it. So a
    second upload of the same blobs writes nothing. Thread-safe.
    """

    def __init__(
        self,
        writer: BlobWriter,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        fail_fast_after: int = 3,
    ) -> None:
        if not isinstance(writer, BlobWriter):
            raise TypeError(f"{writer!r} has no put(key, data, content_type) and exists(key) methods")
        super().__init__(
            writer, max_workers=max_workers, retry=retry, budget=budget, fail_fast_after=fail_fast_after,
            thread_name="snapcompare-upload",
        )
        self.writer = writer

    def __enter__(self) -> BatchUploader:
        return self

    def upload_all(
        self,
        blobs: Mapping[str, BlobSource],
        *,
        content_type: str = "application/octet-stream",
        skip_existing: bool = True,
        verify: bool = False,
    ) -> UploadResult:
        """Upload every blob; return what was written, skipped and failed.

        Raises only `StoreUnavailable`. See `iter_upload` for the options.
        """
        result = UploadResult()
        for key, outcome in self.iter_upload(
            blobs, content_type=content_type, skip_existing=skip_existing, verify=verify, stats=result.stats
        ):
            if isinstance(outcome, StoreError):
                result.errors[key] = outcome
            else:
                (result.written if outcome else result.skipped).append(key)
        return result

    def iter_upload(
        self,
        blobs: Mapping[str, BlobSource],
        *,
        content_type: str = "application/octet-stream",
        skip_existing: bool = True,
        verify: bool = False,
        stats: UploadStats | None = None,
    ) -> Iterator[tuple[str, bool | StoreError]]:
        """Yield ``(key, True if written / False if skipped / the error)`` as each blob ends.

        ``content_type`` is stored with every blob; ``skip_existing=False`` writes without
        asking first (e.g. a manifest that replaces its previous version); ``verify=True``
        refuses, without writing, a blob that does not hash to its sha256 hex key. Sources
        are read on the workers, at most ``max_workers`` at a time. Raises `StoreUnavailable`.
        """
        stats = stats if stats is not None else UploadStats()

        def job(key: str, call_stats: UploadStats, stop: threading.Event) -> bool:
            if skip_existing and self.with_retries(key, lambda: self.writer.exists(key), call_stats, stop):
                return False
            data = _read_source(key, blobs[key])
            if verify:
                try:
                    check_digest(key, data)
                except StoreError as exc:  # bytes that changed since they were hashed: not retried
                    raise WriteError(key, exc.message) from exc
            self.with_retries(
                key, lambda: self.writer.put(key, data, content_type), call_stats, stop, error_type=WriteError
            )
            with self._lock:
                call_stats.bytes_written += len(data)
            return True

        for key, outcome in self.stream(blobs, stats, job, max_pending=4 * self.max_workers):
            if outcome is True:
                stats.written += 1
            elif outcome is False:
                stats.skipped += 1
            yield key, outcome


def _read_source(key: str, source: BlobSource) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return bytes(source())
    except OSError as exc:
        raise WriteError(key, f"cannot read the blob to upload: {exc.strerror or exc}") from exc
