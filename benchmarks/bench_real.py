"""Pixel diff on real browser screenshots: snapcompare against blazediff, odiff and pixelmatch.

Run from the repository root (the first run renders the corpus with Chromium, builds
benchmarks/.cache/venv with the `bench` dependency group and installs the node peers):

    .venv/bin/python -m benchmarks.bench_real [--repeats 3] [--rounds 1] [--quick]
        [--categories "components,photographic page"]

The corpus is benchmarks/corpus.py's: about 355 (base, head) pairs of Chromium screenshots in
six categories (small UI, phone, tall page, identical pixels, components, photographic page);
``--categories`` keeps only some of them. Every measure is reported per category, with the
median over the category's pairs and its worst pair (the largest ratio against blazediff, or
against pixelmatch for the engines). It prints:

1. per-pair CPU time (one thread, in this process) from PNG files to the changed-pixel count and a
   1-bit mask PNG: snapcompare (`diff_images(bytes, bytes)` then `.mask_png()`, in memory)
   against blazediff 6.0.2 in-process (`blazediff.compare(paths)`) without and with its diff
   image written to a file, and against decoding both files alone (the floor of any pair);
2. whole-machine throughput over every pair: snapcompare on a thread pool of 2, blazediff in a
   process pool of 2, odiff 4.5.0 `--server` (one server per core, JSON lines on stdin/stdout)
   and the odiff CLI per pair (two at a time); per category, each pair's wall under that load
   summed and divided by the cores, next to the one-core figure of section 1;
3. the largest page of each category of 5 MP or more: wall time and peak RSS of `snapcompare
   compare --base DIR --head DIR --out OUT` as a subprocess against the odiff CLI on the pair;
4. the changed-pixel counts of snapcompare against pixelmatch 7.2.0 on node (pngjs decoding) on
   every pair, which must be identical (blazediff's and odiff's shown for information);
5. snapcompare's engines (pixelmatch, odiff, oklab) side by side: process CPU over every pair,
   PNG bytes to counts and mask PNG, one pass each, interleaved pair by pair.

All sides use threshold 0.1 with anti-aliased pixels not counted. Results are also written as
JSON to benchmarks/.cache/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks import corpus, peers
from compare.cli.malloc import reuse_freed_memory
from compare.imaging.engines import DEFAULT_ENGINE

RESULTS = peers.CACHE / "results"
THRESHOLD = 0.1


@dataclass(frozen=True)
class Pair:
    """One corpus pair: PNG paths, category and canvas size."""

    name: str
    category: str
    base: Path
    head: Path
    width: int
    height: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def load_pairs(quick: bool, categories: tuple[str, ...] = corpus.CATEGORIES) -> list[Pair]:
    """The corpus pairs of ``categories`` (rendering what is missing); with ``quick`` three per
    category."""
    raw = corpus.load_pairs()
    pairs = [
        Pair(p["name"], p["category"], corpus.CORPUS / p["base"], corpus.CORPUS / p["head"],
             p["size"][0], p["size"][1])
        for p in raw
        if p["category"] in categories
    ]
    if quick:
        picked: dict[str, list[Pair]] = defaultdict(list)
        for pair in pairs:
            if len(picked[pair.category]) < 3:
                picked[pair.category].append(pair)
        pairs = [p for group in picked.values() for p in group]
    return pairs


# ---------------------------------------------------------------------------------------------
# The contenders, one pair each


def snap_one(pair: Pair, engine: str = DEFAULT_ENGINE) -> int:
    """snapcompare from the PNG files' bytes to the count and the mask PNG (kept in memory)."""
    from compare import diff_images

    result = diff_images(pair.base.read_bytes(), pair.head.read_bytes(), threshold=THRESHOLD,
                         engine=engine)
    result.mask_png()
    return result.changed_pixels


def snap_vectorised(pair: Pair) -> int:
    """`snap_one` with pixelmatch's vectorised scan instead of the compiled one."""
    from compare.imaging import pixelmatch

    compiled, pixelmatch.COMPILED_SCAN = pixelmatch.COMPILED_SCAN, False
    try:
        return snap_one(pair)
    finally:
        pixelmatch.COMPILED_SCAN = compiled


def decode_both(pair: Pair) -> int:
    """snapcompare's decoding of both files' bytes to RGBA, and nothing else: the floor of any
    pair (the identical-pixels pairs must cost at most 1.2x this)."""
    from compare.imaging.pixeldiff import open_pair

    first, second = open_pair(pair.base.read_bytes(), pair.head.read_bytes())
    return first.rgba().shape[0] + second.rgba().shape[0]


def blaze_one(pair: Pair, out: str | None = None) -> int:
    """blazediff in-process on the two files; writes its diff image to ``out`` when given."""
    import blazediff

    result = blazediff.compare(str(pair.base), str(pair.head), out, threshold=THRESHOLD,
                               antialiasing=True)
    return int(result.diff_count or 0)


def _blaze_timed(base: str, head: str) -> float:
    """Wall seconds of blazediff (no output) on two files, timed in the worker process."""
    import blazediff

    start = time.perf_counter()
    blazediff.compare(base, head, None, threshold=THRESHOLD, antialiasing=True)
    return time.perf_counter() - start


def odiff_cli(binary: Path, pair: Pair, out: Path) -> int:
    """The odiff command on one pair, writing its diff image to ``out``; returns its count."""
    result = subprocess.run(
        [str(binary), str(pair.base), str(pair.head), str(out), "--antialiasing",
         f"--threshold={THRESHOLD}", "--parsable-stdout"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode not in (0, 22):
        raise RuntimeError(f"odiff failed ({result.returncode}): {result.stderr or result.stdout}")
    first = result.stdout.strip().split(";")[0]
    return int(first) if first.isdigit() else 0


class OdiffServer:
    """One `odiff --server` process driven over stdin/stdout JSON lines.

    The protocol (odiff-bin's server.js and README): the server prints {"ready": true}; each
    request is a line {"requestId", "base", "compare", "output", "options"}; each answer a line
    {"requestId", "match", "reason", "diffCount", "diffPercentage"} or {"requestId", "error"}.
    The server refuses a request without an output path, so it always writes a diff image.
    """

    def __init__(self, binary: Path, output: Path) -> None:
        self.output = output
        self.process = subprocess.Popen(
            [str(binary), "--server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        self.next_id = 0
        ready = json.loads(self._read())
        if not ready.get("ready"):
            raise RuntimeError(f"odiff server did not start: {ready}")

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("odiff server exited")
        return line

    def compare(self, pair: Pair) -> int:
        """One request, one answer; returns diffCount (0 on a match)."""
        assert self.process.stdin is not None
        self.next_id += 1
        request = {
            "requestId": self.next_id, "base": str(pair.base), "compare": str(pair.head),
            "output": str(self.output),
            "options": {"threshold": THRESHOLD, "antialiasing": True},
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self._read())
        if answer.get("requestId") != self.next_id or "error" in answer:
            raise RuntimeError(f"odiff server: {answer}")
        return int(answer.get("diffCount", 0))

    def close(self) -> None:
        """Close stdin (the server then exits) and reap it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------------------------------
# 1. per-pair CPU


def cpu_of(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(process CPU seconds, wall seconds, result) of one call."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    value = fn()
    return time.process_time() - cpu0, time.perf_counter() - wall0, value


def per_pair(pairs: list[Pair], repeats: int, big_repeats: int, work: Path) -> dict:
    """Median CPU and wall per pair for each in-process contender, runs interleaved.

    ``repeats`` runs per pair, ``big_repeats`` for pairs of 5 MP and more (the tall pages).
    """
    out = str(work / "blazediff_diff.png")
    contenders: dict[str, Callable[[Pair], int]] = {
        "snapcompare": snap_one,
        "blazediff, no output": blaze_one,
        "blazediff, diff image written": lambda p: blaze_one(p, out),
        "decoding both": decode_both,
        "snapcompare, vectorised scan": snap_vectorised,
    }
    for fn in contenders.values():  # warm imports and caches
        fn(pairs[0])
    rows: dict[str, dict[str, dict]] = {label: {} for label in contenders}
    start = time.perf_counter()
    for index, pair in enumerate(pairs):
        samples: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        for _ in range(repeats if pair.megapixels < 5 else big_repeats):
            for label, fn in contenders.items():
                samples[label].append(cpu_of(partial(fn, pair)))
        for label, got in samples.items():
            rows[label][pair.name] = {
                "cpu": statistics.median(s[0] for s in got),
                "wall": statistics.median(s[1] for s in got),
                "count": got[0][2],
            }
        if (index + 1) % 50 == 0:
            print(f"  per-pair: {index + 1}/{len(pairs)} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------
# 2. throughput


def _shuffled(pairs: list[Pair]) -> list[Pair]:
    jobs = list(pairs)
    random.Random(1).shuffle(jobs)
    return jobs


Walls = dict[str, float]


def run_threads(pairs: list[Pair], workers: int, fn: Callable[[Pair], int]) -> tuple[float, Walls]:
    """Wall seconds to run ``fn`` over ``pairs`` on a warm thread pool of ``workers`` (two
    pairs per thread first, untimed, as the process pools are warmed), and each pair's wall."""

    def timed(pair: Pair) -> tuple[str, float]:
        start = time.perf_counter()
        fn(pair)
        return pair.name, time.perf_counter() - start

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, pairs[: workers * 2]))
        start = time.perf_counter()
        walls = dict(pool.map(timed, pairs))
        return time.perf_counter() - start, walls


def run_blaze_processes(pairs: list[Pair], workers: int) -> tuple[float, Walls]:
    """Wall seconds for blazediff (no output) on a warm process pool of ``workers``, and each
    pair's wall in its worker."""
    import multiprocessing

    # The workers' malloc is set as this process's is (see main), blazediff's Rust allocations
    # going through it as well.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=reuse_freed_memory) as pool:
        warm = [pool.submit(_blaze_timed, str(pairs[0].base), str(pairs[0].head))
                for _ in range(workers * 2)]
        for future in warm:
            future.result()
        start = time.perf_counter()
        walls = list(pool.map(_blaze_timed, [str(p.base) for p in pairs],
                              [str(p.head) for p in pairs], chunksize=1))
        return time.perf_counter() - start, {p.name: w for p, w in zip(pairs, walls, strict=True)}


def run_odiff_servers(
    pairs: list[Pair], workers: int, binary: Path, work: Path, counts: dict[str, int]
) -> tuple[float, Walls]:
    """Wall seconds for ``workers`` odiff servers, each fed by its own thread from one queue,
    and each request's wall.

    Each pair's diffCount goes into ``counts``.
    """
    servers = [OdiffServer(binary, work / f"odiff_server_{i}.png") for i in range(workers)]
    jobs: queue.Queue[Pair] = queue.Queue()
    for pair in pairs:
        jobs.put(pair)
    errors: list[BaseException] = []
    walls: Walls = {}

    def drive(server: OdiffServer) -> None:
        try:
            while True:
                try:
                    pair = jobs.get_nowait()
                except queue.Empty:
                    return
                sent = time.perf_counter()
                counts[pair.name] = server.compare(pair)
                walls[pair.name] = time.perf_counter() - sent
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=drive, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    for server in servers:
        server.close()
    if errors:
        raise errors[0]
    return wall, walls


def throughput(
    pairs: list[Pair], rounds: int, binary: Path, work: Path, odiff_counts: dict[str, int]
) -> dict:
    """Pairs per second over the whole corpus for each whole-machine set-up, and each pair's
    wall under that load (median over rounds).

    odiff's server counts per pair are left in ``odiff_counts``.
    """
    import psutil

    jobs = _shuffled(pairs)
    cores = os.cpu_count() or 2
    setups: dict[str, tuple[str, Callable[[], tuple[float, Walls]]]] = {
        "snapcompare, thread pool": (
            f"{cores} threads in 1 process; mask PNG made in memory, nothing written",
            lambda: run_threads(jobs, cores, snap_one),
        ),
        "blazediff, process pool": (
            f"{cores} worker processes (spawned, warm); no output written",
            lambda: run_blaze_processes(jobs, cores),
        ),
        "odiff --server": (
            f"{cores} server processes, one Python thread each; writes its diff image",
            lambda: run_odiff_servers(jobs, cores, binary, work, odiff_counts),
        ),
        "odiff CLI per pair": (
            f"one process per pair, {cores} at a time; writes its diff image",
            lambda: run_threads(
                jobs, cores,
                lambda p: odiff_cli(binary, p, work / f"odiff_cli_{threading.get_ident()}.png"),
            ),
        ),
    }
    megapixels = sum(p.megapixels for p in pairs)
    results: dict[str, dict] = {}
    walls: dict[str, list[float]] = defaultdict(list)
    pair_walls: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    busy: dict[str, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for label, (_, run) in setups.items():
            psutil.cpu_percent(None)
            wall, each = run()
            walls[label].append(wall)
            for name, seconds in each.items():
                pair_walls[label][name].append(seconds)
            busy[label].append(psutil.cpu_percent(None))
            print(f"  throughput: {label} {wall:.1f} s", file=sys.stderr)
    for label, (how, _) in setups.items():
        wall = statistics.median(walls[label])
        results[label] = {
            "how": how, "wall": wall, "walls": walls[label], "pairs_per_s": len(pairs) / wall,
            "mp_per_s": megapixels / wall, "machine_busy_pct": statistics.median(busy[label]),
            "cores": cores,
            "pair_walls": {n: statistics.median(w) for n, w in pair_walls[label].items()},
        }
    return results


# ---------------------------------------------------------------------------------------------
# 3. the largest pages


def run_measured(command: list[str], ok: Iterable[int], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process.

    Peak RSS comes from GNU time (``/usr/bin/time -f %M``): a child forked from this large
    process would report this process's RSS as its own ru_maxrss (Linux keeps the high-water
    mark across exec), so the child is started from the small ``time`` process instead.
    """
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer is None:
        raise RuntimeError("GNU time (/usr/bin/time) is needed for the peak RSS")
    start = time.perf_counter()
    result = subprocess.run([timer, "-f", "maxrss_kib=%M", *command], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if result.returncode not in ok:
        raise RuntimeError(f"{command[0]} exited {result.returncode}: {result.stderr[-500:]}")
    line = [x for x in result.stderr.splitlines() if x.startswith("maxrss_kib=")][-1]
    return wall, int(line.split("=")[1]) / 1024


def large_pairs(pairs: list[Pair]) -> list[Pair]:
    """Of each category whose median pair has 5 MP or more, its largest changed pair (a text
    edit if there is one of that size)."""
    chosen = []
    for category in corpus.CATEGORIES:
        members = [p for p in pairs if p.category == category]
        if members and statistics.median(p.megapixels for p in members) >= 5:
            changed = [p for p in members if not p.name.endswith("/same")]
            chosen.append(max(changed, key=lambda p: (p.megapixels, p.name.endswith(("/text", "/word")))))
    return chosen


def large_page(pair: Pair, repeats: int, binary: Path, work: Path) -> dict:
    """One large pair: the snapcompare CLI against the odiff CLI."""
    root = work / pair.name.replace("/", "_")
    base, head = root / "base", root / "head"
    for folder, source in ((base, pair.base), (head, pair.head)):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / "page.png")
    snapcompare = Path(sys.prefix) / "bin" / "snapcompare"
    command = [str(snapcompare), "compare", "--base", str(base), "--head", str(head), "--out",
               str(root / "out"), "--quiet"]
    # As installed, Python caches compiled bytecode: a PYTHONDONTWRITEBYTECODE set around the
    # benchmark would make every run compile the modules again (0.5 s here). An unmeasured
    # first run writes the caches.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    run_measured(command, ok=(0, 1), env=env)
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _ in range(repeats):
        out = root / "out"
        shutil.rmtree(out, ignore_errors=True)
        runs["snapcompare compare (CLI)"].append(run_measured(command, ok=(0, 1), env=env))
        runs["odiff CLI"].append(run_measured(
            [str(binary), str(base / "page.png"), str(head / "page.png"),
             str(root / "odiff.png"), "--antialiasing", f"--threshold={THRESHOLD}"],
            ok=(0, 22)))
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return {
        "pair": pair.name, "category": pair.category, "size": [pair.width, pair.height],
        "snapcompare_writes": written,
        "runs": {
            label: {"wall": statistics.median(r[0] for r in got),
                    "rss_mib": max(r[1] for r in got), "walls": [r[0] for r in got],
                    "rss_runs": [r[1] for r in got]}
            for label, got in runs.items()
        },
    }


# ---------------------------------------------------------------------------------------------
# 4. counts


def pixelmatch_counts(pairs: list[Pair]) -> dict[str, int | None]:
    """pixelmatch 7.2.0 counts per pair name, from node; cached by the PNG files' names."""
    node_dir = peers.ensure_node()
    cache_file = corpus.CORPUS / "pixelmatch-7.2.0-counts.json"
    cache: dict[str, int | None] = (
        json.loads(cache_file.read_text()) if cache_file.exists() else {}
    )
    key = {p.name: f"{p.base.name}|{p.head.name}" for p in pairs}
    todo = [p for p in pairs if key[p.name] not in cache]
    if todo:
        print(f"  pixelmatch (node): counting {len(todo)} pairs", file=sys.stderr)
        listing = peers.CACHE / "pixelmatch-pairs.json"
        listing.write_text(json.dumps(
            [{"name": p.name, "base": str(p.base), "head": str(p.head)} for p in todo]))
        output = subprocess.run(
            ["node", str(Path(__file__).with_name("pixelmatch_counts.mjs")), str(listing)],
            cwd=node_dir, capture_output=True, text=True, check=True, timeout=1800,
        ).stdout
        by_name = {p.name: p for p in todo}
        for line in output.splitlines():
            row = json.loads(line)
            cache[key[by_name[row["name"]].name]] = row["count"]
        cache_file.write_text(json.dumps(cache, indent=0))
    return {p.name: cache[key[p.name]] for p in pairs}


# ---------------------------------------------------------------------------------------------
# 5. engines


def engines(pairs: list[Pair]) -> dict[str, dict[str, float]]:
    """Process CPU seconds of each snapcompare engine on each pair (bytes to counts and mask
    PNG), the engines taking turns on each pair so load changes hit them alike."""
    from compare.imaging.engines import ENGINES

    spent: dict[str, dict[str, float]] = {name: {} for name in ENGINES}
    for pair in pairs:
        for name, got in spent.items():
            got[pair.name] = cpu_of(partial(snap_one, pair, name))[0]
    return spent


# ---------------------------------------------------------------------------------------------
# Report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def mp(megapixels: float) -> str:
    return f"{megapixels:.2f}" if megapixels < 1 else f"{megapixels:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def groups(pairs: list[Pair]) -> list[tuple[str, list[Pair]]]:
    """(category, its pairs) for each category present, then ("all", every pair)."""
    present = [(c, [p for p in pairs if p.category == c]) for c in corpus.CATEGORIES]
    return [(c, members) for c, members in present if members] + [("all", pairs)]


def worst(members: list[Pair], mine: dict[str, float], other: dict[str, float]) -> str:
    """The pair with the largest ratio mine / other, as "ratio (pair)"."""
    pair = max(members, key=lambda p: mine[p.name] / other[p.name])
    return f"{mine[pair.name] / other[pair.name]:.2f}x ({pair.name})"


def report_per_pair(pairs: list[Pair], rows: dict) -> str:
    labels = list(rows)
    header = ["category", "pairs", "median MP"]
    header += [f"{label} CPU" for label in labels]
    header += [f"vs {label}" for label in labels[1:]]
    header += ["max vs decoding both", "worst pair vs blazediff, no output", "snapcompare wall"]
    cpu = {label: {name: r["cpu"] for name, r in got.items()} for label, got in rows.items()}
    out = []
    for group, members in groups(pairs):
        med = {label: statistics.median(cpu[label][p.name] for p in members) for label in labels}
        # Ratios are medians of per-pair ratios (each pair against itself).
        ratio = {label: statistics.median(cpu["snapcompare"][p.name] / cpu[label][p.name]
                                          for p in members)
                 for label in labels[1:]}
        out.append([
            group, str(len(members)), mp(statistics.median(p.megapixels for p in members)),
            *(ms(med[label]) for label in labels),
            *(f"{ratio[label]:.2f}x" for label in labels[1:]),
            f"{max(cpu['snapcompare'][p.name] / cpu['decoding both'][p.name] for p in members):.2f}x",
            worst(members, cpu["snapcompare"], cpu["blazediff, no output"]),
            ms(statistics.median(rows["snapcompare"][p.name]["wall"] for p in members)),
        ])
    return table(header, out)


def report_throughput(pairs: list[Pair], tp: dict, rows: dict | None) -> str:
    """The set-ups over all pairs, then per category: pairs/s on one core (the per-pair CPU,
    summed) next to the whole machine (each pair's wall under load, summed, over the cores)."""
    base = tp["blazediff, process pool"]["pairs_per_s"]
    srv = tp["odiff --server"]["pairs_per_s"]
    overall = table(
        ["set-up", "how", "wall", "pairs/s", "MP/s", "machine busy", "vs blazediff pool",
         "vs odiff server"],
        [[label, r["how"], f"{r['wall']:.1f} s", f"{r['pairs_per_s']:.1f}", f"{r['mp_per_s']:.0f}",
          f"{r['machine_busy_pct']:.0f}%", f"{r['pairs_per_s'] / base:.2f}x",
          f"{r['pairs_per_s'] / srv:.2f}x"]
         for label, r in tp.items()])
    walls = {label: r["pair_walls"] for label, r in tp.items()}
    snap, blaze = walls["snapcompare, thread pool"], walls["blazediff, process pool"]

    def machine(label: str, group: str, members: list[Pair]) -> float:
        if group == "all":
            return tp[label]["pairs_per_s"]
        return len(members) * tp[label]["cores"] / sum(walls[label][p.name] for p in members)

    def one_core(label: str, members: list[Pair]) -> str:
        if rows is None:
            return "-"
        return f"{len(members) / sum(rows[label][p.name]['cpu'] for p in members):.1f}"

    body = []
    for group, members in groups(pairs):
        speed = {label: machine(label, group, members) for label in tp}
        body.append([
            group, str(len(members)), mp(sum(p.megapixels for p in members)),
            one_core("snapcompare", members), f"{speed['snapcompare, thread pool']:.1f}",
            one_core("blazediff, no output", members), f"{speed['blazediff, process pool']:.1f}",
            f"{speed['odiff --server']:.1f}", f"{speed['odiff CLI per pair']:.1f}",
            f"{speed['snapcompare, thread pool'] / speed['blazediff, process pool']:.2f}x",
            f"{speed['snapcompare, thread pool'] / speed['odiff --server']:.2f}x",
            worst(members, snap, blaze),
        ])
    per_category = table(
        ["category", "pairs", "MP a side", "snapcompare 1 core", "snapcompare machine",
         "blazediff 1 core", "blazediff pool", "odiff server", "odiff CLI",
         "machine vs blazediff pool", "machine vs odiff server",
         "worst pair, snapcompare / blazediff pool wall"],
        body)
    return (overall + "\n\nPer category, pairs/s: one core from the per-pair CPU (section 1); "
            "the whole machine from each pair's wall under the set-up's full load, summed over "
            "the category and divided by the cores (\"all\": the run's own wall).\n\n"
            + per_category)


def report_engines(pairs: list[Pair], spent: dict[str, dict[str, float]]) -> str:
    names = list(spent)
    others = [n for n in names if n != "pixelmatch"]
    body = []
    for group, members in groups(pairs):
        total = {n: sum(spent[n][p.name] for p in members) for n in names}
        body.append([
            group, str(len(members)),
            *(f"{ms(total[n])} ({total[n] / total['pixelmatch']:.2f}x)" for n in names),
            *(worst(members, spent[n], spent["pixelmatch"]) for n in others),
        ])
    return table(["category", "pairs", *(f"{n} CPU (vs pixelmatch)" for n in names),
                  *(f"worst pair, {n} / pixelmatch" for n in others)], body)


def report_counts(pairs: list[Pair], rows: dict, reference: dict, others: dict) -> str:
    lines = []
    header = ["category", "pairs", "snapcompare = pixelmatch", "blazediff = pixelmatch",
              "odiff = pixelmatch"]
    body = []
    mismatches: list[str] = []
    for group, members in groups(pairs):
        same = sum(rows["snapcompare"][p.name]["count"] == reference[p.name] for p in members)
        blaze = sum(rows["blazediff, no output"][p.name]["count"] == reference[p.name]
                    for p in members)
        od = sum(others.get(p.name) == reference[p.name] for p in members)
        body.append([group, str(len(members)), f"{same}/{len(members)}",
                     f"{blaze}/{len(members)}",
                     f"{od}/{len(members)}" if others else "-"])
    for p in pairs:
        if rows["snapcompare"][p.name]["count"] != reference[p.name]:
            mismatches.append(f"{p.name}: snapcompare {rows['snapcompare'][p.name]['count']}, "
                              f"pixelmatch {reference[p.name]}")
    lines.append(table(header, body))
    lines.append("snapcompare mismatches: " + ("none" if not mismatches else "; ".join(mismatches)))
    return "\n".join(lines)


def machine() -> dict:
    import blazediff  # noqa: F401 - its version is the pinned one
    import numpy
    import PIL

    from compare.imaging.decode import FAST_PNG_DECODER
    from compare.imaging.pixelmatch import COMPILED_SCAN

    return {
        "python": platform.python_version(), "numpy": numpy.__version__,
        "pillow": PIL.__version__, "cores": os.cpu_count(), "decoder": FAST_PNG_DECODER,
        "compiled_scan": COMPILED_SCAN,
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "load_avg": os.getloadavg(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=peers.ROOT).stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per pair for the per-pair CPU (median taken; 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="throughput rounds over the whole corpus (median taken; 1)")
    parser.add_argument("--big-repeats", type=int, default=1,
                        help="runs per pair of 5 MP or more for the per-pair CPU (1)")
    parser.add_argument("--tall-repeats", type=int, default=3,
                        help="runs of each command on each category's largest page (3)")
    parser.add_argument("--quick", action="store_true", help="three pairs per category, 1 run")
    parser.add_argument("--categories", default=",".join(corpus.CATEGORIES),
                        help="comma list of the categories to run (all: " + ", ".join(corpus.CATEGORIES) + ")")
    parser.add_argument("--skip", default="",
                        help="comma list of: perpair,throughput,tall (the largest pages),counts,engines")
    args = parser.parse_args()
    peers.ensure_python("benchmarks.bench_real")
    # As the snapcompare command does: freed pixel buffers are reused, not faulted in afresh.
    # In-process blazediff runs with the same malloc, and its process pool is set likewise.
    malloc_reuse = reuse_freed_memory()
    skip = set(filter(None, args.skip.split(",")))
    categories = tuple(c.strip() for c in args.categories.split(",") if c.strip())
    unknown = [c for c in categories if c not in corpus.CATEGORIES]
    if unknown or not categories:
        parser.error(f"unknown categories {unknown}; known: {', '.join(corpus.CATEGORIES)}")
    if args.quick:
        args.repeats, args.rounds, args.tall_repeats = 1, 1, 1
    pairs = load_pairs(args.quick, categories)
    binary = peers.odiff_binary()
    info = {**machine(), "malloc_reuse": malloc_reuse}
    print(f"machine: {info}", file=sys.stderr)
    started = time.strftime("%Y-%m-%d %H:%M")
    results: dict = {"machine": info, "started": started, "pairs": len(pairs),
                     "categories": categories}
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        work = Path(tmp)
        sections = []
        rows = None
        odiff_found: dict[str, int] = {}
        if "perpair" not in skip or "counts" not in skip:
            print("per-pair CPU ...", file=sys.stderr)
            rows = per_pair(pairs, args.repeats, args.big_repeats, work)
            results["per_pair"] = rows
            sections.append("## Per-pair CPU, PNG files -> count (+ mask PNG / diff image), "
                            f"median of {args.repeats} runs per pair ({args.big_repeats} from 5 MP), "
                            "median over pairs\n\n"
                            "snapcompare: `diff_images(base_bytes, head_bytes).mask_png()` on "
                            "this thread (mask in memory); blazediff: `blazediff.compare(paths)` "
                            "in this process, no output / diff image written to a file; "
                            "decoding both: snapcompare's decoding of the two files' bytes to "
                            "RGBA, nothing else; snapcompare, vectorised scan: as snapcompare, "
                            "with pixelmatch's numpy scan instead of the compiled one. Ratios are "
                            "medians (and the largest) of per-pair ratios, snapcompare / the other's CPU.\n\n"
                            + report_per_pair(pairs, rows))
        if "throughput" not in skip:
            print("throughput ...", file=sys.stderr)
            tp = throughput(pairs, args.rounds, binary, work, odiff_found)
            results["throughput"] = tp
            sections.append(
                f"## Throughput over all {len(pairs)} pairs "
                f"({sum(p.megapixels for p in pairs):.0f} MP per side), "
                f"median of {args.rounds} round(s)\n\n" + report_throughput(pairs, tp, rows))
        large = large_pairs(pairs)
        if "tall" not in skip and large:
            print("largest pages ...", file=sys.stderr)
            results["large"] = [large_page(pair, args.tall_repeats, binary, work) for pair in large]
            sections.append(
                f"## Each category's largest page, median wall of {args.tall_repeats}, "
                "peak RSS (GNU time, largest run)\n\n"
                + table(
                    ["category", "pair", "size", "command", "wall", "peak RSS", "runs"],
                    [[got["category"], got["pair"], f"{got['size'][0]}x{got['size'][1]}", label,
                      f"{r['wall']:.2f} s", f"{r['rss_mib']:.0f} MiB",
                      " / ".join(f"{w:.2f}" for w in r["walls"])]
                     for got in results["large"] for label, r in got["runs"].items()])
                + "\n\nsnapcompare writes: " + ", ".join(results["large"][0]["snapcompare_writes"])
                + "; odiff writes its diff image.")
        if "counts" not in skip and rows is not None:
            print("counts ...", file=sys.stderr)
            reference = pixelmatch_counts(pairs)
            results["counts"] = {"pixelmatch": reference, "odiff": odiff_found}
            sections.append("## Changed-pixel counts against pixelmatch 7.2.0 (node, pngjs)\n\n"
                            "blazediff's from the per-pair runs, odiff's from the server runs; "
                            "all with threshold 0.1, anti-aliased pixels not counted.\n\n"
                            + report_counts(pairs, rows, reference, odiff_found))
        if "engines" not in skip:
            print("engines ...", file=sys.stderr)
            spent = engines(pairs)
            results["engines"] = spent
            sections.append("## snapcompare's engines, process CPU summed over each category, "
                            "one pass\n\n" + report_engines(pairs, spent))
    results["load_avg_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = hashlib.sha256(started.encode()).hexdigest()[:6]
    out = RESULTS / f"bench_real-{time.strftime('%Y%m%d-%H%M')}-{stamp}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"# Real screenshots ({len(pairs)} pairs), {started}, commit {info['commit']}, "
          f"load {info['load_avg'][0]:.1f} -> {results['load_avg_end'][0]:.1f}\n")
    print("\n\n".join(sections))
    print(f"\n(results: {out})")


if __name__ == "__main__":
    main()
