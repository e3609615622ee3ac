"""Scale benchmark: a comparison's chunks on 1, 2 and 4 single-threaded Dask workers.

Run from the repository root (about 4-5 minutes; ``--quick`` about 2):

    .venv/bin/python -m benchmarks.bench_scale [--quick] [--only latency|cpu|overhead ...]

(1) latency-bound: ``--pairs`` changed pairs of small distinct PNGs in the objectstore test
    server (stored uncompressed), served through a `LatencyProxy` adding ``--rtt`` (20 ms); each
    chunk fetches ``--fetch-workers`` blobs at a time (default 1), so one worker spends most of
    its time waiting on the network.
    Run on a `LocalCluster` of 1, 2 and 4 worker processes (one thread each), and once locally
    (`run_comparison`, same options) for reference.
(2) CPU-bound: ``--screens`` pairs of 1170x2532 app screens (one list row changed) from a
    local folder store, one diff thread per chunk, two pairs per chunk; 1 and 2 workers.
(3) scheduler overhead: ``--tasks`` no-op tasks submitted one by one and collected with
    ``as_completed`` on 2 workers; and as many one-pair chunks of 16x16 images (the whole
    chunk path: task, fetcher, prefetcher, diff, result back, mask written).

Clusters are started, and the modules a chunk needs imported on every worker, before the
clock starts (start-up time is reported apart). The
store servers and the proxy run in this process and share the machine's cores with the
workers; the load average before each run is printed, since other work on a shared machine
shows up in the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from distributed import Client, LocalCluster, as_completed  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.bench_diff import HEIGHT, WIDTH, draw_screen  # noqa: E402
from benchmarks.bench_diff import png as encode_png  # noqa: E402
from compare.engine.chunks import plan  # noqa: E402
from compare.engine.distributed import run_on_cluster  # noqa: E402
from compare.engine.local import run_comparison  # noqa: E402
from compare.inputs.manifest import Manifest, parse_manifest  # noqa: E402
from compare.model import CompareOptions, Resources  # noqa: E402
from compare.output.artifacts import ArtifactWriter  # noqa: E402
from fetchers import fetcher_from_url  # noqa: E402
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, serve_objectstore  # noqa: E402
from testing.proxy import LatencyProxy  # noqa: E402

MIB = 1024 * 1024


def small_png(seed: int, size: int = 96) -> bytes:
    """A distinct small PNG: noise from ``seed``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG", compress_level=1)
    return out.getvalue()


def manifests(
    pairs: list[tuple[bytes, bytes]], size: tuple[int, int]
) -> tuple[Manifest, Manifest, dict[str, bytes]]:
    """Base and head manifests with one name per pair (images of ``size``), every blob by hash."""
    blobs: dict[str, bytes] = {}
    base, head = {}, {}
    for index, (before, after) in enumerate(pairs):
        for side, data in ((base, before), (head, after)):
            key = hashlib.sha256(data).hexdigest()
            blobs[key] = data
            side[f"screen-{index:05d}.png"] = {"content_hash": key, "width": size[0], "height": size[1]}
    return parse_manifest({"images": base}, "base"), parse_manifest({"images": head}, "head"), blobs


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def timed(label: str, run: Callable[[], object]) -> float:
    print(f"# {label}: {load()}", flush=True)
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return elapsed


def warm_up() -> None:
    """Import on a worker what a chunk needs, so the first chunk's time is not import time."""
    import compare.engine.distributed  # noqa: F401
    import fetchers.backends.objectstore  # noqa: F401


def children_cpu() -> float:
    """CPU seconds spent so far by this process's live descendants (the cluster's processes)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def on_cluster(workers: int, label: str, run: Callable[[str], object]) -> float:
    """Start a cluster of ``workers`` processes, then time ``run(scheduler address)`` on it.

    Also prints the CPU seconds the worker processes spent meanwhile: on a busy machine the
    wall time stretches, that figure much less.
    """
    started = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.run(warm_up)
        print(f"# {label}: cluster of {workers} started in {time.perf_counter() - started:.1f} s", flush=True)
        cpu_before, own_before = children_cpu(), time.process_time()
        elapsed = timed(label, lambda: run(cluster.scheduler_address))
        print(f"# {label}: worker processes used {children_cpu() - cpu_before:.2f} CPU s, this process "
              f"(client, scheduler, store servers, proxy) {time.process_time() - own_before:.2f}", flush=True)
        return elapsed


def latency_bound(pairs: int, rtt: float, fetch_workers: int, out: Path) -> dict[str, float]:
    base, head, blobs = manifests([(small_png(2 * i), small_png(2 * i + 1)) for i in range(pairs)], (96, 96))
    options = CompareOptions(previews=False)
    resources = Resources(workers=1, fetch_workers=fetch_workers, max_memory=256 * MIB)
    the_plan = plan(base, head, options)
    print(f"# latency-bound: {pairs} pairs, {len(blobs)} blobs, {len(the_plan.chunks)} chunks, "
          f"rtt {rtt * 1000:.0f} ms, {fetch_workers} fetches at a time per chunk")
    results = {}
    with serve_objectstore() as server:
        for key, data in blobs.items():
            server.put(key, data, compress="none")
        with LatencyProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1]), rtt=rtt) as proxy:
            query = "&".join(f"{k}={v}" for k, v in DEFAULT_SCOPES.items())
            url = f"objectstore+{proxy.url}/{DEFAULT_USECASE}?{query}"

            def local() -> None:
                with fetcher_from_url(url, max_connections=resources.fetch_workers) as fetcher:
                    run_comparison(base, head, fetcher, options, resources=resources,
                                   artifacts=ArtifactWriter(out / "local"))

            results["local run_comparison"] = timed("latency local", local)
            for workers in (1, 2, 4):
                results[f"{workers} workers"] = on_cluster(
                    workers, f"latency {workers} workers",
                    lambda address: run_on_cluster(the_plan, url, address, artifacts=ArtifactWriter(out / "dask")),
                )
    return results


def cpu_bound(screens: int, out: Path) -> dict[str, float]:
    store = out / "store"
    store.mkdir()
    pairs = [(encode_png(draw_screen(WIDTH, HEIGHT, seed=5000 + i), 1),
              encode_png(draw_screen(WIDTH, HEIGHT, seed=5000 + i, changed_row=i % 7), 1)) for i in range(screens)]
    base, head, blobs = manifests(pairs, (WIDTH, HEIGHT))
    for key, data in blobs.items():
        (store / key).write_bytes(data)
    options = CompareOptions()
    the_plan = plan(base, head, options, max_chunk_pairs=2)
    print(f"# CPU-bound: {screens} pairs of {WIDTH}x{HEIGHT}, {len(the_plan.chunks)} chunks")
    return {
        f"{workers} workers": on_cluster(
            workers, f"cpu {workers} workers",
            lambda address: run_on_cluster(the_plan, str(store), address, artifacts=ArtifactWriter(out / "cpu")),
        )
        for workers in (1, 2)
    }


def noop(index: int) -> int:
    return index


def overhead(tasks: int, out: Path) -> dict[str, float]:
    store = out / "tiny"
    store.mkdir()
    tiny = [(small_png(10_000 + 2 * i, 16), small_png(10_001 + 2 * i, 16)) for i in range(tasks)]
    base, head, blobs = manifests(tiny, (16, 16))
    for key, data in blobs.items():
        (store / key).write_bytes(data)
    options = CompareOptions()
    the_plan = plan(base, head, options, max_chunk_pairs=1)
    results = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(warm_up)
        client.submit(noop, -1, pure=False).result()  # connections open

        def submit_noops() -> None:
            for future in as_completed([client.submit(noop, i, pure=False) for i in range(tasks)]):
                future.release()

        results["no-op task"] = timed(f"{tasks} no-op tasks", submit_noops) / tasks
        results["one-pair chunk"] = timed(
            f"{tasks} one-pair chunks",
            lambda: run_on_cluster(the_plan, str(store), cluster.scheduler_address,
                                   artifacts=ArtifactWriter(out / "tiny-out")),
        ) / tasks
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("--pairs", type=int, default=1200, help="latency-bound pairs (default 1200)")
    parser.add_argument("--screens", type=int, default=12, help="CPU-bound pairs (default 12)")
    parser.add_argument("--tasks", type=int, default=400, help="tasks for the overhead figures (default 400)")
    parser.add_argument("--rtt", type=float, default=0.020, help="proxy round trip, seconds (default 0.020)")
    parser.add_argument("--fetch-workers", type=int, default=1,
                        help="concurrent fetches per chunk in the latency-bound case (default 1)")
    parser.add_argument("--only", choices=("latency", "cpu", "overhead"), action="append",
                        help="run only these parts (repeatable; default: all)")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.screens, args.tasks = 400, 4, 100
    print(f"# {os.cpu_count()} cores, python {sys.version.split()[0]}, {load()}")
    parts = set(args.only or ("latency", "cpu", "overhead"))
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        out = Path(folder)
        latency = latency_bound(args.pairs, args.rtt, args.fetch_workers, out) if "latency" in parts else {}
        cpu = cpu_bound(args.screens, out) if "cpu" in parts else {}
        costs = overhead(args.tasks, out) if "overhead" in parts else {}
    print("\nresults")
    for case, figures in (("latency-bound", latency), ("CPU-bound", cpu)):
        for label, seconds in figures.items():
            print(f"  {case}, {label:<22} {seconds:7.2f} s   speed-up vs 1 worker "
                  f"{figures['1 workers'] / seconds:4.2f}x")
    for label, seconds in costs.items():
        print(f"  per {label:<32} {seconds * 1000:7.2f} ms")

if __name__ == "__main__":
    main()
