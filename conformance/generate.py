"""Regenerate the expected values and masks of conformance/cases by running the reference
implementations on each case's base and head images with its option sets (conformance/README.md
says how).

    python -m conformance.generate [--oklab-reference PATH] [--check-against DIR]

pixelmatch 7.2.0 and odiff 4.5.0 come from npm through benchmarks/peers.py. pixelmatch's OKLab
metric (its main branch at c6fee35) is published nowhere: ``--oklab-reference`` takes its
``index.js`` from a checkout of that commit; without it the committed OKLab outputs stay as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import peers
from conformance import CASES, ENGINES, ODIFF_SIZES, case_names, inputs, own_options
from conformance.check import disagreements

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference.mjs"
PIXELMATCH_VERSION = "7.2.0"
ODIFF_VERSION = "4.5.0"
# `git rev-parse c6fee35:index.js` in a checkout of mapbox/pixelmatch
OKLAB_BLOB = "2752efe39c0c9dfc288f1ad13e85e2a0fab94d7f"
OPTION_SETS = {
    "pixelmatch": [
        {"threshold": 0.1, "antialiasing": True},
        {"threshold": 0.1, "antialiasing": False},
        {"threshold": 0.05, "antialiasing": True},
    ],
    "oklab": [
        {"threshold": 0.1, "antialiasing": True},
        {"threshold": 0.1, "antialiasing": False},
        {"threshold": 0.05, "antialiasing": True},
        {"threshold": 0.1, "antialiasing": True, "checkerboard": False},
        {"threshold": 0.1, "antialiasing": True, "window_size": 16},
    ],
    "odiff": [
        {"threshold": 0.1, "antialiasing": True},
        {"threshold": 0.01, "antialiasing": True},
        {"threshold": 0.1, "antialiasing": False},
    ],
}
# the `engine` field naming the reference (expected.json has none; it names its modes instead)
LABELS = {"oklab": "pixelmatch c6fee35 (OKLab HyAB)",
          "odiff": f"odiff {ODIFF_VERSION} on the padded canvas",
          "odiff-sizes": f"odiff {ODIFF_VERSION} on the images as they are"}

Result = tuple[dict, np.ndarray]  # one option set's expected values and its mask


@dataclass(frozen=True)
class Pair:
    """A case's two images decoded by Pillow to RGBA and padded top-left with transparent black to
    their union canvas."""

    before: np.ndarray
    after: np.ndarray
    before_size: tuple[int, int]
    after_size: tuple[int, int]
    modes: tuple[str, str]
    files: tuple[Path, Path]
    option_sets: dict[str, list[dict]]
    """Per engine: the case's own option sets (its options.json), then the standard ones it lacks."""

    @property
    def decoded_by_odiff(self) -> bool:
        """Whether odiff also reads the files themselves: one is not a PNG (see run_odiff)."""
        return any(path.suffix != ".png" for path in self.files)

    @property
    def canvas(self) -> tuple[int, int]:
        """(width, height) of the union canvas."""
        return self.before.shape[1], self.before.shape[0]

    @property
    def same_size(self) -> bool:
        """Whether both images have the canvas's size."""
        return self.before_size == self.after_size

    def originals(self) -> tuple[np.ndarray, np.ndarray]:
        """The two images as they were decoded, without the padding."""
        return tuple(image[:height, :width] for image, (width, height)
                     in ((self.before, self.before_size), (self.after, self.after_size)))

    def outside_overlap(self) -> np.ndarray:
        """True at every canvas pixel outside the overlap of the two images."""
        width, height = (min(a, b) for a, b in zip(self.before_size, self.after_size, strict=True))
        outside = np.ones(self.before.shape[:2], dtype=bool)
        outside[:height, :width] = False
        return outside

    def header(self) -> dict:
        """The sizes every expected file starts with."""
        width, height = self.canvas
        return {"canvas": [width, height], "before_size": list(self.before_size),
                "after_size": list(self.after_size), "total_pixels": width * height}


def load_pair(folder: Path) -> Pair:
    """Decode ``folder``'s two inputs (``Image.convert("RGBA")``), pad them and read its option sets."""
    files = inputs(folder)
    if files is None:
        raise SystemExit(f"{folder}: no base and head image")
    images, modes = [], []
    for path in files:
        with Image.open(path) as image:
            modes.append(image.mode)
            images.append(np.asarray(image.convert("RGBA")))
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    padded = []
    for image in images:
        canvas = np.zeros((height, width, 4), dtype=np.uint8)
        canvas[: image.shape[0], : image.shape[1]] = image
        padded.append(canvas)
    sizes = [(image.shape[1], image.shape[0]) for image in images]
    pair = Pair(padded[0], padded[1], sizes[0], sizes[1], (modes[0], modes[1]), files, option_sets(folder))
    if pair.decoded_by_odiff and not pair.same_size:
        raise SystemExit(f"{folder}: inputs that are not both PNG must have one size")
    return pair


def option_sets(folder: Path) -> dict[str, list[dict]]:
    """Per engine, the case's own option sets (its options.json) followed by the standard ones it
    lacks; exits when it names an unknown engine or gives ignore regions to another than odiff."""
    own = own_options(folder)
    unknown = sorted(set(own) - set(OPTION_SETS))
    ignoring = sorted(engine for engine, sets in own.items()
                      if engine != "odiff" and any("ignore_regions" in options for options in sets))
    if unknown or ignoring:
        raise SystemExit(f"{folder}: options for unknown engines {unknown} or ignore regions for {ignoring} "
                         "(only odiff takes them)")
    return {engine: own.get(engine, []) + [options for options in standard if options not in own.get(engine, [])]
            for engine, standard in OPTION_SETS.items()}


def bbox(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1) around the True pixels of ``mask``, or None when there are none."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return [int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1]


def git_blob_id(data: bytes) -> str:
    """The id git gives a file of these bytes (what ``git rev-parse COMMIT:PATH`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read_oklab_reference(reference: Path) -> bytes:
    """The bytes of ``reference`` once they are pixelmatch's index.js at c6fee35; exits with a
    message naming the difference when it is another file."""
    try:
        data = reference.read_bytes()
    except OSError as error:
        raise SystemExit(f"--oklab-reference: cannot read {reference}: {error.strerror}") from None
    if (found := git_blob_id(data)) != OKLAB_BLOB:
        raise SystemExit(
            f"--oklab-reference: {reference} is not pixelmatch's index.js at c6fee35 (its git blob id is "
            f"{found}, expected {OKLAB_BLOB}); in a checkout of mapbox/pixelmatch: "
            "git show c6fee35:index.js > index.js")
    return data


def pixelmatch_options(options: dict) -> dict:
    """An option set in pixelmatch's own names."""
    named = {"threshold": options["threshold"], "includeAA": not options["antialiasing"]}
    if "checkerboard" in options:
        named["checkerboard"] = options["checkerboard"]
    if "window_size" in options:
        named["windowSize"] = options["window_size"]
    return named


def write_raw(pairs: dict[str, Pair], workdir: Path) -> dict[str, tuple[Path, Path]]:
    """Each pair's padded images as raw RGBA files in ``workdir``, what reference.mjs reads."""
    raw = {}
    for name, pair in pairs.items():
        raw[name] = (workdir / f"{name}.before.rgba", workdir / f"{name}.after.rgba")
        raw[name][0].write_bytes(pair.before.tobytes())
        raw[name][1].write_bytes(pair.after.tobytes())
    return raw


def run_pixelmatch(node: str, module: Path, engine: str, pairs: dict[str, Pair],
                   raw: dict[str, tuple[Path, Path]], workdir: Path) -> dict[str, list[Result]]:
    """Each pair's option sets for ``engine`` (``raw``: the pairs' files from write_raw) through
    the pixelmatch ES module ``module`` in one ``node`` process; each result counted on the
    canvas as the conformance data does: pixels outside the overlap are changed."""
    jobs, keys = [], []
    for name, pair in pairs.items():
        width, height = pair.canvas
        for index, options in enumerate(pair.option_sets[engine]):
            jobs.append({"before": str(raw[name][0]), "after": str(raw[name][1]),
                         "width": width, "height": height, "options": pixelmatch_options(options),
                         "states": str(workdir / f"{name}.{module.stem}.{index}.states")})
            keys.append((name, options))
    listing = workdir / f"jobs.{module.stem}.json"
    listing.write_text(json.dumps(jobs))
    lines = subprocess.run([node, str(REFERENCE_SCRIPT), str(module), str(listing)], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.splitlines()
    if len(lines) != len(jobs):
        raise RuntimeError(f"{module}: {len(lines)} results for {len(jobs)} jobs")
    results: dict[str, list[Result]] = {name: [] for name in pairs}
    for (name, options), job, line in zip(keys, jobs, lines, strict=True):
        pair = pairs[name]
        states = np.fromfile(job["states"], dtype=np.uint8).reshape(pair.before.shape[:2])
        results[name].append(_counted(pair, options, states, json.loads(line)["returned"]))
    return results


def _counted(pair: Pair, options: dict, states: np.ndarray, returned: int) -> Result:
    """pixelmatch's per-pixel states (1 changed, 2 excluded as anti-aliasing) and return value as
    the expected values and mask of one option set."""
    counted = states == 1
    count = int(counted.sum())
    if "window_size" not in options and returned != count:
        raise RuntimeError(f"pixelmatch returned {returned} but drew {count} changed pixels")
    mask = counted | pair.outside_overlap()
    result = {"options": options, "changed_pixels": int(mask.sum()), "pixelmatch_count_padded": count,
              "aa_pixels_in_overlap": int((states == 2).sum()) if pair.same_size else None,
              "bbox": bbox(mask)}
    if "window_size" in options:
        result["window_max"] = returned
    return result, mask


def run_odiff(binary: Path, pair: Pair, workdir: Path, *, padded: bool = True) -> list[Result]:
    """The pair's odiff option sets through odiff's CLI on the two padded images, as Sentry runs
    it (or on the images as they are); its own count, and the pixels its --diff-mask output marks
    (an image of the base image's size). odiff gets PNGs of Pillow's pixels; when an input is not
    a PNG, each result adds ``on_files``, odiff's count and bbox on the two files themselves
    (which odiff decodes: a JPEG with libjpeg-turbo's fast DCT unless the threshold is 0, a BMP
    with red and blue swapped)."""
    before, after = workdir / "before.png", workdir / "after.png"
    images = (pair.before, pair.after) if padded else pair.originals()
    Image.fromarray(images[0], "RGBA").save(before, compress_level=1)
    Image.fromarray(images[1], "RGBA").save(after, compress_level=1)
    shape = images[0].shape[:2]
    results = []
    for options in pair.option_sets["odiff"]:
        count, mask = _odiff(binary, (before, after), options, shape, workdir)
        result = {"options": options, "changed_pixels": count, "mask_pixels": int(mask.sum()),
                  "bbox": bbox(mask)}
        if padded and pair.decoded_by_odiff:
            on_files, files_mask = _odiff(binary, pair.files, options, shape, workdir)
            result["on_files"] = {"changed_pixels": on_files, "bbox": bbox(files_mask)}
        results.append((result, mask))
    return results


def _odiff(binary: Path, files: tuple[Path, Path], options: dict, shape: tuple[int, ...],
           workdir: Path) -> tuple[int, np.ndarray]:
    """odiff's count for one option set on two files, and the pixels its --diff-mask output marks
    (none, of ``shape``, when it writes no diff image: for images it finds equal)."""
    out = workdir / "diff.png"
    out.unlink(missing_ok=True)
    command = [str(binary), str(files[0]), str(files[1]), str(out), "--diff-mask", "--parsable-stdout",
               "-t", str(options["threshold"])] + (["--aa"] if options["antialiasing"] else [])
    if "ignore_regions" in options:
        command += ["--ignore", ",".join("{x1}:{y1}-{x2}:{y2}".format(**region)
                                         for region in options["ignore_regions"])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 22):
        raise RuntimeError(f"odiff exited {done.returncode}: {done.stderr.strip()}")
    count = int(done.stdout.strip().split(";")[0])
    if not out.exists():
        return count, np.zeros(shape, dtype=bool)
    with Image.open(out) as image:
        return count, np.asarray(image.convert("RGBA"))[..., 3] != 0


def write_engine(folder: Path, engine: str, pair: Pair, results: list[Result]) -> None:
    """Write one engine's expected file and the mask of its first option set into ``folder``."""
    expected_file, mask_file = ODIFF_SIZES if engine == "odiff-sizes" else ENGINES[engine]
    expected = {"engine": LABELS[engine]} if engine in LABELS else {}
    expected |= pair.header() | {"results": [result for result, _ in results]}
    if engine == "pixelmatch":
        expected |= {"base_mode": pair.modes[0], "head_mode": pair.modes[1]}
    (folder / expected_file).write_text(json.dumps(expected, indent=1) + "\n")
    Image.fromarray(results[0][1]).save(folder / mask_file, optimize=True)


def check_versions(node_dir: Path, odiff: Path) -> None:
    """Refuse to run with other pixelmatch or odiff versions than the data's."""
    package = json.loads((node_dir / "node_modules" / "pixelmatch" / "package.json").read_text())
    version = subprocess.run([str(odiff), "--version"], capture_output=True, text=True, check=False)
    odiff_says = (version.stdout + version.stderr).split()  # "odiff 4.5.0 - ..." (4.5.0: on stderr)
    found = {"pixelmatch": (package["version"], PIXELMATCH_VERSION),
             "odiff": (odiff_says[1] if len(odiff_says) > 1 else "?", ODIFF_VERSION)}
    wrong = [f"{name} {have} (the data needs {want})"
             for name, (have, want) in found.items() if have != want]
    if wrong:
        raise SystemExit(f"benchmarks/package.json installs {', '.join(wrong)}")


def first_counts(folder: Path) -> dict[str, int]:
    """Each engine's changed_pixels for its first option set in a case folder."""
    return {engine: json.loads((folder / expected_file).read_text())["results"][0]["changed_pixels"]
            for engine, (expected_file, _) in ENGINES.items() if (folder / expected_file).is_file()}


def check_against(seed: Path, names: list[str]) -> int:
    """Compare the cases with the copy in ``seed``; prints what disagrees, returns the exit code."""
    seed_names = case_names(seed)
    problems = [f"{name}: only in {seed}" for name in sorted(set(seed_names) - set(names))]
    results = 0
    for name in sorted(set(names) & set(seed_names)):
        problems += [f"{name}: {problem}" for problem in disagreements(CASES / name, seed / name)]
        results += sum(len(json.loads((CASES / name / expected_file).read_text())["results"])
                       for expected_file, _ in ENGINES.values())
    for problem in problems:
        print(problem)
    compared = len(set(names) & set(seed_names))
    print(f"checked against {seed}: {compared} cases, {results} option sets, {compared * len(ENGINES)} "
          f"masks, {compared * 2} inputs: {'agree' if not problems else f'{len(problems)} disagreements'}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m conformance.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--oklab-reference", type=Path, metavar="PATH",
                        help="pixelmatch's index.js at commit c6fee35, to regenerate the OKLab outputs")
    parser.add_argument("--check-against", type=Path, metavar="DIR",
                        help="then compare every case with the copy in DIR (exit 1 if any disagree)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    names = case_names(CASES)
    if not names:
        raise SystemExit(f"no cases under {CASES}")
    oklab_file = ENGINES["oklab"][0]
    lacking = [name for name in names if not (CASES / name / oklab_file).is_file()]
    if args.oklab_reference is None and lacking:
        raise SystemExit(f"{', '.join(lacking)}: no {oklab_file} yet; pass --oklab-reference")
    oklab_source = read_oklab_reference(args.oklab_reference) if args.oklab_reference else None
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is needed to run pixelmatch")
    node_dir = peers.ensure_node()
    odiff = peers.odiff_binary()
    check_versions(node_dir, odiff)
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        workdir = Path(tmp)
        modules = {"pixelmatch": node_dir / "node_modules" / "pixelmatch" / "index.js"}
        if oklab_source is not None:  # an ES module by its name: its package says "type": "module"
            modules["oklab"] = workdir / "pixelmatch-c6fee35.mjs"
            modules["oklab"].write_bytes(oklab_source)
        pairs = {name: load_pair(CASES / name) for name in names}
        raw = write_raw(pairs, workdir)
        engines = {engine: run_pixelmatch(node, module, engine, pairs, raw, workdir)
                   for engine, module in modules.items()}
        engines["odiff"] = {name: run_odiff(odiff, pair, workdir) for name, pair in pairs.items()}
        engines["odiff-sizes"] = {name: run_odiff(odiff, pair, workdir, padded=False)
                                  for name, pair in pairs.items() if not pair.same_size}
    for name, pair in pairs.items():
        for engine, results in engines.items():
            if name in results:
                write_engine(CASES / name, engine, pair, results[name])
    index = {name: first_counts(CASES / name) for name in names}
    (CASES / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    written = ", ".join((ODIFF_SIZES if engine == "odiff-sizes" else ENGINES[engine])[0] for engine in engines)
    print(f"{len(names)} cases: wrote {written} and their masks in {time.perf_counter() - started:.1f} s")
    if oklab_source is None:
        print(f"{oklab_file} and {ENGINES['oklab'][1]} left as committed (pass --oklab-reference "
              "PATH, pixelmatch's index.js at c6fee35, to regenerate them)")
    return check_against(args.check_against, names) if args.check_against else 0


if __name__ == "__main__":
    sys.exit(main())
