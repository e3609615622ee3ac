"""Report benchmark: a report of 10,000 changed screenshots that opens in 2 s.

Run from the repository root (about 10 minutes the first time, which draws the corpus into
benchmarks/.cache/bench_report/; about 5 after):

    .venv/bin/python -m benchmarks.bench_report [--images 10000] [--changes 20] [--runs 5]
    .venv/bin/python -m benchmarks.bench_report --screenshot docs/report-groups.png

Corpus: ``--images`` pairs of 390x844 phone screens drawn by the demo's renderer
(`compare.demo.render`: random titles, rows of people, products or settings, banners, buttons
and accent colours, so every screen differs), each head its base with one of ``--changes``
changes drawn on the screens' common chrome: the status bar's clock ticking to another minute
(4 changes), or a badge (dot, ring, square, "NEW") in one of four colours on a tab bar icon (16
changes; a fifth of each badge's images have it on another tab: the same change elsewhere).
Every change is on the same number of screens.

It runs `compare_builds` on the two folders (the real engine: diffs, masks, previews) and
`write_reports`, then measures:

- the groups: identical-change groups of 2 or more images as the engine found them (exactly
  ``--changes`` expected), and whether each is exactly the images of one drawn change;
- ``report.html`` and the ``--out`` folder: bytes, picture files;
- headless Chromium (Debian's), a fresh browser and profile per run, through the DevTools
  protocol over a pipe: from navigation to the first cards drawn (the page's own
  ``snapcompare:first-cards`` mark, then the frame after it), to the first screen's pictures
  loaded, and the browser's memory then (JS heap; PSS of all its processes);
- the demo (`snapcompare demo`): one self-contained file (every picture a ``data:`` URI) and
  the same timings;
- the inline budget: reports of the corpus' first images with every picture embedded, at
  growing picture totals, and their opening times.

Medians of ``--runs`` runs. Chromium takes both cores of a 2-core machine while it loads a page;
other work on the machine shows in the figures (the load average is printed).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from compare.builds import compare_builds  # noqa: E402
from compare.demo import _FIRST_NAMES, _PALETTE, _PRODUCTS, HEIGHT, WIDTH, Row, Screen, render  # noqa: E402
from compare.model import CompareOptions, Comparison, Status  # noqa: E402
from compare.output import report_html  # noqa: E402
from compare.output.reports import write_reports  # noqa: E402
from testing.devtools import DevTools  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "bench_report"
CHROMIUM = "/usr/bin/chromium"
CORPUS_VERSION = 2
CLOCKS = ("9:42", "9:43", "9:44", "9:45")
SHAPES = ("dot", "ring", "square", "new")
COLOURS = ((255, 59, 48), (0, 122, 255), (52, 199, 89), (255, 149, 0))
TAB_SLOT = WIDTH // 4
TAB_TOP = HEIGHT - 64
ELSEWHERE = 5  # one image in this many has its badge on another tab
WINDOW = (1280, 900)
MIB = 1024 * 1024
BUDGET_STEPS = (2, 4, 8, 16, 32)  # MiB of pictures embedded


# --- the corpus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One of the corpus' changes: a clock (index < len(CLOCKS)) or a badge (shape, colour)."""

    index: int

    @property
    def clock(self) -> str | None:
        return CLOCKS[self.index] if self.index < len(CLOCKS) else None

    @property
    def badge(self) -> tuple[str, tuple[int, int, int]]:
        shape, colour = divmod(self.index - len(CLOCKS), len(COLOURS))
        return SHAPES[shape % len(SHAPES)], COLOURS[colour]


def screen(rng: random.Random) -> Screen:
    """A random app screen: title, rows, accent, sometimes a banner and a button."""
    kind = rng.choice(("people", "products", "settings"))
    count = rng.randint(4, 12)
    if kind == "people":
        rows = tuple(Row(rng.choice(_FIRST_NAMES), f"{rng.randint(2, 59)} min ago", f"{rng.randint(1, 9)} new")
                     for _ in range(count))
    elif kind == "products":
        rows = tuple(Row(rng.choice(_PRODUCTS), f"Size {rng.choice('SML')}", f"${rng.randint(9, 99)}.00")
                     for _ in range(count))
    else:
        rows = tuple(Row(rng.choice(("Account", "Privacy", "Storage", "Sync", "Language", "About")),
                         value=rng.choice(("On", "Off", "System", "1.2 GB", ""))) for _ in range(count))
    title = rng.choice(("Home", "Orders", "Inbox", "Discover", "Cart", "Profile", "Settings", "Saved"))
    return Screen(title, rows, rng.choice(_PALETTE),
                  button=rng.choice((None, "Continue", "Checkout", "Save")),
                  banner=rng.choice((None, None, "Free delivery today", "New season", "Welcome back")),
                  avatar_seed=rng.randrange(1 << 30))


def draw_badge(image: Image.Image, change: Change, tab: int) -> None:
    """Draw ``change``'s badge at the top right of tab ``tab``'s icon (tabs 1 to 3 look alike)."""
    shape, colour = change.badge
    draw = ImageDraw.Draw(image)
    x, y = TAB_SLOT * tab + TAB_SLOT // 2 + 6, TAB_TOP + 2
    if shape == "dot":
        draw.ellipse((x, y, x + 11, y + 11), fill=colour)
    elif shape == "ring":
        draw.ellipse((x, y, x + 13, y + 13), outline=colour, width=3)
    elif shape == "square":
        draw.rectangle((x, y, x + 10, y + 10), fill=colour)
    else:
        draw.rounded_rectangle((x, y, x + 28, y + 13), radius=6, fill=colour)
        draw.text((x + 14, y + 7), "NEW", fill=(255, 255, 255), anchor="mm")


def draw_pair(job: tuple[int, int, int, Path]) -> tuple[str, int, bool]:
    """Draw pair ``index`` (seeded) with change ``index % changes``, elsewhere on every
    `ELSEWHERE`-th screen of a badge; write base and head PNGs."""
    index, changes, seed, folder = job
    rng = random.Random(seed * 1_000_003 + index)
    base = screen(rng)
    change_index = index % changes
    change = Change(change_index)
    before = render(base)
    elsewhere = change.clock is None and (index // changes) % ELSEWHERE == ELSEWHERE - 1
    if change.clock is not None:
        after = render(replace(base, clock=change.clock))
    else:
        after = before.copy()
        draw_badge(after, change, 2 if elsewhere else 1)
    name = f"{rng.choice(('home', 'shop', 'account', 'settings', 'orders'))}/screen-{index:05d}.png"
    for side, image in (("base", before), ("head", after)):
        path = folder / side / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG", compress_level=1)
    return name, change_index, elsewhere


def corpus(images: int, changes: int, seed: int = 19) -> Path:
    """The folder holding ``base/``, ``head/`` and ``truth.json`` (name -> change), drawn once."""
    folder = CACHE / f"corpus-{images}-{changes}-{seed}-v{CORPUS_VERSION}"
    if (folder / "truth.json").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    jobs = [(index, changes, seed, folder) for index in range(images)]
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        drawn = list(pool.map(draw_pair, jobs, chunksize=64))
    truth = {name: {"change": change, "elsewhere": elsewhere} for name, change, elsewhere in drawn}
    (folder / "truth.json").write_text(json.dumps(truth))
    print(f"corpus: drew {images} pairs in {time.perf_counter() - started:.0f} s into {folder}", file=sys.stderr)
    return folder


def groups_found(comparison: Comparison, truth: dict[str, dict]) -> tuple[int, bool]:
    """The identical-change groups of 2+ images the engine found, and whether they are exactly
    the drawn changes (each group the images of one change, every change one group)."""
    found: dict[str, set[str]] = {}
    for name, result in comparison.images.items():
        if result.change_group is not None:
            found.setdefault(result.change_group, set()).add(name)
    drawn: dict[int, set[str]] = {}
    for name, facts in truth.items():
        drawn.setdefault(facts["change"], set()).add(name)
    groups = [names for names in found.values() if len(names) > 1]
    return len(groups), sorted(map(sorted, groups)) == sorted(map(sorted, drawn.values()))


# --- Chromium, through testing.devtools ---------------------------------------------------

# Injected before the page's own scripts (the DevTools protocol's scripts are not the page's,
# so its policy does not apply to them): records when the first cards are drawn and when the
# pictures of the first screen are loaded.
WATCHER = """
(function () {
  var bench = window.__bench = {};
  function frame() {
    if (document.body && document.body.getAttribute("data-ready") === "true") {
      var mark = performance.getEntriesByName("snapcompare:first-cards")[0];
      bench.built = mark ? mark.startTime : null;
      setTimeout(function () {
        bench.drawn = performance.now();
        bench.cards = document.querySelectorAll("[data-item]").length;
        pictures();
      }, 0);
      return;
    }
    requestAnimationFrame(frame);
  }
  function pictures() {
    var waiting = Array.prototype.some.call(document.images, function (img) {
      var box = img.getBoundingClientRect();
      return box.bottom > 0 && box.top < innerHeight && box.width > 0 && !img.complete;
    });
    if (waiting) { setTimeout(pictures, 5); return; }
    bench.pictures = performance.now();
    bench.shown = Array.prototype.filter.call(document.images, function (img) {
      var box = img.getBoundingClientRect();
      return box.bottom > 0 && box.top < innerHeight && img.naturalWidth > 0;
    }).length;
    bench.done = true;
  }
  requestAnimationFrame(frame);
})();
"""


@dataclass(frozen=True)
class Opening:
    """One page load: ms from navigation to the first cards built, drawn, and the first
    screen's pictures loaded; cards and pictures on the first screen; memory in bytes."""

    built: float
    drawn: float
    pictures: float
    cards: int
    shown: int
    heap: int
    pss: int


def open_page(url: str) -> Opening:
    """Load ``url`` in a fresh headless Chromium and measure it (see `WATCHER`)."""
    with tempfile.TemporaryDirectory(prefix="bench-report-profile-") as profile, \
            DevTools(CHROMIUM, Path(profile), WINDOW) as browser:
        browser.open(url, before=WATCHER)
        state = browser.wait("window.__bench && window.__bench.done && window.__bench", timeout=120)
        metrics = {m["name"]: m["value"] for m in browser.call("Performance.getMetrics")["metrics"]}
        return Opening(state["built"], state["drawn"], state["pictures"], state["cards"], state["shown"],
                       int(metrics["JSHeapUsedSize"]), browser.memory())


def openings(url: str, runs: int) -> dict[str, float]:
    """Medians over ``runs`` fresh loads of ``url``."""
    found = [open_page(url) for _ in range(runs)]
    return {field.name: statistics.median(getattr(o, field.name) for o in found)
            for field in dataclasses.fields(Opening)}


# --- measures -----------------------------------------------------------------------------


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def page_pictures(report: Path) -> tuple[int, int]:
    """(pictures embedded as data: URIs, pictures that are files) in a report's JSON."""
    text = report.read_text(encoding="utf-8")
    start = text.index('id="report-data">') + len('id="report-data">')
    data = json.loads(text[start:text.index("</script>", start)])
    embedded = sum(1 for row in data["pictures"] if len(row) > 5 and str(row[5]).startswith("data:"))
    return embedded, len(data["pictures"]) - embedded


@contextmanager
def inline_budget(size: int) -> Iterator[None]:
    """Reports written meanwhile embed pictures up to ``size`` bytes."""
    saved = report_html.INLINE_BUDGET
    report_html.INLINE_BUDGET = size
    try:
        yield
    finally:
        report_html.INLINE_BUDGET = saved


def scale(args: argparse.Namespace, work: Path) -> tuple[list[list[str]], Comparison, Path]:
    """The corpus compared and reported: its table rows, the comparison and its folder."""
    folder = corpus(args.images, args.changes)
    truth = json.loads((folder / "truth.json").read_text())
    out = work / "out"
    started = time.perf_counter()
    comparison = compare_builds(folder / "base", folder / "head", out_dir=out, options=CompareOptions())
    compared = time.perf_counter() - started
    started = time.perf_counter()
    report = write_reports(comparison, out)["html"]
    reported = time.perf_counter() - started
    found, exact = groups_found(comparison, truth)
    embedded, files = page_pictures(report)
    previews = len(list((out / "previews").iterdir()))
    print(f"scale: compared in {compared:.0f} s, reports written in {reported:.1f} s; opening ...", file=sys.stderr)
    opened = openings(report.as_uri(), args.runs)
    summary = comparison.summary
    rows = [
        ["images", f"{summary['total']:,} ({summary['changed']:,} changed)", ""],
        ["identical-change groups of 2+ images", f"{found} ({'exactly' if exact else 'not'} the drawn changes)",
         f"exactly {args.changes}"],
        ["`compare_builds` (diffs, masks, previews), wall", f"{compared:.0f} s", ""],
        ["`write_reports`, wall", f"{reported:.1f} s", ""],
        ["`report.html`", f"{report.stat().st_size / MIB:.2f} MiB", "<= 10 MB"],
        ["its pictures", f"{embedded:,} embedded, {files:,} files beside it", ""],
        ["`--out` folder", f"{folder_bytes(out) / MIB:,.0f} MiB ({previews:,} preview files)", ""],
        *opening_rows(opened, "Chromium", "<= 2 s"),
    ]
    return rows, comparison, out


def opening_rows(opened: dict[str, float], who: str, target: str) -> list[list[str]]:
    """Table rows of a page's `openings`, labelled ``who``; ``target`` beside the time drawn."""
    return [
        [f"{who}: navigation to first cards built (page mark)", f"{opened['built']:.0f} ms", ""],
        [f"{who}: navigation to first cards drawn", f"{opened['drawn']:.0f} ms", target],
        [f"{who}: navigation to first screen's pictures loaded",
         f"{opened['pictures']:.0f} ms ({opened['shown']:.0f} pictures, {opened['cards']:.0f} cards built)", ""],
        [f"{who}: memory then, JS heap / PSS of all Chromium's processes",
         f"{opened['heap'] / MIB:.0f} MiB / {opened['pss'] / MIB:.0f} MiB", ""],
    ]


def demo(args: argparse.Namespace, work: Path) -> list[list[str]]:
    """The 15-image demo through the CLI, opened like the corpus' report."""
    out = work / "demo"
    subprocess.run([str(ROOT / ".venv" / "bin" / "snapcompare"), "demo", "--quiet", "--out", str(out)],
                   check=False, capture_output=True)
    report = out / "report" / "report.html"
    embedded, files = page_pictures(report)
    opened = openings(report.as_uri(), args.runs)
    return [
        ["demo: `report.html`", f"{report.stat().st_size / 1024:.0f} KiB, {embedded} pictures embedded, "
                                f"{files} files", "one self-contained file"],
        *opening_rows(opened, "demo, Chromium", "< 1 s"),
    ]


def budget(args: argparse.Namespace, comparison: Comparison, out: Path, work: Path) -> list[list[str]]:
    """Reports of the corpus' first changed images with every picture embedded, by size."""
    names = sorted((r for r in comparison.images.values() if r.status is Status.CHANGED),
                   key=lambda r: r.name)
    rows = []
    for mib in BUDGET_STEPS:
        chosen, seen, size = {}, set(), 0
        for result in names:
            if size >= mib * MIB:
                break
            chosen[result.name] = result
            for key in (result.previews or {}).values():
                if key not in seen:
                    seen.add(key)
                    size += (out / key).stat().st_size
        part = replace(comparison, images=chosen, change_groups=())
        folder = work / f"budget-{mib}"
        with inline_budget(1 << 40):
            report = write_reports(part, folder)["html"]
        opened = openings(report.as_uri(), args.runs)
        rows.append([f"{len(chosen):,} images, {size / MIB:.1f} MiB of pictures embedded",
                     f"{report.stat().st_size / MIB:.1f} MiB", f"{opened['drawn']:.0f} ms",
                     f"{opened['pictures']:.0f} ms", f"{opened['pss'] / MIB:.0f} MiB"])
        shutil.rmtree(folder)
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the README picture -------------------------------------------------------------------

# Opens the first group's list of names and scrolls to the summary, then marks the page.
SHOT_DRIVER = """
(function () {
  var bench = window.__bench = {};
  function go() {
    if (!document.body || document.body.getAttribute("data-ready") !== "true") { requestAnimationFrame(go); return; }
    document.querySelector("li.group details.members").open = true;
    setTimeout(function () {
      window.scrollTo(0, document.querySelector(".summary").getBoundingClientRect().top + scrollY - 16);
      bench.done = true;
    }, 300);
  }
  requestAnimationFrame(go);
})();
"""


def screenshot(path: Path, work: Path) -> None:
    """Write a picture of a grouped report (a small corpus) to ``path``."""
    folder = corpus(120, 6, seed=7)
    out = work / "shot"
    comparison = compare_builds(folder / "base", folder / "head", out_dir=out, options=CompareOptions())
    report = write_reports(comparison, out)["html"]
    with tempfile.TemporaryDirectory(prefix="bench-report-profile-") as profile, \
            DevTools(CHROMIUM, Path(profile), (1280, 1640)) as browser:
        browser.open(report.as_uri(), before=SHOT_DRIVER)
        browser.wait("window.__bench && window.__bench.done")
        time.sleep(0.5)
        shot = browser.call("Page.captureScreenshot", {"format": "png"})["data"]
    path.write_bytes(base64.b64decode(shot))
    print(f"wrote {path}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="changed pairs (10,000)")
    parser.add_argument("--changes", type=int, default=20, help="distinct changes among them (20)")
    parser.add_argument("--runs", type=int, default=5, help="page loads per measure (median; 5)")
    parser.add_argument("--skip", default="", help="comma list of: demo,budget")
    parser.add_argument("--screenshot", type=Path, help="only write a picture of a grouped report here")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        parser.error(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        if args.screenshot:
            screenshot(args.screenshot, work)
            return
        skip = set(filter(None, args.skip.split(",")))
        load = os.getloadavg()[0]
        rows, comparison, out = scale(args, work)
        if "demo" not in skip:
            rows += demo(args, work)
        print(f"# Report at scale: {args.images:,} changed 390x844 screens in {args.changes} changes, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}, medians of {args.runs} loads\n")
        print(table(["measure", "value", "target"], rows))
        if "budget" not in skip:
            print(f"\n## Every picture embedded (inline budget; the report embeds up to "
                  f"{report_html.INLINE_BUDGET / MIB:.0f} MiB)\n")
            print(table(["report of", "report.html", "first cards drawn", "first pictures loaded",
                         "Chromium PSS"], budget(args, comparison, out, work)))


if __name__ == "__main__":
    main()
