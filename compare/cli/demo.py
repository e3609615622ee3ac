"""``snapcompare demo``: draw two builds into a local store, compare them, write the report; then
compare a feature branch's build against the base found in a small git history."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..builds import describe_os_error
from ..demo import check_demo_repository, generate_demo, record_demo_history
from ..inputs.baseline import GitError
from ..model import CompareOptions, InputError
from .common import EXIT_CODES_HELP, ParserT, error, path_argument, shown
from .compare import find_base_build, run_and_report
from .summary import main_report

DEMO_OUT = "snapcompare-demo"
DEMO_STORE = "the demo store"


def add_demo_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``demo`` on the ``snapcompare`` subcommands."""
    demo = commands.add_parser(
        "demo",
        help="generate two demo builds in a local store and compare them",
        description="Draw a base and a head build of phone screenshots, store them by content\n"
        "hash in a local folder store with their manifests, compare them and write the report.\n"
        "Then record builds at commits of a small git repository and compare a feature branch's\n"
        "build against the base found in its history, as 'compare --base-from-git' does.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--out", type=path_argument, default=Path(DEMO_OUT), metavar="DIR",
                      help=f"folder for the demo builds and the reports (default: ./{DEMO_OUT})")
    demo.add_argument("--quiet", action="store_true", help="print only errors and the outcome")
    demo.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        check_demo_repository(out)  # before any work, which would be left half done
        builds = generate_demo(out)
    except OSError as exc:
        raise InputError(f"--out: {describe_os_error(exc)}") from None
    if not args.quiet:
        print(f"Demo builds written to {shown(str(out))}: base.json, head.json and their images, by sha256, "
              f"in the local store {builds.store}.\nWhat the head build changes:")
        print("\n".join(f"  {name}: {note}" for name, note in builds.notes.items()) + "\n")
    # A plain absolute path, not a file:// URL: it needs no percent-encoding whatever the folder.
    store = str(builds.store.resolve())
    code, reports = run_and_report(
        str(builds.base_manifest), str(builds.head_manifest), store, out / "report", CompareOptions(),
        store_setting=DEMO_STORE, quiet=args.quiet,
    )
    _open(reports, args.quiet)
    try:
        history = record_demo_history(builds)
    except GitError as exc:
        error(f"{exc}: the comparison whose base is found in git history is left out", prefix="snapcompare: ")
        return code
    except OSError as exc:
        raise InputError(f"--out: {describe_os_error(exc)}") from None
    if not args.quiet:
        print(f"\nA second head: feature.json, the build of the branch feature of the git repository "
              f"{shown(str(history.repository))}. On main, commit {history.base_commit} has a complete build "
              f"(the base above) and {history.layer_commit} a selective one (settings/main.png only), where "
              "feature starts. Its base is found in that history, as 'snapcompare compare --base-from-git' "
              "finds it. What the feature build changes:")
        print("\n".join(f"  {name}: {note}" for name, note in history.notes.items()) + "\n")
    base = find_base_build(history.repository, store, DEMO_STORE)
    found_code, reports = run_and_report(
        base, str(history.head_manifest), store, out / "report-from-git", CompareOptions(),
        store_setting=DEMO_STORE, quiet=args.quiet,
    )
    _open(reports, args.quiet)
    return max(code, found_code)


def _open(reports: dict[str, Path], quiet: bool) -> None:
    report = main_report(reports)
    if report is not None and not quiet:
        print(f"Open {shown(report.resolve().as_uri())} in a browser.")
