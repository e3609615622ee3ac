"""``snapcompare demo``: draw two builds into a local store, compare them, write the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import generate_demo
from ..model import CompareOptions, InputError
from ..builds import describe_os_error
from .common import EXIT_CODES_HELP, shown
from .compare import run_and_report
from .summary import main_report


DEMO_OUT = "snapcompare-demo"


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    """Register ``demo`` on the ``snapcompare`` subcommands."""
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


def _run_demo(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        builds = generate_demo(out)
    except OSError as exc:
        raise InputError(f"--out: {describe_os_error(exc)}") from None
    if not args.quiet:
        print(f"Demo builds written to {shown(str(out))}: base.json, head.json and their images, by sha256, "
              f"in the local store {builds.store}.\nWhat the head build changes:")
        print("\n".join(f"  {name}: {note}" for name, note in builds.notes.items()) + "\n")
    # A plain absolute path, not a file:// URL: it needs no percent-encoding whatever the folder.
    code, reports = run_and_report(
        str(builds.base_manifest), str(builds.head_manifest), str(builds.store.resolve()),
        out / "report", CompareOptions(), store_setting="the demo store", quiet=args.quiet,
    )
    report = main_report(reports)
    if report is not None and not args.quiet:
        print(f"Open {shown(report.resolve().as_uri())} in a browser.")
    return code
