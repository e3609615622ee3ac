"""A comparison's chunks on a Dask cluster (the ``dask`` extra; nothing else imports Dask).

`run_on_cluster` submits one task per `ChunkAssignment` with the store URL and the comparison's
settings, nothing more: each worker reads its store credentials from its own environment and
decides its own resources (`Resources.for_cluster_worker`: one diff thread per chunk, the
cluster's threads being the parallelism, and a memory budget from its own limit). A worker
process builds one fetcher per store and reuses it for every chunk it runs (`FetcherCache`, a
worker plugin that closes them when the worker stops). Results stream back as chunks finish;
their masks and previews are written through the caller's `ArtifactSink`, so the output folder
holds the same files as a local run. With a `ChunkPublisher` (a results store), each worker
writes its chunk's masks and result JSON to that store itself and only previews come back.
Dask retries a failing chunk; one that still fails errors only its own images. A store that
cannot be used at all (`StoreUnavailable`) is not retried: it ends the run as it does on one
machine. An interrupt cancels every chunk before it propagates.

A scheduler is named ``tcp://host:8786`` (an existing cluster) or ``local:N`` (a
`LocalCluster` of N worker processes with one thread each, started and stopped here).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

try:
    from distributed import Client, Future, LocalCluster, as_completed, get_worker
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - depends on the installation
    raise ImportError("running on a Dask cluster needs the dask extra: in a checkout of snapcompare, "
                      "pip install '.[dask]' (make sync installs every extra)") from None

from fetchers import BlobWriter, StoreUnavailable
from fetchers.protocol import describe_store

from ..imaging.decode import describe_error
from ..model import CompareOptions, Comparison, InputError, Resources, parameter
from .chunks import (
    ArtifactSink,
    ChunkAssignment,
    ChunkFailure,
    ChunkPublisher,
    ChunkResult,
    ComparisonPlan,
    StoreFetcher,
    finalize,
    run_chunk,
    store_files,
    worker_fetcher,
)
from .local import Progress

DEFAULT_RETRIES = 2
"""Attempts after the first that Dask makes of a failing chunk."""

_PLUGIN = "snapcompare-fetchers"


class FetcherCache(WorkerPlugin):
    """A worker process's fetchers, one per store URL and connection count, closed at teardown."""

    name = _PLUGIN
    idempotent = True  # a cluster that ran a comparison before keeps its fetchers

    def setup(self, worker: object) -> None:
        self._fetchers: dict[tuple[str, int], StoreFetcher] = {}
        self._lock = threading.Lock()

    def teardown(self, worker: object) -> None:
        with self._lock:
            fetchers, self._fetchers = list(self._fetchers.values()), {}
        for fetcher in fetchers:
            fetcher.close()

    def fetcher(self, store_url: str, resources: Resources) -> StoreFetcher:
        """This process's fetcher of ``store_url``, built on first use."""
        key = (store_url, resources.fetch_workers)
        with self._lock:
            if key not in self._fetchers:
                self._fetchers[key] = worker_fetcher(store_url, resources)
            return self._fetchers[key]


class Unusable:
    """A chunk's answer when its store cannot be used at all: returned, not raised, so that
    Dask does not retry what no retry mends; the caller raises ``error``."""

    def __init__(self, error: StoreUnavailable) -> None:
        self.error = error


def chunk_task(
    chunk: ChunkAssignment, store_url: str, options: CompareOptions, publisher: ChunkPublisher | None = None
) -> ChunkResult | Unusable:
    """What a worker runs for one chunk: `run_chunk` with this process's fetcher of the store
    and this worker's own resources, then, with a ``publisher``, storing the chunk's results in
    its store from here."""
    worker = get_worker()
    resources = Resources.for_cluster_worker(worker.state.nthreads, worker.memory_manager.memory_limit)
    cache = worker.plugins.get(_PLUGIN)
    try:
        with _worker_store(cache, store_url, resources) as store:
            result = run_chunk(chunk, store, options, resources)
        if publisher is None:
            return result
        with _worker_store(cache, publisher.store_url, resources) as results_store:
            if not isinstance(results_store, BlobWriter):
                raise TypeError(f"{describe_store(results_store)} cannot be written to")
            return publisher.chunk(chunk, result, results_store, options, resources)
    except StoreUnavailable as exc:
        return Unusable(exc)


@contextmanager
def _worker_store(cache: object, store_url: str, resources: Resources) -> Iterator[StoreFetcher]:
    """The worker's cached fetcher of ``store_url``; without the cache, one for this task."""
    if isinstance(cache, FetcherCache):
        yield cache.fetcher(store_url, resources)
        return
    with worker_fetcher(store_url, resources) as store:
        yield store


def run_on_cluster(
    plan: ComparisonPlan,
    store_url: str,
    scheduler: str,
    *,
    artifacts: ArtifactSink,
    progress: Callable[[Progress], None] | None = None,
    retries: int = DEFAULT_RETRIES,
    publisher: ChunkPublisher | None = None,
    worker_env: Mapping[str, str] | None = None,
) -> Comparison:
    """Run ``plan``'s chunks on the cluster ``scheduler`` names and finalize the comparison.

    With ``publisher``, each worker stores its chunk's masks and result in the publisher's
    store itself; only previews come back to ``artifacts``. ``worker_env`` (credentials, such
    as a store token) is set in the environment of ``local:N`` workers as this process starts
    them, never sent through the scheduler; workers of a running cluster read their own.

    Raises `InputError` when ``scheduler`` is malformed or cannot be reached, and
    `StoreUnavailable` when a chunk found a store that cannot be used at all.
    """
    started = time.monotonic()
    blobs_total = sum(len(chunk.blobs) for chunk in plan.chunks)
    pairs_total = sum(len(chunk.pairs()) for chunk in plan.chunks)
    done = {"blobs": 0, "pairs": 0}
    results: dict[int, ChunkResult | ChunkFailure] = {}

    def report(phase: str) -> None:
        if progress is not None:
            progress(Progress(plan.total, blobs_total, done["blobs"], pairs_total, done["pairs"], phase))

    report("comparing")
    with _connect(scheduler, worker_env or {}) as client:
        client.register_plugin(FetcherCache())
        run_id = uuid.uuid4().hex[:12]
        futures = {
            client.submit(chunk_task, chunk, store_url, plan.options, publisher, retries=retries, pure=False,
                          key=f"snapcompare-chunk-{run_id}-{chunk.chunk_index}"): chunk
            for chunk in plan.chunks
        }
        try:
            # distributed leaves as_completed (like Client.cancel, Future.exception, LocalCluster and
            # Client below) unannotated, so mypy cannot check its calls: they are ignored.
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                chunk = futures[future]
                results[chunk.chunk_index] = _collect(future, chunk, artifacts, retries)
                future.release()
                done["blobs"] += len(chunk.blobs)
                done["pairs"] += len(chunk.pairs())
                report("comparing")
        finally:
            # Normally a no-op; after an interrupt, nothing keeps running on the cluster.
            client.cancel(list(futures), force=True)  # type: ignore[no-untyped-call]  # unannotated
    report("done")
    failed = sum(1 for result in results.values() if isinstance(result, ChunkFailure))
    threads = max((result.diff_threads for result in results.values() if isinstance(result, ChunkResult)),
                  default=0)
    stats = {"wall_time": time.monotonic() - started, "pairs_diffed": pairs_total,
             "blobs": len(plan.blobs), "chunks": len(plan.chunks), "chunks_failed": failed,
             "diff_threads_per_chunk": threads}
    return finalize(plan, results, stats=stats)


def _collect(
    future: Future[ChunkResult | Unusable], chunk: ChunkAssignment, artifacts: ArtifactSink, retries: int
) -> ChunkResult | ChunkFailure:
    """A finished chunk's result with its files stored, or why it has none; raises the
    `StoreUnavailable` of a chunk whose store cannot be used."""
    index = chunk.chunk_index
    if future.status == "cancelled":  # e.g. the scheduler restarted: there is no exception to read
        return ChunkFailure(f"chunk {index} was cancelled on the cluster")
    if future.status != "finished":
        exc = future.exception()  # type: ignore[no-untyped-call]  # distributed leaves it unannotated
        return ChunkFailure(f"chunk {index} failed after {retries + 1} attempts: {describe_error(exc)}")
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - e.g. a worker whose code differs from this one's
        return ChunkFailure(f"chunk {index}'s result could not be read: {describe_error(exc)}",
                            unreadable=True)
    if isinstance(result, Unusable):
        raise result.error
    return store_files(chunk, result, artifacts)


@contextmanager
def _connect(scheduler: str, worker_env: Mapping[str, str]) -> Iterator[Client]:
    """A client of the cluster ``scheduler`` names; a local cluster lives as long as it, its
    workers started with ``worker_env`` in their environment."""
    if scheduler.startswith("local:"):
        count = scheduler.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise InputError(f"{parameter('scheduler')} {scheduler!r}: expected local:N with N a positive "
                             "number of workers")
        # distributed's LocalCluster and Client take unannotated arguments: mypy cannot check them.
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None,
                env=dict(worker_env),
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client
        return
    if not scheduler.startswith(("tcp://", "tls://")):
        raise InputError(f"{parameter('scheduler')} {scheduler!r}: expected tcp://HOST:PORT or local:N")
    try:
        client = Client(scheduler, timeout="20s")  # type: ignore[no-untyped-call]  # unannotated __init__
    except OSError as exc:
        raise InputError(f"{parameter('scheduler')} {scheduler!r}: cannot connect: {exc}") from None
    with client:
        yield client
