"""``snapcompare known-changes COMPARISON... -o FILE``: the changes that keep coming back.

Given several ``comparison.json`` files of the main branch, oldest first (the order of the
command line), it writes the changes (image name and similar-change id) found in at least
``--min-count`` of the last ``--last`` of them (`compare.inputs.known_changes`), for a later
``compare --known-changes FILE``. Exit codes: 0 written, 3 bad input (a file that is not a
comparison, bad options) or ``-o`` not writable.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..builds import describe_os_error
from ..inputs.known_changes import (
    DEFAULT_LAST,
    DEFAULT_MIN_COUNT,
    comparison_changes,
    count_known_changes,
    known_changes_file,
)
from ..inputs.manifest import decode_json
from ..inputs.sources import STORE_PREFIX, read_input
from ..model import InputError
from .common import EXIT_BAD_INPUT, EXIT_SAME, ParserT, input_argument, path_argument, positive, shown

KNOWN_CHANGES_HELP = f"""\
A change counts once per comparison that holds it, for the image it was seen on; only the last
--last comparisons given are read, so list them oldest first (as CI keeps them, e.g. by date).

exit codes:
  {EXIT_SAME}    the known changes are written to -o (possibly none)
  {EXIT_BAD_INPUT}    bad input: a file that is not a comparison.json, bad options, -o not writable
"""


def add_known_changes_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``known-changes`` on the ``snapcompare`` subcommands."""
    command = commands.add_parser(
        "known-changes",
        help="list the changes seen again and again in comparisons of the main branch, "
        "for compare --known-changes",
        description="Read comparison.json files of the main branch (oldest first) and write the\n"
        "changes found in at least --min-count of the last --last of them, for\n"
        "'snapcompare compare --known-changes FILE'.",
        epilog=KNOWN_CHANGES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("comparisons", type=input_argument, nargs="+", metavar="COMPARISON",
                         help="comparison.json files, oldest first")
    command.add_argument("-o", "--output", type=path_argument, required=True, metavar="FILE",
                         help="where to write the known changes (JSON)")
    command.add_argument("--min-count", type=positive, default=DEFAULT_MIN_COUNT, metavar="N",
                         help="comparisons a change must be found in (default: %(default)s)")
    command.add_argument("--last", type=positive, default=DEFAULT_LAST, metavar="M",
                         help="how many of the comparisons, the last given, are read (default: %(default)s)")
    command.set_defaults(run=run_known_changes)


def run_known_changes(args: argparse.Namespace) -> int:
    """Count the changes of the last ``--last`` comparisons and write those found often enough."""
    if args.min_count > args.last:
        raise InputError(f"--min-count {args.min_count} is more than --last {args.last}: no change could be "
                         "found in that many of the comparisons read")
    paths: list[str] = args.comparisons[-args.last:]
    seen: dict[Path, str] = {}
    for path in paths:  # a comparison given twice would count its changes twice
        if path.startswith(STORE_PREFIX):
            raise InputError(f"COMPARISON {shown(path)}: known-changes reads comparisons from files, not from a "
                             f"store (for a file of that name, give ./{shown(path)})")
        where = Path(path).resolve()
        if where in seen:
            raise InputError(f"COMPARISON {shown(path)} is given twice ({shown(seen[where])}): each "
                             "comparison counts once")
        seen[where] = path
    changes = []
    for path in paths:
        try:
            data, _ = read_input(path, None, "COMPARISON")
            changes.append(comparison_changes(decode_json(data, path), path))
        except ValueError as exc:  # ManifestError included
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(describe_os_error(exc)) from None
    counts = count_known_changes(changes, min_count=args.min_count, last=args.last)
    document = known_changes_file(counts, paths, min_count=args.min_count, last=args.last)
    try:
        args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="ascii")
    except OSError as exc:
        raise InputError(f"-o: {describe_os_error(exc)}") from None
    print(f"snapcompare: {len(counts)} known changes (found in at least {args.min_count} of the last "
          f"{len(paths)} comparisons) written to {shown(str(args.output))} (exit {EXIT_SAME})", flush=True)
    return EXIT_SAME
