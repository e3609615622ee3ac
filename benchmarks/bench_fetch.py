"""Fetch layer benchmark: per-pair, per-batch, `BatchPrefetcher` and batch-request fetching behind a 20 ms RTT.

Run from the repository root:

    .venv/bin/python -m benchmarks.bench_fetch                 # both backends, a few minutes
    .venv/bin/python -m benchmarks.bench_fetch --quick         # a smoke run
    .venv/bin/python -m benchmarks.bench_fetch --backend s3 --rtt 40

Data: ``--blobs`` random (incompressible) blobs of 50 KB to 1 MB, log-uniform (about 300 KB on
average), keyed by sha256 hex, and ``--pairs`` (head, base) pairs over them: every blob is in
some pair, the remaining slots go to popular blobs (Zipf weights), so hashes repeat across
pairs and across batches. Each backend's test server is loaded once (not timed) and reached
through a `LatencyProxy` adding ``--rtt``; T0 is the same strategy through a proxy adding none.
Server and proxies run in a child process, as a store on another host would
(``--in-process`` keeps them in this one, where they take turns at the client's GIL).

Strategies, each run with a fresh fetcher (a fresh connection pool):
(a) sequential: head then base of each pair, no cache, on the first ``--sequential-pairs``
    pairs and scaled linearly to all pairs;
(b) per batch: batches of 50 pairs, each fetched by a new ThreadPoolExecutor(8) over its
    unique keys into a per-batch dict cache;
(c) `BatchPrefetcher.fetch_all` over every pair's keys at P workers, pool of P connections;
    with ``--verify``, (c) to (e) check every blob's sha256 against its key, as ``compare``
    does by default (without it, none does).
(a) to (c) send one GET a blob (objectstore with ``batch=False``).
(d) objectstore only: `BatchPrefetcher.fetch_all` over a fetcher sending batch requests
    (``POST /v1/objects:batch/...``, up to 1,000 keys each), at P = 16;
(e) the same with `BatchPrefetcher.iter_fetch`, timing the first blob handed over (the pool
    warmed by one request first, so that the time is the request's, not a TCP handshake's),
    beside a lone GET of that blob, a lone batch request of it, the same call over that one key
    (what the call itself costs), and the first blob of the same call over single GETs; the
    first blob, the lone GET and the lone batch request also with no latency added (what the
    server, the proxy and the client cost on this machine, without the RTT).

Per row: U unique keys of the whole set, P, server-side GETs per unique key (a batch's
operations included), batch requests per unique key, connections the proxy accepted, T0, the
bound max(ceil(U / P) * RTT, T0), the wall time (median of the runs), the mean number of
fetches in flight and the mean time of one fetch (both with the RTT; single GETs only), client
CPU per unique blob, wall / bound, and wall relative to (c) at P = 16; then the targets.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fetchers import BatchPrefetcher, BlobFetcher  # noqa: E402
from fetchers.backends.objectstore import ObjectstoreFetcher  # noqa: E402
from fetchers.backends.s3 import S3Fetcher  # noqa: E402
from testing.proxy import LatencyProxy  # noqa: E402

MIN_SIZE, MAX_SIZE = 50_000, 1_000_000
BATCH_PAIRS = 50
BATCH_THREADS = 8
PREFETCH_WORKERS = (8, 16, 32)
REFERENCE_P = 16
BATCH_TARGETS = {20.0: 0.5, 100.0: 0.25}  # RTT in ms: (d)'s wall at most this share of (c)'s at P = 16
USECASE, SCOPES, PREFIX = "preprod", {"org": 1, "project": 2}, "1/2"
S3_REGION = "us-east-1"
LOAD_TIMEOUT = 300.0
COUNTS_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Blobs by sha256 hex and the (head, base) pairs that reference them."""

    blobs: dict[str, bytes]
    pairs: list[tuple[str, str]]

    @property
    def unique_keys(self) -> int:
        return len({key for pair in self.pairs for key in pair})

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for data in self.blobs.values())


def make_dataset(
    n_blobs: int, n_pairs: int, seed: int, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE
) -> Dataset:
    """Random blobs of log-uniform size; every blob in some pair, extra slots Zipf-weighted."""
    if 2 * n_pairs < n_blobs:
        raise ValueError("need at least as many pair slots (2 x pairs) as blobs")
    if not 0 < min_size <= max_size:
        raise ValueError(f"need 0 < --min-size <= --max-size, got {min_size} and {max_size}")
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(math.log(min_size), math.log(max_size), n_blobs)).astype(int)
    blobs = {}
    for size in sizes:
        data = rng.bytes(int(size))
        blobs[hashlib.sha256(data).hexdigest()] = data
    keys = list(blobs)
    weights = 1.0 / np.arange(1, n_blobs + 1) ** 0.8
    extra = rng.choice(n_blobs, size=2 * n_pairs - n_blobs, p=weights / weights.sum())
    slots = keys + [keys[i] for i in extra]
    rng.shuffle(slots)
    return Dataset(blobs, list(zip(slots[0::2], slots[1::2], strict=True)))


# --- stores -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreAddress:
    """Where a loaded store answers: through the proxy adding the RTT, and through one adding none."""

    backend: str
    latency_url: str
    zero_url: str
    bucket: str  # S3 only
    keys_digest: str  # of the blob keys, so both processes are known to hold the same data


@dataclass(frozen=True)
class Counts:
    """Server-side GETs of blob keys (a batch's get operations included), batch requests and
    connections accepted per proxy URL, so far."""

    gets: int
    batches: int
    connections: dict[str, int]


@contextmanager
def loaded_store(
    backend: str, dataset: Dataset, rtt: float
) -> Iterator[tuple[StoreAddress, Callable[[], Counts]]]:
    """Start ``backend``'s test server, upload every blob, put the two proxies in front."""
    _isolate_aws_environment()
    keys = list(dataset.blobs)
    with ExitStack() as stack:
        if backend == "objectstore":
            from testing.objectstore import serve_objectstore

            objectstore = stack.enter_context(serve_objectstore())
            for key, data in dataset.blobs.items():
                objectstore.put(f"{PREFIX}/{key}", data)
            upstream, bucket = objectstore.url, ""

            def gets() -> int:
                return objectstore.counters.total_gets

            def batches() -> int:
                return objectstore.counters.batches
        else:
            from testing.s3 import S3TestServer

            s3 = S3TestServer()
            stack.callback(s3.stop)
            bucket = s3.create_bucket()
            for key, data in dataset.blobs.items():
                s3.put_object(bucket, f"{PREFIX}/{key}", data)
            upstream = s3.endpoint_url

            def gets() -> int:
                return sum(s3.requests("GET", bucket, f"{PREFIX}/{key}") for key in keys)

            def batches() -> int:
                return 0

        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        latency = stack.enter_context(LatencyProxy(host, int(port), rtt=rtt))
        zero = stack.enter_context(LatencyProxy(host, int(port), rtt=0.0))

        def counts() -> Counts:
            return Counts(gets(), batches(), {proxy.url: proxy.connections_accepted for proxy in (latency, zero)})

        yield StoreAddress(backend, latency.url, zero.url, bucket, _digest(keys)), counts


def _store_process(connection: Connection, backend: str, args: argparse.Namespace, rtt: float) -> None:
    """Body of the store process: load, report the address, answer count requests until told to stop."""
    try:
        dataset = make_dataset(args.blobs, args.pairs, args.seed, args.min_size, args.max_size)
        with loaded_store(backend, dataset, rtt) as (address, counts):
            connection.send(("ready", address))
            while connection.recv() == "counts":
                connection.send(("counts", counts()))
    except Exception:  # noqa: BLE001 - the parent reports it
        connection.send(("error", traceback.format_exc()))


@contextmanager
def store_process(
    backend: str, args: argparse.Namespace, rtt: float
) -> Iterator[tuple[StoreAddress, Callable[[], Counts]]]:
    """`loaded_store` in a child process, as a store on another host would be: its server and
    proxy threads then take no turns at this process's GIL."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_store_process, args=(theirs, backend, args, rtt),
                              name=f"{backend}-store", daemon=True)
    process.start()
    theirs.close()

    def answer(timeout: float) -> Any:
        if not ours.poll(timeout):
            raise TimeoutError(f"the {backend} store process did not answer in {timeout:g} s")
        kind, value = ours.recv()
        if kind == "error":
            raise RuntimeError(f"the {backend} store process failed:\n{value}")
        return value

    def counts() -> Counts:
        ours.send("counts")
        return answer(COUNTS_TIMEOUT)

    try:
        yield answer(LOAD_TIMEOUT), counts
    finally:
        try:
            ours.send("stop")
        except OSError:
            pass  # it has already gone
        process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join(STOP_TIMEOUT)
        ours.close()


def make_fetcher(
    address: StoreAddress, url: str, connections: int, *, batch: bool = False
) -> ObjectstoreFetcher | S3Fetcher:
    """A fresh fetcher, with a fresh pool of ``connections``, reading ``address``'s blobs at
    ``url``; ``batch``: objectstore's batch requests on."""
    if address.backend == "objectstore":
        return ObjectstoreFetcher.connect(
            url, USECASE, scopes=SCOPES, prefix=PREFIX, max_connections=connections, batch=batch
        )
    return S3Fetcher(address.bucket, prefix=PREFIX, endpoint_url=url, region_name=S3_REGION,
                     max_connections=connections)


def _isolate_aws_environment() -> None:
    """moto takes any credentials; keep the machine's AWS settings out of the run."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )


def _digest(keys: Sequence[str]) -> str:
    return hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()


BACKENDS = ("objectstore", "s3")


# --- strategies ---------------------------------------------------------------------------
# Each takes a fetcher and the pairs, fetches what the pattern fetches and returns
# {key: bytes} for every key it fetched (the last copy when a key was fetched more than once).

Strategy = Callable[[BlobFetcher, Sequence[tuple[str, str]]], dict[str, bytes]]


def sequential(fetcher: BlobFetcher, pairs: Sequence[tuple[str, str]]) -> dict[str, bytes]:
    blobs = {}
    for head, base in pairs:
        blobs[head] = fetcher.fetch(head)
        blobs[base] = fetcher.fetch(base)
    return blobs


def per_batch(fetcher: BlobFetcher, pairs: Sequence[tuple[str, str]]) -> dict[str, bytes]:
    blobs = {}
    for start in range(0, len(pairs), BATCH_PAIRS):
        keys = list(dict.fromkeys(key for pair in pairs[start:start + BATCH_PAIRS] for key in pair))
        with ThreadPoolExecutor(BATCH_THREADS) as executor:
            # zip over the keys drains the map iterator, so no pending fetch is dropped.
            cache = dict(zip(keys, executor.map(fetcher.fetch, keys), strict=True))
        blobs.update(cache)
    return blobs


def prefetched(workers: int, verify: bool) -> Strategy:
    def run(fetcher: BlobFetcher, pairs: Sequence[tuple[str, str]]) -> dict[str, bytes]:
        with BatchPrefetcher(fetcher, max_workers=workers, verify=verify) as prefetcher:
            result = prefetcher.fetch_all(key for pair in pairs for key in pair)
        if result.errors:
            key, error = next(iter(result.errors.items()))
            raise RuntimeError(f"{len(result.errors)} fetches failed, e.g. {key}: {error!r}")
        return result.blobs

    return run


class Streamed:
    """`BatchPrefetcher.iter_fetch` over every pair's keys, recording when the first blob came,
    after warming the pool with one request (so a TCP handshake is not what is timed)."""

    def __init__(self, workers: int, verify: bool) -> None:
        self.workers = workers
        self.verify = verify
        self.first: list[float] = []
        self.first_t0: list[float] = []
        self.first_key = ""

    def __call__(self, fetcher: BlobFetcher, pairs: Sequence[tuple[str, str]]) -> dict[str, bytes]:
        blobs: dict[str, bytes] = {}
        with BatchPrefetcher(fetcher, max_workers=self.workers, verify=self.verify) as prefetcher:
            start = time.perf_counter()
            for key, value in prefetcher.iter_fetch(key for pair in pairs for key in pair):
                if not blobs:
                    self.first.append(time.perf_counter() - start)
                    self.first_key = key
                if not isinstance(value, bytes):
                    raise RuntimeError(f"fetch of {key} failed: {value!r}")
                blobs[key] = value
        return blobs


# --- measurement --------------------------------------------------------------------------


class _Timed:
    """A fetcher wrapper that sums the time spent inside ``fetch`` (over all threads)."""

    def __init__(self, fetcher: ObjectstoreFetcher | S3Fetcher) -> None:
        self._fetcher = fetcher
        self.max_connections = fetcher.max_connections
        self._lock = threading.Lock()
        self.fetches = 0
        self.busy = 0.0

    def fetch(self, key: str) -> bytes:
        start = time.perf_counter()
        try:
            return self._fetcher.fetch(key)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.fetches += 1
                self.busy += elapsed


@dataclass
class Run:
    wall: float
    gets: int
    batches: int
    connections: int
    fetch_time: float  # mean time inside one fetch (NaN for batch requests)
    in_flight: float  # mean fetches in flight over the run (NaN for batch requests)
    cpu: float  # this process's CPU time over the run


@dataclass
class Row:
    label: str
    workers: int
    unique: int
    runs: list[Run]
    t0_runs: list[Run]
    scale: float  # measured on a subset of the pairs: times and GETs are multiplied by this
    rtt: float
    first_blob: float | None = None  # seconds until iter_fetch handed over its first blob
    lone_get: float | None = None  # seconds a GET of that same blob alone takes
    single_first: float | None = None  # seconds until iter_fetch over single GETs handed over its first
    lone_batch: float | None = None  # seconds a batch request of that one blob takes to hand it over
    alone_first: float | None = None  # seconds until iter_fetch over that one key handed it over
    first_blob_t0: float | None = None  # first_blob with no added latency (the T0 runs)
    lone_get_t0: float | None = None  # lone_get with no added latency
    lone_batch_t0: float | None = None  # lone_batch with no added latency

    @property
    def wall(self) -> float:
        return self.scale * statistics.median(run.wall for run in self.runs)

    @property
    def t0(self) -> float:
        return self.scale * statistics.median(run.wall for run in self.t0_runs)

    @property
    def bound(self) -> float:
        return max(math.ceil(self.unique / self.workers) * self.rtt, self.t0)

    @property
    def gets_per_key(self) -> float:
        return self.scale * max(run.gets for run in self.runs) / self.unique

    @property
    def batches_per_key(self) -> float:
        return self.scale * max(run.batches for run in self.runs) / self.unique

    @property
    def cpu_per_blob(self) -> float:
        return self.scale * statistics.median(run.cpu for run in self.runs) / self.unique

    @property
    def connections(self) -> int:
        return max(run.connections for run in self.runs)

    @property
    def fetch_time(self) -> float:
        return statistics.median(run.fetch_time for run in self.runs)

    @property
    def in_flight(self) -> float:
        return statistics.median(run.in_flight for run in self.runs)


@dataclass
class Bench:
    """One backend's loaded store and the data it holds, as seen from the fetching side."""

    address: StoreAddress
    counts: Callable[[], Counts]
    dataset: Dataset
    rtt: float
    verify: bool  # BatchPrefetcher checks every blob's sha256, as `compare` does by default

    def run_once(
        self, url: str, strategy: Strategy, pairs: Sequence[tuple[str, str]], connections: int, batch: bool
    ) -> Run:
        """One timed run with a fresh fetcher; checks every fetched blob. Batch requests go
        to the fetcher itself (its ``fetch_many``), single GETs through a timing wrapper."""
        fetcher = make_fetcher(self.address, url, connections, batch=batch)
        if isinstance(strategy, Streamed):
            fetcher.exists(next(iter(self.dataset.blobs)))  # one warm connection
        before = self.counts()
        timed = _Timed(fetcher)
        try:
            cpu = time.process_time()
            start = time.perf_counter()
            blobs = strategy(fetcher if batch else timed, pairs)
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu
        finally:
            fetcher.close()
        after = self.counts()
        expected = {key for pair in pairs for key in pair}
        if blobs.keys() != expected or any(blobs[key] != self.dataset.blobs[key] for key in expected):
            raise RuntimeError("a strategy returned missing or wrong blobs")
        fetch_time = timed.busy / timed.fetches if timed.fetches else math.nan
        in_flight = timed.busy / wall if timed.fetches else math.nan
        return Run(wall, after.gets - before.gets, after.batches - before.batches,
                   after.connections[url] - before.connections[url], fetch_time, in_flight, cpu)

    def lone_get(self, key: str, runs: int, *, batch: bool = False, t0: bool = False) -> float:
        """Median wall time of one GET of ``key`` through the RTT, on a warm connection, alone:
        one RTT plus that blob's bytes (outside the counted runs); with ``batch``, of a batch
        request of that one key instead, until its blob is handed over; with ``t0``, through
        the proxy adding no latency."""
        url = self.address.zero_url if t0 else self.address.latency_url
        fetcher = make_fetcher(self.address, url, 1, batch=batch)
        try:
            fetcher.exists(key)  # one warm connection
            walls = []
            for _ in range(runs):
                start = time.perf_counter()
                if isinstance(fetcher, ObjectstoreFetcher) and batch:
                    answers = fetcher.fetch_many([key])
                    ((_, blob),) = answers
                    if not isinstance(blob, bytes):
                        raise RuntimeError(f"the batch request for {key} failed: {blob!r}")
                else:
                    fetcher.fetch(key)
                walls.append(time.perf_counter() - start)
        finally:
            fetcher.close()
        return statistics.median(walls)

    def call_first(self, runs: int, keys: Sequence[str], *, batch: bool) -> float:
        """Median seconds until `BatchPrefetcher.iter_fetch` at P = `REFERENCE_P` over ``keys``
        (a fresh fetcher, sending batch requests or single GETs, its pool warmed by one
        request) hands over its first blob through the RTT."""
        firsts = []
        for _ in range(runs):
            fetcher = make_fetcher(self.address, self.address.latency_url, REFERENCE_P, batch=batch)
            try:
                fetcher.exists(keys[0])  # one warm connection
                with BatchPrefetcher(fetcher, max_workers=REFERENCE_P, verify=self.verify) as prefetcher:
                    start = time.perf_counter()
                    blobs = prefetcher.iter_fetch(keys)
                    next(blobs)
                    firsts.append(time.perf_counter() - start)
                    blobs.close()
            finally:
                fetcher.close()
        return statistics.median(firsts)

    def measure(
        self,
        label: str,
        strategy: Strategy,
        workers: int,
        *,
        runs: int,
        pairs: Sequence[tuple[str, str]] | None = None,
        batch: bool = False,
    ) -> Row:
        """``runs`` runs without added latency (T0) and ``runs`` with it, alternating, so that
        both see the same background load of a shared machine."""
        pairs = self.dataset.pairs if pairs is None else pairs
        t0_runs, latency_runs = [], []
        for _ in range(runs):
            t0_runs.append(self.run_once(self.address.zero_url, strategy, pairs, workers, batch))
            latency_runs.append(self.run_once(self.address.latency_url, strategy, pairs, workers, batch))
            if isinstance(strategy, Streamed):
                strategy.first_t0.append(strategy.first.pop(-2))  # the T0 run's first blob
        row = Row(label, workers, self.dataset.unique_keys, latency_runs, t0_runs,
                  len(self.dataset.pairs) / len(pairs), self.rtt)
        print(f"  {label:<30} P={workers:<3} wall {row.wall:6.2f} s  T0 {row.t0:6.2f} s  runs "
              f"{', '.join(f'{run.wall * row.scale:.2f}' for run in latency_runs)}", flush=True)
        return row


def bench_backend(backend: str, dataset: Dataset, args: argparse.Namespace) -> list[Row]:
    rtt = args.rtt / 1000
    print(f"\n{backend}: loading {len(dataset.blobs)} blobs ...", flush=True)
    start = time.perf_counter()
    if args.in_process:
        store = loaded_store(backend, dataset, rtt)
    else:
        store = store_process(backend, args, rtt)
    with store as (address, counts):
        if address.keys_digest != _digest(list(dataset.blobs)):
            raise RuntimeError("the store process generated different data")
        print(f"{backend}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
        bench = Bench(address, counts, dataset, rtt, args.verify)
        first = dataset.pairs[: args.sequential_pairs or len(dataset.pairs)]
        rows = [
            bench.measure("(a) sequential per pair", sequential, 1, runs=1, pairs=first),
            bench.measure("(b) 8 threads per batch of 50", per_batch, BATCH_THREADS, runs=args.runs),
        ]
        rows += [
            bench.measure("(c) BatchPrefetcher", prefetched(workers, args.verify), workers, runs=args.runs)
            for workers in PREFETCH_WORKERS
        ]
        if backend == "objectstore":
            streamed = Streamed(REFERENCE_P, args.verify)
            rows += [
                bench.measure("(d) batch requests, fetch_all", prefetched(REFERENCE_P, args.verify), REFERENCE_P,
                              runs=args.runs, batch=True),
                bench.measure("(e) batch requests, iter_fetch", streamed, REFERENCE_P, runs=args.runs, batch=True),
            ]
            rows[-1].first_blob = statistics.median(streamed.first)
            rows[-1].lone_get = bench.lone_get(streamed.first_key, args.runs)
            every_key = [key for pair in dataset.pairs for key in pair]
            rows[-1].single_first = bench.call_first(args.runs, every_key, batch=False)
            rows[-1].alone_first = bench.call_first(args.runs, [streamed.first_key], batch=True)
            rows[-1].lone_batch = bench.lone_get(streamed.first_key, args.runs, batch=True)
            rows[-1].first_blob_t0 = statistics.median(streamed.first_t0)
            rows[-1].lone_get_t0 = bench.lone_get(streamed.first_key, args.runs, t0=True)
            rows[-1].lone_batch_t0 = bench.lone_get(streamed.first_key, args.runs, batch=True, t0=True)
    return rows


# --- report -------------------------------------------------------------------------------


def print_table(backend: str, rows: list[Row], dataset: Dataset, args: argparse.Namespace) -> None:
    reference = next(row for row in rows if row.label.startswith("(c)") and row.workers == REFERENCE_P)
    print(f"\n### {backend}: {len(dataset.pairs)} pairs, U = {dataset.unique_keys} unique keys "
          f"({dataset.total_bytes / 1e6:.0f} MB), RTT {args.rtt:g} ms")
    print()
    print("| strategy | P | GETs / unique key | batches / unique key | connections | T0 | bound "
          f"| wall (median) | runs | in flight | per fetch | CPU / blob | wall / bound | wall / (c) P={REFERENCE_P} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        label = row.label
        if row.scale != 1:
            label += f" (first {len(dataset.pairs) / row.scale:.0f} pairs, x{row.scale:g})"
        print(f"| {label} | {row.workers} | {row.gets_per_key:.2f} | {row.batches_per_key:.4f} | {row.connections} "
              f"| {row.t0:.2f} s | {row.bound:.2f} s | {row.wall:.2f} s "
              f"| {' / '.join(f'{run.wall * row.scale:.2f}' for run in row.runs)} "
              f"| {row.in_flight:.1f} | {row.fetch_time * 1e3:.1f} ms | {row.cpu_per_blob * 1e3:.2f} ms "
              f"| {row.wall / row.bound:.2f} | {row.wall / reference.wall:.2f} |")
    print()
    targets = [
        (f"(c) P={REFERENCE_P} within 1.2x of its bound", reference.wall / reference.bound <= 1.2),
        ("(c) exactly 1.00 GETs per unique key",
         all(row.gets_per_key == 1 for row in rows if row.label.startswith("(c)"))),
        ("(c) connections opened <= P",
         all(row.connections <= row.workers for row in rows if row.label.startswith("(c)"))),
    ]
    batch_rows = [row for row in rows if row.label.startswith(("(d)", "(e)"))]
    if batch_rows:
        fetch_all = batch_rows[0]
        share = BATCH_TARGETS.get(args.rtt)
        if share is not None:
            targets.append((f"(d) wall <= {share:g} x (c) at P = {REFERENCE_P} "
                            f"({fetch_all.wall / reference.wall:.2f} x)", fetch_all.wall <= share * reference.wall))
        targets += [
            ("(d), (e) at most 0.01 batch requests per unique key",
             all(row.batches_per_key <= 0.01 for row in batch_rows)),
            ("(d), (e) exactly 1.00 operations per unique key", all(row.gets_per_key == 1 for row in batch_rows)),
        ]
        streamed = batch_rows[-1]
        if (streamed.first_blob is not None and streamed.lone_get is not None and streamed.single_first is not None
                and streamed.lone_batch is not None and streamed.alone_first is not None):
            # A lone GET of the same blob is one RTT plus its bytes and the fixed costs of a
            # request in this set-up; (a)'s mean fetch is the same for a blob of mean size.
            targets.append((f"(e) first blob {streamed.first_blob * 1e3:.1f} ms after the call, within one RTT "
                            f"plus its bytes: a lone GET of that blob takes {streamed.lone_get * 1e3:.1f} ms "
                            f"(a lone batch request of it {streamed.lone_batch * 1e3:.1f} ms), of a mean-size blob "
                            f"{rows[0].fetch_time * 1e3:.1f} ms; the same call over that key alone hands it over "
                            f"after {streamed.alone_first * 1e3:.1f} ms, over every key but by single GETs after "
                            f"{streamed.single_first * 1e3:.1f} ms",
                            streamed.first_blob <= streamed.lone_get))
        if (streamed.first_blob_t0 is not None and streamed.lone_get_t0 is not None
                and streamed.lone_batch_t0 is not None):
            print(f"- (e) with no latency added: first blob {streamed.first_blob_t0 * 1e3:.2f} ms after the call; "
                  f"a lone GET of it {streamed.lone_get_t0 * 1e3:.2f} ms, a lone batch request of it "
                  f"{streamed.lone_batch_t0 * 1e3:.2f} ms")
        print(f"- client CPU per blob: (d) {fetch_all.cpu_per_blob * 1e3:.2f} ms, (c) P={REFERENCE_P} "
              f"{reference.cpu_per_blob * 1e3:.2f} ms (single GETs)")
    for name, met in targets:
        print(f"- {name}: {'met' if met else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    parser.add_argument("--rtt", type=float, default=20.0, help="round-trip time added, ms")
    parser.add_argument("--runs", type=int, default=3, help="runs per strategy (median quoted)")
    parser.add_argument("--blobs", type=int, default=700)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--sequential-pairs", type=int, default=100,
                        help="pairs (a) runs on, scaled to all pairs; 0 for all")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--min-size", type=int, default=MIN_SIZE, help="smallest blob, bytes")
    parser.add_argument("--max-size", type=int, default=MAX_SIZE, help="largest blob, bytes")
    parser.add_argument("--in-process", action="store_true",
                        help="run servers and proxies in this process (they then share its GIL)")
    parser.add_argument("--verify", action="store_true",
                        help="BatchPrefetcher checks every blob's sha256 against its key, as compare does by default")
    parser.add_argument("--quick", action="store_true",
                        help="200 blobs, 300 pairs, 1 run, (a) on 30 pairs")
    args = parser.parse_args()
    if args.quick:
        args.blobs, args.pairs, args.runs, args.sequential_pairs = 200, 300, 1, 30

    print(f"# {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {platform.python_version()}; "
          f"sha256 of every blob checked: {'yes' if args.verify else 'no'}")
    _isolate_aws_environment()
    dataset = make_dataset(args.blobs, args.pairs, args.seed, args.min_size, args.max_size)
    per_batch_keys = sum(
        len({key for pair in dataset.pairs[i:i + BATCH_PAIRS] for key in pair})
        for i in range(0, len(dataset.pairs), BATCH_PAIRS)
    )
    print(f"# {len(dataset.pairs)} pairs over {dataset.unique_keys} unique blobs, "
          f"{dataset.total_bytes / 1e6:.0f} MB (mean {dataset.total_bytes / len(dataset.blobs) / 1e3:.0f} KB); "
          f"batches of {BATCH_PAIRS} pairs hold {per_batch_keys} unique keys in all")
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    results = {backend: bench_backend(backend, dataset, args) for backend in backends}
    for backend, rows in results.items():
        print_table(backend, rows, dataset, args)


if __name__ == "__main__":
    main()
