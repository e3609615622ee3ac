"""Comparison benchmark: the streaming pipeline against the per-batch pattern, fetch and diff alone.

Run from the repository root:

    .venv/bin/python -m benchmarks.bench_compare            # 1,000 names, 7-10 minutes
    .venv/bin/python -m benchmarks.bench_compare --quick    # 200 names, one run each, ~1 minute

Data: ``--names`` manifest names of 1170x2532 screenshot-like PNGs (zlib level 1). Half are
unchanged (same hash on both sides, never fetched), the rest changed. A changed head is a base
screen with one list row re-titled and its icon re-coloured, ``VARIANTS`` heads per base, so
many pairs share a base; ``DUPLICATE_SHARE`` of the changed names repeat another name's
(base, head) pair, ``COPIES`` names per repeated pair. The PNGs are rendered once and cached
in benchmarks/.cache/ (git-ignored). moto S3 on waitress serves them from this process,
behind a `LatencyProxy` adding ``--rtt``.

Each run executes in a fresh interpreter, so its peak RSS (VmHWM) is its own:

(a) per-batch baseline: batches of 50 changed names; each batch's unique blobs fetched by a
    new ThreadPoolExecutor(8) into a per-batch dict, then its pairs diffed one by one with
    ``diff_images`` from the bytes (and the mask PNG made), then the next batch;
(b) fetch only: every unique blob of the plan through `BatchPrefetcher.iter_fetch` with the
    pipeline's workers, verification and read-ahead bound; nothing else;
(c) diff only: every unique pair through the pipeline's ``stream_pairs`` (decode, diff, mask,
    previews on ``--workers`` threads, each shared base decoded once) from a fetcher serving
    the bytes from memory;
(d) ``run_comparison`` over the two manifests with an `S3Fetcher` through the proxy, masks and
    previews written to a temporary folder.

(c) and (d) also run with previews off. Runs are interleaved: (b), (c), (d) ``--repeats``
times, (a) and the previews-off runs ``--baseline-repeats`` times; medians are quoted. Each
run waits (at most ``--quiet-wait`` seconds) for the other processes on the machine to go
idle. Besides wall time, a run reports the CPU seconds of its timed part (and per thread
role), the CPU this process (moto, waitress, the proxy) spent meanwhile ("server CPU") and
what the rest of the machine spent ("others' CPU": noise from other work).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.bench_diff import HEIGHT, WIDTH, draw_screen, png  # noqa: E402
from compare.classify import categorize  # noqa: E402
from compare.engine.local import Progress, run_comparison  # noqa: E402
from compare.engine.pairs import PairTask, stream_pairs  # noqa: E402
from compare.imaging.pixeldiff import diff_images  # noqa: E402
from compare.inputs.manifest import Manifest, load_manifest, parse_manifest, write_manifest  # noqa: E402
from compare.model import DEFAULT_FETCH_WORKERS, DEFAULT_MAX_MEMORY, CompareOptions, Resources  # noqa: E402
from compare.output.artifacts import ArtifactWriter  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "bench_compare"
PNG_LEVEL = 1
VARIANTS = 7  # changed heads derived from each base screen
DUPLICATE_SHARE = 0.16  # changed names whose (base, head) pair another name has too
COPIES = 4  # names per repeated pair
BASE_SEED = 4000
BATCH_PAIRS = 50
BATCH_THREADS = 8
MIB = 1024 * 1024
REGION = "us-east-1"
MODES = {
    "a": "(a) per batch of 50: 8 fetch threads, then diffs one by one",
    "b": "(b) fetch only: BatchPrefetcher",
    "c": "(c) diff only: stream_pairs from memory",
    "d": "(d) pipeline: run_comparison",
    "c0": "(c) diff only, previews off",
    "d0": "(d) pipeline, previews off",
}
REPEATED_MODES = ("b", "c", "d")


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How ``names`` manifest names split into unchanged names, unique pairs and repeats."""

    names: int

    @property
    def unchanged(self) -> int:
        return self.names // 2

    @property
    def changed(self) -> int:
        return self.names - self.unchanged

    @property
    def repeats(self) -> int:
        return round(self.changed * DUPLICATE_SHARE)

    @property
    def unique_pairs(self) -> int:
        return self.changed - self.repeats

    @property
    def bases(self) -> int:
        return math.ceil(self.unique_pairs / VARIANTS)

    def pair(self, index: int) -> tuple[str, str]:
        """Screen ids (base, head) of unique pair ``index``."""
        base, variant = divmod(index, VARIANTS)
        return screen_id(base), screen_id(base, variant)

    def screens(self) -> list[str]:
        """Every screen id the data set needs: the bases, then the heads in pair order."""
        heads = [self.pair(index)[1] for index in range(self.unique_pairs)]
        return [screen_id(base) for base in range(self.bases)] + heads


def screen_id(base: int, variant: int | None = None) -> str:
    return f"base{base:03d}" if variant is None else f"base{base:03d}-row{variant}"


def render_screen(screen: str, path: Path) -> None:
    """Draw screen ``screen`` and write it as a PNG file at ``path`` (atomically)."""
    base, _, row = screen.partition("-row")
    seed = BASE_SEED + int(base.removeprefix("base"))
    image = draw_screen(WIDTH, HEIGHT, seed=seed, changed_row=int(row) if row else None)
    partial = path.with_suffix(".partial")
    partial.write_bytes(png(image, level=PNG_LEVEL))
    partial.replace(path)


def cached_screens(screens: Sequence[str]) -> dict[str, Path]:
    """The PNG file of every screen, rendering (in parallel) those not cached yet."""
    folder = CACHE / f"pillow-{Image.__version__}-{WIDTH}x{HEIGHT}-level{PNG_LEVEL}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {screen: folder / f"{screen}.png" for screen in screens}
    missing = [screen for screen, path in paths.items() if not path.exists()]
    if missing:
        print(f"# rendering {len(missing)} screens into {folder} (kept for later runs)", flush=True)
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(render_screen, missing, [paths[screen] for screen in missing]))
    return paths


@dataclass(frozen=True)
class Dataset:
    """The two manifests and every blob they reference, as ``{sha256 hex: PNG file}``."""

    base: Manifest
    head: Manifest
    blob_files: dict[str, Path]

    @property
    def blob_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.blob_files.values())


def build_dataset(layout: Layout) -> Dataset:
    paths = cached_screens(layout.screens())
    hashes = {screen: hashlib.sha256(path.read_bytes()).hexdigest() for screen, path in paths.items()}
    base: dict[str, str] = {}
    head: dict[str, str] = {}
    for index in range(layout.unique_pairs):
        before, after = layout.pair(index)
        base[f"flows/{before}/{after}.png"] = hashes[before]
        head[f"flows/{before}/{after}.png"] = hashes[after]
    # The repeated pairs are spread over all pairs: the same screen under other test names.
    groups = math.ceil(layout.repeats / COPIES)
    spread = max(1, layout.unique_pairs // max(1, groups))
    for repeat in range(layout.repeats):
        before, after = layout.pair((repeat // COPIES) * spread % layout.unique_pairs)
        base[f"shared/copy{repeat % COPIES}/{after}.png"] = hashes[before]
        head[f"shared/copy{repeat % COPIES}/{after}.png"] = hashes[after]
    every_hash = list(hashes.values())
    for index in range(layout.unchanged):
        name = f"stable/screen{index:04d}.png"
        base[name] = head[name] = every_hash[index % len(every_hash)]

    def manifest(images: dict[str, str], source: str) -> Manifest:
        entries = {
            name: {"content_hash": digest, "width": WIDTH, "height": HEIGHT}
            for name, digest in sorted(images.items())
        }
        return parse_manifest({"images": entries}, source)

    return Dataset(
        manifest(base, "base.json"),
        manifest(head, "head.json"),
        {hashes[screen]: path for screen, path in paths.items()},
    )


# --- the runs, each in a child process ----------------------------------------------------


class ThreadCpu:
    """CPU seconds of this process's threads over a ``with`` block, summed by thread role.

    A thread's role is its name without the pool index (``snapcompare-diff_1`` counts as
    ``snapcompare-diff``). Threads are read from /proc every ``interval`` seconds, so a thread
    that ends between two reads loses at most that much.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._start: dict[int, float] = {}
        self._seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ThreadCpu:
        self._sample()
        self._start = {tid: seconds for tid, (_, seconds) in self._seen.items()}
        self._sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sampler.join(timeout=5)
        self._sample()

    def by_role(self) -> dict[str, float]:
        roles: dict[str, float] = {}
        for tid, (name, seconds) in self._seen.items():
            role = name.rsplit("_", 1)[0] if name[-1].isdigit() and "_" in name else name
            roles[role] = roles.get(role, 0.0) + seconds - self._start.get(tid, 0.0)
        roles.pop("cpu-sampler", None)
        return {role: round(seconds, 2) for role, seconds in sorted(roles.items())}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for thread in threading.enumerate():
            try:
                stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / self._tick
            self._seen[thread.native_id] = (thread.name, cpu)


class Stopwatch:
    """Wall time, process CPU time and CPU per thread role of the timed part of a run."""

    def __enter__(self) -> Stopwatch:
        self._threads = ThreadCpu().__enter__()
        self.started = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self._cpu
        self._threads.__exit__(*exc_info)

    def figures(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "threads": self._threads.by_role()}


@dataclass(frozen=True)
class Setup:
    """What a run needs: the run folder (manifests, blob index), the store, the comparison's
    settings and this process's resources."""

    folder: Path
    bucket: str
    endpoint: str
    options: CompareOptions
    resources: Resources

    def manifests(self) -> tuple[Manifest, Manifest]:
        return load_manifest(self.folder / "base.json"), load_manifest(self.folder / "head.json")

    def fetcher(self, connections: int):
        from fetchers import S3Fetcher

        return S3Fetcher(
            self.bucket, endpoint_url=self.endpoint, region_name=REGION, max_connections=connections
        )

    def unique_pairs(self) -> list[PairTask]:
        """The unique (base, head) pairs the comparison diffs, in the plan's order."""
        plan = categorize(*self.manifests(), max_pixels=self.options.max_pixels)
        return [PairTask(before, after, names[0]) for (before, after, _), names in plan.pairs.items()]


def run_baseline(setup: Setup) -> dict:
    base, head = setup.manifests()
    pairs = [
        (base.images[name].content_hash, head.images[name].content_hash)
        for name in sorted(head.images)
        if base.images[name].content_hash != head.images[name].content_hash
    ]
    changed = 0
    with setup.fetcher(BATCH_THREADS) as fetcher, Stopwatch() as watch:
        for first in range(0, len(pairs), BATCH_PAIRS):
            batch = pairs[first : first + BATCH_PAIRS]
            keys = list(dict.fromkeys(key for pair in batch for key in pair))
            with ThreadPoolExecutor(BATCH_THREADS, thread_name_prefix="batch-fetch") as executor:
                # zip drains the map iterator: every fetch is awaited (and its error raised).
                cache = dict(zip(keys, executor.map(fetcher.fetch, keys), strict=True))
            for before, after in batch:
                result = diff_images(cache[before], cache[after], threshold=setup.options.threshold)
                if result.changed_pixels:
                    changed += 1
                    result.mask_png()
    return {**watch.figures(), "changed": changed}


def run_fetch_only(setup: Setup) -> dict:
    from fetchers import BatchPrefetcher, BatchStats

    tasks = setup.unique_pairs()
    keys = list(dict.fromkeys(key for task in tasks for key in (task.base_hash, task.head_hash)))
    options, resources = setup.options, setup.resources
    stats = BatchStats()
    with setup.fetcher(resources.fetch_workers) as fetcher:
        prefetcher = BatchPrefetcher(
            fetcher,
            max_workers=resources.fetch_workers,
            verify=options.verify,
            max_pending_bytes=resources.max_memory // 4,
        )
        with Stopwatch() as watch, prefetcher:
            outcomes = prefetcher.iter_fetch(keys, stats=stats)
            failed = sum(isinstance(value, Exception) for _, value in outcomes)
    if failed:
        raise RuntimeError(f"{failed} of {len(keys)} fetches failed")
    return {**watch.figures(), "blobs": len(keys), "bytes": stats.bytes_fetched}


class MemoryFetcher:
    """Blobs already in memory behind the fetcher protocol: the pipeline's work without a store."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def fetch(self, key: str) -> bytes:
        return self.blobs[key]


def run_diff_only(setup: Setup) -> dict:
    tasks = setup.unique_pairs()
    files = json.loads((setup.folder / "blobs.json").read_text())
    blobs = {key: Path(files[key]).read_bytes() for task in tasks for key in (task.base_hash, task.head_hash)}
    with Stopwatch() as watch:
        outcomes = list(stream_pairs(MemoryFetcher(blobs), setup.options, setup.resources, tasks))
    errors = [outcome.detail for outcome in outcomes if outcome.reason is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} pairs failed, e.g. {errors[0]}")
    return {**watch.figures(), "changed": sum(bool(outcome.changed_pixels) for outcome in outcomes)}


def run_pipeline(setup: Setup) -> dict:
    base, head = setup.manifests()
    fetched_at: list[float] = []

    def progress(state: Progress) -> None:
        if state.blobs_fetched == state.blobs_total and not fetched_at:
            fetched_at.append(time.perf_counter() - watch.started)

    with setup.fetcher(setup.resources.fetch_workers) as fetcher, tempfile.TemporaryDirectory() as out:
        with Stopwatch() as watch:
            comparison = run_comparison(
                base, head, fetcher, setup.options, resources=setup.resources, artifacts=ArtifactWriter(Path(out)),
                progress=progress
            )
    summary = comparison.summary
    return {
        **watch.figures(),
        "changed": summary["changed"],
        "summary": summary,
        "all_fetched_at": fetched_at[0],
    }


RUNNERS = {"a": run_baseline, "b": run_fetch_only, "c": run_diff_only, "d": run_pipeline}


def peak_rss() -> int:
    """Peak resident set of this process in bytes: VmHWM, since ``ru_maxrss`` keeps the peak the
    forked process had before exec (the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args: argparse.Namespace) -> None:
    mode = args.child
    options = CompareOptions(previews=mode not in ("c0", "d0"))
    resources = Resources(workers=args.workers, fetch_workers=args.fetch_workers, max_memory=args.max_memory)
    result = RUNNERS[mode[0]](Setup(Path(args.folder), args.bucket, args.endpoint, options, resources))
    print(json.dumps({**result, "peak_rss": peak_rss()}))


# --- orchestration ------------------------------------------------------------------------


@dataclass
class Measurement:
    """One run: the child's figures, and the CPU seconds this process (the servers) and the rest
    of the machine spent meanwhile."""

    result: dict
    server_cpu: float
    others_cpu: float

    @property
    def wall(self) -> float:
        return self.result["wall"]

    @property
    def cores(self) -> float:
        return self.result["cpu"] / self.wall


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit: float, *, idle_cores: float = 0.25, window: float = 1.0) -> None:
    """Wait (at most ``limit`` seconds) until the rest of the machine uses under ``idle_cores``
    cores over a ``window``, so that on a shared machine a run starts on an idle one."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before, own = busy_cpu_seconds(), time.process_time()
        time.sleep(window)
        if busy_cpu_seconds() - before - (time.process_time() - own) < idle_cores * window:
            return


@contextmanager
def s3_behind_proxy(dataset: Dataset, rtt: float) -> Iterator[tuple[str, str]]:
    """Serve the data set's blobs from moto S3 behind a latency proxy; yield (bucket, proxy URL)."""
    from testing.proxy import LatencyProxy
    from testing.s3 import S3TestServer

    server = S3TestServer()
    try:
        bucket = server.create_bucket()
        for key, path in dataset.blob_files.items():
            server.put_object(bucket, key, path.read_bytes())
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        with LatencyProxy("127.0.0.1", port, rtt=rtt) as proxy:
            yield bucket, proxy.url
    finally:
        server.stop()


def child_environment() -> dict[str, str]:
    """This environment with moto's fake credentials and none of the machine's AWS settings."""
    from testing.s3 import CREDENTIALS

    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def measure(mode: str, setup: Setup, args: argparse.Namespace) -> Measurement:
    """Run ``mode`` in a fresh interpreter; account for the CPU spent around it."""
    wait_for_quiet(args.quiet_wait)
    command = [
        sys.executable, "-m", "benchmarks.bench_compare", "--child", mode,
        "--folder", str(setup.folder), "--bucket", setup.bucket, "--endpoint", setup.endpoint,
        "--workers", str(args.workers), "--fetch-workers", str(args.fetch_workers),
        "--max-memory", str(args.max_memory),
    ]
    server_cpu, machine_cpu = time.process_time(), busy_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        command, cwd=ROOT, env=child_environment(), capture_output=True, text=True, timeout=1800
    )
    server_cpu = time.process_time() - server_cpu
    machine_cpu = busy_cpu_seconds() - machine_cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    if done.returncode:
        raise RuntimeError(f"run {mode} failed ({done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Measurement(result, server_cpu, max(0.0, machine_cpu - server_cpu - child_cpu))


def check(mode: str, result: dict, layout: Layout, blobs: int) -> None:
    """Each run must have done the whole job: every changed pair found changed, every blob in."""
    if mode == "b":
        if result["blobs"] != blobs:
            raise RuntimeError(f"run b fetched {result['blobs']} blobs, expected {blobs}")
        return
    expected = layout.unique_pairs if mode.startswith("c") else layout.changed
    if result["changed"] != expected:
        raise RuntimeError(f"run {mode} found {result['changed']} changed, expected {expected}")
    if mode.startswith("d"):
        summary = result["summary"]
        wanted = {"total": layout.names, "unchanged": layout.unchanged, "errored": 0}
        if any(summary[key] != value for key, value in wanted.items()):
            raise RuntimeError(f"run {mode}: summary {summary}, expected {wanted}")


def mib(size: float) -> str:
    return f"{size / MIB:,.0f} MiB"


def report(runs: dict[str, list[Measurement]], args: argparse.Namespace) -> None:
    wall = {mode: statistics.median(m.wall for m in ms) for mode, ms in runs.items()}
    peak = {mode: max(m.result["peak_rss"] for m in ms) for mode, ms in runs.items()}
    print()
    print("| run | wall (median) | all runs | CPU of the run | cores used | peak RSS "
          "| server CPU | others' CPU |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for mode, ms in runs.items():
        print(f"| {MODES[mode]} | {wall[mode]:.1f} s | {', '.join(f'{m.wall:.1f}' for m in ms)} "
              f"| {statistics.median(m.result['cpu'] for m in ms):.1f} s "
              f"| {statistics.median(m.cores for m in ms):.2f} | {mib(peak[mode])} "
              f"| {statistics.median(m.server_cpu for m in ms):.1f} s "
              f"| {statistics.median(m.others_cpu for m in ms):.1f} s |")
    print()
    limit = args.max_memory + 200_000_000
    targets = []
    for suffix, label in (("", "previews on"), ("0", "previews off")):
        d = f"d{suffix}"
        ratio = wall[d] / max(wall["b"], wall[f"c{suffix}"])
        speedup = wall["a"] / wall[d]
        targets += [
            (f"(d) / max((b), (c)), {label}: {ratio:.2f} (target <= 1.3)", ratio <= 1.3),
            (f"(a) / (d), {label}: {speedup:.2f}x (target >= 2)", speedup >= 2),
            (f"peak RSS of (d), {label}: {mib(peak[d])} (target < max_memory "
             f"{mib(args.max_memory)} + 200 MB = {mib(limit)})", peak[d] < limit),
        ]
    for text, met in targets:
        print(f"- {text}: {'met' if met else 'MISSED'}")
    print()
    print("CPU seconds by thread role (median run):")
    for mode, ms in runs.items():
        middle = sorted(ms, key=lambda m: m.wall)[len(ms) // 2]
        extra = ""
        if mode.startswith("d"):
            extra = f"; all blobs in at {middle.result['all_fetched_at']:.1f} s of {middle.wall:.1f} s"
        print(f"- {MODES[mode]}: {middle.result['threads']}{extra}")


def machine_note() -> str:
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        revision = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        revision = ""
    return (f"# {model}, {os.cpu_count()} cores, load average {load}; "
            f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {Image.__version__}; "
            f"commit {revision or 'unknown'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1000, help="manifest names (half changed)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of (b), (c), (d)")
    parser.add_argument("--baseline-repeats", type=int, default=1,
                        help="runs of (a) and of the previews-off runs")
    parser.add_argument("--rtt", type=float, default=20.0, help="round-trip time added, ms")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="diff threads")
    parser.add_argument("--fetch-workers", type=int, default=DEFAULT_FETCH_WORKERS)
    parser.add_argument("--max-memory", type=int, default=DEFAULT_MAX_MEMORY, help="bytes")
    parser.add_argument("--quiet-wait", type=float, default=15.0,
                        help="seconds to wait at most before each run for other processes to go idle")
    parser.add_argument("--quick", action="store_true", help="200 names, one run each")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.names, args.repeats, args.baseline_repeats = 200, 1, 1
    if args.names < 4 or min(args.repeats, args.baseline_repeats) < 1:
        parser.error("--names must be at least 4 and the repeats at least 1")
    resources = Resources(workers=args.workers, fetch_workers=args.fetch_workers,
                          max_memory=args.max_memory)  # rejects bad values before any work

    print(machine_note())
    layout = Layout(args.names)
    dataset = build_dataset(layout)
    print(f"# {layout.names} names: {layout.unchanged} unchanged, {layout.changed} changed "
          f"({layout.unique_pairs} unique pairs over {layout.bases} bases, {layout.repeats} names "
          f"repeating a pair); {len(dataset.blob_files)} blobs, {dataset.blob_bytes / 1e6:.0f} MB "
          f"(mean {dataset.blob_bytes / len(dataset.blob_files) / 1e6:.2f} MB); RTT {args.rtt:g} ms; "
          f"workers {args.workers}, fetch_workers {args.fetch_workers}, "
          f"max_memory {mib(args.max_memory)}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    try:
        write_manifest(dataset.base, folder / "base.json")
        write_manifest(dataset.head, folder / "head.json")
        files = {key: str(path) for key, path in dataset.blob_files.items()}
        (folder / "blobs.json").write_text(json.dumps(files))
        runs: dict[str, list[Measurement]] = {mode: [] for mode in MODES}
        with s3_behind_proxy(dataset, args.rtt / 1000) as (bucket, endpoint):
            setup = Setup(folder, bucket, endpoint, CompareOptions(), resources)
            for repeat in range(max(args.repeats, args.baseline_repeats)):
                for mode in MODES:
                    if repeat >= (args.repeats if mode in REPEATED_MODES else args.baseline_repeats):
                        continue
                    measurement = measure(mode, setup, args)
                    check(mode, measurement.result, layout, len(dataset.blob_files))
                    runs[mode].append(measurement)
                    print(f"  {MODES[mode]:<62} {measurement.wall:6.1f} s  cores {measurement.cores:.2f}"
                          f"  peak RSS {mib(measurement.result['peak_rss'])}"
                          f"  server CPU {measurement.server_cpu:.1f} s"
                          f"  others' CPU {measurement.others_cpu:.1f} s", flush=True)
        report(runs, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
