"""Change fingerprints on the real-screenshot corpus: what they cost, and what the similar level groups.

Run from the repository root (the first run renders benchmarks/corpus.py's corpus with Chromium):

    .venv/bin/python -m benchmarks.bench_fingerprint [--repeats 3] [--rounds 3] [--quick]
        [--skip cost,whole,similar]

1. **Cost.** For every corpus pair, the CPU time (this thread) of the pair's whole work in a
   comparison, `compare.engine.pairs.diff_pair` (decode, diff, fingerprint, mask PNG, report
   previews), and of `compare.imaging.fingerprint.fingerprint_change` alone on the same diff,
   medians of ``--repeats`` runs: per category the median of each, the share of the total, and
   the pair where the share is largest. Then `compare.compare_builds` over the whole corpus as
   two folders (all cores, masks and previews written), ``--rounds`` times: the CPU time spent
   in `fingerprint_change` (summed over the diff threads) against the run's process CPU time,
   both from the same run, so that other work on the machine weighs on both alike.
2. **The similar level.** Every corpus pair with changed pixels gives a change; each change is
   also made in three variants a reviewer would call the same change:
   - *moved*: both images placed at (+17, +9) on a larger canvas (the identical id must hold);
   - *recoloured*: both images through another colour curve (gamma 0.7, red and blue swapped),
     as in another theme: the colours differ, and pixels near the threshold come and go;
   - *noisy*: both images with the same noise of up to 2 per channel, as both builds rendered
     on another machine (pixels that did not change stay equal; anti-aliasing detection, which
     looks for neighbours of equal colour, then finds far fewer anti-aliased pixels).
   For each candidate set of similar-fingerprint parameters (grid, dilation, density
   thresholds, scale): how many variants keep their change's similar id (kept), and how many
   pairs of different corpus changes share one (merged), split into changes of the same kind
   (the same variant on other pages: the same CSS change at another viewport, a photo of the
   same size swapped) and of different kinds (a text edit and a shift: a wrong merge).

Results are also written as JSON to benchmarks/.cache/results/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks import corpus
from compare import compare_builds
from compare.cli.malloc import reuse_freed_memory
from compare.engine import pairs as engine_pairs
from compare.engine.pairs import PairTask, diff_pair
from compare.imaging.fingerprint import SIMILAR, SimilarParams, fingerprint_change, identical_id, similar_id
from compare.imaging.pixeldiff import DiffResult, diff_images, open_pair
from compare.model import CompareOptions

RESULTS = Path(__file__).resolve().parent / ".cache" / "results"
MOVE = (17, 9)
CANDIDATES = [
    SimilarParams(grid, dilation, thresholds, scale)
    for grid, dilation, thresholds, scale in itertools.product(
        (8, 16, 32), (0, 1), ((2_000, 20_000, 80_000), (20_000, 200_000)), (False, True))
]
"""Grids of 8, 16 and 32 cells (Argos takes these three), dilation 0 or 1 (Argos' two), Argos'
thresholds (0.002, 0.02, 0.08) or three coarser levels (0.02, 0.2), with and without the scale."""


def thread_cpu(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of this thread over ``repeats`` calls of ``fn``."""
    samples = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        samples.append(time.thread_time() - start)
    return statistics.median(samples)


def decoded(pair: dict) -> tuple[np.ndarray, np.ndarray]:
    """A corpus pair's two images as RGBA arrays."""
    first, second = open_pair((corpus.CORPUS / pair["base"]).read_bytes(),
                              (corpus.CORPUS / pair["head"]).read_bytes())
    return first.rgba(), second.rgba()


def cost(pairs: list[dict], repeats: int) -> dict[str, dict[str, float]]:
    """Per pair: the CPU of `diff_pair` and of `fingerprint_change` on its diff (seconds)."""
    options = CompareOptions()
    rows = {}
    for pair in pairs:
        before_bytes = (corpus.CORPUS / pair["base"]).read_bytes()
        after_bytes = (corpus.CORPUS / pair["head"]).read_bytes()
        task = PairTask("base", "head", pair["name"])
        whole = thread_cpu(partial(diff_pair, task, before_bytes, after_bytes, options), repeats)
        before, after = decoded(pair)
        result = diff_images(before, after)
        own = thread_cpu(partial(fingerprint_change, result.mask, result.bbox, before, after), repeats)
        rows[pair["name"]] = {"category": pair["category"], "pair": whole, "fingerprint": own}
    return rows


def report_cost(rows: dict[str, dict[str, float]]) -> str:
    """The cost table: per category and in all, with the largest share."""
    by_category: dict[str, list[tuple[str, dict[str, float]]]] = defaultdict(list)
    for name, row in rows.items():
        by_category[row["category"]].append((name, row))
    by_category["all"] = list(rows.items())
    lines = ["| category | pairs | pair's work, median | fingerprint, median | share of the total "
             "| largest share (pair) |", "|---|---|---|---|---|---|"]
    for category, members in by_category.items():
        worst_name, worst = max(members, key=lambda item: item[1]["fingerprint"] / item[1]["pair"])
        total = sum(row["pair"] for _, row in members)
        own = sum(row["fingerprint"] for _, row in members)
        lines.append(
            f"| {category} | {len(members)} | {1000 * statistics.median(r['pair'] for _, r in members):.1f} ms "
            f"| {1000 * statistics.median(r['fingerprint'] for _, r in members):.2f} ms "
            f"| {100 * own / total:.2f}% | {100 * worst['fingerprint'] / worst['pair']:.1f}% "
            f"({worst_name}: {1000 * worst['fingerprint']:.1f} of {1000 * worst['pair']:.1f} ms) |")
    return "\n".join(lines)


def whole_runs(pairs: list[dict], rounds: int) -> list[dict[str, float]]:
    """Per run of `compare_builds` over ``pairs`` (two folders of hard links): the CPU seconds
    spent fingerprinting (all threads), the process's CPU seconds and the wall seconds."""
    spent = [0.0]
    lock = threading.Lock()

    def timed(*args: object) -> object:
        start = time.thread_time()
        try:
            return fingerprint_change(*args)
        finally:
            with lock:
                spent[0] += time.thread_time() - start

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-fingerprint-", dir=corpus.CORPUS.parent) as tmp:
        root = Path(tmp)
        for side in ("base", "head"):
            (root / side).mkdir()
            for pair in pairs:
                os.link(corpus.CORPUS / pair[side], root / side / f"{pair['name'].replace('/', '--')}.png")
        with mock.patch.object(engine_pairs, "fingerprint_change", timed):
            for index in range(rounds):
                spent[0] = 0.0
                cpu, wall = time.process_time(), time.perf_counter()
                compare_builds(root / "base", root / "head", out_dir=root / f"out-{index}")
                runs.append({"fingerprint_cpu": spent[0], "cpu": time.process_time() - cpu,
                             "wall": time.perf_counter() - wall})
    return runs


def moved(image: np.ndarray) -> np.ndarray:
    """``image`` at `MOVE` on a canvas that much larger, filled with its top-left colour."""
    dx, dy = MOVE
    out = np.empty((image.shape[0] + dy, image.shape[1] + dx, 4), dtype=np.uint8)
    out[:] = image[0, 0]
    out[dy:, dx:] = image
    return out


_CURVE = np.round(255 * (np.arange(256) / 255) ** 0.7).astype(np.uint8)


def recoloured(image: np.ndarray) -> np.ndarray:
    """``image`` through gamma 0.7 with red and blue swapped; alpha kept."""
    out = _CURVE[image]
    out[..., 3] = image[..., 3]
    return out[..., [2, 1, 0, 3]]


def noisy(image: np.ndarray, seed: int) -> np.ndarray:
    """``image`` with noise of -2 to 2 per colour channel, the same for every image of one size
    and ``seed``."""
    noise = np.random.default_rng(seed).integers(-2, 3, size=image.shape[:2] + (3,), dtype=np.int16)
    out = image.copy()
    out[..., :3] = np.clip(image[..., :3].astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return out


VARIANTS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "moved": lambda image, seed: moved(image),
    "recoloured": lambda image, seed: recoloured(image),
    "noisy": noisy,
}


def ids(result: DiffResult) -> list[str]:
    """The similar id of ``result``'s change under every candidate."""
    return [similar_id(result.mask, result.bbox, params) for params in CANDIDATES]


def similar_level(pairs: list[dict]) -> dict:
    """Every changed pair's similar ids (per candidate) and its variants', and whether the
    moved variant kept its identical id."""
    changes: dict[str, dict] = {}
    for index, pair in enumerate(pairs):
        before, after = decoded(pair)
        result = diff_images(before, after)
        if result.bbox is None:
            continue
        entry = {"ids": ids(result), "variants": {}}
        original = identical_id(result.mask, result.bbox, before, after)
        for label, make in VARIANTS.items():
            variant = diff_images(make(before, index), make(after, index))
            if variant.bbox is None:
                entry["variants"][label] = None
                continue
            entry["variants"][label] = ids(variant)
            if label == "moved":
                entry["moved_identical"] = identical_id(
                    variant.mask, variant.bbox, moved(before), moved(after)) == original
        changes[pair["name"]] = entry
        print(f"  similar level: {pair['name']}", file=sys.stderr)
    return changes


def report_similar(changes: dict) -> tuple[str, list[dict]]:
    """The table of kept variants and merged changes per candidate, and its rows."""
    rows = []
    for position, params in enumerate(CANDIDATES):
        kept = {label: 0 for label in VARIANTS}
        made = {label: 0 for label in VARIANTS}
        for entry in changes.values():
            for label, found in entry["variants"].items():
                if found is not None:
                    made[label] += 1
                    kept[label] += found[position] == entry["ids"][position]
        by_id: dict[str, list[str]] = defaultdict(list)
        for name, entry in changes.items():
            by_id[entry["ids"][position]].append(name)
        merged = sorted(names for names in by_id.values() if len(names) > 1)
        pairs = [pair for names in merged for pair in itertools.combinations(names, 2)]
        other_kinds = sum(1 for a, b in pairs if kind(a) != kind(b))
        rows.append({"params": params.tag().decode(), "chosen": params == SIMILAR, "kept": kept,
                     "made": made, "merged_same_kind": len(pairs) - other_kinds,
                     "merged_other_kinds": other_kinds, "merged": merged})
    lines = ["| grid | dilation | thresholds | scale | "
             + " | ".join(f"{label} kept" for label in VARIANTS)
             + " | merged pairs: same kind | merged pairs: other kinds |",
             "|---|---|---|---|" + "---|" * len(VARIANTS) + "---|---|"]
    for params, row in zip(CANDIDATES, rows, strict=True):
        mark = " (chosen)" if row["chosen"] else ""
        lines.append(
            f"| {params.grid}{mark} | {params.dilation} | "
            f"{', '.join(f'{t / 1e6:g}' for t in params.thresholds)} | {'yes' if params.scale else 'no'} | "
            + " | ".join(f"{row['kept'][label]}/{row['made'][label]}" for label in VARIANTS)
            + f" | {row['merged_same_kind']} | {row['merged_other_kinds']} |")
    return "\n".join(lines), rows


def kind(name: str) -> str:
    """A corpus change's kind: its variant (``doc-1280/text`` -> ``text``)."""
    return name.rsplit("/", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per pair for the cost (median; 3)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of the whole comparison (3)")
    parser.add_argument("--quick", action="store_true", help="three pairs per category, 1 run")
    parser.add_argument("--skip", default="", help="comma list of: cost,whole,similar")
    args = parser.parse_args()
    reuse_freed_memory()  # as the snapcompare command does
    skip = set(filter(None, args.skip.split(",")))
    pairs = corpus.load_pairs()
    if args.quick:
        args.repeats = args.rounds = 1
        pairs = [p for c in corpus.CATEGORIES for p in [q for q in pairs if q["category"] == c][:3]]
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M"), "pairs": len(pairs)}
    sections = []
    if "cost" not in skip:
        print("cost ...", file=sys.stderr)
        rows = cost(pairs, args.repeats)
        results["cost"] = rows
        sections.append(f"## Cost: CPU per pair, median of {args.repeats} runs\n\n{report_cost(rows)}")
    if "whole" not in skip:
        print("whole comparison ...", file=sys.stderr)
        runs = whole_runs(pairs, args.rounds)
        results["whole"] = runs
        lines = [f"| {run['wall']:.2f} s | {run['cpu']:.2f} s | {run['fingerprint_cpu']:.2f} s "
                 f"| {100 * run['fingerprint_cpu'] / run['cpu']:.2f}% |" for run in runs]
        sections.append(f"## The whole comparison ({len(pairs)} pairs, {os.cpu_count()} cores)\n\n"
                        "| wall | process CPU | fingerprinting CPU | share of the CPU |\n|---|---|---|---|\n"
                        + "\n".join(lines))
    if "similar" not in skip:
        print("similar level ...", file=sys.stderr)
        changes = similar_level(pairs)
        table, rows = report_similar(changes)
        lost = sorted(name for name, entry in changes.items() if not entry.get("moved_identical"))
        results["similar"] = {"changes": len(changes), "candidates": rows, "moved_identical_lost": lost}
        sections.append(f"## Similar level: {len(changes)} changes and their variants\n\n{table}\n\n"
                        f"Identical ids kept by the moved variants: {len(changes) - len(lost)}/{len(changes)}"
                        f" (not: {', '.join(lost) or 'none'}).")
    print("\n\n".join(sections))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fingerprint-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
