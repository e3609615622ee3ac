"""Pixel diff benchmark: diff_images against pixelmatch (PyPI, pure Python) and odiff 4.5 (npm).

Run from the repository root:

    .venv/bin/python benchmarks/bench_diff.py

It generates 1170x2532 screenshot-like pairs (a typical change, identical pixels in different
bytes, a whole-frame 1 px shift) and prints tables of: (a) the `pixelmatch` PyPI port on the
decoded arrays, (b) odiff's native binary on the PNG files, writing its diff picture (its whole
command) and compare-only, (c) diff_images on decoded arrays, (d) diff_images end to end from PNG
bytes to mask PNG, per pair and as throughput on pools of 1 and 2 threads, then the peak memory
of (d) on a 1170x30000 pair, measured in a subprocess. odiff-bin is installed with npm into
benchmarks/.cache/ (git-ignored) on first use; without npm its columns are skipped.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from compare import diff_images
from compare.imaging.decode import FAST_PNG_DECODER, decode_rgba

CACHE = Path(__file__).resolve().parent / ".cache"
ODIFF_PACKAGE = "odiff-bin@4.5"
WIDTH, HEIGHT = 1170, 2532
TALL_HEIGHT = 30_000
WORDS = (
    "Settings General Privacy Battery Display Sounds Focus Screen Time Wallpaper Siri Search "
    "Camera Photos Messages Mail Notes Calendar Reminders Health Wallet Account Storage Network "
    "Bluetooth Cellular Hotspot Updates Language Region Keyboard Accessibility Backup Security"
).split()
ICON_COLOURS = (
    (255, 59, 48),
    (52, 199, 89),
    (0, 122, 255),
    (255, 149, 0),
    (175, 82, 222),
    (90, 200, 250),
)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_screen(
    width: int, height: int, seed: int, *, changed_row: int | None = None
) -> Image.Image:
    """A settings-like app screen: status bar, title, photo card, rows of icon + texts, tab bar.

    ``changed_row`` renders that row with another title and icon colour (a typical UI change).
    """
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA", (width, height), (242, 242, 247, 255))
    draw = ImageDraw.Draw(image)
    title_font, body_font, small_font = _font(96), _font(46), _font(34)
    draw.text((60, 24), "9:41", font=body_font, fill=(0, 0, 0, 255))
    draw.rounded_rectangle(
        (width - 180, 34, width - 70, 78), radius=12, outline=(0, 0, 0, 255), width=4
    )
    draw.text((48, 150), "Settings", font=title_font, fill=(0, 0, 0, 255))
    image.paste(_photo(rng, width - 64, 480), (32, 330))
    row_height, top, row = 140, 850, 0
    while top + row_height < height - 200:
        if row % 8 == 0:
            top += 60
        words = rng.choice(WORDS, size=3)
        colour = ICON_COLOURS[int(rng.integers(len(ICON_COLOURS)))]
        title = f"{words[0]} {words[1]}"
        if row == changed_row:
            title, colour = f"{words[1]} {words[2]} Pro", (255, 45, 85)
        draw.rectangle((32, top, width - 32, top + row_height), fill=(255, 255, 255, 255))
        draw.rounded_rectangle((64, top + 34, 136, top + 106), radius=16, fill=colour + (255,))
        draw.text((170, top + 22), title, font=body_font, fill=(0, 0, 0, 255))
        draw.text(
            (170, top + 80),
            f"{words[2].lower()} and {int(rng.integers(1, 99))} more",
            font=small_font,
            fill=(138, 138, 142, 255),
        )
        draw.line(
            (width - 90, top + 52, width - 70, top + 70, width - 90, top + 88),
            fill=(196, 196, 199, 255),
            width=5,
        )
        draw.line(
            (170, top + row_height - 1, width - 32, top + row_height - 1),
            fill=(220, 220, 224, 255),
            width=2,
        )
        top += row_height
        row += 1
    draw.rectangle((0, height - 200, width, height), fill=(249, 249, 249, 255))
    for i, label in enumerate(("Home", "Search", "Library", "Profile")):
        x = 90 + i * (width - 180) // 4
        draw.ellipse((x + 40, height - 180, x + 100, height - 120), fill=(142, 142, 147, 255))
        draw.text((x + 20, height - 110), label, font=small_font, fill=(142, 142, 147, 255))
    return image


def _photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like card: a smooth two-axis gradient with sensor-like noise."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack(
        [90 + 120 * xs / width, 140 + 60 * ys / height, 200 - 100 * xs / width], axis=-1
    )
    noisy = base + rng.normal(0, 6, size=base.shape)
    rgb = np.clip(noisy, 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, np.full((height, width), 255, np.uint8)]))


def shifted(image: Image.Image) -> Image.Image:
    """The whole frame moved down by one pixel (its first row repeated)."""
    pixels = np.asarray(image)
    moved = np.concatenate([pixels[:1], pixels[:-1]])
    return Image.fromarray(moved)


def png(image: Image.Image, level: int = 6) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=level)
    return out.getvalue()


def make_pairs() -> dict[str, tuple[bytes, bytes]]:
    before = draw_screen(WIDTH, HEIGHT, seed=7)
    return {
        "typical change": (png(before), png(draw_screen(WIDTH, HEIGHT, seed=7, changed_row=5))),
        "identical pixels": (png(before), png(before, level=9)),
        "1 px shift": (png(before), png(shifted(before))),
    }


def duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def end_to_end(before: bytes, after: bytes) -> bytes:
    return diff_images(before, after).mask_png()


def run_pixelmatch_py(
    a: np.ndarray, b: np.ndarray, crop_rows: int | None
) -> tuple[float, int, float]:
    """Time the PyPI pixelmatch port: (seconds scaled to the full frame, count, rows fraction)."""
    from pixelmatch import pixelmatch

    if crop_rows is not None:
        a, b = a[:crop_rows], b[:crop_rows]
    height, width = a.shape[:2]
    first, second = a.tobytes(), b.tobytes()
    start = time.perf_counter()
    count = pixelmatch(first, second, width, height, threshold=0.1, includeAA=False)
    elapsed = time.perf_counter() - start
    fraction = height / HEIGHT
    return elapsed / fraction, count, fraction


def odiff_binary() -> Path | None:
    """odiff's native binary from odiff-bin in benchmarks/.cache, installed with npm if needed.

    The binary is what odiff-bin's own compare() spawns; the package's bin/odiff is a Node shim
    around it whose start-up would be charged to odiff.
    """
    found = sorted((CACHE / "node_modules" / "@odiff").glob("*/odiff"))
    if not found and (npm := shutil.which("npm")) is not None:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), ODIFF_PACKAGE],
            check=True,
            capture_output=True,
            timeout=600,
        )
        found = sorted((CACHE / "node_modules" / "@odiff").glob("*/odiff"))
    return found[0] if found else None


def run_odiff(binary: Path, before: Path, after: Path, out: Path | None) -> int:
    """Run odiff on PNG files with anti-aliasing detection (writing its diff picture to ``out``
    if given); returns its changed-pixel count."""
    command = [str(binary), str(before), str(after)] + ([str(out)] if out else [])
    result = subprocess.run(
        command + ["--antialiasing", "--threshold=0.1", "--parsable-stdout"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode not in (0, 22):
        raise RuntimeError(f"odiff failed ({result.returncode}): {result.stderr or result.stdout}")
    first = result.stdout.strip().split(";")[0]
    return int(first) if first.isdigit() else 0


def tall_pair(directory: Path) -> tuple[Path, Path]:
    """A 1170x30000 page and the same page with one row changed, as PNG files."""
    before = draw_screen(WIDTH, TALL_HEIGHT, seed=11)
    after = draw_screen(WIDTH, TALL_HEIGHT, seed=11, changed_row=150)
    paths = directory / "tall_before.png", directory / "tall_after.png"
    paths[0].write_bytes(png(before))
    paths[1].write_bytes(png(after))
    return paths


def measure_tall(before: Path, after: Path) -> dict[str, float]:
    """Peak RSS of one end-to-end diff of the tall pair, in a fresh interpreter."""
    child = subprocess.run(
        [sys.executable, __file__, "--tall-child", str(before), str(after)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(child.stdout)


def _memory_kib() -> tuple[int, int] | None:
    """(current RSS, peak RSS) of this process in KiB from /proc, or None off Linux."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
    except OSError:
        return None
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def tall_child(before_path: str, after_path: str) -> None:
    before, after = Path(before_path).read_bytes(), Path(after_path).read_bytes()
    baseline = _memory_kib()
    if baseline is not None:
        # Writing 5 to clear_refs resets the peak-RSS mark, so VmHWM covers only the diff below.
        Path("/proc/self/clear_refs").write_text("5")
        baseline_kib = baseline[0]
    else:
        baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = diff_images(before, after)
    mask = result.mask_png()
    elapsed = time.perf_counter() - start
    memory = _memory_kib()
    peak_kib = (
        memory[1] if memory is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mib": peak_kib / 1024,
                "peak_delta_mib": (peak_kib - baseline_kib) / 1024,
                "changed": result.changed_pixels,
                "mask_bytes": len(mask),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=7, help="runs per fast measurement (median quoted)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (median quoted)")
    parser.add_argument(
        "--round-pairs", type=int, default=12, help="pairs per throughput round, kinds in turn"
    )
    parser.add_argument(
        "--shift-crop-rows",
        type=int,
        default=256,
        help="rows of the 1 px shift pair timed with pure-Python pixelmatch, scaled to the frame",
    )
    parser.add_argument("--tall-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tall_child:
        tall_child(*args.tall_child)
        return

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} at start), "
        f"Python {platform.python_version()}, numpy {np.__version__}, Pillow {Image.__version__}, "
        f"PNGs decoded by {'Wuffs (pywuffs), Pillow where it differs' if FAST_PNG_DECODER else 'Pillow'}"
    )
    pairs = make_pairs()
    work = Path(tempfile.mkdtemp(prefix="bench_diff_"))
    try:
        report(pairs, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Row:
    name: str
    changed: int
    pixelmatch_py: float
    pixelmatch_py_count: int
    ours_on_same_rows: int
    rows_fraction: float
    arrays: float
    end_to_end: float
    odiff_whole: float | None = None
    odiff_compare_only: float | None = None
    odiff_count: int | None = None


def pair_files(work: Path, name: str, before: bytes, after: bytes) -> tuple[Path, Path]:
    """The pair as PNG files in ``work``, for odiff."""
    stem = name.replace(" ", "_")
    paths = work / f"{stem}_before.png", work / f"{stem}_after.png"
    paths[0].write_bytes(before)
    paths[1].write_bytes(after)
    return paths


def measure_pair(
    name: str,
    before: bytes,
    after: bytes,
    work: Path,
    binary: Path | None,
    args: argparse.Namespace,
) -> Row:
    a, b = decode_rgba(before), decode_rgba(after)
    ours = diff_images(a, b)
    crop = args.shift_crop_rows if name == "1 px shift" else None
    t_a, count_a, fraction = run_pixelmatch_py(a, b, crop)
    row = Row(
        name=name,
        changed=ours.changed_pixels,
        pixelmatch_py=t_a,
        pixelmatch_py_count=count_a,
        ours_on_same_rows=ours.changed_pixels
        if crop is None
        else diff_images(a[:crop], b[:crop]).changed_pixels,
        rows_fraction=fraction,
        arrays=median_seconds(lambda: diff_images(a, b), args.repeats),
        end_to_end=median_seconds(lambda: end_to_end(before, after), args.repeats),
    )
    if binary is not None:
        first, second = pair_files(work, name, before, after)
        out = work / "odiff_diff.png"
        row.odiff_count = run_odiff(binary, first, second, out)
        row.odiff_whole = median_seconds(
            lambda: run_odiff(binary, first, second, out), args.repeats
        )
        row.odiff_compare_only = median_seconds(
            lambda: run_odiff(binary, first, second, None), args.repeats
        )
    return row


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table, text in the first column and figures right-aligned."""
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def pair_cells(row: Row) -> list[str]:
    crop = "" if row.rows_fraction == 1 else f" (from a {row.rows_fraction:.0%} crop)"
    if row.odiff_whole is None:
        whole = only = "skipped (no npm)"
    else:
        whole = f"{duration(row.odiff_whole)} ({row.odiff_count} px)"
        only = duration(row.odiff_compare_only)
    same = row.pixelmatch_py_count == row.ours_on_same_rows
    return [
        row.name,
        str(row.changed),
        duration(row.pixelmatch_py) + crop,
        whole,
        only,
        duration(row.arrays),
        duration(row.end_to_end),
        f"{row.pixelmatch_py / row.arrays:,.0f}x",
        "yes" if same else f"NO ({row.pixelmatch_py_count} vs {row.ours_on_same_rows})",
    ]


def measure_throughput(
    pairs: dict[str, tuple[bytes, bytes]],
    work: Path,
    binary: Path | None,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Pairs per second of odiff (one process per pair, sequential) and of (d) on thread pools.

    The contenders take turns within each round, so load from elsewhere on the machine hits all
    of them alike; the median round is quoted.
    """
    names = list(pairs)
    jobs = [names[i % len(names)] for i in range(args.round_pairs)]
    files = {name: pair_files(work, name, *pairs[name]) for name in names}
    contenders: dict[str, Callable[[], object]] = {}
    if binary is not None:
        out = work / "throughput_odiff.png"
        contenders["odiff 4.5 whole command"] = lambda: [
            run_odiff(binary, *files[name], out) for name in jobs
        ]
        contenders["odiff 4.5 compare only"] = lambda: [
            run_odiff(binary, *files[name], None) for name in jobs
        ]
    pools = {threads: ThreadPoolExecutor(threads) for threads in (1, 2)}
    try:
        for threads, pool in pools.items():
            contenders[f"(d) diff_images, pool of {threads}"] = lambda pool=pool: list(
                pool.map(lambda name: end_to_end(*pairs[name]), jobs)
            )
        seconds: dict[str, list[float]] = {label: [] for label in contenders}
        busy_before, own_before, start_all = _machine_busy(), _own_cpu(), time.perf_counter()
        for _ in range(args.rounds):
            for label, run in contenders.items():
                start = time.perf_counter()
                run()
                seconds[label].append(time.perf_counter() - start)
        busy = _machine_busy()
        if busy is not None and busy_before is not None:
            cores = os.cpu_count() or 1
            foreign = (busy - busy_before) - (_own_cpu() - own_before)
            share = foreign / ((time.perf_counter() - start_all) * cores)
            print(f"# other processes used {max(share, 0):.0%} of the machine during throughput")
    finally:
        for pool in pools.values():
            pool.shutdown()
    return {label: len(jobs) / statistics.median(times) for label, times in seconds.items()}


def _machine_busy() -> float | None:
    """CPU seconds all processes have used since boot, from /proc/stat, or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (the odiff runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def report(pairs: dict[str, tuple[bytes, bytes]], work: Path, args: argparse.Namespace) -> None:
    binary = odiff_binary()
    rows = [
        measure_pair(name, before, after, work, binary, args)
        for name, (before, after) in pairs.items()
    ]
    rates = measure_throughput(pairs, work, binary, args)
    print()
    print_table(
        [
            "1170x2532 pair",
            "changed px",
            "(a) pixelmatch-py",
            "(b) odiff whole command",
            "(b) odiff compare only",
            "(c) diff_images, arrays",
            "(d) PNG bytes -> mask PNG",
            "(c) vs (a)",
            "(a) count = ours",
        ],
        [pair_cells(row) for row in rows],
    )
    baselines = {label: rate for label, rate in rates.items() if label.startswith("odiff")}
    print()
    print_table(
        [
            f"throughput, {args.rounds} rounds of {args.round_pairs} mixed pairs (median)",
            "pairs/s",
            *(f"vs {label}" for label in baselines),
        ],
        [
            [label, f"{rate:.1f}", *(f"{rate / base:.2f}x" for base in baselines.values())]
            for label, rate in rates.items()
        ],
    )

    tall = measure_tall(*tall_pair(work))
    print()
    print(
        f"(d) on a 1170x{TALL_HEIGHT} pair: {tall['seconds']:.2f} s, "
        f"peak RSS {tall['peak_rss_mib']:.0f} MiB (+{tall['peak_delta_mib']:.0f} MiB over the "
        f"interpreter holding both PNGs), {tall['changed']} px changed"
    )


if __name__ == "__main__":
    main()
