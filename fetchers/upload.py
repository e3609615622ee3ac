"""`BatchUploader`: writes batches of blobs through a `BlobWriter` on the batch machinery."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from .batch import DEFAULT_DEADLINE, STORE_FAILURES, BatchRunner, CallStats, Groups, close_answers
from .errors import BlobTooLarge, FetchError, StoreError, WriteError
from .files import open_regular_file
from .keys import check_digest
from .protocol import BlobFetcher, BlobWriter, ClosableFetcher, ManyWriter, StoredBlob
from .retry import RetryBudget, RetryPolicy

BlobSource = bytes | os.PathLike[str] | Callable[[], bytes]
"""A blob to upload: its bytes; a path to the regular file holding them (its size known before
it is read, see `BatchUploader`); or a function that reads them. Sources are read only when
needed."""

DEFAULT_MAX_BYTES = 1024**3
"""Bytes of blobs `BatchUploader` holds in memory at once by default (1 GiB)."""

MAX_INSERT_BODY = 100 * 1024 * 1024
"""Bytes of blobs one batch write carries at most (as objectstore's Rust client sends them)."""


@dataclass
class UploadStats(CallStats):
    """What one `upload_all` or `iter_upload` call did.

    ``requests_issued`` counts existence checks, reads of stored blobs and writes, retries
    included; ``written`` the blobs put, of which ``repaired`` replaced other bytes stored
    under their key; ``skipped`` those the store already held, of which ``unverified`` the
    store could not vouch for (no checksum, see `BatchUploader`); ``peak_bytes_held`` the
    most bytes of blobs held in memory at once.
    """

    requests_issued: int = 0
    written: int = 0
    skipped: int = 0
    repaired: int = 0
    unverified: int = 0
    bytes_written: int = 0
    peak_bytes_held: int = 0

    def count_request(self) -> None:
        self.requests_issued += 1


@dataclass
class UploadResult:
    """The outcome of `BatchUploader.upload_all`: every unique key is in exactly one of them."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, StoreError] = field(default_factory=dict)
    stats: UploadStats = field(default_factory=UploadStats)


class _ByteBudget:
    """The bytes the workers may hold at once. `hold` waits until a size fits; a size over the
    limit waits until nothing else is held and then goes alone. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.waiting = 0
        """Threads waiting for bytes to be released."""
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, size: int, stop: Callable[[], bool], stats: UploadStats) -> Iterator[None]:
        """Hold ``size`` bytes while the block runs, once they fit; raises `_Stopped` instead
        when ``stop()`` turns true while waiting. Records the peak in ``stats``."""
        with self._changed:
            self.waiting += 1
            try:
                self._changed.wait_for(lambda: stop() or not self.used or self.used + size <= self.limit)
            finally:
                self.waiting -= 1
            if stop():
                raise _Stopped
            self.used += size
            stats.peak_bytes_held = max(stats.peak_bytes_held, self.used)
        try:
            yield
        finally:
            with self._changed:
                self.used -= size
                self._changed.notify_all()

    def wake_all(self) -> None:
        """Make every waiting thread look at its stop condition again."""
        with self._changed:
            self._changed.notify_all()


class _Stopped(Exception):
    """A job gave up waiting for memory: nobody wants its result any more."""


class _Source:
    """One blob's source: its size when known before reading, and its bytes read at most once."""

    def __init__(self, key: str, source: BlobSource) -> None:
        self.key = key
        self._source = source
        self._data: bytes | None = None
        self.size: int | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.size = len(source)
        elif isinstance(source, os.PathLike):
            try:
                self.size = os.stat(source).st_size
            except OSError:
                pass  # reading reports it

    def read(self) -> bytes:
        """The blob's bytes; `WriteError` when its file cannot be read."""
        if self._data is None:
            self._data = self._load()
        return self._data

    def _load(self) -> bytes:
        source = self._source
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source)
        try:
            if isinstance(source, os.PathLike):
                with open_regular_file(source) as file:
                    return file.read()
            return bytes(source())
        except OSError as exc:
            raise WriteError(self.key, f"cannot read the blob to upload: {exc.strerror or exc}") from exc


class BatchUploader(BatchRunner):
    """Uploads batches of blobs concurrently, each key once, skipping what the store has.

    Everything `BatchRunner` says holds (bounded concurrency, single flight, one retry policy
    and budget for every request, the deadline, `StoreUnavailable` on a store-wide failure),
    with a key's job being: ask the store what it holds under the key (its ``stat``, else
    ``exists``); if it holds the blob, done (skipped); else read the source, check it hashes
    to the key when ``verify``, and ``put`` it. So a second upload of the same blobs writes
    nothing.

    Content-addressed keys (``verify``) are not taken on trust: a blob the store holds is
    skipped only when what the store keeps of it agrees with the content (`StoredBlob.holds`:
    its sha256 for a local store, its MD5 for S3 and GCS, which costs reading the local
    source), and rewritten (``repaired``) when it does not. Where the store keeps no checksum
    (objectstore: nothing, not even the size at the server commit `fetchers.backends.objectstore`
    follows) a blob is skipped ``unverified`` (one of another size, where it is told, is
    rewritten), unless ``verify_existing``, which reads the stored blob back and hashes it.

    Memory: the bytes of blobs read (sources, and stored blobs read back) and not yet written
    or compared stay within ``max_bytes``, whatever ``max_workers``; a blob larger than that
    is handled alone. Only sizes known before reading count: give sources as bytes or paths
    (a source given as a function is not counted). Thread-safe.

    A writer that checks and writes many blobs a request (a `fetchers.protocol.ManyWriter`
    whose ``batch_keys`` is above 0) is used that way (`fetchers.batch.Groups`): the keys are
    checked with one request per group, and the blobs to write of at most ``max_batch_blob``
    bytes (known before reading) go in batch writes of at most `MAX_INSERT_BODY` bytes, the
    larger ones one request each; those known to be larger before reading are checked and
    written one job each, after the groups, side by side on the workers. Everything above
    holds per key; a key that fails is retried whole (checked again, then written).
    """

    def __init__(
        self,
        writer: BlobWriter,
        *,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        fail_fast_after: int = 3,
        deadline: float = DEFAULT_DEADLINE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not isinstance(writer, BlobWriter):
            raise TypeError(f"{writer!r} has no put(key, data, content_type) and exists(key) methods")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        super().__init__(
            writer, max_workers=max_workers, retry=retry, budget=budget, fail_fast_after=fail_fast_after,
            deadline=deadline, thread_name="snapcompare-upload",
        )
        self.writer = writer
        self.memory = _ByteBudget(max_bytes)

    def __enter__(self) -> BatchUploader:
        return self

    def close(self) -> None:
        """Wake the jobs waiting for memory, then close as `BatchRunner.close` does."""
        self._closed.set()
        self.memory.wake_all()
        super().close()

    def upload_all(
        self,
        blobs: Mapping[str, BlobSource],
        *,
        content_type: str = "application/octet-stream",
        skip_existing: bool = True,
        verify: bool = False,
        verify_existing: bool = False,
    ) -> UploadResult:
        """Upload every blob; return what was written, skipped and failed.

        Raises only `StoreUnavailable`. See `iter_upload` for the options.
        """
        result = UploadResult()
        for key, outcome in self.iter_upload(
            blobs, content_type=content_type, skip_existing=skip_existing, verify=verify,
            verify_existing=verify_existing, stats=result.stats,
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
        verify_existing: bool = False,
        stats: UploadStats | None = None,
    ) -> Iterator[tuple[str, bool | StoreError]]:
        """Yield ``(key, True if written / False if skipped / the error)`` as each blob ends.

        ``content_type`` is stored with every blob; ``skip_existing=False`` writes without
        asking first (e.g. a manifest that replaces its previous version); ``verify=True``
        treats keys as the sha256 hex of their content: a source that does not hash to its key
        is refused without writing, and a stored blob is checked as the class says
        (``verify_existing``: by reading it back where the store keeps no checksum). Sources
        are read on the workers, within ``max_bytes``. Raises `StoreUnavailable`.
        """
        stats = stats if stats is not None else UploadStats()

        def job(key: str, call_stats: UploadStats, stop: threading.Event) -> bool:
            try:
                return self._upload_one(key, _Source(key, blobs[key]), content_type, skip_existing, verify,
                                        verify_existing, call_stats, stop)
            except _Stopped:
                raise WriteError(key, "cancelled while waiting for memory") from None

        def group(keys: Sequence[str]) -> Iterator[tuple[str, bool | StoreError]]:
            return self._upload_group({key: _Source(key, blobs[key]) for key in keys}, content_type,
                                      skip_existing, verify, verify_existing, stats)

        many = self.writer if isinstance(self.writer, ManyWriter) else None
        groups = None if many is None else Groups(
            self, group, max_keys=lambda: many.batch_keys, fallback=job, error_type=WriteError)
        lookahead = max(self.default_lookahead, many.batch_keys if many is not None else 0)
        # Blobs known to be too large for a batch write go one a job, each with its own worker,
        # retries and deadline, after the others, rather than one after another in a group's job.
        alone = set() if many is None else {
            key for key, blob in blobs.items()
            if (size := _Source(key, blob).size) is not None and size > many.max_batch_blob}
        calls = [self.stream([key for key in blobs if key not in alone], stats, job, max_pending=lookahead,
                             groups=groups)]
        if alone:
            calls.append(self.stream([key for key in blobs if key in alone], stats, job, max_pending=lookahead))
        try:
            for key, outcome in itertools.chain.from_iterable(calls):
                if outcome is True:
                    stats.written += 1
                elif outcome is False:
                    stats.skipped += 1
                yield key, outcome
        finally:
            if groups is not None:
                groups.detach()

    def _upload_group(
        self, sources: dict[str, _Source], content_type: str, skip_existing: bool, verify: bool,
        verify_existing: bool, stats: UploadStats,
    ) -> Iterator[tuple[str, bool | StoreError]]:
        """One group of keys (see the class): checked with one request, then written, each
        key's outcome yielded as it is known; raises for a failure of a whole request."""
        writer = self.writer
        assert isinstance(writer, ManyWriter)
        to_write: list[tuple[_Source, StoredBlob | None]] = []
        if skip_existing:
            to_read_back: list[tuple[str, StoredBlob]] = []  # once the check's answer is closed
            answers = writer.stat_many(list(sources))
            try:
                for key, stored in answers:
                    if isinstance(stored, StoreError):
                        yield key, stored
                        continue
                    if stored is None:
                        to_write.append((sources[key], None))
                        continue
                    try:
                        holds = self._holds(sources[key], stored, verify)
                    except StoreError as error:  # its source cannot be read
                        yield key, error
                        continue
                    if holds is None and verify_existing:
                        to_read_back.append((key, stored))
                    elif self._skipped(holds, stats):
                        yield key, False
                    else:
                        to_write.append((sources[key], stored))
            finally:
                close_answers(answers)
            for key, stored in to_read_back:
                try:
                    holds = self._read_back_matches(sources[key], stored, stats, self._closed)
                except StoreError as error:
                    yield key, error
                    continue
                if self._skipped(holds, stats):
                    yield key, False
                else:
                    to_write.append((sources[key], stored))
        else:
            to_write = [(source, None) for source in sources.values()]
        batched = [item for item in to_write if item[0].size is not None and item[0].size <= writer.max_batch_blob]
        for source, stored in to_write:
            if not any(source is item[0] for item in batched):
                yield source.key, self._write_alone(source, stored, content_type, verify, stats)
        for chunk in _chunks(batched, MAX_INSERT_BODY):
            yield from self._write_together(writer, chunk, content_type, verify, stats)

    @staticmethod
    def _holds(source: _Source, stored: StoredBlob, verify: bool) -> bool | None:
        """Whether what the store keeps under the source's key holds its bytes, as far as that
        tells without reading the stored blob back: None when it cannot tell. An MD5 is left
        to the write (False), which compares it with the bytes it reads anyway."""
        if verify and stored.md5 is not None:
            return False
        return stored.holds(source.key, source.read, source.size) if verify else True

    def _skipped(self, holds: bool | None, stats: UploadStats) -> bool:
        """Whether a stored blob that ``holds`` the source (None: nobody can tell) is skipped;
        counts the unverified skips."""
        if holds is False:
            return False
        with self._lock:
            stats.unverified += holds is None
        return True

    def _prepared(self, source: _Source, stored: StoredBlob | None, verify: bool) -> bytes | None:
        """The source's bytes to write, checked against its key when ``verify`` (a `WriteError`
        if they changed since they were hashed: not retried); None when the stored blob turns
        out to hold them already (its MD5 matches)."""
        data = source.read()
        if verify:
            try:
                check_digest(source.key, data)
            except StoreError as exc:
                raise WriteError(source.key, exc.message) from exc
        if stored is not None and stored.md5 is not None and stored.holds(source.key, lambda: data, len(data)):
            return None
        return data

    def _write_alone(
        self, source: _Source, stored: StoredBlob | None, content_type: str, verify: bool, stats: UploadStats,
    ) -> bool | StoreError:
        """One blob too large for a batch write, written with a request of its own."""
        try:
            with self._hold(source.size or 0, stats, self._closed):
                data = self._prepared(source, stored, verify)
                if data is None:
                    return False
                with self._lock:
                    stats.count_request()
                self.writer.put(source.key, data, content_type)
        except _Stopped:
            return WriteError(source.key, "cancelled while waiting for memory")
        except STORE_FAILURES as exc:
            return exc if isinstance(exc, StoreError) else WriteError(source.key, f"{type(exc).__name__}: {exc}")
        self._written(len(data), stored, stats)
        return True

    def _write_together(
        self, writer: ManyWriter, chunk: list[tuple[_Source, StoredBlob | None]], content_type: str, verify: bool,
        stats: UploadStats,
    ) -> Iterator[tuple[str, bool | StoreError]]:
        """Blobs written with one batch request, within the memory budget."""
        try:
            with self._hold(sum(source.size or 0 for source, _ in chunk), stats, self._closed):
                ready: dict[str, tuple[bytes, StoredBlob | None]] = {}
                for source, stored in chunk:
                    try:
                        data = self._prepared(source, stored, verify)
                    except StoreError as error:
                        yield source.key, error
                        continue
                    if data is None:
                        yield source.key, False
                    else:
                        ready[source.key] = (data, stored)
                if not ready:
                    return
                with self._lock:
                    stats.batch_requests += 1
                    for _ in ready:
                        stats.count_request()
                answers = writer.put_many([(key, data, content_type) for key, (data, _) in ready.items()])
                try:
                    for key, refused in answers:
                        if refused is not None:
                            yield key, refused
                        else:
                            self._written(len(ready[key][0]), ready[key][1], stats)
                            yield key, True
                finally:
                    close_answers(answers)
        except _Stopped:
            for source, _ in chunk:
                yield source.key, WriteError(source.key, "cancelled while waiting for memory")

    def _written(self, size: int, stored: StoredBlob | None, stats: UploadStats) -> None:
        with self._lock:
            stats.bytes_written += size
            stats.repaired += stored is not None

    def _upload_one(
        self, key: str, source: _Source, content_type: str, skip_existing: bool, verify: bool,
        verify_existing: bool, stats: UploadStats, stop: threading.Event,
    ) -> bool:
        """One key's job (see the class): True if written, False if skipped.

        Memory is held for one thing at a time (a stored blob read back, or the source while it
        is compared and written), so jobs never wait for each other's memory while holding some.
        """
        stored = self.with_retries(key, lambda: self._stored(key), stats, stop) if skip_existing else None
        if stored is not None:
            holds = self._holds(source, stored, verify)
            if holds is None and verify_existing:
                holds = self._read_back_matches(source, stored, stats, stop)
            if self._skipped(holds, stats):
                return False
        with self._hold(source.size or 0, stats, stop):
            data = self._prepared(source, stored, verify)
            if data is None:
                return False
            self.with_retries(key, lambda: self.writer.put(key, data, content_type), stats, stop,
                              error_type=WriteError)
        self._written(len(data), stored, stats)
        return True

    def _hold(self, size: int, stats: UploadStats, stop: threading.Event) -> AbstractContextManager[None]:
        """Hold ``size`` bytes of the memory budget while a job uses them (see `_ByteBudget`)."""
        return self.memory.hold(size, lambda: stop.is_set() or self._closed.is_set(), stats)

    def _stored(self, key: str) -> StoredBlob | None:
        """What the store keeps under ``key`` (None: nothing): its ``stat``, else ``exists``."""
        stat = getattr(self.writer, "stat", None)
        if stat is None:
            return StoredBlob() if self.writer.exists(key) else None
        stored = stat(key)
        if stored is not None and not isinstance(stored, StoredBlob):
            raise TypeError(f"{type(self.writer).__name__}.stat returned {type(stored).__name__}, not a StoredBlob")
        return stored

    def _read_back_matches(
        self, source: _Source, stored: StoredBlob, stats: UploadStats, stop: threading.Event
    ) -> bool | None:
        """Whether the stored blob hashes to the source's key, read back within the memory
        budget; None when the writer cannot read.

        It is held at its size, or the source's where the store tells none (objectstore), or
        the whole budget where neither is known, and a reader that can be limited
        (`fetchers.ClosableFetcher.limited`) reads no further than that: a larger blob is not
        the source."""
        key, reader = source.key, self.writer
        if not isinstance(reader, BlobFetcher):
            return None
        expected = stored.size if stored.size is not None else source.size
        bound = self.memory.limit if expected is None else expected
        if isinstance(reader, ClosableFetcher):
            reader = reader.limited(max(bound, 1))
        with self._hold(bound, stats, stop):
            try:
                data = self.with_retries(key, lambda: reader.fetch(key), stats, stop)
            except BlobTooLarge:
                return False
            except FetchError as exc:
                raise WriteError(key, f"cannot read the stored blob back: {exc.message}") from exc
            return hashlib.sha256(data).hexdigest() == key.lower()


def _chunks(
    items: list[tuple[_Source, StoredBlob | None]], max_bytes: int
) -> Iterator[list[tuple[_Source, StoredBlob | None]]]:
    """``items`` in order, cut into runs of at most ``max_bytes`` (a larger one alone)."""
    chunk: list[tuple[_Source, StoredBlob | None]] = []
    size = 0
    for item in items:
        item_size = item[0].size or 0
        if chunk and size + item_size > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk
