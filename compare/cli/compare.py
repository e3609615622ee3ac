"""``snapcompare compare --base B --head H --out DIR``: the comparison, its reports and its
outcome on the terminal. With ``--base-from-git`` instead of ``--base``, the base build is found
in the history of the head's git checkout (`compare.inputs.baseline.find_base_from_git`)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any, cast

from fetchers import BACKENDS, BlobFetcher

from ..builds import compare_builds, open_store
from ..imaging.engines import DEFAULT_ENGINE, ENGINES
from ..inputs.baseline import (
    DEFAULT_BASE_BRANCH,
    DEFAULT_LOOKUP_WORKERS,
    DEFAULT_MAX_ANCESTORS,
    BaseBuild,
    NoBaseBuild,
    find_base_from_git,
)
from ..model import MAX_ARTIFACT_ID, CompareOptions, Comparison, InputError, Reason, Resources, check_fraction
from ..output.artifacts import ArtifactWriter
from ..output.reports import REPORT_FILES, write_reports
from ..output.results_store import ResultsNotWritten
from ..regions import parse_ignore_regions
from .common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_RESULTS_NOT_WRITTEN,
    LISTED,
    STORE_ENV,
    ParserT,
    add_follow_symlinks_option,
    add_ignore_in_option,
    add_token_option,
    error,
    objectstore_token,
    one_line,
    parsed,
    path_argument,
    positive,
    print_lines,
    shown,
    size,
    store_from,
)
from .progress import ProgressDisplay
from .summary import errored, exit_code, outcome_line, print_summary


def add_compare_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``compare`` on the ``snapcompare`` subcommands."""
    compare = commands.add_parser(
        "compare",
        help="compare a head build against a base build",
        description="Compare the head build's images against the base build's and write\n"
        "report.html, comparison.json, junit.xml and diff masks into --out.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    base = compare.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", metavar="B",
                      help="base build: a manifest JSON file, store:KEY or a folder of images")
    base.add_argument("--base-from-git", action="store_true",
                      help="instead of --base: find the base build in the git history of --repo, as "
                      "the nearest complete build recorded in --store by 'upload --commit' among the "
                      "merge-base of HEAD with the base branch and its first-parent ancestors; the "
                      "selective builds between it and the merge-base are folded onto it, as Sentry "
                      "folds them")
    compare.add_argument("--head", required=True, metavar="H",
                         help="head build: a manifest JSON file, store:KEY or a folder of images")
    compare.add_argument("--store", metavar="URL",
                         help=f"blob store of the manifests' images (default: ${STORE_ENV}): "
                         + ", ".join(dict.fromkeys(b.url_form for b in BACKENDS.values())))
    compare.add_argument("--out", required=True, type=path_argument, metavar="DIR",
                         help="folder for the reports and diff masks (created if needed)")
    add_token_option(compare)
    _add_base_from_git_options(compare)
    _add_options(compare)
    _add_engine_options(compare)
    _add_sentry_options(compare)
    _add_known_changes_options(compare)
    _add_scheduler_options(compare)
    _add_results_options(compare)
    compare.set_defaults(run=_run_compare)


def _add_base_from_git_options(parser: argparse.ArgumentParser) -> None:
    # None: not given, so that they are refused without --base-from-git (see _base).
    parser.add_argument("--base-branch", metavar="NAME",
                        help="with --base-from-git: the branch the head is compared against, looked "
                        f"for as origin/NAME, then NAME (default: {DEFAULT_BASE_BRANCH})")
    parser.add_argument("--repo", type=path_argument, metavar="PATH",
                        help="with --base-from-git: the git checkout whose HEAD is the head build's "
                        "commit (default: the current folder)")
    parser.add_argument("--max-ancestors", type=positive, metavar="N",
                        help="with --base-from-git: look for a complete build among at most N commits, "
                        f"the merge-base and its first-parent ancestors (default: {DEFAULT_MAX_ANCESTORS})")


def _add_options(parser: argparse.ArgumentParser) -> None:
    defaults, resources = CompareOptions(), Resources()
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
    parser.add_argument("--max-pixels", type=positive, default=defaults.max_pixels, metavar="N",
                        help="largest diff canvas, in pixels, to compare (default: %(default)s)")
    parser.add_argument("--workers", type=positive, default=resources.workers, metavar="N",
                        help="threads decoding and diffing in this process (default: the number of "
                        "cores, %(default)s; cluster workers run one per chunk)")
    parser.add_argument("--fetch-workers", type=positive, default=resources.fetch_workers, metavar="N",
                        help="concurrent blob fetches in this process (default: %(default)s)")
    parser.add_argument("--max-memory", type=size, default=resources.max_memory, metavar="SIZE",
                        help="memory budget of this process for blobs and decoded images, e.g. 512M, "
                        f"2G (default: {resources.max_memory / 1024**3:g}G; cluster workers take "
                        "theirs from their own memory limit)")
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
    parser.add_argument("--window-size", type=positive, metavar="N",
                        help="also find the most changed pixels in any NxN window (window_max)")
    parser.add_argument("--window-min", type=_count, metavar="K",
                        help="with --window-size: an image is changed only if, besides being over "
                        "its diff threshold, some NxN window has more than K changed pixels")
    parser.add_argument("--ignore", type=parsed(parse_ignore_regions), metavar="x1:y1-x2:y2,...",
                        help="regions whose pixels never count, in every image (corners included, "
                        "odiff's syntax, canvas pixels from the top-left); a region reaching past an "
                        "image's canvas covers the part inside it, one wholly outside an image does "
                        "not apply to it; --ignore-in and a head manifest image's ignore_regions add "
                        "to them")
    add_ignore_in_option(parser, "regions whose pixels never count in the head images whose names "
                         "GLOB matches, on top of --ignore and their own ignore_regions")


def _engine_settings(args: argparse.Namespace) -> dict[str, Any]:
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
    add_follow_symlinks_option(parser, "such an image is errored")


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


def _sentry_options(args: argparse.Namespace) -> dict[str, Any]:
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


_RESOURCE_FIELDS = re.compile(r"\b(?:fetch_workers|max_memory|workers)\b")


def _run_compare(args: argparse.Namespace) -> int:
    try:
        options = CompareOptions(
            diff_threshold=args.diff_threshold,
            max_pixels=args.max_pixels,
            exif_orientation=args.exif_orientation,
            **_engine_settings(args),
            **_sentry_options(args),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        resources = Resources(workers=args.workers, fetch_workers=args.fetch_workers, max_memory=args.max_memory)
    except ValueError as exc:  # worded with the fields' names: the options' names instead
        raise InputError(_RESOURCE_FIELDS.sub(lambda field: f"--{field[0].replace('_', '-')}", str(exc))) from None
    if args.fail_on_known_changes and not args.known_changes:
        raise InputError("--fail-on-known-changes goes with --known-changes")
    store_url, setting = store_from(args)
    token = objectstore_token(args)
    base = _base(args, store_url, setting, token)
    code, _ = run_and_report(base, args.head, store_url, args.out, options, resources=resources,
                             store_setting=setting, quiet=args.quiet, approved=args.approved,
                             scheduler=args.scheduler, store_token=token,
                             results_store=args.results_store, known_changes=args.known_changes,
                             fail_on_known_changes=args.fail_on_known_changes)
    return code


def _base(
    args: argparse.Namespace, store_url: str | None, setting: str, token: str | None
) -> str | BaseBuild | NoBaseBuild:
    """``--base``, or with ``--base-from-git`` the base build found in ``--repo``'s history."""
    git_options = {"--base-branch": args.base_branch, "--repo": args.repo, "--max-ancestors": args.max_ancestors}
    if not args.base_from_git:
        given = [flag for flag, value in git_options.items() if value is not None]
        if given:
            raise InputError(f"{given[0]} goes with --base-from-git, not --base")
        return str(args.base)
    if not store_url:
        raise InputError("--base-from-git reads the builds recorded by commit from a store: pass "
                         f"--store URL or set {STORE_ENV}")
    return find_base_build(
        Path(".") if args.repo is None else args.repo, store_url, setting,
        base_branch=DEFAULT_BASE_BRANCH if args.base_branch is None else args.base_branch,
        max_ancestors=DEFAULT_MAX_ANCESTORS if args.max_ancestors is None else args.max_ancestors, token=token,
    )


def find_base_build(
    repository: Path,
    store_url: str,
    store_setting: str,
    *,
    base_branch: str = DEFAULT_BASE_BRANCH,
    max_ancestors: int = DEFAULT_MAX_ANCESTORS,
    token: str | None = None,
) -> BaseBuild | NoBaseBuild:
    """The base build of the commit checked out in ``repository``, from the builds recorded in
    the store (`find_base_from_git`). When there is none, says so on stderr, with how to record
    one. Raises `InputError` when the repository or the store cannot be read,
    `fetchers.StoreUnavailable` when the store cannot be used."""
    with open_store(store_url, store_setting, max_connections=DEFAULT_LOOKUP_WORKERS, token=token) as store:
        # open_store's fetchers are BlobFetchers too, as every fetcher_from_url gives
        found = find_base_from_git(repository, cast(BlobFetcher, store), base_branch, max_ancestors=max_ancestors)
    if isinstance(found, NoBaseBuild):
        error(found.message, prefix="snapcompare: ")
        error(f"to record one, upload a build of {base_branch} by its commit, as CI does on each push to it: "
              f"snapcompare upload DIR --store URL --commit <commit of {base_branch}> --branch {base_branch}",
              prefix="snapcompare: ")
    return found


def run_and_report(
    base: str | BaseBuild | NoBaseBuild,
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

    ``base`` is a build as ``--base`` gives it, or the base build found in git history (see
    `find_base_build`). Returns the exit code and the reports' paths. ``store_setting`` names
    where ``store_url`` came from, for messages; ``compare_settings`` (``approved``,
    ``scheduler``, ``store_token``, ``known_changes``, ...) go to `compare_builds`. Raises `InputError` when an
    input or the store cannot be opened, `StoreUnavailable` when the store cannot be used.
    """
    started = time.monotonic()
    display = None if quiet else ProgressDisplay(sys.stderr)
    not_written: ResultsNotWritten | None = None
    # One writer holds --out's lock from the first mask to the last report.
    with ArtifactWriter(out_dir, reports=REPORT_FILES.values()) as artifacts:
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
        for result in errored(comparison)[:LISTED]:
            error(f"{shown(result.name)}: {result.reason}: {one_line(result.detail)}")
    else:
        print_summary(comparison, reports, elapsed, sys.stdout)
    code = exit_code(comparison)
    if not_written is not None:
        _report_not_written(not_written)
        code = EXIT_RESULTS_NOT_WRITTEN
    if _report_internal_errors(comparison):
        code = EXIT_FAILED
    print(outcome_line(comparison, reports, code), flush=True)
    return code, reports


def _report_internal_errors(comparison: Comparison) -> bool:
    """Print the traceback of every image a bug in snapcompare stopped (the first few); True if any."""
    stopped = [r for r in comparison.images.values() if r.reason is Reason.INTERNAL_ERROR]
    for result in stopped[:LISTED]:
        print_lines(result.detail or "")
    if stopped:
        error(f"a bug in snapcompare stopped {len(stopped)} images (tracebacks above); the reports "
              "list them as internal_error")
    return bool(stopped)


def _report_not_written(exc: ResultsNotWritten) -> None:
    """Name every result the results store did not take (the first few, then a count)."""
    errors = list(exc.errors.values())
    for failure in errors[:LISTED]:
        error(f"--results-store: not written: {one_line(str(failure), 400)}")
    if len(errors) > LISTED:
        error(f"--results-store: {len(errors) - LISTED} more results not written")
