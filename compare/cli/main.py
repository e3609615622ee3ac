"""The ``snapcompare`` command: ``compare``, ``upload``, ``approve``, ``known-changes``, ``manifest``
and ``demo``."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

from fetchers import BACKENDS, StoreUnavailable

from ..demo import generate_demo
from ..imaging.engines import DEFAULT_ENGINE, ENGINES
from ..inputs.manifest import (
    ManifestError,
    dump_manifest,
    manifest_from_folder,
    with_ignore_patterns,
    write_manifest,
)
from ..model import MAX_ARTIFACT_ID, CompareOptions, Comparison, ImageResult, InputError, Status, check_fraction
from ..output.artifacts import ArtifactWriter
from ..output.reports import write_reports
from ..output.results_store import ResultsNotWritten
from ..regions import parse_ignore_pattern, parse_ignore_regions
from ..run import compare_builds, describe_os_error
from .malloc import reuse_freed_memory
from .progress import ProgressDisplay

EXIT_SAME = 0
EXIT_DIFFERENCES = 1
EXIT_ERRORED = 2
EXIT_BAD_INPUT = 3
EXIT_FAILED = 4
EXIT_RESULTS_NOT_WRITTEN = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

STORE_ENV = "SNAPCOMPARE_STORE"
DEMO_OUT = "snapcompare-demo"

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_SAME}    no differences, or the changes of the --approved comparison, or only changes
       that --known-changes holds (unless --fail-on-known-changes)
  {EXIT_DIFFERENCES}    differences found: changed, added, removed or renamed images
  {EXIT_ERRORED}    some images errored (fetch failed, not decodable, over the pixel limit);
       wins over {EXIT_DIFFERENCES}
  {EXIT_BAD_INPUT}    bad input or configuration: arguments, manifests, folders, store URL,
       a store that cannot be used (no such bucket, denied credentials, unreachable),
       --out not writable or in use by another run
  {EXIT_FAILED}    the comparison itself failed
  {EXIT_RESULTS_NOT_WRITTEN}    the comparison ran (and --out has its reports) but some of its results could
       not be written to --results-store; wins over {EXIT_SAME}, {EXIT_DIFFERENCES} and {EXIT_ERRORED} (on a
       cluster, a chunk whose worker cannot write its results errors its images: {EXIT_ERRORED})
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, SIGINT)
  {EXIT_TERMINATED}  terminated (SIGTERM)
on {EXIT_BAD_INPUT}, {EXIT_FAILED}, {EXIT_INTERRUPTED} and {EXIT_TERMINATED}, --out keeps the previous reports and their files as they were
"""

_LISTED = 10
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops as on Ctrl-C, then exits with `EXIT_TERMINATED`."""


def _terminate(_signal: int, _frame: object) -> None:
    raise Terminated


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def run() -> NoReturn:
    """The ``snapcompare`` console command: `main` on the process arguments, in a process whose
    malloc keeps freed pixel buffers for reuse (`compare.cli.malloc`)."""
    reuse_freed_memory()
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``snapcompare`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        return args.run(args)
    except InputError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except StoreUnavailable as exc:  # names the store and the cause, never a credential
        _error(_one_line(str(exc), 400))
        return EXIT_BAD_INPUT
    except Terminated:
        _error("terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _error(f"the comparison failed: {describe_os_error(exc)}")
        return EXIT_FAILED
    except Exception:  # noqa: BLE001 - whatever broke, CI must not read it as "differences"
        sys.stderr.write("".join(_shown(line) + "\n" for line in traceback.format_exc().splitlines()))
        _error("the comparison failed (see the traceback above)")
        return EXIT_FAILED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``snapcompare`` and its subcommands."""
    parser = _Parser(
        prog="snapcompare",
        description="Visual regression at scale: compare two builds' screenshots and report.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    compare = commands.add_parser(
        "compare",
        help="compare a head build against a base build",
        description="Compare the head build's images against the base build's and write\n"
        "report.html, comparison.json, junit.xml and diff masks into --out.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("--base", required=True, metavar="B",
                         help="base build: a manifest JSON file, store:KEY or a folder of images")
    compare.add_argument("--head", required=True, metavar="H",
                         help="head build: a manifest JSON file, store:KEY or a folder of images")
    compare.add_argument("--store", metavar="URL",
                         help=f"blob store of the manifests' images (default: ${STORE_ENV}): "
                         + ", ".join(dict.fromkeys(b.url_form for b in BACKENDS.values())))
    compare.add_argument("--out", required=True, type=Path, metavar="DIR",
                         help="folder for the reports and diff masks (created if needed)")
    add_token_option(compare)
    _add_options(compare)
    _add_engine_options(compare)
    _add_sentry_options(compare)
    _add_known_changes_options(compare)
    _add_scheduler_options(compare)
    _add_results_options(compare)
    compare.set_defaults(run=_run_compare)

    from .upload import add_upload_command  # it builds on this module's helpers

    add_upload_command(commands)

    from .approve import add_approve_command  # likewise

    add_approve_command(commands)

    from .known_changes import add_known_changes_command  # likewise

    add_known_changes_command(commands)

    manifest = commands.add_parser(
        "manifest",
        help="build a manifest from a folder of images",
        description="Hash every image under DIR and write its manifest (Sentry's format).",
    )
    manifest.add_argument("folder", metavar="DIR", help="folder of images")
    manifest.add_argument("-o", "--output", metavar="FILE",
                          help="where to write the manifest (default: standard output)")
    add_follow_symlinks_option(manifest)
    add_ignore_in_option(manifest, MANIFEST_IGNORE_IN_HELP)
    manifest.set_defaults(run=_run_manifest)

    demo = commands.add_parser(
        "demo",
        help="generate two demo builds in a local store and compare them",
        description="Draw a base and a head build of phone screenshots, store them by content\n"
        "hash in a local folder store with their manifests, compare them and write the report.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--out", type=Path, default=Path(DEMO_OUT), metavar="DIR",
                      help=f"folder for the demo builds and the report (default: ./{DEMO_OUT})")
    demo.add_argument("--quiet", action="store_true", help="print only errors and the outcome")
    demo.set_defaults(run=_run_demo)
    return parser


def add_token_option(parser: argparse.ArgumentParser) -> None:
    """``--objectstore-token-file``: where an objectstore store's token is read from."""
    parser.add_argument("--objectstore-token-file", type=Path, metavar="FILE",
                        help="file holding the objectstore token (default: "
                        "$SNAPCOMPARE_OBJECTSTORE_TOKEN); other stores use their SDK's credentials")


def objectstore_token(args: argparse.Namespace) -> str | None:
    """The objectstore token from ``--objectstore-token-file``, else None (the objectstore
    backend then reads ``$SNAPCOMPARE_OBJECTSTORE_TOKEN``).

    Raises `InputError` naming the file (never its content) when it cannot be read or is empty.
    """
    path: Path | None = args.objectstore_token_file
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"--objectstore-token-file: {reason}") from None
    if not token:
        raise InputError(f"--objectstore-token-file: {path} is empty")
    return token


def store_from(args: argparse.Namespace) -> tuple[str | None, str]:
    """The store URL from ``--store``, else ``$SNAPCOMPARE_STORE``, and the name of where it came from."""
    return (args.store, "--store") if args.store else (os.environ.get(STORE_ENV), STORE_ENV)


def _add_options(parser: argparse.ArgumentParser) -> None:
    defaults = CompareOptions()
    # None: not given, so a --profile may set it (see _engine_settings).
    parser.add_argument("--threshold", type=_fraction, default=None, metavar="T",
                        help="per-pixel colour difference, 0 to 1, above which a pixel has "
                        f"changed (default: {defaults.threshold}, or the --profile's)")
    parser.add_argument("--diff-threshold", type=_fraction, default=defaults.diff_threshold, metavar="R",
                        help="share of changed pixels, 0 to 1, above which an image is changed, "
                        "unless its manifest sets one (default: %(default)s)")
    parser.add_argument("--no-antialiasing", dest="antialiasing", action="store_false", default=None,
                        help="count anti-aliased pixels as changed (by default they are ignored)")
    parser.add_argument("--no-exif-orientation", dest="exif_orientation", action="store_false",
                        help="compare JPEG, WebP and TIFF pixels as stored, not turned upright "
                        "as their EXIF orientation says")
    parser.add_argument("--max-pixels", type=_positive, default=defaults.max_pixels, metavar="N",
                        help="largest diff canvas, in pixels, to compare (default: %(default)s)")
    parser.add_argument("--workers", type=_positive, default=defaults.workers, metavar="N",
                        help="threads decoding and diffing (default: the number of cores, %(default)s)")
    parser.add_argument("--fetch-workers", type=_positive, default=defaults.fetch_workers, metavar="N",
                        help="concurrent blob fetches (default: %(default)s)")
    parser.add_argument("--max-memory", type=_size, default=defaults.max_memory, metavar="SIZE",
                        help="memory budget for blobs and decoded images, e.g. 512M, 2G "
                        f"(default: {defaults.max_memory / 1024**3:g}G)")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the outcome")


PROFILES: dict[str, dict[str, object]] = {
    "sentry": {"engine": "odiff", "threshold": 0.01, "antialiasing": True, "padded": True},
}
"""Named settings for --profile: ``sentry`` compares as Sentry runs odiff 4.5 (threshold 0.01,
anti-aliasing detection on, images padded top-left to a common canvas). A setting the chosen
engine has no option for (``padded`` when ``--engine`` picks another) is left out."""


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=list(ENGINES), default=None,
                        help=f"pixel-diff engine (default: {DEFAULT_ENGINE}): "
                        + "; ".join(f"{e.name}, {e.reference}" for e in ENGINES.values()))
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="compare as a known system does: 'sentry' is --engine odiff "
                        "--threshold 0.01 with anti-aliasing ignored, as Sentry runs odiff 4.5; "
                        "--engine, --threshold and --no-antialiasing given explicitly win over it, "
                        "wherever they are on the command line")
    parser.add_argument("--no-checkerboard", dest="checkerboard", action="store_false",
                        help="engines pixelmatch and oklab: blend semi-transparent pixels over "
                        "white, not over a checkerboard")
    parser.add_argument("--window-size", type=_positive, metavar="N",
                        help="also find the most changed pixels in any NxN window (window_max)")
    parser.add_argument("--window-min", type=_count, metavar="K",
                        help="with --window-size: an image is changed only if, besides being over "
                        "its diff threshold, some NxN window has more than K changed pixels")
    parser.add_argument("--ignore", type=_parsed(parse_ignore_regions), metavar="x1:y1-x2:y2,...",
                        help="regions whose pixels never count, in every image (corners included, "
                        "odiff's syntax, canvas pixels from the top-left); a region reaching past an "
                        "image's canvas covers the part inside it, one wholly outside an image does "
                        "not apply to it; --ignore-in and a head manifest image's ignore_regions add "
                        "to them")
    add_ignore_in_option(parser, "regions whose pixels never count in the head images whose names "
                         "GLOB matches, on top of --ignore and their own ignore_regions")


def _engine_settings(args: argparse.Namespace) -> dict[str, object]:
    """The engine options of ``args``: explicit options, else the --profile's, else the defaults."""
    given = {"engine": args.engine, "threshold": args.threshold, "antialiasing": args.antialiasing}
    settings = {**PROFILES.get(args.profile, {}), **{k: v for k, v in given.items() if v is not None}}
    engine = str(settings.get("engine", DEFAULT_ENGINE))
    if "padded" not in ENGINES[engine].options:
        settings.pop("padded", None)
    if not args.checkerboard and "checkerboard" not in ENGINES[engine].options:
        raise InputError(f"--no-checkerboard: engine {engine} has no checkerboard (only "
                         + ", ".join(e.name for e in ENGINES.values() if "checkerboard" in e.options) + ")")
    if args.window_min is not None and args.window_size is None:
        raise InputError("--window-min needs --window-size")
    return {**settings, "checkerboard": args.checkerboard, "window_size": args.window_size,
            "window_min": args.window_min, "ignore_regions": args.ignore or (),
            "ignore_patterns": tuple(args.ignore_in)}


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


MANIFEST_IGNORE_IN_HELP = ("write these regions into the manifest's ignore_regions of the images "
                           "whose names GLOB matches: a comparison with this manifest as its head "
                           "ignores them there")
"""What ``--ignore-in`` does for the commands that write a manifest (``manifest``, ``upload``)."""


def add_ignore_in_option(parser: argparse.ArgumentParser, effect: str) -> None:
    """``--ignore-in GLOB=x1:y1-x2:y2,...`` (repeatable): regions for the images whose names
    match GLOB; ``effect`` says what the command does with them."""
    parser.add_argument("--ignore-in", type=_parsed(parse_ignore_pattern), action="append", default=[],
                        metavar="GLOB=x1:y1-x2:y2,...",
                        help=f"{effect}; repeatable. GLOB matches whole image names: * within one "
                        "folder level (not /), ** across levels (**/ also matches no folder), ? one "
                        "character other than /, any other character itself; GLOB ends at the last "
                        "'=', so it may hold '=' and ','. Example: 'phone/**=0:0-1169:46'")


_Parsed = TypeVar("_Parsed")


def _parsed(parse: Callable[[str], _Parsed]) -> Callable[[str], _Parsed]:
    """``parse`` as an argparse type: its ValueError becomes a usage error with its message."""
    def convert(text: str) -> _Parsed:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _add_sentry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--head-artifact-id", type=_artifact_id, default=0, metavar="ID",
                        help="Sentry artifact id of the head build, for comparison.json and the "
                        "diff_mask_image_ids (default: 0)")
    parser.add_argument("--base-artifact-id", type=_artifact_id, default=0, metavar="ID",
                        help="Sentry artifact id of the base build (default: 0)")
    parser.add_argument("--approved", metavar="FILE",
                        help="a previously approved comparison.json (a file or store:KEY, which "
                        "'snapcompare approve' stores): when this run's changes are the same, the "
                        "approval carries over and the exit code is 0; when they differ, the "
                        "summary and the report name the images that differ from it")
    parser.add_argument("--allow-unsized", action="store_true",
                        help="accept manifest images without width and height (Sentry requires "
                        "them); their sizes are read from the images")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="in image folders, read symlinked files that lead outside the folder "
                        "(by default such an image is errored)")


def _add_known_changes_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--known-changes", metavar="FILE",
                        help="changes seen before on the same screens (a file or store:KEY): a "
                        "comparison.json, or a file 'snapcompare known-changes' wrote from several "
                        "comparisons of the main branch. A changed image whose change (its "
                        "similar_change) is known for its name is marked known_change in "
                        "comparison.json and set aside: it does not count in the exit code")
    parser.add_argument("--fail-on-known-changes", action="store_true",
                        help="with --known-changes: count the images whose change is a known one "
                        "in the exit code all the same (they are still marked known_change)")


def _sentry_options(args: argparse.Namespace) -> dict[str, object]:
    return {"head_artifact_id": args.head_artifact_id, "base_artifact_id": args.base_artifact_id,
            "require_sizes": not args.allow_unsized, "follow_symlinks": args.follow_symlinks}


def _artifact_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ARTIFACT_ID:
        raise argparse.ArgumentTypeError(
            f"expected an artifact id (an integer from 0 to {MAX_ARTIFACT_ID}), got {text!r}")
    return int(text)


def _add_scheduler_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the pixel diffs on a Dask cluster (extra 'dask'): tcp://HOST:8786 "
                        "for a running scheduler, or local:N for N local worker processes; the "
                        "builds must be manifests in a store the workers reach (with local:N, "
                        "two folders also work); workers read store credentials from their own "
                        "environment, and local:N workers are started with the token this command "
                        "was given")


def _add_results_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-store", metavar="URL",
                        help="also write comparison.json and the diff masks to this store (same URL "
                        "forms as --store; its prefix plays Sentry's {org}/{project}) under Sentry's "
                        "keys: {prefix}/{head-artifact-id}/{base-artifact-id}/comparison.json and "
                        ".../diff/{stem}.png, where diff_mask_key is the mask's full key. --out still "
                        "gets the local reports. Images whose names share a stem (a.png, a.jpg) share "
                        "a mask key, as in Sentry: the last name in name order wins. With --scheduler, "
                        "workers write the masks and chunks/{i}.json there (plan.json and "
                        "comparison.json come from here) and the masks are not copied into --out")


def _fraction(text: str) -> float:
    """A share from 0 to 1; a percentage given by mistake is answered with the share it means."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    try:
        return check_fraction("value", value)
    except ValueError:
        hint = f" (for {value:g}%, give {value / 100:g})" if 1 < value <= 100 else ""
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}{hint}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _size(text: str) -> int:
    """Bytes from ``1073741824``, ``512M``, ``1G``, ``1.5GiB`` (K, M, G, T are powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 2G, got {text!r}")
    return int(float(match[1]) * _SIZE_UNITS[match[2].upper()])


def _run_compare(args: argparse.Namespace) -> int:
    try:
        options = CompareOptions(
            diff_threshold=args.diff_threshold,
            max_pixels=args.max_pixels,
            workers=args.workers,
            fetch_workers=args.fetch_workers,
            max_memory=args.max_memory,
            exif_orientation=args.exif_orientation,
            **_engine_settings(args),
            **_sentry_options(args),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    store_url, setting = store_from(args)
    code, _ = run_and_report(args.base, args.head, store_url, args.out, options,
                             store_setting=setting, quiet=args.quiet, approved=args.approved,
                             scheduler=args.scheduler, store_token=objectstore_token(args),
                             results_store=args.results_store, known_changes=args.known_changes,
                             fail_on_known_changes=args.fail_on_known_changes)
    return code


def run_and_report(
    base: str,
    head: str,
    store_url: str | None,
    out_dir: Path,
    options: CompareOptions,
    *,
    store_setting: str = "--store",
    quiet: bool = False,
    **compare_settings: Any,
) -> tuple[int, dict[str, Path]]:
    """Compare ``head`` against ``base``, write the reports and print the outcome.

    Returns the exit code and the reports' paths. ``store_setting`` names where ``store_url``
    came from, for messages; ``compare_settings`` (``approved``, ``scheduler``,
    ``store_token``, ``known_changes``, ...) go to `compare_builds`. Raises `InputError` when an
    input or the store cannot be opened, `StoreUnavailable` when the store cannot be used.
    """
    started = time.monotonic()
    display = None if quiet else ProgressDisplay(sys.stderr)
    not_written: ResultsNotWritten | None = None
    # One writer holds --out's lock from the first mask to the last report.
    with ArtifactWriter(out_dir) as artifacts:
        try:
            comparison = compare_builds(base, head, out_dir=out_dir, store=store_url, options=options,
                                        progress=display, store_setting=store_setting,
                                        artifacts=artifacts, **compare_settings)
        except ResultsNotWritten as exc:
            if exc.comparison is None:  # nothing ran: there is nothing to report
                _report_not_written(exc)
                return EXIT_RESULTS_NOT_WRITTEN, {}
            comparison, not_written = exc.comparison, exc
        finally:
            if display is not None:
                display.close()
        reports = write_reports(comparison, artifacts)
    elapsed = time.monotonic() - started
    if quiet:
        for result in _errored(comparison)[:_LISTED]:
            _error(f"{_shown(result.name)}: {result.reason}: {_one_line(result.detail)}")
    else:
        print_summary(comparison, reports, elapsed, sys.stdout)
    code = exit_code(comparison)
    if not_written is not None:
        _report_not_written(not_written)
        code = EXIT_RESULTS_NOT_WRITTEN
    print(outcome_line(comparison, reports, code), flush=True)
    return code, reports


def _report_not_written(exc: ResultsNotWritten) -> None:
    """Name every result the results store did not take (the first few, then a count)."""
    errors = list(exc.errors.values())
    for error in errors[:_LISTED]:
        _error(f"--results-store: not written: {_one_line(str(error), 400)}")
    if len(errors) > _LISTED:
        _error(f"--results-store: {len(errors) - _LISTED} more results not written")


def exit_code(comparison: Comparison) -> int:
    """`EXIT_SAME` when an approval carries over; else `EXIT_ERRORED` if any image errored, else
    `EXIT_DIFFERENCES` if any differs (known changes set aside do not), else `EXIT_SAME`."""
    if comparison.approval is not None:
        return EXIT_SAME
    if comparison.has_errors:
        return EXIT_ERRORED
    if comparison.has_counted_differences:
        return EXIT_DIFFERENCES
    return EXIT_SAME


def outcome_line(comparison: Comparison, reports: dict[str, Path], code: int) -> str:
    """The run's outcome in one line, with the counts that matter and the report's path."""
    summary = comparison.summary
    aside = len(comparison.set_aside)
    counted = {**summary, Status.CHANGED.value: summary[Status.CHANGED] - aside}
    differing = [f"{counted[s]} {s}" for s in (Status.CHANGED, Status.ADDED, Status.REMOVED, Status.RENAMED)
                 if counted[s]]
    parts = []
    if comparison.approval is not None:
        parts.append(f"approved changes carried over from {_shown(comparison.approval.carried_over_from)}")
    elif comparison.approval_mismatch is not None:
        parts.append(f"the approval {_shown(comparison.approval_mismatch.source)} does not match")
    elif exit_code(comparison) == EXIT_SAME:
        parts.append(f"no {'other ' if aside else ''}differences in {summary['total']} images")
    if differing:
        parts.append("differences found: " + ", ".join(differing))
    if aside:
        parts.append(f"{aside} known changes set aside")
    if summary[Status.ERRORED]:
        parts.append(f"{summary[Status.ERRORED]} errored")
    if code == EXIT_RESULTS_NOT_WRITTEN:
        parts.append("results not written to --results-store")
    report = _main_report(reports)
    where = f"; report: {_shown(str(report))}" if report else ""
    return f"snapcompare: {'; '.join(parts)}{where} (exit {code})"


def print_summary(comparison: Comparison, reports: dict[str, Path], elapsed: float, out: TextIO) -> None:
    """One screen: counts per status, the most changed images, renames, errors, report paths."""
    summary = comparison.summary
    lines = [
        f"Compared {summary['total']} images in {elapsed:.1f}s"
        f"  (base: {_shown(comparison.base_source)}, head: {_shown(comparison.head_source)})",
        "  " + "  ".join(f"{status.value} {summary[status]}" for status in Status)
        + f"  total {summary['total']}",
    ]
    resized = [r for r in comparison.images.values() if r.canvas_changed]
    if resized:
        unchanged = sum(1 for r in resized if r.status is Status.UNCHANGED)
        kept = f", {unchanged} of them unchanged as Sentry pads them" if unchanged else ""
        lines.append(f"  {len(resized)} changed size (before and after differ){kept}")
    aside = frozenset(comparison.set_aside)
    changed = sorted(
        (r for r in comparison.images.values() if r.status is Status.CHANGED and r.name not in aside),
        key=lambda r: (-(r.diff_ratio or 0.0), r.name),
    )
    if changed:
        lines += ["", "Most changed:"]
        lines += [
            f"  {100 * (r.diff_ratio or 0.0):7.2f}%  {_shown(r.name)}  "
            f"({r.changed_pixels:,} of {r.total_pixels:,} pixels)"
            for r in changed[:_LISTED]
        ]
        lines += _more(len(changed))
    renamed = [r for r in comparison.images.values() if r.status is Status.RENAMED]
    if renamed:
        lines += ["", "Renamed:"]
        lines += [f"  {_shown(r.previous_image_file_name or '')} -> {_shown(r.name)}" for r in renamed[:_LISTED]]
        lines += _more(len(renamed))
    lines += _known_changes_lines(comparison)
    lines += _approval_lines(comparison)
    errored = _errored(comparison)
    if errored:
        lines += ["", "Errored:"]
        lines += [f"  {_shown(r.name)}: {r.reason}: {_one_line(r.detail)}" for r in errored[:_LISTED]]
        lines += _more(len(errored))
    if reports:
        lines += ["", "Reports:"]
        lines += [f"  {_shown(str(path))}" for path in reports.values()]
    out.write("\n".join([*lines, ""]) + "\n")


def _approval_lines(comparison: Comparison) -> list[str]:
    """What an approval covered, or which images kept a given approval from carrying over."""
    if comparison.approval is not None:
        names = comparison.approval.images
        return ["", f"Approved: the changes of {len(names)} images, carried over from "
                f"{_shown(comparison.approval.carried_over_from)}"]
    mismatch = comparison.approval_mismatch
    if mismatch is None:
        return []
    lines = ["", f"Not approved: {_shown(mismatch.source)} does not hold this run's changes"]
    for title, names in (("changes here that it does not approve", mismatch.unapproved),
                         ("approved changes that are not here", mismatch.not_present)):
        if names:
            lines.append(f"  {title}:")
            lines += [f"    {_shown(name)}" for name in names[:_LISTED]]
            lines += ["  " + line for line in _more(len(names))]
    return lines


def _known_changes_lines(comparison: Comparison) -> list[str]:
    """How many changed images hold a known change, whether they count, and which."""
    known = comparison.known_changes
    if known is None:
        return []
    where = _shown(known.source)
    if not known.images:
        return ["", f"Known changes: none of this run's changes is in {where}"]
    if known.counted:
        title = (f"Known changes: {len(known.images)} changed images hold a change known in {where}, "
                 "counted (--fail-on-known-changes)")
    else:
        title = (f"Known changes set aside: {len(known.images)} changed images hold only a change "
                 f"known in {where}")
    return ["", title, *(f"  {_shown(name)}" for name in known.images[:_LISTED]), *_more(len(known.images))]


def _errored(comparison: Comparison) -> list[ImageResult]:
    return [r for r in comparison.images.values() if r.status is Status.ERRORED]


def _more(count: int) -> list[str]:
    return [f"  ... and {count - _LISTED} more in the report"] if count > _LISTED else []


def _main_report(reports: dict[str, Path]) -> Path | None:
    html = [path for path in reports.values() if path.suffix == ".html"]
    return (html or list(reports.values()) or [None])[0]


def _shown(text: str) -> str:
    """``text`` safe to print on a terminal: control characters are escaped, not sent."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _one_line(text: str | None, limit: int = 160) -> str:
    line = _shown(" ".join((text or "").split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _run_manifest(args: argparse.Namespace) -> int:
    try:
        manifest, _ = manifest_from_folder(args.folder, follow_symlinks=args.follow_symlinks)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    except ManifestError as exc:  # e.g. a folder over the manifest size bound
        raise InputError(str(exc)) from None
    note_left_out(manifest.unreadable)
    manifest = with_ignore_patterns(manifest, args.ignore_in)
    if args.output is None:
        text = json.dumps(dump_manifest(manifest), indent=2, ensure_ascii=False)
        sys.stdout.write(_printable_json(text) + "\n")
        return EXIT_SAME
    try:
        write_manifest(manifest, args.output)
    except OSError as exc:
        raise InputError(f"-o: {describe_os_error(exc)}") from None
    unsized = sum(1 for entry in manifest.images.values() if entry.width is None)
    note = f" ({unsized} not readable as images)" if unsized else ""
    _error(f"wrote {len(manifest.images)} images{note} to {args.output}", prefix="snapcompare: ")
    return EXIT_SAME


def _printable_json(text: str) -> str:
    """JSON ``text`` with every unprintable character but its line breaks spelled ``\\uXXXX``.

    Only strings can hold such characters, where the escape means the same: names with
    terminal control sequences (C1 controls, bidi overrides) or undecodable bytes (lone
    surrogates) print as text, and the output stays the same JSON.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    units = char.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}" for i in range(0, len(units), 2))


def add_follow_symlinks_option(parser: argparse.ArgumentParser) -> None:
    """``--follow-symlinks`` for the commands that read a folder into a manifest."""
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="read symlinked files that lead outside DIR (by default they are "
                        "left out)")


def note_left_out(unreadable: dict[str, str]) -> None:
    """Name on stderr the files of a folder that got no manifest entry, and why."""
    for name, reason in list(unreadable.items())[:_LISTED]:
        _error(f"left out {_shown(name)}: {reason}", prefix="snapcompare: ")
    if len(unreadable) > _LISTED:
        _error(f"left out {len(unreadable) - _LISTED} more files", prefix="snapcompare: ")


def _run_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        builds = generate_demo(out)
    except OSError as exc:
        raise InputError(f"--out: {describe_os_error(exc)}") from None
    if not args.quiet:
        print(f"Demo builds written to {_shown(str(out))}: base.json, head.json and their images, by sha256, "
              f"in the local store {builds.store}.\nWhat the head build changes:")
        print("\n".join(f"  {name}: {note}" for name, note in builds.notes.items()) + "\n")
    # A plain absolute path, not a file:// URL: it needs no percent-encoding whatever the folder.
    code, reports = run_and_report(
        str(builds.base_manifest), str(builds.head_manifest), str(builds.store.resolve()),
        out / "report", CompareOptions(), store_setting="the demo store", quiet=args.quiet,
    )
    report = _main_report(reports)
    if report is not None and not args.quiet:
        print(f"Open {_shown(report.resolve().as_uri())} in a browser.")
    return code


def _error(message: str, *, prefix: str = "snapcompare: error: ") -> None:
    # Messages name inputs (paths, image names, URLs' parts): their control characters are escaped.
    sys.stderr.write(prefix + _shown(message) + "\n")
    sys.stderr.flush()


def _version() -> str:
    try:
        return metadata.version("snapcompare")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    run()
